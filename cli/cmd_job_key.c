/* `jobfs job-key --github`: the job ID of the current CI job, derived from the environment the CI
 * system gives it. The one place the key is derived: runner hooks and the action both call it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exit_codes.h"
#include "json.h"
#include "policy.h"

/* GitHub Actions: unique per runner, run and attempt; the job's name only for readability. */
static const char *const github_vars[] = {
	"RUNNER_NAME",
	"GITHUB_RUN_ID",
	"GITHUB_RUN_ATTEMPT",
	"GITHUB_JOB",
};

#define N_GITHUB_VARS (sizeof(github_vars) / sizeof(github_vars[0]))

int cmd_job_key(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"github", no_argument, NULL, 'g'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *parts[N_GITHUB_VARS];
	char id[POLICY_JOB_ID_MAX + 1];
	bool github = false, json = false;
	int c, r, rc;
	size_t i;

	while ((c = getopt_long(argc, argv, ":gJh", options, NULL)) != -1) {
		switch (c) {
		case 'g':
			github = true;
			break;
		case 'J':
			json = true;
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
	if (!github)
		return cli_usage_error(verb, "--github is required (the only CI system so far)");

	for (i = 0; i < N_GITHUB_VARS; i++) {
		parts[i] = getenv(github_vars[i]);
		if (!parts[i] || !*parts[i])
			return cli_usage_error(
				verb,
				"environment variable %s is %s (not a GitHub Actions "
				"job?)",
				github_vars[i], parts[i] ? "empty" : "not set");
	}
	r = policy_job_key(parts, N_GITHUB_VARS, id);
	if (r < 0) {
		cli_error(verb, "cannot derive the job ID: %s", strerror(-r));
		return JOBFS_EXIT_SYSTEM;
	}
	if (json) {
		struct json_writer w;

		json_init(&w, stdout);
		json_object_begin(&w);
		json_key(&w, "id");
		json_string(&w, id);
		json_key(&w, "source");
		json_string(&w, "github");
		json_object_end(&w);
		json_finish(&w);
	} else {
		printf("%s\n", id);
	}
	return JOBFS_EXIT_OK;
}
