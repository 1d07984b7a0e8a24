/* `jobfs policy check` and `jobfs policy show`: validate a policy, and print the effective one
 * (defaults applied, targets expanded for a job) as YAML or JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exit_codes.h"
#include "json.h"
#include "policy.h"

extern char **environ;

/* The one place a policy error reaches the user: "FILE:LINE:COLUMN: message". */
static int report_policy_error(const struct policy_error *err, int r)
{
	if (err->line)
		cli_print_line("%s:%u:%u: %s", err->file, err->line, err->column, err->message);
	else
		cli_print_line("jobfs: %s", err->message);
	return r == -ENOMEM ? JOBFS_EXIT_SYSTEM : JOBFS_EXIT_POLICY;
}

int cli_expand_policy(struct policy **policy, const char *job_id)
{
	struct policy_error err;
	struct policy *expanded;
	int r;

	r = policy_expand(*policy, job_id, policy_lookup_environ, environ, &expanded, &err);
	if (r < 0)
		return report_policy_error(&err, r);
	policy_free(*policy);
	*policy = expanded;
	return JOBFS_EXIT_OK;
}

/* Load the policy from path or the usual places, and expand it when a job is given. */
int cli_load_policy(const char *path, const char *job_id, struct policy **ret)
{
	struct policy_error err;
	struct policy *policy;
	int r, rc;

	r = policy_load(path, getenv("JOBFS_POLICY"), POLICY_SYSTEM_PATH, &policy, &err);
	if (r < 0)
		return report_policy_error(&err, r);
	if (job_id) {
		rc = cli_expand_policy(&policy, job_id);
		if (rc) {
			policy_free(policy);
			return rc;
		}
	}
	*ret = policy;
	return JOBFS_EXIT_OK;
}

int cli_check_job_id(const struct cli_verb *verb, const char *job_id)
{
	if (job_id && !policy_job_id_valid(job_id))
		return cli_usage_error(
			verb, "invalid job ID '%s' (expected [A-Za-z0-9][A-Za-z0-9._-]{0,127})",
			job_id);
	return 0;
}

/* For verbs whose --job is mandatory. */
int cli_require_job_id(const struct cli_verb *verb, const char *job_id)
{
	if (!job_id)
		return cli_usage_error(verb, "--job ID is required");
	return cli_check_job_id(verb, job_id);
}

int cmd_policy_check(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL;
	struct policy *policy;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":j:h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'h':
			return cli_verb_help(verb);
		default:
			return cli_option_error(verb, c, argv);
		}
	}
	rc = cli_check_args(verb, argc, argv);
	if (rc)
		return rc;
	rc = cli_check_job_id(verb, job_id);
	if (rc)
		return rc;

	rc = cli_load_policy(optind < argc ? argv[optind] : NULL, job_id, &policy);
	if (rc)
		return rc;
	printf("%s: ok\n", policy->source);
	policy_free(policy);
	return JOBFS_EXIT_OK;
}

/* --- YAML output: the effective policy, which `jobfs policy check` accepts again ------------ */

static bool yaml_plain_safe(const char *s)
{
	static const char *const special[] = {"y",     "n",  "yes", "no",  "true",
					      "false", "on", "off", "null"};
	const char *p;
	size_t i;

	if (!*s || strspn(s, "0123456789+-.") == strlen(s))
		return false;
	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strcasecmp(s, special[i]) == 0)
			return false;
	if (s[0] == '-' || s[0] == '.')
		return false;
	for (p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+@",
			    *p))
			return false;
	return true;
}

static void yaml_string(const char *s)
{
	const unsigned char *p;

	if (yaml_plain_safe(s)) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void yaml_selector(const char *name, const struct policy_selector *selector,
			  const char *indent)
{
	if (!policy_selector_present(selector))
		return;
	printf("%s%s:\n", indent, name);
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		if (!selector->n_patterns[k])
			continue;
		printf("%s  %s: [", indent, policy_context_key_name((enum policy_context_key)k));
		for (size_t i = 0; i < selector->n_patterns[k]; i++) {
			if (i)
				printf(", ");
			yaml_string(selector->patterns[k][i]);
		}
		printf("]\n");
	}
}

static void show_yaml(const struct policy *policy)
{
	char buf[POLICY_FORMAT_MAX];
	size_t i, j;

	printf("# source: ");
	yaml_string(policy->source);
	printf(" (%s)\n", policy_origin_name(policy->origin));
	if (policy->job_id)
		printf("# job: %s\n", policy->job_id);
	else
		printf("# job: none, targets not expanded (use --job ID)\n");
	printf("version: %u\n", policy->version);
	printf("state_dir: ");
	yaml_string(policy->state_dir);
	printf("\nviews:%s\n", policy->n_views ? "" : " []");
	for (i = 0; i < policy->n_views; i++) {
		const struct policy_view *view = &policy->views[i];

		printf("  - name: ");
		yaml_string(view->name);
		printf("\n    lower: [");
		for (j = 0; j < view->n_lower; j++) {
			if (j)
				printf(", ");
			yaml_string(view->lower[j]);
		}
		printf("]\n    target: ");
		yaml_string(view->target);
		if (view->n_pass_through) {
			printf("\n    pass_through: [");
			for (j = 0; j < view->n_pass_through; j++) {
				if (j)
					printf(", ");
				yaml_string(view->pass_through[j]);
			}
			printf("]");
		}
		if (view->quota)
			printf("\n    quota: %s\n", policy_format_size(view->quota, buf));
		else
			printf("\n    # quota: none\n");
		yaml_selector("when", &view->when, "    ");
		if (!view->promote.n_ignore && !policy_selector_present(&view->promote.trust)) {
			printf("    promote: %s\n", policy_promote_name(view->promote.kind));
			continue;
		}
		printf("    promote:\n      kind: %s\n", policy_promote_name(view->promote.kind));
		if (view->promote.n_ignore) {
			printf("      ignore: [");
			for (j = 0; j < view->promote.n_ignore; j++) {
				if (j)
					printf(", ");
				yaml_string(view->promote.ignore[j]);
			}
			printf("]\n");
		}
		yaml_selector("trust", &view->promote.trust, "      ");
	}
	printf("gc:\n  keep_unmounted: %s\n",
	       policy_format_duration(policy->gc.keep_unmounted, buf));
	if (policy->gc.max_total)
		printf("  max_total: %s\n", policy_format_size(policy->gc.max_total, buf));
	else
		printf("  # max_total: none\n");
	printf("  max_generations: %" PRIu64 "\n", policy->gc.max_generations);
	printf("hooks:\n  fail_open: %s\n  kill_on_umount: %s\n",
	       policy->hooks.fail_open ? "true" : "false",
	       policy->hooks.kill_on_umount ? "true" : "false");
}

/* --- JSON output: stable field names, sizes in bytes, durations in seconds, null for "none" -- */

static void json_uint_or_null(struct json_writer *w, uint64_t value)
{
	if (value)
		json_uint(w, value);
	else
		json_null(w);
}

/* Every key: null when absent (any job), else its patterns. */
static void json_selector(struct json_writer *w, const struct policy_selector *selector)
{
	json_object_begin(w);
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		json_key(w, policy_context_key_name((enum policy_context_key)k));
		if (!selector->n_patterns[k]) {
			json_null(w);
			continue;
		}
		json_array_begin(w);
		for (size_t i = 0; i < selector->n_patterns[k]; i++)
			json_string(w, selector->patterns[k][i]);
		json_array_end(w);
	}
	json_object_end(w);
}

static void show_json(const struct policy *policy)
{
	struct json_writer w;
	size_t i, j;

	json_init(&w, stdout);
	json_object_begin(&w);
	json_key(&w, "source");
	json_string(&w, policy->source);
	json_key(&w, "origin");
	json_string(&w, policy_origin_name(policy->origin));
	json_key(&w, "job");
	json_string(&w, policy->job_id);
	json_key(&w, "version");
	json_uint(&w, policy->version);
	json_key(&w, "state_dir");
	json_string(&w, policy->state_dir);
	json_key(&w, "views");
	json_array_begin(&w);
	for (i = 0; i < policy->n_views; i++) {
		const struct policy_view *view = &policy->views[i];

		json_object_begin(&w);
		json_key(&w, "name");
		json_string(&w, view->name);
		json_key(&w, "lower");
		json_array_begin(&w);
		for (j = 0; j < view->n_lower; j++)
			json_string(&w, view->lower[j]);
		json_array_end(&w);
		json_key(&w, "target");
		json_string(&w, view->target);
		json_key(&w, "pass_through");
		json_array_begin(&w);
		for (j = 0; j < view->n_pass_through; j++)
			json_string(&w, view->pass_through[j]);
		json_array_end(&w);
		json_key(&w, "quota_bytes");
		json_uint_or_null(&w, view->quota);
		json_key(&w, "promote");
		json_string(&w, policy_promote_name(view->promote.kind));
		json_key(&w, "promote_ignore");
		json_array_begin(&w);
		for (j = 0; j < view->promote.n_ignore; j++)
			json_string(&w, view->promote.ignore[j]);
		json_array_end(&w);
		json_key(&w, "promote_trust");
		json_selector(&w, &view->promote.trust);
		json_key(&w, "when");
		json_selector(&w, &view->when);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "gc");
	json_object_begin(&w);
	json_key(&w, "keep_unmounted_seconds");
	json_uint(&w, policy->gc.keep_unmounted);
	json_key(&w, "max_total_bytes");
	json_uint_or_null(&w, policy->gc.max_total);
	json_key(&w, "max_generations");
	json_uint(&w, policy->gc.max_generations);
	json_object_end(&w);
	json_key(&w, "hooks");
	json_object_begin(&w);
	json_key(&w, "fail_open");
	json_bool(&w, policy->hooks.fail_open);
	json_key(&w, "kill_on_umount");
	json_bool(&w, policy->hooks.kill_on_umount);
	json_object_end(&w);
	json_object_end(&w);
	json_finish(&w);
}

int cmd_policy_show(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"json", no_argument, NULL, 'J'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL, *path = NULL;
	struct policy *policy;
	bool json = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":j:p:h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'p':
			path = optarg;
			break;
		case 'h':
			return cli_verb_help(verb);
		default:
			return cli_option_error(verb, c, argv);
		}
	}
	rc = cli_check_args(verb, argc, argv);
	if (rc)
		return rc;
	rc = cli_check_job_id(verb, job_id);
	if (rc)
		return rc;

	rc = cli_load_policy(path, job_id, &policy);
	if (rc)
		return rc;
	if (json)
		show_json(policy);
	else
		show_yaml(policy);
	policy_free(policy);
	return JOBFS_EXIT_OK;
}

/* --- policy get: one value of the effective policy by dotted path -------------------------- */

static void print_list(char *const *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%s\n", items[i]);
}

/* A selector's key, "KEY" after "when." or "promote.trust.": its patterns, one a line; nothing
 * when the key is absent (any job). */
static int get_selector(const struct policy_selector *selector, const char *key)
{
	enum policy_context_key k;

	if (policy_context_key_from_name(key, strlen(key), &k) < 0)
		return -ENOENT;
	print_list(selector->patterns[k], selector->n_patterns[k]);
	return 0;
}

static int get_view_field(const struct policy_view *view, const char *field)
{
	char buf[POLICY_FORMAT_MAX];

	if (!strcmp(field, "name"))
		printf("%s\n", view->name);
	else if (!strcmp(field, "target"))
		printf("%s\n", view->target);
	else if (!strcmp(field, "lower"))
		print_list(view->lower, view->n_lower);
	else if (!strcmp(field, "quota"))
		printf("%s\n", view->quota ? policy_format_size(view->quota, buf) : "none");
	else if (!strcmp(field, "promote") || !strcmp(field, "promote.kind"))
		printf("%s\n", policy_promote_name(view->promote.kind));
	else if (!strcmp(field, "pass_through"))
		print_list(view->pass_through, view->n_pass_through);
	else if (!strcmp(field, "promote.ignore"))
		print_list(view->promote.ignore, view->promote.n_ignore);
	else if (!strncmp(field, "promote.trust.", 14))
		return get_selector(&view->promote.trust, field + 14);
	else if (!strncmp(field, "when.", 5))
		return get_selector(&view->when, field + 5);
	else
		return -ENOENT;
	return 0;
}

/* Prints the value at key; -ENOENT when the policy has no such key. */
static int get_value(const struct policy *policy, const char *key)
{
	char buf[POLICY_FORMAT_MAX];

	if (!strcmp(key, "version"))
		printf("%u\n", policy->version);
	else if (!strcmp(key, "source"))
		printf("%s\n", policy->source);
	else if (!strcmp(key, "state_dir"))
		printf("%s\n", policy->state_dir);
	else if (!strcmp(key, "gc.keep_unmounted"))
		printf("%s\n", policy_format_duration(policy->gc.keep_unmounted, buf));
	else if (!strcmp(key, "gc.max_total"))
		printf("%s\n", policy->gc.max_total ? policy_format_size(policy->gc.max_total, buf)
						    : "none");
	else if (!strcmp(key, "gc.max_generations"))
		printf("%" PRIu64 "\n", policy->gc.max_generations);
	else if (!strcmp(key, "hooks.fail_open"))
		printf("%s\n", policy->hooks.fail_open ? "true" : "false");
	else if (!strcmp(key, "hooks.kill_on_umount"))
		printf("%s\n", policy->hooks.kill_on_umount ? "true" : "false");
	else if (!strcmp(key, "views"))
		for (size_t i = 0; i < policy->n_views; i++)
			printf("%s\n", policy->views[i].name);
	else if (!strncmp(key, "views.", 6)) {
		/* a view name may hold '.': the view is the one whose name is followed by '.' and
		 * a field that exists */
		for (size_t i = 0; i < policy->n_views; i++) {
			const struct policy_view *view = &policy->views[i];
			size_t len = strlen(view->name);

			if (strncmp(key + 6, view->name, len) != 0 || key[6 + len] != '.')
				continue;
			if (get_view_field(view, key + 6 + len + 1) == 0)
				return 0;
		}
		return -ENOENT;
	} else
		return -ENOENT;
	return 0;
}

/* The views a "views.NAME.FIELD" key (without "views.") may name. */
static bool view_named_in_key(const struct policy_view *view, void *userdata)
{
	const char *rest = userdata;
	size_t len = strlen(view->name);

	return !strncmp(rest, view->name, len) && rest[len] == '.';
}

int cmd_policy_get(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL, *path = NULL, *key;
	struct policy *policy;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":j:p:h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'p':
			path = optarg;
			break;
		case 'h':
			return cli_verb_help(verb);
		default:
			return cli_option_error(verb, c, argv);
		}
	}
	rc = cli_check_args(verb, argc, argv);
	if (rc)
		return rc;
	rc = cli_check_job_id(verb, job_id);
	if (rc)
		return rc;
	key = argv[optind];
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;
	if (job_id && !strncmp(key, "views.", 6)) {
		/* only a view's values depend on the job, and they need only that view expanded:
		 * another view's target may use a variable this environment lacks (a view for
		 * other jobs), which must not stop a hook reading hooks.fail_open */
		struct policy *some;

		if (policy_select_views(policy, view_named_in_key, (void *)(key + 6), &some) < 0) {
			cli_error(verb, "out of memory");
			policy_free(policy);
			return JOBFS_EXIT_SYSTEM;
		}
		policy_free(policy);
		policy = some;
		rc = cli_expand_policy(&policy, job_id);
		if (rc) {
			policy_free(policy);
			return rc;
		}
	}
	if (get_value(policy, key) < 0)
		rc = cli_usage_error(verb,
				     "unknown key '%s' in policy '%s' (see 'jobfs policy show')",
				     key, policy->source);
	policy_free(policy);
	return rc;
}
