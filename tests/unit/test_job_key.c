/* Tests for policy/job_key.c: job IDs derived from a CI system's identifiers are valid, readable
 * when they can be, deterministic, bounded, and distinct for distinct inputs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define HASH_SUFFIX_LEN 17 /* '.' and 16 hex digits */

static void key4(const char *a, const char *b, const char *c, const char *d,
		 char id[static POLICY_JOB_ID_MAX + 1])
{
	const char *parts[] = {a, b, c, d};

	assert_int_equal(policy_job_key(parts, 4, id), 0);
	assert_true(policy_job_id_valid(id));
}

/* True when id ends with '.' and 16 lowercase hex digits, or is those digits alone. */
static bool has_hash_suffix(const char *id)
{
	size_t len = strlen(id);

	if (len < HASH_SUFFIX_LEN - 1)
		return false;
	if (len >= HASH_SUFFIX_LEN && id[len - HASH_SUFFIX_LEN] != '.')
		return false;
	return strspn(id + len - 16, "0123456789abcdef") == 16;
}

static void test_job_key_plain_parts_kept(void **state)
{
	char id[POLICY_JOB_ID_MAX + 1];

	(void)state;
	key4("runner-1", "123456789", "2", "build_and-test", id);
	assert_string_equal(id, "runner-1.123456789.2.build_and-test");
	key4("R", "1", "1", "j", id);
	assert_string_equal(id, "R.1.1.j");
}

static void test_job_key_hostile_names(void **state)
{
	static const char *const hostile[] = {
		"my runner", "../../etc",   "a/b",	 ".hidden",	"-rf",	     "_x",
		"a.b",	     "line\nbreak", "tab\there", "\x1b[31mred", "$(reboot)", "*?[]",
		"\xff\xfe",  "..",	    ".",	 "/",
	};
	char id[POLICY_JOB_ID_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		key4(hostile[i], "42", "1", "build", id);
		assert_true(has_hash_suffix(id));
		assert_null(strchr(id, '/'));
		assert_int_not_equal(id[0], '.');
		assert_int_not_equal(id[0], '-');
		/* the same name in the job field is made safe just as well; only "-rf" and "_x"
		 * may stay as they are there, not being first */
		key4("runner", "42", "1", hostile[i], id);
		if (strspn(hostile[i], "-_rfx") != strlen(hostile[i]))
			assert_true(has_hash_suffix(id));
		else
			assert_string_equal(id + strlen("runner.42.1."), hostile[i]);
		assert_int_equal(strncmp(id, "runner.42.1.", 12), 0);
	}
	key4("my runner", "42", "1", "build", id);
	assert_int_equal(strncmp(id, "my_runner.42.1.build.", 21), 0);
	key4("a   /../ b", "42", "1", "build", id); /* a run of bad bytes is one '_' */
	assert_int_equal(strncmp(id, "a_b.42.1.build.", 15), 0);
	key4("/", "42", "1", "build", id); /* nothing readable before the run ID */
	assert_int_equal(strncmp(id, "42.1.build.", 11), 0);
	key4("_", "_", "_", "_", id); /* nothing readable at all: the hash alone */
	assert_int_equal(strlen(id), 16);
	assert_true(has_hash_suffix(id));
}

static void test_job_key_unicode(void **state)
{
	char id[POLICY_JOB_ID_MAX + 1], id2[POLICY_JOB_ID_MAX + 1];

	(void)state;
	key4("caf\xc3\xa9-runner", "7", "1", "b\xc3\xbcild", id);
	assert_int_equal(strncmp(id, "caf_-runner.7.1.b_ild.", 22), 0);
	assert_true(has_hash_suffix(id));
	/* "é" and "ü" both become '_': the hash keeps the two apart */
	key4("caf\xc3\xbc-runner", "7", "1", "b\xc3\xbcild", id2);
	assert_string_not_equal(id, id2);
	key4("\xe2\x9c\x93\xf0\x9f\x9a\x80", "7", "1", "b", id); /* only non-ASCII */
	assert_int_equal(strncmp(id, "7.1.b.", 6), 0);
}

static void test_job_key_length_bounded(void **state)
{
	char id[POLICY_JOB_ID_MAX + 1], id2[POLICY_JOB_ID_MAX + 1], *big, *big2;
	size_t room;

	(void)state;
	big = malloc(10001);
	big2 = malloc(10001);
	assert_non_null(big);
	assert_non_null(big2);
	memset(big, 'r', 10000);
	big[10000] = '\0';
	memcpy(big2, big, 10001);
	big2[9999] = 's'; /* differs only far past the cut */

	key4(big, "1", "1", "build", id);
	assert_int_equal(strlen(id), POLICY_JOB_ID_MAX);
	assert_true(has_hash_suffix(id));
	key4(big2, "1", "1", "build", id2);
	assert_int_equal(strlen(id2), POLICY_JOB_ID_MAX);
	assert_string_not_equal(id, id2);
	assert_int_equal(memcmp(id, id2, POLICY_JOB_ID_MAX - 16), 0);
	free(big);
	free(big2);

	/* Exactly at the limit the join is kept; one more byte and it is cut and hashed. */
	room = POLICY_JOB_ID_MAX - strlen(".1.1.b");
	big = malloc(room + 2);
	assert_non_null(big);
	memset(big, 'x', room + 1);
	big[room] = '\0';
	key4(big, "1", "1", "b", id);
	assert_int_equal(strlen(id), POLICY_JOB_ID_MAX);
	assert_false(has_hash_suffix(id));
	big[room] = 'x';
	big[room + 1] = '\0';
	key4(big, "1", "1", "b", id);
	assert_int_equal(strlen(id), POLICY_JOB_ID_MAX);
	assert_true(has_hash_suffix(id));
	free(big);

	/* A cut that ends on a separator does not leave "..". */
	big = malloc(POLICY_JOB_ID_MAX);
	assert_non_null(big);
	memset(big, 'y', POLICY_JOB_ID_MAX - HASH_SUFFIX_LEN - 1);
	big[POLICY_JOB_ID_MAX - HASH_SUFFIX_LEN - 1] = '\0';
	key4(big, "123456", "1", "b c", id);
	assert_null(strstr(id, ".."));
	assert_true(has_hash_suffix(id));
	free(big);
}

static void test_job_key_deterministic(void **state)
{
	char id[POLICY_JOB_ID_MAX + 1], again[POLICY_JOB_ID_MAX + 1];

	(void)state;
	key4("my runner", "99", "3", "deploy", id);
	key4("my runner", "99", "3", "deploy", again);
	assert_string_equal(id, again);
	/* Pinned: the hash is part of the interface (hooks and actions on other hosts must agree),
	 * so a change to the algorithm shows here. */
	assert_string_equal(id, "my_runner.99.3.deploy.362d8cd832aba417");
}

static void test_job_key_distinct(void **state)
{
	/* Inputs that sanitise or join to the same text must still give different IDs. */
	static const char *const sets[][4] = {
		{"a b", "1", "1", "j"},	      {"a_b", "1", "1", "j"}, {"a/b", "1", "1", "j"},
		{"a.b", "1", "1", "j"},	      {"a", "b.1", "1", "j"}, {"a.b.1", "1", "j", "x"},
		{"a", "1", "1", "j k"},	      {"a", "1", "1", "j_k"}, {"a", "1", "1.j", "k"},
		{"a", "1", "2", "j"},	      {"a", "2", "1", "j"},   {"a", "1", "1", "J"},
		{"a", "11", "1", "j"},	      {"a", "1", "11", "j"},  {"a\xc3\xa9", "1", "1", "j"},
		{"a\xc3\xa8", "1", "1", "j"},
	};
	size_t n = sizeof(sets) / sizeof(sets[0]);
	char ids[sizeof(sets) / sizeof(sets[0])][POLICY_JOB_ID_MAX + 1];

	(void)state;
	for (size_t i = 0; i < n; i++)
		key4(sets[i][0], sets[i][1], sets[i][2], sets[i][3], ids[i]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(ids[i], ids[j]);

	/* Many runners and runs in a row: no two IDs alike. */
	{
		enum { N = 2000 };
		char(*many)[POLICY_JOB_ID_MAX + 1] = calloc(N, sizeof(*many));
		char runner[32], run[32];

		assert_non_null(many);
		for (int i = 0; i < N; i++) {
			snprintf(runner, sizeof(runner), "host %d", i % 40);
			snprintf(run, sizeof(run), "%d", i / 40);
			key4(runner, run, "1", "build", many[i]);
		}
		for (int i = 0; i < N; i++)
			for (int j = i + 1; j < N; j++)
				assert_int_not_equal(strcmp(many[i], many[j]), 0);
		free(many);
	}
}

static void test_job_key_rejects_empty(void **state)
{
	char id[POLICY_JOB_ID_MAX + 1] = "unchanged";
	const char *empty[] = {"runner", "", "1", "j"};
	const char *null_part[] = {"runner", NULL, "1", "j"};

	(void)state;
	assert_int_equal(policy_job_key(empty, 4, id), -EINVAL);
	assert_int_equal(policy_job_key(null_part, 4, id), -EINVAL);
	assert_int_equal(policy_job_key(empty, 0, id), -EINVAL);
	assert_string_equal(id, "unchanged");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_key_plain_parts_kept),
		cmocka_unit_test(test_job_key_hostile_names),
		cmocka_unit_test(test_job_key_unicode),
		cmocka_unit_test(test_job_key_length_bounded),
		cmocka_unit_test(test_job_key_deterministic),
		cmocka_unit_test(test_job_key_distinct),
		cmocka_unit_test(test_job_key_rejects_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
