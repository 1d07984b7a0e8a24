/* Tests for policy/expand.c: ${VAR} and ${VAR:-default}, ${JOB_ID}, and nothing else. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

static char *test_env[] = {
	"HOME=/home/runner", "HOMEDIR=/wrong", "EMPTY=", "JOB_ID=from-env", "EQ=a=b", NULL,
};

/* Expands template for job "job-42" over test_env; returns the result (to free) or NULL. */
static char *expand(const char *template, int *ret_r, char *reason, size_t size)
{
	char *out = NULL;

	*ret_r = policy_expand_string(template, "job-42", policy_lookup_environ, test_env, &out,
				      reason, size);
	return out;
}

static void expect(const char *template, const char *expected)
{
	char reason[256] = "";
	int r;
	char *out = expand(template, &r, reason, sizeof(reason));

	if (r != 0)
		fail_msg("'%s': error %d: %s", template, r, reason);
	assert_string_equal(out, expected);
	free(out);
}

static void expect_error(const char *template, int error, const char *reason_expected)
{
	char reason[256] = "";
	char *out = (char *)1;
	int r = policy_expand_string(template, "job-42", policy_lookup_environ, test_env, &out,
				     reason, sizeof(reason));

	assert_int_equal(r, error);
	assert_ptr_equal(out, (char *)1);
	assert_string_equal(reason, reason_expected);
}

static void test_expand_plain_text(void **state)
{
	(void)state;
	expect("", "");
	expect("/srv/cache", "/srv/cache");
	expect("/a$b/$HOME/$(id -u)/`x`/*/?/~/$", "/a$b/$HOME/$(id -u)/`x`/*/?/~/$");
	expect("$$", "$$");
	expect("{HOME}", "{HOME}");
}

static void test_expand_variables(void **state)
{
	(void)state;
	expect("${HOME}", "/home/runner");
	expect("${HOME}/.npm", "/home/runner/.npm");
	expect("/x${HOME}y${HOME}", "/x/home/runnery/home/runner");
	expect("${EQ}", "a=b");
	expect("${EMPTY}/x", "/x");
	expect("$${HOME}", "$/home/runner");
}

static void test_expand_defaults(void **state)
{
	(void)state;
	expect("${UNSET:-/fallback}", "/fallback");
	expect("${EMPTY:-/fallback}", "/fallback");
	expect("${HOME:-/fallback}", "/home/runner");
	expect("${UNSET:-}", "");
	expect("${UNSET:-a:-b$c{d}", "a:-b$c{d");
	expect("${UNSET:-/with space}/x", "/with space/x");
}

static void test_expand_job_id_always_defined(void **state)
{
	char *out = NULL;

	(void)state;
	expect("/w/${JOB_ID}", "/w/job-42");
	expect("${JOB_ID:-unused}", "job-42");
	/* Without a job, JOB_ID is an ordinary variable. */
	assert_int_equal(policy_expand_string("${JOB_ID}", NULL, policy_lookup_environ, test_env,
					      &out, NULL, 0),
			 0);
	assert_string_equal(out, "from-env");
	free(out);
}

static void test_expand_undefined_is_an_error(void **state)
{
	(void)state;
	expect_error("${UNSET}", -ENOENT, "undefined variable 'UNSET'");
	expect_error("/a/${HOME}/${NOPE}/b", -ENOENT, "undefined variable 'NOPE'");
	/* Longest match: HOMEDIR is its own variable, HOM is not a prefix match. */
	expect_error("${HOM}", -ENOENT, "undefined variable 'HOM'");
}

static void test_expand_syntax_errors(void **state)
{
	(void)state;
	expect_error("${HOME", -EINVAL, "'${HOME' has no closing '}'");
	expect_error("/a/${", -EINVAL, "'${' has no closing '}'");
	expect_error("${UNSET:-abc", -EINVAL, "'${UNSET:-abc' has no closing '}'");
	expect_error("${}", -EINVAL, "invalid variable name '' (expected [A-Za-z_][A-Za-z0-9_]*)");
	expect_error("${1X}", -EINVAL,
		     "invalid variable name '1X' (expected [A-Za-z_][A-Za-z0-9_]*)");
	expect_error("${A B}", -EINVAL,
		     "invalid variable name 'A B' (expected [A-Za-z_][A-Za-z0-9_]*)");
	expect_error("${A:=x}", -EINVAL, "expected ':-' or '}' after '${A'");
	expect_error("${A:+x}", -EINVAL, "expected ':-' or '}' after '${A'");
	expect_error("${A-x}", -EINVAL,
		     "invalid variable name 'A-x' (expected [A-Za-z_][A-Za-z0-9_]*)");
	expect_error("${A:-${B}}", -EINVAL, "nested '${' in the default of '${A'");
	/* Syntax comes before lookup: the error is the same whether or not HOME is set. */
	expect_error("${HOME}${", -EINVAL, "'${' has no closing '}'");
}

static void test_expand_syntax_check_only(void **state)
{
	char reason[128];

	(void)state;
	assert_int_equal(policy_expand_string("${UNDEFINED}/x", NULL, NULL, NULL, NULL, reason,
					      sizeof(reason)),
			 0);
	assert_int_equal(
		policy_expand_string("${BAD", NULL, NULL, NULL, NULL, reason, sizeof(reason)),
		-EINVAL);
	assert_int_equal(policy_expand_string("${BAD", NULL, NULL, NULL, NULL, NULL, 0), -EINVAL);
}

static void test_expand_long_values(void **state)
{
	char *value = malloc(10000), *entry = malloc(10010), *env[] = {entry, NULL}, *out = NULL;

	(void)state;
	assert_non_null(value);
	assert_non_null(entry);
	memset(value, 'v', 9999);
	value[9999] = '\0';
	strcpy(entry, "LONG=");
	strcat(entry, value);
	assert_int_equal(policy_expand_string("${LONG}${LONG}", NULL, policy_lookup_environ, env,
					      &out, NULL, 0),
			 0);
	assert_int_equal(strlen(out), 19998);
	free(out);
	free(entry);
	free(value);
}

static void test_expand_lookup_environ(void **state)
{
	(void)state;
	assert_string_equal(policy_lookup_environ("HOME", test_env), "/home/runner");
	assert_string_equal(policy_lookup_environ("HOMEDIR", test_env), "/wrong");
	assert_string_equal(policy_lookup_environ("EMPTY", test_env), "");
	assert_null(policy_lookup_environ("HOM", test_env));
	assert_null(policy_lookup_environ("A", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_plain_text),
		cmocka_unit_test(test_expand_variables),
		cmocka_unit_test(test_expand_defaults),
		cmocka_unit_test(test_expand_job_id_always_defined),
		cmocka_unit_test(test_expand_undefined_is_an_error),
		cmocka_unit_test(test_expand_syntax_errors),
		cmocka_unit_test(test_expand_syntax_check_only),
		cmocka_unit_test(test_expand_long_values),
		cmocka_unit_test(test_expand_lookup_environ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
