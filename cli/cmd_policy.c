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

/* Load the policy from path or the usual places, and expand it when a job is given. */
int cli_load_policy(const char *path, const char *job_id, struct policy **ret)
{
	struct policy_error err;
	struct policy *policy, *expanded;
	int r;

	r = policy_load(path, getenv("JOBFS_POLICY"), POLICY_SYSTEM_PATH, &policy, &err);
	if (r < 0)
		return report_policy_error(&err, r);
	if (job_id) {
		r = policy_expand(policy, job_id, policy_lookup_environ, environ, &expanded, &err);
		policy_free(policy);
		if (r < 0)
			return report_policy_error(&err, r);
		policy = expanded;
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
		if (!view->promote.n_ignore) {
			printf("    promote: %s\n", policy_promote_name(view->promote.kind));
			continue;
		}
		printf("    promote:\n      kind: %s\n      ignore: [",
		       policy_promote_name(view->promote.kind));
		for (j = 0; j < view->promote.n_ignore; j++) {
			if (j)
				printf(", ");
			yaml_string(view->promote.ignore[j]);
		}
		printf("]\n");
	}
	printf("gc:\n  keep_unmounted: %s\n",
	       policy_format_duration(policy->gc.keep_unmounted, buf));
	if (policy->gc.max_total)
		printf("  max_total: %s\n", policy_format_size(policy->gc.max_total, buf));
	else
		printf("  # max_total: none\n");
	printf("  max_generations: %" PRIu64 "\n", policy->gc.max_generations);
}

/* --- JSON output: stable field names, sizes in bytes, durations in seconds, null for "none" -- */

static void json_uint_or_null(struct json_writer *w, uint64_t value)
{
	if (value)
		json_uint(w, value);
	else
		json_null(w);
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
