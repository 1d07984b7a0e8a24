/* Tests for policy/select.c: context keys and values, selector matching (absent keys, lists,
 * globs, missing context), and choosing a job's views. */
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

static struct policy *parse_ok(const char *yaml)
{
	struct policy *policy = NULL;
	struct policy_error err;

	if (policy_parse_buffer(yaml, strlen(yaml), "test.yaml", &policy, &err) < 0)
		fail_msg("unexpected error %u:%u: %s", err.line, err.column, err.message);
	return policy;
}

/* A policy with one view whose `when` is the given flow mapping, and its selector. */
static struct policy *when_policy(const char *when)
{
	char yaml[2048];

	snprintf(yaml, sizeof(yaml),
		 "version: 1\nviews:\n  - {name: v, lower: [], target: /v, when: %s}\n", when);
	return parse_ok(yaml);
}

static bool matches(const char *when, const struct policy_context *context,
		    enum policy_context_key *ret_failed)
{
	struct policy *policy = when_policy(when);
	bool r = policy_selector_matches(&policy->views[0].when, context, ret_failed);

	policy_free(policy);
	return r;
}

static void test_select_context_keys(void **state)
{
	enum policy_context_key key;

	(void)state;
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		const char *name = policy_context_key_name((enum policy_context_key)k);

		assert_int_equal(policy_context_key_from_name(name, strlen(name), &key), 0);
		assert_int_equal(key, k);
		assert_non_null(strstr(policy_context_key_names(), name));
	}
	assert_string_equal(policy_context_key_name(POLICY_CONTEXT_REF), "ref");
	/* by length, not by prefix */
	assert_int_equal(policy_context_key_from_name("refx", 3, &key), 0);
	assert_int_equal(key, POLICY_CONTEXT_REF);
	assert_int_equal(policy_context_key_from_name("re", 2, &key), -EINVAL);
	assert_int_equal(policy_context_key_from_name("Ref", 3, &key), -EINVAL);
	assert_int_equal(policy_context_key_from_name("", 0, &key), -EINVAL);
	assert_int_equal(policy_context_key_from_name("branch", 6, &key), -EINVAL);
}

static void test_select_context_values(void **state)
{
	static const char *const good[] = {
		"acme/web",
		"refs/heads/feature/x-1",
		"CI build (nightly) #3",
		"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x9a\x80",
		"a=b=c",
		"\\x41 $(id) `id` '\"",
	};
	static const char *const bad[] = {
		"",
		"a\nb",
		"a\rb",
		"a\tb",
		"\x1b[31mred",
		"a\x7f",
		"\xc2\x85",	       /* NEL, a C1 control */
		"\xe2\x80\xa8",	       /* LINE SEPARATOR */
		"evil\xe2\x80\xaetxt", /* RIGHT-TO-LEFT OVERRIDE */
		"\xe2\x81\xa6x",       /* LEFT-TO-RIGHT ISOLATE */
		"\xff",
		"\xc3",		    /* cut short */
		"\xc0\xaf",	    /* overlong '/' */
		"\xe0\x80\xaf",	    /* overlong */
		"\xed\xa0\x80",	    /* a surrogate */
		"\xf4\x90\x80\x80", /* past U+10FFFF */
	};
	const char *reason = NULL;
	char big[POLICY_CONTEXT_VALUE_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (policy_context_value_check(good[i], &reason) != 0)
			fail_msg("'%s' refused: %s", good[i], reason);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason = NULL;
		if (policy_context_value_check(bad[i], &reason) != -EINVAL)
			fail_msg("bad value %zu accepted", i);
		assert_non_null(reason);
	}
	memset(big, 'x', POLICY_CONTEXT_VALUE_MAX);
	big[POLICY_CONTEXT_VALUE_MAX] = '\0';
	assert_int_equal(policy_context_value_check(big, &reason), 0);
	big[POLICY_CONTEXT_VALUE_MAX] = 'x';
	big[POLICY_CONTEXT_VALUE_MAX + 1] = '\0';
	assert_int_equal(policy_context_value_check(big, &reason), -EINVAL);
	assert_string_equal(reason, "value longer than 1024 bytes");
}

static void test_select_absent_selector_matches_any(void **state)
{
	struct policy *policy =
		parse_ok("version: 1\nviews:\n  - {name: v, lower: [], target: /v}\n");
	struct policy_context none = {0};
	struct policy_context some = {.values = {"acme/web", "refs/heads/main"}};

	(void)state;
	assert_false(policy_selector_present(&policy->views[0].when));
	assert_false(policy_selector_present(&policy->views[0].promote.trust));
	assert_true(policy_selector_matches(&policy->views[0].when, &none, NULL));
	assert_true(policy_selector_matches(&policy->views[0].when, &some, NULL));
	assert_true(policy_selector_matches(&policy->views[0].when, NULL, NULL));
	policy_free(policy);
}

static void test_select_list_matches_any_pattern(void **state)
{
	struct policy_context ctx = {0};
	const char *when = "{repository: [acme/web, \"acme/api-*\", other/x]}";

	(void)state;
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "acme/web";
	assert_true(matches(when, &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "acme/api-v2";
	assert_true(matches(when, &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "other/x";
	assert_true(matches(when, &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "acme/webx";
	assert_false(matches(when, &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "ACME/web"; /* case matters */
	assert_false(matches(when, &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "acme/api";
	assert_false(matches(when, &ctx, NULL));
}

static void test_select_glob_semantics(void **state)
{
	struct policy_context ctx = {0};

	(void)state;
	/* '*' also matches '/' (fnmatch without FNM_PATHNAME) */
	ctx.values[POLICY_CONTEXT_REF] = "refs/heads/release/1.0";
	assert_true(matches("{ref: [\"refs/heads/*\"]}", &ctx, NULL));
	assert_true(matches("{ref: [\"*/release/*\"]}", &ctx, NULL));
	assert_false(matches("{ref: [\"refs/tags/*\"]}", &ctx, NULL));
	/* the whole value must match, not a part of it */
	assert_false(matches("{ref: [release]}", &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REF] = "refs/tags/v12";
	assert_true(matches("{ref: [\"refs/tags/v[0-9]*\"]}", &ctx, NULL));
	assert_true(matches("{ref: [\"refs/tags/v??\"]}", &ctx, NULL));
	assert_false(matches("{ref: [\"refs/tags/v?\"]}", &ctx, NULL));
	/* a backslash escapes: "\*" is a literal star */
	ctx.values[POLICY_CONTEXT_REF] = "a*";
	assert_true(matches("{ref: [\"a\\\\*\"]}", &ctx, NULL));
	ctx.values[POLICY_CONTEXT_REF] = "ab";
	assert_false(matches("{ref: [\"a\\\\*\"]}", &ctx, NULL));
	/* a leading '.' is nothing special (no FNM_PERIOD) */
	ctx.values[POLICY_CONTEXT_WORKFLOW] = ".github/workflows/ci.yml";
	assert_true(matches("{workflow: [\"*ci.yml\"]}", &ctx, NULL));
}

static void test_select_missing_context_never_matches(void **state)
{
	struct policy_context ctx = {0};
	enum policy_context_key failed = POLICY_CONTEXT_COUNT;

	(void)state;
	/* even "*" needs a value */
	assert_false(matches("{event: [\"*\"]}", &ctx, &failed));
	assert_int_equal(failed, POLICY_CONTEXT_EVENT);
	assert_false(matches("{event: [\"*\"]}", NULL, NULL));
	ctx.values[POLICY_CONTEXT_EVENT] = "push";
	assert_true(matches("{event: [\"*\"]}", &ctx, NULL));
}

static void test_select_every_key_must_match(void **state)
{
	const char *when = "{repository: [\"acme/*\"], ref: [refs/heads/main], event: [push, "
			   "workflow_dispatch]}";
	struct policy_context ctx = {
		.values = {"acme/web", "refs/heads/main", "ci", "build", "push"}};
	enum policy_context_key failed = POLICY_CONTEXT_COUNT;

	(void)state;
	assert_true(matches(when, &ctx, &failed));
	assert_int_equal(failed, POLICY_CONTEXT_COUNT); /* untouched on a match */
	ctx.values[POLICY_CONTEXT_EVENT] = "pull_request";
	assert_false(matches(when, &ctx, &failed));
	assert_int_equal(failed, POLICY_CONTEXT_EVENT);
	ctx.values[POLICY_CONTEXT_EVENT] = "push";
	ctx.values[POLICY_CONTEXT_REF] = "refs/heads/dev";
	assert_false(matches(when, &ctx, &failed));
	assert_int_equal(failed, POLICY_CONTEXT_REF);
	/* the first failing key in key order is the one named */
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "evil/web";
	assert_false(matches(when, &ctx, &failed));
	assert_int_equal(failed, POLICY_CONTEXT_REPOSITORY);
	/* keys the selector does not name do not matter */
	ctx.values[POLICY_CONTEXT_REPOSITORY] = "acme/x";
	ctx.values[POLICY_CONTEXT_REF] = "refs/heads/main";
	ctx.values[POLICY_CONTEXT_JOB] = NULL;
	ctx.values[POLICY_CONTEXT_WORKFLOW] = NULL;
	assert_true(matches(when, &ctx, NULL));
}

static void test_select_trust_parsed(void **state)
{
	struct policy *policy = parse_ok("version: 1\nviews:\n"
					 "  - name: v\n    lower: []\n    target: /v\n"
					 "    promote:\n      kind: add-only\n"
					 "      trust:\n        ref: [refs/heads/main]\n"
					 "        workflow: [ci, release]\n");
	const struct policy_selector *trust = &policy->views[0].promote.trust;
	struct policy_context ctx = {.values = {NULL, "refs/heads/main", "release"}};

	(void)state;
	assert_true(policy_selector_present(trust));
	assert_false(policy_selector_present(&policy->views[0].when));
	assert_int_equal(trust->n_patterns[POLICY_CONTEXT_REF], 1);
	assert_int_equal(trust->n_patterns[POLICY_CONTEXT_WORKFLOW], 2);
	assert_int_equal(trust->n_patterns[POLICY_CONTEXT_REPOSITORY], 0);
	assert_int_equal(trust->mark.line, 9);
	assert_true(policy_selector_matches(trust, &ctx, NULL));
	ctx.values[POLICY_CONTEXT_WORKFLOW] = "deploy";
	assert_false(policy_selector_matches(trust, &ctx, NULL));
	policy_free(policy);
}

static void test_select_picks_views_in_order(void **state)
{
	struct policy *policy = parse_ok(
		"version: 1\nviews:\n"
		"  - {name: all, lower: [], target: /all}\n"
		"  - {name: acme, lower: [], target: /acme, when: {repository: [\"acme/*\"]}}\n"
		"  - {name: push, lower: [], target: /push, when: {event: [push]}}\n"
		"  - {name: both, lower: [], target: /both,\n"
		"     when: {repository: [\"acme/*\"], event: [push]}}\n"
		"hooks: {fail_open: false}\n");
	struct policy_context ctx = {0};
	struct policy *selected = NULL;

	(void)state;
	assert_int_equal(policy_select(policy, &ctx, &selected), 0);
	assert_int_equal(selected->n_views, 1);
	assert_string_equal(selected->views[0].name, "all");
	assert_false(selected->hooks.fail_open); /* the rest of the policy comes along */
	assert_true(selected->hooks.kill_on_umount);
	policy_free(selected);

	ctx.values[POLICY_CONTEXT_EVENT] = "push";
	assert_int_equal(policy_select(policy, &ctx, &selected), 0);
	assert_int_equal(selected->n_views, 2);
	assert_string_equal(selected->views[0].name, "all");
	assert_string_equal(selected->views[1].name, "push");
	policy_free(selected);

	ctx.values[POLICY_CONTEXT_REPOSITORY] = "acme/web";
	assert_int_equal(policy_select(policy, &ctx, &selected), 0);
	assert_int_equal(selected->n_views, 4);
	assert_string_equal(selected->views[1].name, "acme");
	assert_string_equal(selected->views[3].name, "both");
	/* a deep copy: the selectors come along and the input is untouched */
	assert_true(policy_selector_present(&selected->views[3].when));
	assert_string_equal(selected->views[3].when.patterns[POLICY_CONTEXT_REPOSITORY][0],
			    "acme/*");
	policy_free(selected);
	assert_int_equal(policy->n_views, 4);
	policy_free(policy);
}

static void test_select_none_and_expansion(void **state)
{
	/* a view the job does not get may use a variable the job lacks */
	struct policy *policy =
		parse_ok("version: 1\nviews:\n"
			 "  - {name: ws, lower: [], target: \"${GITHUB_WORKSPACE}/x\",\n"
			 "     when: {repository: [\"acme/*\"]}}\n"
			 "  - {name: tmp, lower: [], target: \"/tmp/${JOB_ID}\"}\n");
	struct policy_context ctx = {0};
	struct policy *selected = NULL, *expanded = NULL;
	struct policy_error err;
	char *no_env[] = {NULL};

	(void)state;
	assert_int_equal(policy_select(policy, &ctx, &selected), 0);
	assert_int_equal(selected->n_views, 1);
	assert_int_equal(
		policy_expand(selected, "j1", policy_lookup_environ, no_env, &expanded, &err), 0);
	assert_string_equal(expanded->views[0].target, "/tmp/j1");
	policy_free(expanded);
	policy_free(selected);
	/* without selection the same policy cannot be expanded for this job */
	assert_int_equal(
		policy_expand(policy, "j1", policy_lookup_environ, no_env, &expanded, &err),
		-EINVAL);
	policy_free(policy);

	policy = parse_ok("version: 1\nviews:\n"
			  "  - {name: a, lower: [], target: /a, when: {job: [build]}}\n");
	ctx.values[POLICY_CONTEXT_JOB] = "test";
	assert_int_equal(policy_select(policy, &ctx, &selected), 0);
	assert_int_equal(selected->n_views, 0);
	assert_int_equal(
		policy_expand(selected, "j1", policy_lookup_environ, no_env, &expanded, &err), 0);
	assert_int_equal(expanded->n_views, 0);
	policy_free(expanded);
	policy_free(selected);
	policy_free(policy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_context_keys),
		cmocka_unit_test(test_select_context_values),
		cmocka_unit_test(test_select_absent_selector_matches_any),
		cmocka_unit_test(test_select_list_matches_any_pattern),
		cmocka_unit_test(test_select_glob_semantics),
		cmocka_unit_test(test_select_missing_context_never_matches),
		cmocka_unit_test(test_select_every_key_must_match),
		cmocka_unit_test(test_select_trust_parsed),
		cmocka_unit_test(test_select_picks_views_in_order),
		cmocka_unit_test(test_select_none_and_expansion),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
