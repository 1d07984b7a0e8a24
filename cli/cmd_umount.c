/* `jobfs umount --job ID`: unmounts every view of the job and waits for its daemon to exit. A busy
 * view names exactly the processes holding it; --kill ends exactly those (TERM, then KILL after the
 * timeout), and a lazy detach is the last resort. The layer stays unless --collect. --outcome
 * records how the job went (promote takes only successful jobs). A job mounted in a private
 * namespace is unmounted from inside it (ns.c), where its holders are: through its daemon, or,
 * once the daemon is gone, through a process the job left there; with neither, the namespace
 * went and took the views with it, and only the record is left to update. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "gc.h"
#include "ns.h"
#include "policy.h"
#include "procs.h"
#include "store.h"

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct holder {
	pid_t pid;
	uint64_t start; /* so a reused PID is never signalled */
};

/* The processes of pids (freed here) with their start times; those gone meanwhile left out. */
static int holders_of(pid_t *pids, size_t n, struct holder **ret, size_t *ret_n)
{
	struct holder *holders;
	size_t kept = 0;

	holders = calloc(n ? n : 1, sizeof(*holders));
	if (!holders) {
		free(pids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (procs_start_time(pids[i], &holders[kept].start) == 0)
			holders[kept++].pid = pids[i];
	free(pids);
	*ret = holders;
	*ret_n = kept;
	return 0;
}

static int find_holders(const struct procs_mount *m, struct holder **ret, size_t *ret_n)
{
	pid_t *pids;
	size_t n;
	int r;

	r = procs_holders(m, &pids, &n);
	if (r < 0)
		return r;
	return holders_of(pids, n, ret, ret_n);
}

static void signal_holders(const struct holder *holders, size_t n, int sig)
{
	for (size_t i = 0; i < n; i++)
		if (procs_alive(holders[i].pid, holders[i].start))
			kill(holders[i].pid, sig);
}

static bool wait_holders(const struct holder *holders, size_t n, double seconds)
{
	double deadline = now_s() + seconds;

	for (;;) {
		bool any = false;

		for (size_t i = 0; i < n && !any; i++)
			any = procs_alive(holders[i].pid, holders[i].start);
		if (!any)
			return true;
		if (now_s() >= deadline)
			return false;
		nap_ms(20);
	}
}

/* --kill: says what it signals ("jobfs: umount: PREFIXsending SIGTERM to PID CMD SUFFIX"), then
 * SIGTERM, and SIGKILL to what outlives the timeout. */
static void end_holders(const struct holder *holders, size_t n, long timeout, const char *prefix,
			const char *suffix)
{
	for (size_t i = 0; i < n; i++) {
		char cmd[512];

		procs_cmdline(holders[i].pid, cmd, sizeof(cmd));
		fprintf(stderr, "jobfs: umount: %ssending SIGTERM to %d %s%s\n", prefix,
			(int)holders[i].pid, cmd, suffix);
	}
	signal_holders(holders, n, SIGTERM);
	if (!wait_holders(holders, n, (double)timeout)) {
		signal_holders(holders, n, SIGKILL);
		wait_holders(holders, n, 5);
	}
}

static void print_holders(const struct cli_verb *verb, const struct store_view *view,
			  const struct holder *holders, size_t n)
{
	cli_error(verb, "view '%s' at '%s' is busy%s", view->name, view->target,
		  n ? ", held by:" : " (no process of this namespace holds it)");
	for (size_t i = 0; i < n; i++) {
		char cmd[512];

		procs_cmdline(holders[i].pid, cmd, sizeof(cmd));
		fprintf(stderr, "  %d %s\n", (int)holders[i].pid, cmd);
	}
}

/* Lists the processes holding a mounted view; returns true when there are any. */
static bool report_holders(const struct cli_verb *verb, const char *job_id,
			   const struct store_view *view)
{
	struct procs_mount m;
	struct holder *holders;
	size_t n;

	if (procs_view_mount(job_id, view->name, &m) < 0)
		return false;
	if (find_holders(&m, &holders, &n) < 0)
		return false;
	if (n)
		print_holders(verb, view, holders, n);
	free(holders);
	return n > 0;
}

/* True when the mount is one of the view's pass-through directories: mounted right on the view
 * at a path the record names. */
static bool is_pass_through(const struct store_view *view, const struct procs_mount *m,
			    const struct procs_mount *below)
{
	if (below->parent_id != m->mnt_id)
		return false;
	for (size_t j = 0; j < view->n_pass_through; j++)
		if (strcmp(below->mountpoint, view->pass_through[j]) == 0)
			return true;
	return false;
}

/* Detaches the view's pass-through directories (a runner's own directory, where its worker writes
 * its log all through the job), newest first. Their holders are never signalled: one that is busy
 * is detached lazily and stays usable for them. Anything else mounted inside the view is left to
 * unmount_view (busy). Best effort: a view whose daemon died cannot be walked into; its lazy
 * detach takes them along. */
static void detach_pass_through(const struct store_view *view, const struct procs_mount *m)
{
	struct procs_mount *below;
	size_t n;

	if (!view->n_pass_through || procs_mounts_below(m->mnt_id, &below, &n) < 0)
		return;
	for (size_t i = n; i-- > 0;) {
		int r;

		if (!is_pass_through(view, m, &below[i]))
			continue;
		r = gc_unmount(&below[i], false);

		if (r == -EBUSY) {
			fprintf(stderr,
				"jobfs: umount: view '%s': pass-through '%s' is busy, detaching it "
				"lazily (its processes keep it)\n",
				view->name, below[i].mountpoint);
			gc_unmount(&below[i], true);
		}
	}
	free(below);
}

/* Unmounts one view. Returns 0 (unmounted, or not mounted), 1 when busy and reported, or -errno. */
static int unmount_view(const struct cli_verb *verb, const char *job_id,
			const struct store_view *view, bool kill_them, long timeout)
{
	char prefix[sizeof("view '': ") + POLICY_NAME_MAX];
	struct procs_mount m;
	struct holder *holders = NULL;
	size_t n = 0;
	int r;

	/* by the mount's source, not its target path: the job's user may have moved the target or
	 * put another job's view in its place */
	if (procs_view_mount(job_id, view->name, &m) < 0)
		return 0;
	detach_pass_through(view, &m);
	r = gc_unmount(&m, false);
	if (r != -EBUSY)
		return r == -EINVAL ? 0 : r;
	if ((r = find_holders(&m, &holders, &n)) < 0)
		return r;
	r = -EBUSY;
	if (!kill_them) {
		print_holders(verb, view, holders, n);
		free(holders);
		return 1;
	}
	snprintf(prefix, sizeof(prefix), "view '%s': ", view->name);
	for (int round = 0; round < 2 && r == -EBUSY; round++) {
		end_holders(holders, n, timeout, prefix, "");
		free(holders);
		holders = NULL;
		r = gc_unmount(&m, false);
		if (r != -EBUSY)
			break;
		/* someone new opened it meanwhile: one more round */
		if (find_holders(&m, &holders, &n) < 0)
			break;
	}
	free(holders);
	if (r == -EBUSY) {
		fprintf(stderr,
			"jobfs: umount: warning: view '%s' at '%s' is still busy, detaching it "
			"lazily\n",
			view->name, view->target);
		r = gc_unmount(&m, true);
	}
	return r == -EINVAL ? 0 : r;
}

/* --kill: ends the processes that carry the job's marker (JOBFS_JOB_ID=ID in the environment they
 * were started with; the GitHub hook gives it to every step of the job) but hold none of its
 * views, e.g. a server whose cwd is in a pass-through directory. Never this process or its
 * ancestors (a hook of the job runs us). TERM, then KILL after the timeout. */
static void kill_marked(const char *job_id, long timeout)
{
	char entry[sizeof(PROCS_MARKER_VAR) + POLICY_JOB_ID_MAX + 2], suffix[sizeof(entry) + 16];
	struct holder *marked;
	pid_t *pids;
	size_t n;

	snprintf(entry, sizeof(entry), "%s=%s", PROCS_MARKER_VAR, job_id);
	if (procs_marked(entry, &pids, &n) < 0 || holders_of(pids, n, &marked, &n) < 0)
		return;
	snprintf(suffix, sizeof(suffix), " (it carries %s)", entry);
	end_holders(marked, n, timeout, "", suffix);
	free(marked);
}

/* Waits for the recorded daemon to exit; stops it if it outlives its views. */
static void wait_daemon(const struct cli_verb *verb, const struct store_record *rec, long timeout)
{
	double deadline = now_s() + (double)timeout;

	if (rec->pid <= 0)
		return;
	while (procs_alive(rec->pid, rec->pid_start)) {
		if (now_s() >= deadline) {
			cli_error(verb, "warning: daemon %d outlived its views, stopping it",
				  (int)rec->pid);
			kill(rec->pid, SIGTERM);
			deadline = now_s() + 5;
			while (procs_alive(rec->pid, rec->pid_start) && now_s() < deadline)
				nap_ms(20);
			if (procs_alive(rec->pid, rec->pid_start))
				kill(rec->pid, SIGKILL);
			return;
		}
		nap_ms(20);
	}
}

int cmd_umount(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"kill", no_argument, NULL, 'k'},
		{"timeout", required_argument, NULL, 't'},
		{"collect", no_argument, NULL, 'c'},
		{"policy", required_argument, NULL, 'p'},
		{"outcome", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL, *path = NULL;
	enum store_outcome outcome = STORE_OUTCOME_UNKNOWN;
	struct store_record *rec;
	struct policy *policy = NULL;
	struct cli_job job = {.job_fd = -1, .lock_fd = -1};
	struct ns_saved saved = NS_SAVED_INIT;
	struct store *store;
	bool kill_them = false, collect = false, busy = false;
	long timeout = 10;
	int c, r, rc, job_fd;

	while ((c = getopt_long(argc, argv, ":j:kt:cp:o:h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'k':
			kill_them = true;
			break;
		case 't':
			timeout = cli_parse_seconds(optarg);
			if (timeout < 0)
				return cli_usage_error(verb,
						       "invalid timeout '%s' (expected whole "
						       "seconds, at most 86400)",
						       optarg);
			break;
		case 'c':
			collect = true;
			break;
		case 'p':
			path = optarg;
			break;
		case 'o':
			if (store_outcome_from_name(optarg, &outcome) < 0)
				return cli_usage_error(verb,
						       "invalid outcome '%s' (expected success or "
						       "failure)",
						       optarg);
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
	store = job.store;
	job_fd = job.job_fd;
	rec = job.rec;
	rc = JOBFS_EXIT_SYSTEM;
	if (outcome != STORE_OUTCOME_UNKNOWN) {
		/* recorded first: a job that cannot be unmounted now still gets its verdict */
		if (cli_job_set_outcome(verb, &job, outcome) != JOBFS_EXIT_OK)
			goto out;
	}
	if (rec->state != STORE_UNMOUNTED) {
		r = ns_enter_job(rec, &saved);
		if (r < 0 && r != -ESRCH) {
			cli_error(verb, "cannot enter the mount namespace of job '%s': %s", job_id,
				  strerror(-r));
			goto out;
		}
	}
	if (rec->state != STORE_UNMOUNTED && procs_alive(rec->pid, rec->pid_start) &&
	    procs_mount_ns_other(rec->pid) == 1 && store_live_state(rec) == STORE_MOUNTED) {
		/* not a private job we entered, yet its views are in another namespace than ours
		 * (another runner's, made by systemd's PrivateMounts=): unmounting "nothing" here
		 * would stop the daemon under the job that still uses them */
		cli_error(verb,
			  "job '%s' is mounted in another mount namespace (daemon %d); run 'jobfs "
			  "umount' in that namespace (nsenter --target %d --mount)",
			  job_id, (int)rec->pid, (int)rec->pid);
		rc = JOBFS_EXIT_BUSY;
		goto out;
	}
	if (rec->state != STORE_UNMOUNTED && !kill_them) {
		/* a busy view leaves every view mounted: the job stays whole until its holders go
		 */
		for (size_t i = 0; i < rec->n_views; i++)
			if (report_holders(verb, rec->id, &rec->views[i]))
				busy = true;
		if (busy) {
			rc = JOBFS_EXIT_BUSY;
			goto out;
		}
	}
	if (rec->state != STORE_UNMOUNTED) {
		for (size_t i = rec->n_views; i-- > 0;) {
			r = unmount_view(verb, rec->id, &rec->views[i], kill_them, timeout);
			if (r == 1) {
				busy = true;
			} else if (r < 0) {
				cli_error(verb, "cannot unmount view '%s' at '%s': %s",
					  rec->views[i].name, rec->views[i].target, strerror(-r));
				goto out;
			}
		}
		if (busy) {
			rc = JOBFS_EXIT_BUSY;
			goto out;
		}
		if (kill_them)
			kill_marked(rec->id, timeout);
		wait_daemon(verb, rec, timeout);
		ns_leave(&saved);
		rec->state = STORE_UNMOUNTED;
		rec->unmounted = (int64_t)time(NULL);
		r = store_record_write(job_fd, rec);
		if (r < 0) {
			cli_error(verb, "cannot record job '%s': %s", job_id, strerror(-r));
			goto out;
		}
		for (size_t i = rec->n_views;
		     i-- > 0;) /* later views may sit in dirs made for earlier ones */
			store_remove_target(store, rec->id, &rec->views[i]);
	} else if (kill_them) {
		kill_marked(rec->id, timeout); /* what the job left running after its umount */
	}
	if (collect) {
		r = gc_remove_job(store, job_id);
		if (r < 0) {
			cli_error(verb, "cannot remove the layer of job '%s': %s", job_id,
				  gc_strerror(r));
			goto out;
		}
	}
	rc = JOBFS_EXIT_OK;
out:
	ns_leave(&saved);
	cli_job_close(&job);
	policy_free(policy);
	return rc;
}
