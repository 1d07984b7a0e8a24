/* Tests for cli/manifest.c: escaping round-trips every byte, one spelling per byte string,
 * strict parsing with the line number of the first fault, and the comparison of entries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manifest.h"

static char *escaped(const char *s)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	assert_non_null(out);
	manifest_escape(out, s);
	assert_int_equal(fclose(out), 0);
	return text;
}

/* Parses text; returns the error code, and the manifest or the error through the pointers. */
static int parse(const char *text, struct manifest **ret, struct manifest_error *err)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	int r;

	assert_non_null(in);
	*ret = NULL;
	r = manifest_parse(in, ret, err);
	fclose(in);
	return r;
}

static void test_manifest_escape_every_byte(void **state)
{
	char raw[256], *text, *back;

	(void)state;
	for (int i = 1; i < 256; i++)
		raw[i - 1] = (char)i;
	raw[255] = '\0';
	text = escaped(raw);
	/* no raw space, newline, tab or non-ASCII byte survives */
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		assert_true(*p >= 0x21 && *p <= 0x7e);
	assert_int_equal(manifest_unescape(text, strlen(text), &back), 0);
	assert_memory_equal(back, raw, 256);
	free(back);
	free(text);
}

static void test_manifest_escape_spelling(void **state)
{
	char *text;

	(void)state;
	text = escaped("a b\tc\nd\\e\xff/\xc3\xa9");
	assert_string_equal(text, "a\\x20b\\x09c\\x0ad\\\\e\\xff/\\xc3\\xa9");
	free(text);
}

static void test_manifest_unescape_rejects_other_spellings(void **state)
{
	static const char *const bad[] = {
		"a b",	    /* a raw space */
		"\\x41",    /* 'A' is written as itself */
		"\\x5c",    /* '\' is written "\\" */
		"\\xFF",    /* uppercase hex */
		"\\x00",    /* NUL cannot be in a name */
		"\\x4",	    /* cut short */
		"\\",	    /* a lone backslash */
		"\\n",	    /* C escapes are not ours */
		"\xc3\xa9", /* raw non-ASCII */
	};
	char *out;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(manifest_unescape(bad[i], strlen(bad[i]), &out), -EINVAL);
}

static const char good[] = MANIFEST_MAGIC "\n"
					  "view ws\n"
					  "dir 0755 - - - d\n"
					  "file 0644 3 1700000000123456789 "
					  "0123456789abcdef0123456789abcdef d/a\\x0ab\n"
					  "char 0600 0 5 1:3 dev/null\n"
					  "symlink 0777 4 -5 ../f\\x20 l\n"
					  "fifo 0644 0 0 - p\n";

static void test_manifest_parse_and_write_round_trip(void **state)
{
	struct manifest_error err;
	struct manifest *m;
	char *text = NULL;
	size_t size = 0;
	FILE *out;

	(void)state;
	assert_int_equal(parse(good, &m, &err), 0);
	assert_string_equal(m->view, "ws");
	assert_int_equal(m->n, 5);
	assert_int_equal(m->entries[2]->type, MANIFEST_CHAR);
	assert_int_equal(m->entries[2]->rdev_minor, 3);
	assert_string_equal(m->entries[1]->path, "d/a\nb");
	assert_int_equal(m->entries[1]->size, 3);
	assert_true(m->entries[1]->mtime_ns == 1700000000123456789LL);
	assert_int_equal(m->entries[1]->hash[0], 0x01);
	assert_int_equal(m->entries[1]->hash[15], 0xef);
	assert_string_equal(m->entries[3]->target, "../f ");
	assert_true(m->entries[3]->mtime_ns == -5);

	out = open_memstream(&text, &size);
	assert_non_null(out);
	manifest_write(out, m);
	assert_int_equal(fclose(out), 0);
	assert_string_equal(text, good);
	free(text);
	manifest_free(m);
}

/* Each malformed manifest, and the line and words its error must name. */
static void test_manifest_parse_errors_name_the_line(void **state)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *message;
	} cases[] = {
		{"", 0, "empty file"},
		{"jobfs-manifest 2\n", 1, "not a jobfs manifest"},
		{MANIFEST_MAGIC, 1, "no newline"},
		{MANIFEST_MAGIC "\nfile 0644 1 1 - a\n", 2, "hash"},
		{MANIFEST_MAGIC "\ndir 0755 - - - a\ndir 0755 - - - a\n", 3, "listed twice"},
		{MANIFEST_MAGIC "\ndir 0755 - - - b\ndir 0755 - - - a\n", 3, "out of order"},
		{MANIFEST_MAGIC "\ndir 0755 - - - a\nfile 644 0 0 "
				"0123456789abcdef0123456789abcdef b\n",
		 3, "mode"},
		{MANIFEST_MAGIC "\nsock 0755 0 0 - a\n", 2, "unknown type"},
		{MANIFEST_MAGIC "\ndir 0755 0 0 - a\n", 2, "a dir has"},
		{MANIFEST_MAGIC "\nfifo 0644 01 0 - a\n", 2, "size"},
		{MANIFEST_MAGIC "\nfifo 0644 0 x - a\n", 2, "mtime"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0 - a b\n", 2, "more than 6 fields"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0  a\n", 2, "empty field"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0 -\n", 2, "expected 6 fields"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0 - a/../b\n", 2, "path"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0 - \\x2fa\n", 2, "path"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0 - a\\x2\n", 2, "invalid escape"},
		{MANIFEST_MAGIC "\nchar 0644 0 0 1 a\n", 2, "MAJOR:MINOR"},
		{MANIFEST_MAGIC "\nfifo 0644 0 0 - a\nfifo 0644 0 0 - b", 3, "truncated"},
	};
	struct manifest_error err;
	struct manifest *m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse(cases[i].text, &m, &err);

		if (r != -EINVAL || err.line != cases[i].line ||
		    !strstr(err.message, cases[i].message))
			fail_msg("case %zu: r=%d line %u '%s', expected line %u '%s'", i, r,
				 err.line, err.message, cases[i].line, cases[i].message);
		assert_null(m);
	}
}

static void test_manifest_entry_diff(void **state)
{
	struct manifest_entry a = {.path = "f", .type = MANIFEST_FILE, .mode = 0644, .size = 3};
	struct manifest_entry b = a;
	struct manifest_entry l1 = {.path = "l", .type = MANIFEST_SYMLINK, .target = "x"};
	struct manifest_entry l2 = {.path = "l", .type = MANIFEST_SYMLINK, .target = "y"};

	(void)state;
	assert_int_equal(manifest_entry_diff(&a, &b), 0);
	b.mtime_ns = 1;
	b.hash[3] = 1;
	assert_int_equal(manifest_entry_diff(&a, &b), MANIFEST_DIFF_MTIME | MANIFEST_DIFF_CONTENT);
	b = a;
	b.mode = 0600;
	assert_int_equal(manifest_entry_diff(&a, &b), MANIFEST_DIFF_MODE);
	b.type = MANIFEST_DIR;
	assert_int_equal(manifest_entry_diff(&a, &b), MANIFEST_DIFF_TYPE);
	assert_int_equal(manifest_entry_diff(&l1, &l2), MANIFEST_DIFF_TARGET);
	/* a dir's size and mtime are not recorded, so they cannot differ */
	a.type = b.type = MANIFEST_DIR;
	b.mode = a.mode;
	b.mtime_ns = 7;
	assert_int_equal(manifest_entry_diff(&a, &b), 0);
}

static void test_manifest_sort_is_byte_order(void **state)
{
	static const char *const paths[] = {"a0", "\xff", "a/b", "a-b", "A", "a"};
	static const char *const sorted[] = {"A", "a", "a-b", "a/b", "a0", "\xff"};
	struct manifest *m = manifest_new();

	(void)state;
	assert_non_null(m);
	for (size_t i = 0; i < 6; i++) {
		struct manifest_entry *e = calloc(1, sizeof(*e));

		assert_non_null(e);
		e->path = strdup(paths[i]);
		assert_int_equal(manifest_add(m, e), 0);
	}
	manifest_sort(m);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(m->entries[i]->path, sorted[i]);
	manifest_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_escape_every_byte),
		cmocka_unit_test(test_manifest_escape_spelling),
		cmocka_unit_test(test_manifest_unescape_rejects_other_spellings),
		cmocka_unit_test(test_manifest_parse_and_write_round_trip),
		cmocka_unit_test(test_manifest_parse_errors_name_the_line),
		cmocka_unit_test(test_manifest_entry_diff),
		cmocka_unit_test(test_manifest_sort_is_byte_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
