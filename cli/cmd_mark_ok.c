/* `jobfs mark-ok --job ID`: records that the job succeeded, from a final workflow step while the
 * job is still mounted (or after). Only a successful job may be promoted. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "policy.h"
#include "store.h"

int cmd_mark_ok(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL, *path = NULL;
	struct policy *policy = NULL;
	struct cli_job job;
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
	rc = cli_job_verb_open(verb, argc, argv, job_id, path, &policy, &job);
	if (rc)
		return rc;
	rc = cli_job_set_outcome(verb, &job, STORE_OUTCOME_SUCCESS);
	cli_job_close(&job);
	policy_free(policy);
	return rc;
}
