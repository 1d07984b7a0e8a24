/* `jobfs mark-ok --job ID`: records that the job succeeded, from a final workflow step while the
 * job is still mounted (or after). Only a successful job may be promoted. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "policy.h"
#include "store.h"

static int record_outcome(const struct cli_verb *verb, int job_fd, const char *job_id,
			  enum store_outcome outcome)
{
	struct timespec nap = {0, 20 * 1000000L};
	struct store_record *rec = NULL;
	int lock_fd = -1, r, rc;

	/* a passing `jobfs ls` holds the lock for a moment: retry for a second before "busy" */
	for (int try = 0; (r = store_job_lock(job_fd, false, &lock_fd)) == -EWOULDBLOCK && try < 50;
	     try++)
		nanosleep(&nap, NULL);
	if (r < 0) {
		cli_error(verb, "job '%s' is busy: another jobfs holds its lock", job_id);
		return r == -EWOULDBLOCK ? JOBFS_EXIT_BUSY : JOBFS_EXIT_SYSTEM;
	}
	rc = JOBFS_EXIT_NO_JOB;
	r = store_record_read(job_fd, &rec);
	if (r < 0) {
		cli_error(verb, "job '%s' has no valid record (orphan); 'jobfs gc' removes it",
			  job_id);
		goto out;
	}
	rec->outcome = outcome;
	rc = JOBFS_EXIT_SYSTEM;
	r = store_record_write(job_fd, rec);
	if (r < 0) {
		cli_error(verb, "cannot record job '%s': %s", job_id, strerror(-r));
		goto out;
	}
	rc = JOBFS_EXIT_OK;
out:
	store_record_free(rec);
	close(lock_fd);
	return rc;
}

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
	struct store *store = NULL;
	int c, r, rc, job_fd = -1;

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
	rc = cli_require_job_id(verb, job_id);
	if (rc)
		return rc;
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;
	rc = JOBFS_EXIT_NO_JOB;
	r = store_open(policy->state_dir, false, &store);
	if (r == 0)
		r = store_job_open(store, job_id, &job_fd);
	if (r == -ENOENT) {
		cli_error(verb, "no such job '%s'", job_id);
		goto out;
	}
	rc = JOBFS_EXIT_SYSTEM;
	if (r < 0) {
		cli_error(verb, "cannot open job '%s': %s", job_id, strerror(-r));
		goto out;
	}
	rc = record_outcome(verb, job_fd, job_id, STORE_OUTCOME_SUCCESS);
out:
	if (job_fd >= 0)
		close(job_fd);
	store_close(store);
	policy_free(policy);
	return rc;
}
