/* Tests for policy/policy.c: the corpus of valid and invalid policies, defaults, the built-in
 * default, where a policy comes from, and the limits. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

#ifndef JOBFS_POLICY_CORPUS
#error "JOBFS_POLICY_CORPUS must name tests/policy"
#endif

#define TEST_JOB "job-42"

static char *test_env[] = {
	"HOME=/home/runner",
	"RUNNER_WORKSPACE=/home/runner/work/app",
	"EMPTY=",
	"JOB_ID=from-env",
	NULL,
};

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_policy.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *entry;
	DIR *dir = opendir(f->dir);

	while (dir && (entry = readdir(dir))) {
		char path[512];

		if (entry->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", f->dir, entry->d_name);
		if (unlink(path) < 0)
			rmdir(path);
	}
	if (dir)
		closedir(dir);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	assert_non_null(file);
	assert_int_equal(fputs(text, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
}

static struct policy *parse_ok(const char *text)
{
	struct policy_error err;
	struct policy *policy = NULL;
	int r = policy_parse_buffer(text, strlen(text), "test.yaml", &policy, &err);

	if (r < 0)
		fail_msg("unexpected error: %s:%u:%u: %s", err.file, err.line, err.column,
			 err.message);
	assert_non_null(policy);
	return policy;
}

static void parse_fails(const char *text, unsigned line, unsigned column, const char *field,
			const char *message)
{
	struct policy_error err;
	struct policy *policy = NULL;
	int r = policy_parse_buffer(text, strlen(text), "test.yaml", &policy, &err);

	assert_int_equal(r, -EINVAL);
	assert_null(policy);
	assert_string_equal(err.file, "test.yaml");
	assert_int_equal(err.line, line);
	assert_int_equal(err.column, column);
	assert_string_equal(err.field, field);
	assert_string_equal(err.message, message);
}

static int yaml_filter(const struct dirent *entry)
{
	size_t length = strlen(entry->d_name);

	return length > 5 && strcmp(entry->d_name + length - 5, ".yaml") == 0;
}

/* The corpus files of one directory, sorted; returns how many. */
static int corpus_list(const char *subdir, struct dirent ***ret)
{
	char path[512];
	int n;

	snprintf(path, sizeof(path), "%s/%s", JOBFS_POLICY_CORPUS, subdir);
	n = scandir(path, ret, yaml_filter, alphasort);
	assert_true(n > 0);
	return n;
}

/* The value of the header line "# KEY: VALUE" number `nth` (0-based) of a corpus file. */
static bool corpus_header(const char *path, const char *key, int nth, char *value, size_t size)
{
	char line[1024], prefix[64];
	FILE *file = fopen(path, "r");
	bool found = false;

	assert_non_null(file);
	snprintf(prefix, sizeof(prefix), "# %s: ", key);
	while (fgets(line, sizeof(line), file)) {
		if (strncmp(line, prefix, strlen(prefix)) != 0 || nth-- > 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(value, size, "%s", line + strlen(prefix));
		found = true;
		break;
	}
	fclose(file);
	return found;
}

static void test_policy_corpus_valid(void **state)
{
	struct dirent **entries;
	int i, n = corpus_list("valid", &entries);

	(void)state;
	for (i = 0; i < n; i++) {
		struct policy *policy = NULL, *expanded = NULL;
		struct policy_error err;
		char path[512], expect[1024];
		int r, t;

		snprintf(path, sizeof(path), "%s/valid/%s", JOBFS_POLICY_CORPUS,
			 entries[i]->d_name);
		r = policy_parse_file(path, &policy, &err);
		if (r < 0)
			fail_msg("%s: unexpected error %s:%u:%u: %s", entries[i]->d_name, err.file,
				 err.line, err.column, err.message);
		assert_int_equal(policy->origin, POLICY_ORIGIN_FILE);
		assert_string_equal(policy->source, path);
		r = policy_expand(policy, TEST_JOB, policy_lookup_environ, test_env, &expanded,
				  &err);
		if (r < 0)
			fail_msg("%s: unexpected expansion error %u:%u: %s", entries[i]->d_name,
				 err.line, err.column, err.message);
		for (t = 0; corpus_header(path, "target", t, expect, sizeof(expect)); t++) {
			char *space = strchr(expect, ' ');
			size_t v;

			assert_non_null(space);
			*space = '\0';
			for (v = 0; v < expanded->n_views; v++)
				if (strcmp(expanded->views[v].name, expect) == 0)
					break;
			if (v == expanded->n_views)
				fail_msg("%s: no view '%s'", entries[i]->d_name, expect);
			if (strcmp(expanded->views[v].target, space + 1) != 0)
				fail_msg("%s: view '%s' has target '%s', expected '%s'",
					 entries[i]->d_name, expect, expanded->views[v].target,
					 space + 1);
		}
		policy_free(expanded);
		policy_free(policy);
		free(entries[i]);
	}
	free(entries);
}

static void test_policy_corpus_invalid(void **state)
{
	struct dirent **entries;
	int i, n = corpus_list("invalid", &entries);

	(void)state;
	for (i = 0; i < n; i++) {
		struct policy *policy = NULL, *expanded = NULL;
		struct policy_error err;
		char path[512], field[256], error[1024], actual[1024];
		int r;

		snprintf(path, sizeof(path), "%s/invalid/%s", JOBFS_POLICY_CORPUS,
			 entries[i]->d_name);
		if (!corpus_header(path, "field", 0, field, sizeof(field)) ||
		    !corpus_header(path, "error", 0, error, sizeof(error)))
			fail_msg("%s: no '# field:' and '# error:' header", entries[i]->d_name);
		if (strcmp(field, "-") == 0)
			field[0] = '\0';

		r = policy_parse_file(path, &policy, &err);
		if (r == 0) {
			r = policy_expand(policy, TEST_JOB, policy_lookup_environ, test_env,
					  &expanded, &err);
			policy_free(expanded);
			policy_free(policy);
			if (r == 0)
				fail_msg("%s: accepted", entries[i]->d_name);
		}
		assert_int_equal(r, -EINVAL);
		assert_string_equal(err.file, path);
		snprintf(actual, sizeof(actual), "%u:%u: %s", err.line, err.column, err.message);
		if (strcmp(actual, error) != 0 || strcmp(err.field, field) != 0)
			fail_msg("%s:\n  expected [%s] %s\n  actual   [%s] %s", entries[i]->d_name,
				 field, error, err.field, actual);
		free(entries[i]);
	}
	free(entries);
}

static void test_policy_defaults(void **state)
{
	struct policy *policy = parse_ok("version: 1\n"
					 "views:\n"
					 "  - {name: a, lower: [], target: /a}\n");

	(void)state;
	assert_int_equal(policy->version, 1);
	assert_int_equal(policy->origin, POLICY_ORIGIN_BUFFER);
	assert_string_equal(policy->source, "test.yaml");
	assert_string_equal(policy->state_dir, POLICY_DEFAULT_STATE_DIR);
	assert_int_equal(policy->gc.keep_unmounted, 24 * 3600);
	assert_int_equal(policy->gc.max_total, 0);
	assert_null(policy->job_id);
	assert_int_equal(policy->n_views, 1);
	assert_string_equal(policy->views[0].name, "a");
	assert_int_equal(policy->views[0].n_lower, 0);
	assert_null(policy->views[0].lower);
	assert_int_equal(policy->views[0].quota, 0);
	assert_int_equal(policy->views[0].promote.kind, POLICY_PROMOTE_NONE);
	policy_free(policy);
}

static void test_policy_fields(void **state)
{
	struct policy *policy = parse_ok("version: 1\n"
					 "state_dir: /srv//jobfs/\n"
					 "views:\n"
					 "  - name: pnpm-store\n"
					 "    lower: [/srv/a/, /srv/b]\n"
					 "    target: ${HOME}/.local/share/pnpm/store\n"
					 "    quota: 20GiB\n"
					 "    promote: add-only\n"
					 "gc:\n"
					 "  keep_unmounted: 90m\n"
					 "  max_total: 100GiB\n");
	const struct policy_view *view = &policy->views[0];

	(void)state;
	assert_string_equal(policy->state_dir, "/srv/jobfs");
	assert_int_equal(view->n_lower, 2);
	assert_string_equal(view->lower[0], "/srv/a");
	assert_string_equal(view->lower[1], "/srv/b");
	assert_string_equal(view->target, "${HOME}/.local/share/pnpm/store");
	assert_int_equal(view->quota, UINT64_C(20) << 30);
	assert_int_equal(view->promote.kind, POLICY_PROMOTE_ADD_ONLY);
	assert_int_equal(view->mark.line, 4);
	assert_int_equal(view->mark.column, 5);
	assert_int_equal(view->target_mark.line, 6);
	assert_int_equal(view->target_mark.column, 13);
	assert_int_equal(policy->gc.keep_unmounted, 90 * 60);
	assert_int_equal(policy->gc.max_total, UINT64_C(100) << 30);
	policy_free(policy);
}

static void test_policy_builtin_serves_a_fresh_machine(void **state)
{
	struct policy *policy = NULL, *expanded = NULL;
	struct policy_error err;
	char *no_env[] = {NULL};

	(void)state;
	assert_int_equal(policy_parse_buffer(policy_builtin_yaml, strlen(policy_builtin_yaml),
					     POLICY_BUILTIN_SOURCE, &policy, &err),
			 0);
	/* No variable but JOB_ID, so an empty environment is enough. */
	assert_int_equal(
		policy_expand(policy, "1234", policy_lookup_environ, no_env, &expanded, &err), 0);
	assert_string_equal(expanded->state_dir, "/var/lib/jobfs");
	assert_int_equal(expanded->n_views, 1);
	assert_string_equal(expanded->views[0].name, "workspace");
	assert_int_equal(expanded->views[0].n_lower, 0);
	assert_string_equal(expanded->views[0].target, "/run/jobfs/1234/workspace");
	assert_string_equal(expanded->job_id, "1234");
	policy_free(expanded);
	policy_free(policy);
}

/* docs/policy.md shows the built-in default; it must show it as it is. */
static void test_policy_builtin_is_documented(void **state)
{
	FILE *file = fopen(JOBFS_POLICY_CORPUS "/../../docs/policy.md", "r");
	char *doc = calloc(1, 65536);
	size_t n;

	(void)state;
	assert_non_null(file);
	assert_non_null(doc);
	n = fread(doc, 1, 65535, file);
	fclose(file);
	assert_true(n > 0 && n < 65535);
	if (!strstr(doc, policy_builtin_yaml))
		fail_msg("docs/policy.md does not show the built-in default as it is");
	free(doc);
}

static void test_policy_expand_leaves_input_alone(void **state)
{
	struct policy *policy =
		parse_ok("version: 1\n"
			 "views:\n"
			 "  - {name: w, lower: [/srv/seed], target: '/w/${JOB_ID}'}\n");
	struct policy *expanded = NULL;
	struct policy_error err;

	(void)state;
	assert_int_equal(
		policy_expand(policy, "abc", policy_lookup_environ, test_env, &expanded, &err), 0);
	assert_string_equal(policy->views[0].target, "/w/${JOB_ID}");
	assert_null(policy->job_id);
	assert_string_equal(expanded->views[0].target, "/w/abc");
	assert_string_equal(expanded->views[0].lower[0], "/srv/seed");
	assert_string_equal(expanded->source, "test.yaml");
	assert_int_equal(expanded->views[0].target_mark.line, 3);
	policy_free(expanded);
	policy_free(policy);
}

static void test_policy_expand_rejects_bad_job_id(void **state)
{
	struct policy *policy = parse_ok("version: 1\nviews: []\n");
	struct policy *expanded = NULL;
	struct policy_error err;

	(void)state;
	assert_int_equal(
		policy_expand(policy, "../etc", policy_lookup_environ, test_env, &expanded, &err),
		-EINVAL);
	assert_null(expanded);
	assert_string_equal(err.field, "job");
	assert_int_equal(err.line, 0);
	assert_int_equal(
		policy_expand(policy, NULL, policy_lookup_environ, test_env, &expanded, &err),
		-EINVAL);
	policy_free(policy);
}

static void test_policy_type_errors(void **state)
{
	(void)state;
	parse_fails("version: 1\nviews: []\ngc: {keep_unmounted: [1h]}\n", 3, 22,
		    "gc.keep_unmounted", "gc.keep_unmounted: expected a string, found a sequence");
	parse_fails("version: true\nviews: []\n", 1, 10, "version",
		    "version: expected an integer, found a boolean");
	parse_fails("version: 1\nviews: [{name: a, lower: [], target: /a, promote: [add-only]}]\n",
		    2, 51, "views[0].promote",
		    "views[0].promote: expected a string, found a sequence");
	/* Any scalar but null is a string, so a numeric name is fine; a key must be a string. */
	parse_fails("version: 1\nviews:\n  - {name: 7, lower: [], target: /a, ~: x}\n", 3, 38,
		    "views[0]", "views[0]: keys must be strings, found null");
}

static void test_policy_limits(void **state)
{
	size_t size = 64 + (POLICY_VIEWS_MAX + 1) * 64, i;
	char *text = malloc(size), *p = text;

	(void)state;
	assert_non_null(text);
	p += sprintf(p, "version: 1\nviews:\n");
	for (i = 0; i < POLICY_VIEWS_MAX; i++)
		p += sprintf(p, "  - {name: v%zu, lower: [], target: /v/%zu}\n", i, i);
	policy_free(parse_ok(text));
	sprintf(p, "  - {name: extra, lower: [], target: /v/extra}\n");
	parse_fails(text, 3, 3, "views", "views: more than 256 views");

	p = text + sprintf(text, "version: 1\nviews:\n  - name: a\n    target: /a\n    lower:\n");
	for (i = 0; i < POLICY_LOWERS_MAX; i++)
		p += sprintf(p, "      - /l/%zu\n", i);
	policy_free(parse_ok(text));
	sprintf(p, "      - /l/extra\n");
	parse_fails(text, 6, 7, "views[0].lower", "views[0].lower: more than 64 lower layers");
	free(text);
}

static void test_policy_binary_input(void **state)
{
	static const char data[] = "version: 1\nviews: []\n\0gc: {}\n";
	struct policy *policy = NULL;
	struct policy_error err;

	(void)state;
	assert_int_equal(policy_parse_buffer(data, sizeof(data) - 1, NULL, &policy, &err), -EINVAL);
	assert_null(policy);
	assert_string_equal(err.file, "<buffer>");
	assert_int_equal(err.line, 3);
	assert_int_equal(err.column, 1);
	assert_string_equal(err.field, "");
	assert_non_null(strstr(err.message, "invalid YAML"));
}

static void test_policy_file_errors(void **state)
{
	struct fixture *f = *state;
	struct policy *policy = NULL;
	struct policy_error err;
	char path[128];
	FILE *file;
	int i;

	snprintf(path, sizeof(path), "%s/missing.yaml", f->dir);
	assert_int_equal(policy_parse_file(path, &policy, &err), -ENOENT);
	assert_int_equal(err.line, 0);
	assert_string_equal(err.file, path);
	assert_non_null(strstr(err.message, "cannot open policy"));

	assert_int_equal(policy_parse_file(f->dir, &policy, &err), -EINVAL);
	assert_non_null(strstr(err.message, "is not a regular file"));

	snprintf(path, sizeof(path), "%s/huge.yaml", f->dir);
	file = fopen(path, "w");
	assert_non_null(file);
	for (i = 0; i < POLICY_FILE_MAX / 16 + 1; i++)
		fputs("# padding line \n", file);
	assert_int_equal(fclose(file), 0);
	assert_int_equal(policy_parse_file(path, &policy, &err), -EFBIG);
	assert_non_null(strstr(err.message, "is larger than"));
	assert_null(policy);
}

static void test_policy_load_order(void **state)
{
	struct fixture *f = *state;
	char option[128], env[128], system[128], missing[128];
	struct policy *policy = NULL;
	struct policy_error err;

	snprintf(option, sizeof(option), "%s/option.yaml", f->dir);
	snprintf(env, sizeof(env), "%s/env.yaml", f->dir);
	snprintf(system, sizeof(system), "%s/system.yaml", f->dir);
	snprintf(missing, sizeof(missing), "%s/missing.yaml", f->dir);
	write_file(option, "version: 1\nviews: [{name: option, lower: [], target: /o}]\n");
	write_file(env, "version: 1\nviews: [{name: env, lower: [], target: /e}]\n");
	write_file(system, "version: 1\nviews: [{name: system, lower: [], target: /s}]\n");

	assert_int_equal(policy_load(option, env, system, &policy, &err), 0);
	assert_int_equal(policy->origin, POLICY_ORIGIN_OPTION);
	assert_string_equal(policy->views[0].name, "option");
	policy_free(policy);

	assert_int_equal(policy_load(NULL, env, system, &policy, &err), 0);
	assert_int_equal(policy->origin, POLICY_ORIGIN_ENV);
	assert_string_equal(policy->source, env);
	policy_free(policy);

	/* An empty $JOBFS_POLICY counts as unset. */
	assert_int_equal(policy_load(NULL, "", system, &policy, &err), 0);
	assert_int_equal(policy->origin, POLICY_ORIGIN_SYSTEM);
	assert_string_equal(policy->views[0].name, "system");
	policy_free(policy);

	assert_int_equal(policy_load(NULL, NULL, missing, &policy, &err), 0);
	assert_int_equal(policy->origin, POLICY_ORIGIN_BUILTIN);
	assert_string_equal(policy->source, POLICY_BUILTIN_SOURCE);
	policy_free(policy);

	assert_int_equal(policy_load(NULL, NULL, NULL, &policy, &err), 0);
	assert_int_equal(policy->origin, POLICY_ORIGIN_BUILTIN);
	policy_free(policy);

	/* A policy that was asked for but is not there is an error, never a fallback. */
	policy = NULL;
	assert_int_equal(policy_load(missing, env, system, &policy, &err), -ENOENT);
	assert_int_equal(policy_load(NULL, missing, system, &policy, &err), -ENOENT);
	assert_null(policy);
	/* So is a system policy that exists but is broken. */
	write_file(system, "version: 2\nviews: []\n");
	assert_int_equal(policy_load(NULL, NULL, system, &policy, &err), -EINVAL);
	assert_string_equal(err.file, system);
	assert_string_equal(err.field, "version");
}

static void test_policy_free_null(void **state)
{
	(void)state;
	policy_free(NULL);
}

static void test_policy_empty_input(void **state)
{
	struct policy *policy = NULL;
	struct policy_error err;

	(void)state;
	assert_int_equal(policy_parse_buffer(NULL, 0, "none.yaml", &policy, &err), -EINVAL);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.column, 1);
	assert_string_equal(err.message,
			    "the policy is empty (expected a mapping with version and views)");
	assert_int_equal(policy_parse_buffer("# only a comment\n", 17, NULL, &policy, &err),
			 -EINVAL);
	assert_null(policy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_corpus_valid),
		cmocka_unit_test(test_policy_corpus_invalid),
		cmocka_unit_test(test_policy_defaults),
		cmocka_unit_test(test_policy_fields),
		cmocka_unit_test(test_policy_builtin_serves_a_fresh_machine),
		cmocka_unit_test(test_policy_builtin_is_documented),
		cmocka_unit_test(test_policy_expand_leaves_input_alone),
		cmocka_unit_test(test_policy_expand_rejects_bad_job_id),
		cmocka_unit_test(test_policy_type_errors),
		cmocka_unit_test(test_policy_limits),
		cmocka_unit_test(test_policy_binary_input),
		cmocka_unit_test_setup_teardown(test_policy_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_load_order, setup, teardown),
		cmocka_unit_test(test_policy_free_null),
		cmocka_unit_test(test_policy_empty_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
