/* `jobfs exec --job ID [--cwd DIR] -- CMD [ARGS...]`: runs CMD where the job's views are. For a job
 * mounted with --namespace private it enters the job's mount namespace through the job's daemon,
 * checked to be the recorded one (PID and start time, then held by a pidfd, so a recycled PID is
 * never trusted); for a job in the host namespace it only checks the job is mounted. It sets the
 * job's marker, JOBFS_JOB_ID=ID, so that `umount --kill` also ends what CMD leaves running where
 * it holds no view (a server whose cwd is a pass-through). Nothing else changes: user, the rest of
 * the environment, descriptors and signals are CMD's as they were ours. Then it
 * replaces itself with CMD, so the exit status is CMD's; jobfs's own failures use its exit codes,
 * and CMD not found or not executable 127 or 126, as a shell does. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "ns.h"
#include "policy.h"
#include "procs.h"
#include "store.h"

#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

/* Checks that the opened job is mounted and, for a private one, enters its namespace (saved).
 * JOBFS_EXIT_OK or reported: JOBFS_EXIT_NOT_MOUNTED, JOBFS_EXIT_SYSTEM. */
static int enter_job(const struct cli_verb *verb, const struct store_record *rec,
		     struct ns_saved *saved)
{
	int pidfd, r;

	if (rec->state != STORE_MOUNTED) {
		cli_error(verb, "job '%s' is not mounted (%s)", rec->id,
			  store_state_name(rec->state));
		return JOBFS_EXIT_NOT_MOUNTED;
	}
	if (!rec->private_ns) {
		if (store_live_state(rec) == STORE_MOUNTED)
			return JOBFS_EXIT_OK;
		goto out_stale;
	}
	r = ns_holder_open(rec->pid, rec->pid_start, &pidfd);
	if (r == -ESRCH) {
		cli_error(verb,
			  "job '%s' is stale: its daemon %d, which held its mount namespace, is "
			  "gone; 'jobfs umount --job %s' cleans up",
			  rec->id, (int)rec->pid, rec->id);
		return JOBFS_EXIT_NOT_MOUNTED;
	}
	if (r == 0) {
		r = ns_enter(pidfd, saved);
		close(pidfd);
	}
	if (r < 0) {
		cli_error(verb, "cannot enter the mount namespace of job '%s': %s", rec->id,
			  strerror(-r));
		return JOBFS_EXIT_SYSTEM;
	}
	for (size_t i = 0; i < rec->n_views; i++)
		if (!procs_view_mount_connected(0, rec->id, rec->views[i].name))
			goto out_stale;
	return JOBFS_EXIT_OK;

out_stale:
	cli_error(verb,
		  "job '%s' is stale: a view is not connected; 'jobfs umount --job %s' cleans up",
		  rec->id, rec->id);
	return JOBFS_EXIT_NOT_MOUNTED;
}

int cmd_exec(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"cwd", required_argument, NULL, 'C'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL, *path = NULL, *cwd = NULL;
	struct ns_saved saved = NS_SAVED_INIT;
	struct policy *policy = NULL;
	struct cli_job job;
	char here[PATH_MAX], dir[PATH_MAX * 2];
	bool private_ns;
	int c, rc, saved_errno;

	/* '+': options end at CMD, whose own options are its own */
	while ((c = getopt_long(argc, argv, "+:j:p:h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'C':
			cwd = optarg;
			if (!*cwd)
				return cli_usage_error(
					verb, "invalid directory '%s' for --cwd (empty)", cwd);
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
	private_ns = job.rec->private_ns;
	/* where to be inside: the same path, or --cwd (relative to it) */
	if (private_ns && (!cwd || cwd[0] != '/') && !getcwd(here, sizeof(here))) {
		cli_error(verb, "cannot tell the current directory: %s", strerror(errno));
		rc = JOBFS_EXIT_SYSTEM;
		goto out_close;
	}
	if (!cwd)
		snprintf(dir, sizeof(dir), "%s", private_ns ? here : ".");
	else if (cwd[0] == '/' || !private_ns)
		snprintf(dir, sizeof(dir), "%s", cwd);
	else
		snprintf(dir, sizeof(dir), "%s/%s", here, cwd);
	rc = enter_job(verb, job.rec, &saved);
	if (rc)
		goto out_close;
	if (setenv(PROCS_MARKER_VAR, job.rec->id, 1) < 0) {
		cli_error(verb, "cannot set %s: %s", PROCS_MARKER_VAR, strerror(errno));
		rc = JOBFS_EXIT_SYSTEM;
		goto out_close;
	}
	/* the lock is for the checks only: CMD may run for hours, and umount must end it */
	cli_job_close(&job);
	ns_stay(&saved);
	if ((private_ns || cwd) && chdir(dir) < 0) {
		cli_error(verb, "cannot change to directory '%s'%s: %s", cwd ? cwd : dir,
			  private_ns ? " in the job's namespace" : "", strerror(errno));
		rc = JOBFS_EXIT_SYSTEM;
		goto out;
	}
	policy_free(policy);
	policy = NULL;
	if (fflush(stdout) != 0) {
		rc = JOBFS_EXIT_SYSTEM;
		goto out;
	}
	execvp(argv[optind], argv + optind);
	saved_errno = errno;
	cli_error(verb, "cannot run '%s': %s", argv[optind], strerror(saved_errno));
	rc = saved_errno == ENOENT || saved_errno == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
	goto out;

out_close:
	ns_leave(&saved);
	cli_job_close(&job);
out:
	policy_free(policy);
	return rc;
}
