/* The job a verb works on: its state dir, its dir, its lock and its record, opened in one place so
 * that every verb reports a missing, busy or orphan job the same way. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "json.h"
#include "policy.h"
#include "store.h"

int cli_job_open(const struct cli_verb *verb, const struct policy *policy, const char *job_id,
		 struct cli_job *ret)
{
	struct timespec nap = {0, 20 * 1000000L};
	int r;

	*ret = (struct cli_job){.job_fd = -1, .lock_fd = -1};
	r = store_open(policy->state_dir, false, &ret->store);
	if (r == 0)
		r = store_job_open(ret->store, job_id, &ret->job_fd);
	if (r == -ENOENT) {
		cli_error(verb, "no such job '%s'", job_id);
		goto fail_no_job;
	}
	if (r < 0) {
		cli_error(verb, "cannot open job '%s': %s", job_id, strerror(-r));
		cli_job_close(ret);
		return JOBFS_EXIT_SYSTEM;
	}
	/* a passing `jobfs ls` holds the lock for a moment: retry for a second before "busy" */
	for (int try = 0;
	     (r = store_job_lock(ret->job_fd, false, &ret->lock_fd)) == -EWOULDBLOCK && try < 50;
	     try++)
		nanosleep(&nap, NULL);
	if (r < 0) {
		cli_error(verb, "job '%s' is busy: another jobfs holds its lock", job_id);
		cli_job_close(ret);
		return r == -EWOULDBLOCK ? JOBFS_EXIT_BUSY : JOBFS_EXIT_SYSTEM;
	}
	r = store_record_read(ret->job_fd, &ret->rec);
	if (r < 0) {
		cli_error(verb, "job '%s' has no valid record (orphan); 'jobfs gc' removes it",
			  job_id);
		goto fail_no_job;
	}
	return JOBFS_EXIT_OK;

fail_no_job:
	cli_job_close(ret);
	return JOBFS_EXIT_NO_JOB;
}

int cli_job_verb_open(const struct cli_verb *verb, int argc, char **argv, const char *job_id,
		      const char *policy_path, struct policy **ret_policy, struct cli_job *ret_job)
{
	int rc;

	*ret_policy = NULL;
	*ret_job = (struct cli_job){.job_fd = -1, .lock_fd = -1};
	rc = cli_check_args(verb, argc, argv);
	if (!rc)
		rc = cli_require_job_id(verb, job_id);
	if (!rc)
		rc = cli_load_policy(policy_path, NULL, ret_policy);
	if (!rc)
		rc = cli_job_open(verb, *ret_policy, job_id, ret_job);
	if (rc) {
		policy_free(*ret_policy);
		*ret_policy = NULL;
	}
	return rc;
}

void cli_job_close(struct cli_job *job)
{
	store_record_free(job->rec);
	if (job->lock_fd >= 0)
		close(job->lock_fd);
	if (job->job_fd >= 0)
		close(job->job_fd);
	store_close(job->store);
	*job = (struct cli_job){.job_fd = -1, .lock_fd = -1};
}

int cli_job_set_outcome(const struct cli_verb *verb, struct cli_job *job,
			enum store_outcome outcome)
{
	int r = 0;

	/* the layers (under the job's dir) reach the disk before a record that vouches for them;
	 * even a volatile view's: syncfs flushes what its daemon never synced */
	if (outcome == STORE_OUTCOME_SUCCESS && syncfs(job->job_fd) < 0)
		r = -errno;
	job->rec->outcome = outcome;
	if (r == 0)
		r = store_record_write(job->job_fd, job->rec);
	if (r == 0 && outcome == STORE_OUTCOME_SUCCESS && syncfs(job->job_fd) < 0)
		r = -errno;
	if (r < 0) {
		cli_error(verb, "cannot record the outcome of job '%s': %s", job->rec->id,
			  strerror(-r));
		return JOBFS_EXIT_SYSTEM;
	}
	return JOBFS_EXIT_OK;
}

void cli_json_context(struct json_writer *w, const struct store_record *rec)
{
	json_object_begin(w);
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		json_key(w, policy_context_key_name((enum policy_context_key)k));
		json_string(w, rec ? rec->context[k] : NULL);
	}
	json_object_end(w);
}

void cli_print_context(const struct store_record *rec)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		if (rec->context[k])
			printf("  context %s: %s\n",
			       policy_context_key_name((enum policy_context_key)k),
			       rec->context[k]);
}
