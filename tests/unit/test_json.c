/* Tests for cli/json.c: structure, indentation, and escaping into valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

struct capture {
	char *text;
	size_t size;
	FILE *out;
};

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	c->out = open_memstream(&c->text, &c->size);
	if (!c->out) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct capture *c = *state;

	if (c->out)
		fclose(c->out);
	free(c->text);
	free(c);
	return 0;
}

/* Everything written so far. */
static const char *captured(struct capture *c)
{
	assert_int_equal(fflush(c->out), 0);
	return c->text;
}

static const char *escaped(struct capture *c, const char *s)
{
	json_write_escaped(c->out, s);
	return captured(c);
}

static void test_json_document(void **state)
{
	struct capture *c = *state;
	struct json_writer w;

	json_init(&w, c->out);
	json_object_begin(&w);
	json_key(&w, "name");
	json_string(&w, "workspace");
	json_key(&w, "lower");
	json_array_begin(&w);
	json_string(&w, "/a");
	json_string(&w, "/b");
	json_array_end(&w);
	json_key(&w, "empty");
	json_array_begin(&w);
	json_array_end(&w);
	json_key(&w, "nested");
	json_object_begin(&w);
	json_key(&w, "n");
	json_uint(&w, UINT64_MAX);
	json_key(&w, "i");
	json_int(&w, INT64_MIN);
	json_object_end(&w);
	json_key(&w, "none");
	json_string(&w, NULL);
	json_key(&w, "yes");
	json_bool(&w, true);
	json_key(&w, "no");
	json_bool(&w, false);
	json_object_end(&w);
	json_finish(&w);
	assert_string_equal(captured(c), "{\n"
					 "  \"name\": \"workspace\",\n"
					 "  \"lower\": [\n"
					 "    \"/a\",\n"
					 "    \"/b\"\n"
					 "  ],\n"
					 "  \"empty\": [],\n"
					 "  \"nested\": {\n"
					 "    \"n\": 18446744073709551615,\n"
					 "    \"i\": -9223372036854775808\n"
					 "  },\n"
					 "  \"none\": null,\n"
					 "  \"yes\": true,\n"
					 "  \"no\": false\n"
					 "}\n");
}

static void test_json_top_level_array(void **state)
{
	struct capture *c = *state;
	struct json_writer w;

	json_init(&w, c->out);
	json_array_begin(&w);
	json_object_begin(&w);
	json_object_end(&w);
	json_null(&w);
	json_array_end(&w);
	json_finish(&w);
	assert_string_equal(captured(c), "[\n  {},\n  null\n]\n");
}

static void test_json_escapes_specials(void **state)
{
	struct capture *c = *state;

	assert_string_equal(escaped(c, "a\"b\\c/d\n\t\r\b\f\x01\x1f\x7f"),
			    "a\\\"b\\\\c/d\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f");
}

static void test_json_keeps_valid_utf8(void **state)
{
	struct capture *c = *state;

	/* é, €, U+10FFFF */
	assert_string_equal(escaped(c, "caf\xc3\xa9 \xe2\x82\xac \xf4\x8f\xbf\xbf"),
			    "caf\xc3\xa9 \xe2\x82\xac \xf4\x8f\xbf\xbf");
}

static void test_json_replaces_invalid_utf8(void **state)
{
	struct capture *c = *state;

	/* A stray continuation byte, a truncated sequence, an overlong '/', a surrogate, a code
	 * point above U+10FFFF, and 0xff. */
	assert_string_equal(escaped(c, "a\x80"
				       "b\xc3"
				       "c\xc0\xaf"
				       "d\xed\xa0\x80"
				       "e\xf4\x90\x80\x80"
				       "f\xff"),
			    "a\\ufffdb\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffde\\ufffd\\ufffd"
			    "\\ufffd\\ufffdf\\ufffd");
}

static void test_json_escapes_keys(void **state)
{
	struct capture *c = *state;
	struct json_writer w;

	json_init(&w, c->out);
	json_object_begin(&w);
	json_key(&w, "we\"ird");
	json_uint(&w, 0);
	json_object_end(&w);
	json_finish(&w);
	assert_string_equal(captured(c), "{\n  \"we\\\"ird\": 0\n}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json_document, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_top_level_array, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_escapes_specials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_keeps_valid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_replaces_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_escapes_keys, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
