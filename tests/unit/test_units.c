/* Tests for policy/units.c: the grammars of job IDs, view and variable names, sizes, durations and
 * paths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

static void test_units_job_id_grammar(void **state)
{
	char id[POLICY_JOB_ID_MAX + 2];

	(void)state;
	assert_true(policy_job_id_valid("1"));
	assert_true(policy_job_id_valid("job-42"));
	assert_true(policy_job_id_valid("12345678901.3_a-B"));
	assert_true(policy_job_id_valid("a.."));
	assert_false(policy_job_id_valid(NULL));
	assert_false(policy_job_id_valid(""));
	assert_false(policy_job_id_valid("."));
	assert_false(policy_job_id_valid(".."));
	assert_false(policy_job_id_valid(".hidden"));
	assert_false(policy_job_id_valid("-rf"));
	assert_false(policy_job_id_valid("_x"));
	assert_false(policy_job_id_valid("a/b"));
	assert_false(policy_job_id_valid("a b"));
	assert_false(policy_job_id_valid("a\n"));
	assert_false(policy_job_id_valid("caf\xc3\xa9"));

	memset(id, 'a', POLICY_JOB_ID_MAX);
	id[POLICY_JOB_ID_MAX] = '\0';
	assert_true(policy_job_id_valid(id));
	id[POLICY_JOB_ID_MAX] = 'a';
	id[POLICY_JOB_ID_MAX + 1] = '\0';
	assert_false(policy_job_id_valid(id));
}

static void test_units_view_name_grammar(void **state)
{
	char name[POLICY_NAME_MAX + 2];

	(void)state;
	assert_true(policy_view_name_valid("pnpm-store"));
	assert_true(policy_view_name_valid("My_view.v2"));
	assert_false(policy_view_name_valid(""));
	assert_false(policy_view_name_valid(".git"));
	assert_false(policy_view_name_valid("a/b"));
	memset(name, 'v', POLICY_NAME_MAX);
	name[POLICY_NAME_MAX] = '\0';
	assert_true(policy_view_name_valid(name));
	name[POLICY_NAME_MAX] = 'v';
	name[POLICY_NAME_MAX + 1] = '\0';
	assert_false(policy_view_name_valid(name));
}

static void test_units_var_name_grammar(void **state)
{
	(void)state;
	assert_true(policy_var_name_valid("HOME", 4));
	assert_true(policy_var_name_valid("_x1", 3));
	assert_true(policy_var_name_valid("HOME}", 4));
	assert_false(policy_var_name_valid("", 0));
	assert_false(policy_var_name_valid("1X", 2));
	assert_false(policy_var_name_valid("A-B", 3));
	assert_false(policy_var_name_valid("A B", 3));
}

static void test_units_size_parses(void **state)
{
	uint64_t bytes = 0;

	(void)state;
	assert_int_equal(policy_parse_size("0B", &bytes), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(policy_parse_size("512B", &bytes), 0);
	assert_int_equal(bytes, 512);
	assert_int_equal(policy_parse_size("64KiB", &bytes), 0);
	assert_int_equal(bytes, 64 * 1024);
	assert_int_equal(policy_parse_size("100MiB", &bytes), 0);
	assert_int_equal(bytes, UINT64_C(100) << 20);
	assert_int_equal(policy_parse_size("020GiB", &bytes), 0);
	assert_int_equal(bytes, UINT64_C(20) << 30);
	assert_int_equal(policy_parse_size("16777215TiB", &bytes), 0);
	assert_int_equal(bytes, UINT64_C(16777215) << 40);
	assert_int_equal(policy_parse_size("18446744073709551614B", &bytes), 0);
	assert_int_equal(bytes, UINT64_MAX - 1);
}

static void test_units_size_rejects(void **state)
{
	static const char *const bad[] = {
		"",	  "GiB",   "20",     "20G",  "20GB",  "20gib", "20 GiB", " 20GiB", "20GiB ",
		"+20GiB", "-1GiB", "1.5GiB", "1e3B", "0x10B", "20KB",  "20iB",	 "20GiBs",
	};
	uint64_t bytes = 7;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (policy_parse_size(bad[i], &bytes) != -EINVAL)
			fail_msg("size '%s' was not rejected", bad[i]);
	assert_int_equal(policy_parse_size(NULL, &bytes), -EINVAL);
	assert_int_equal(policy_parse_size("16777216TiB", &bytes), -ERANGE);
	assert_int_equal(policy_parse_size("18446744073709551616B", &bytes), -ERANGE);
	assert_int_equal(policy_parse_size("99999999999999999999999999GiB", &bytes), -ERANGE);
	assert_int_equal(policy_parse_size("99999999999999999999999999x", &bytes), -EINVAL);
	assert_int_equal(bytes, 7);
}

static void test_units_duration_parses(void **state)
{
	uint64_t seconds = 0;

	(void)state;
	assert_int_equal(policy_parse_duration("0s", &seconds), 0);
	assert_int_equal(seconds, 0);
	assert_int_equal(policy_parse_duration("90s", &seconds), 0);
	assert_int_equal(seconds, 90);
	assert_int_equal(policy_parse_duration("15m", &seconds), 0);
	assert_int_equal(seconds, 900);
	assert_int_equal(policy_parse_duration("24h", &seconds), 0);
	assert_int_equal(seconds, 86400);
	assert_int_equal(policy_parse_duration("7d", &seconds), 0);
	assert_int_equal(seconds, 7 * 86400);
}

static void test_units_duration_rejects(void **state)
{
	static const char *const bad[] = {
		"", "24", "h", "1w", "1h30m", "1.5h", "-1h", "24H", "1 h", "1sec", "1ms", "1y",
	};
	uint64_t seconds = 7;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (policy_parse_duration(bad[i], &seconds) != -EINVAL)
			fail_msg("duration '%s' was not rejected", bad[i]);
	assert_int_equal(policy_parse_duration("213503982334602d", &seconds), -ERANGE);
	assert_int_equal(policy_parse_duration("213503982334601d", &seconds), 0);
	assert_int_equal(seconds, UINT64_C(213503982334601) * 86400);
}

static void test_units_format_round_trips(void **state)
{
	static const char *const sizes[] = {"1B", "1023B", "1KiB", "1025KiB", "20GiB", "3TiB"};
	static const char *const durations[] = {"1s", "59s", "1m", "90m", "1h", "25h", "7d"};
	char buf[POLICY_FORMAT_MAX];
	uint64_t value;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(policy_parse_size(sizes[i], &value), 0);
		assert_string_equal(policy_format_size(value, buf), sizes[i]);
	}
	for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		assert_int_equal(policy_parse_duration(durations[i], &value), 0);
		assert_string_equal(policy_format_duration(value, buf), durations[i]);
	}
	assert_string_equal(policy_format_size(0, buf), "0B");
	assert_string_equal(policy_format_duration(0, buf), "0s");
	assert_string_equal(policy_format_duration(86400, buf), "1d");
	assert_string_equal(policy_format_size(UINT64_MAX, buf), "18446744073709551615B");
	/* the largest values parse back (found by fuzz_units: UINT64_MAX was an overflow marker) */
	assert_int_equal(policy_parse_size(buf, &value), 0);
	assert_true(value == UINT64_MAX);
	assert_int_equal(policy_parse_duration(policy_format_duration(UINT64_MAX, buf), &value), 0);
	assert_true(value == UINT64_MAX);
	assert_int_equal(policy_parse_size("18446744073709551615KiB", &value), -ERANGE);
}

static void test_units_path_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{"/", "/"},	      {"//", "/"},	    {"/a", "/a"},
		{"/a/", "/a"},	      {"//a//b//", "/a/b"}, {"/a/.b/..c", "/a/.b/..c"},
		{"/a b/c", "/a b/c"},
	};
	static const char *const bad[] = {
		"", "a", "./a", "/a/./b", "/a/../b", "/..", "/a/.", "/a\nb", "/a\tb", "/a\x7f",
	};
	const char *why;
	char *out;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = NULL;
		assert_int_equal(policy_path_normalize(good[i].in, &out, &why), 0);
		assert_string_equal(out, good[i].out);
		free(out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (policy_path_normalize(bad[i], &out, &why) != -EINVAL)
			fail_msg("path '%s' was not rejected", bad[i]);
		assert_non_null(why);
	}
}

static void test_units_path_too_long(void **state)
{
	char *path = malloc(5000), *out;
	const char *why = NULL;

	(void)state;
	assert_non_null(path);
	path[0] = '/';
	memset(path + 1, 'a', 4998);
	path[4999] = '\0';
	assert_int_equal(policy_path_normalize(path, &out, &why), -EINVAL);
	assert_string_equal(why, "longer than PATH_MAX");
	free(path);
}

static void test_units_path_overlaps(void **state)
{
	(void)state;
	assert_true(policy_path_overlaps("/a", "/a"));
	assert_true(policy_path_overlaps("/a", "/a/b"));
	assert_true(policy_path_overlaps("/a/b", "/a"));
	assert_true(policy_path_overlaps("/", "/anything"));
	assert_false(policy_path_overlaps("/a", "/ab"));
	assert_false(policy_path_overlaps("/ab", "/a"));
	assert_false(policy_path_overlaps("/a/b", "/a/c"));
}

static void test_units_names(void **state)
{
	enum policy_promote_kind kind;
	unsigned i;

	(void)state;
	for (i = 0; i < POLICY_PROMOTE_KIND_COUNT; i++) {
		assert_int_equal(policy_promote_from_name(policy_promote_name(i), &kind), 0);
		assert_int_equal(kind, i);
	}
	assert_string_equal(policy_promote_name(POLICY_PROMOTE_ADD_ONLY), "add-only");
	assert_int_equal(policy_promote_from_name("None", &kind), -EINVAL);
	assert_string_equal(policy_promote_name(POLICY_PROMOTE_KIND_COUNT), "unknown");
	assert_string_equal(policy_origin_name(POLICY_ORIGIN_ENV), "env");
	assert_string_equal(policy_origin_name(POLICY_ORIGIN_BUILTIN), "builtin");
	assert_string_equal(policy_origin_name((enum policy_origin)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units_job_id_grammar),
		cmocka_unit_test(test_units_view_name_grammar),
		cmocka_unit_test(test_units_var_name_grammar),
		cmocka_unit_test(test_units_size_parses),
		cmocka_unit_test(test_units_size_rejects),
		cmocka_unit_test(test_units_duration_parses),
		cmocka_unit_test(test_units_duration_rejects),
		cmocka_unit_test(test_units_format_round_trips),
		cmocka_unit_test(test_units_path_normalize),
		cmocka_unit_test(test_units_path_too_long),
		cmocka_unit_test(test_units_path_overlaps),
		cmocka_unit_test(test_units_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
