/* `jobfs mount --job ID`: creates the job's layers, starts its daemon, returns once every view is
 * live at its target, and records the job. Any failure rolls back what it created. With
 * --namespace private the daemon mounts the views in a mount namespace of its own (ns.c), which
 * only `jobfs exec` enters: the host never sees them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bases.h"
#include "cli.h"
#include "daemon.h"
#include "exit_codes.h"
#include "gc.h"
#include "ns.h"
#include "policy.h"
#include "procs.h"
#include "store.h"

/* Directories made for targets, to remove on rollback, deepest last. */
struct made_dirs {
	char **paths;
	size_t n;
};

static int remember(struct made_dirs *made, const char *path)
{
	char **grown = realloc(made->paths, sizeof(*grown) * (made->n + 1));

	if (!grown || !(grown[made->n] = strdup(path))) {
		if (grown)
			made->paths = grown;
		return -ENOMEM;
	}
	made->paths = grown;
	made->n++;
	return 0;
}

static void made_dirs_rollback(struct made_dirs *made)
{
	for (size_t i = made->n; i-- > 0;)
		rmdir(made->paths[i]);
}

static void made_dirs_free(struct made_dirs *made)
{
	for (size_t i = 0; i < made->n; i++)
		free(made->paths[i]);
	free(made->paths);
}

/* mkdir -p target with mode 0755; *ret_created: how many trailing components it made. */
static int make_target(const char *target, struct made_dirs *made, unsigned *ret_created)
{
	char buf[PATH_MAX];
	size_t len = strlen(target);
	unsigned created = 0;
	int r;

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, target, len + 1);
	for (char *p = buf + 1;; p++) {
		bool last = *p == '\0';
		struct stat st;

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == 0) {
			created++;
			if ((r = remember(made, buf)) < 0)
				return r;
		} else if (errno != EEXIST) {
			return -errno;
		} else {
			created = 0; /* count only the trailing run this call made */
			if (last && (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode)))
				return -ENOTDIR;
		}
		if (last)
			break;
		*p = '/';
	}
	*ret_created = created;
	return 0;
}

/* A job dir exists already: say why the mount cannot go on. */
static int report_existing(const struct cli_verb *verb, struct store *store, const char *id)
{
	struct store_record *rec;
	int job_fd, lock_fd, r, rc;

	r = store_job_open(store, id, &job_fd);
	if (r < 0) {
		cli_error(verb, "job '%s' exists but cannot be opened: %s", id, strerror(-r));
		return JOBFS_EXIT_MOUNTED;
	}
	r = store_job_lock(job_fd, false, &lock_fd);
	if (r == -EWOULDBLOCK) {
		close(job_fd);
		cli_error(verb, "job '%s' is busy: another jobfs holds its lock", id);
		return JOBFS_EXIT_BUSY;
	}
	if (r == 0)
		close(lock_fd);
	r = store_record_read(job_fd, &rec);
	close(job_fd);
	if (r < 0) {
		cli_error(verb,
			  "job '%s' exists without a valid record (orphan); 'jobfs gc' removes it",
			  id);
		return JOBFS_EXIT_MOUNTED;
	}
	switch (store_live_state(rec)) {
	case STORE_MOUNTED:
		cli_error(verb, "job '%s' is already mounted", id);
		break;
	case STORE_UNMOUNTED:
		cli_error(
			verb,
			"job '%s' already exists (unmounted); 'jobfs umount --job %s --collect' or "
			"'jobfs gc' removes its layer",
			id, id);
		break;
	default:
		cli_error(
			verb,
			"job '%s' is already mounted but stale; 'jobfs umount --job %s' cleans up",
			id, id);
		break;
	}
	rc = JOBFS_EXIT_MOUNTED;
	store_record_free(rec);
	return rc;
}

static int make_view_dirs(int job_fd, const char *name)
{
	int views_fd, view_fd, r = 0;

	r = store_mkdirat(job_fd, "views", 0700);
	if (r < 0 && r != -EEXIST)
		return r;
	r = 0;
	views_fd = openat(job_fd, "views", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (views_fd < 0)
		return -errno;
	r = store_mkdirat(views_fd, name, 0700);
	if (r < 0)
		goto out_close;
	view_fd = openat(views_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (view_fd < 0) {
		r = -errno;
		goto out_close;
	}
	r = store_mkdirat(view_fd, "upper", 0755);
	if (r == 0)
		r = store_mkdirat(view_fd, "work", 0700);
	close(view_fd);
out_close:
	close(views_fd);
	return r;
}

/* --context KEY=VALUE: the key known, the value valid, each key once. An empty value is the same
 * as leaving the key out, so a hook can pass what its environment has. */
static int parse_context(const struct cli_verb *verb, const char *arg,
			 struct policy_context *context)
{
	const char *eq = strchr(arg, '='), *reason;
	enum policy_context_key key;

	if (!eq || eq == arg)
		return cli_usage_error(verb, "invalid --context '%s': expected KEY=VALUE", arg);
	if (policy_context_key_from_name(arg, (size_t)(eq - arg), &key) < 0)
		return cli_usage_error(verb, "invalid --context '%s': unknown key (expected %s)",
				       arg, policy_context_key_names());
	if (context->values[key])
		return cli_usage_error(verb, "invalid --context '%s': key '%s' given twice", arg,
				       policy_context_key_name(key));
	if (!eq[1])
		return 0;
	if (policy_context_value_check(eq + 1, &reason) < 0)
		return cli_usage_error(verb, "invalid --context '%s': %s", arg, reason);
	context->values[key] = eq + 1;
	return 0;
}

/* Builds the record from the expanded policy (state "mounting", no daemon yet); the views' lowers
 * come from the base stacks (add_lowers). */
static int record_from_policy(const struct policy *policy, const char *id,
			      const struct policy_context *context, struct store_record **ret)
{
	struct store_record *rec;
	char digest[17];

	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	store_policy_digest(policy, digest);
	rec->id = strdup(id);
	rec->policy_digest = strdup(digest);
	rec->policy_source = strdup(policy->source);
	rec->state = STORE_MOUNTING;
	rec->created = (int64_t)time(NULL);
	rec->views = calloc(policy->n_views ? policy->n_views : 1, sizeof(*rec->views));
	if (!rec->id || !rec->policy_digest || !rec->policy_source || !rec->views)
		goto out_free;
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		if (context->values[k] && !(rec->context[k] = strdup(context->values[k])))
			goto out_free;
	rec->n_views = policy->n_views;
	for (size_t i = 0; i < policy->n_views; i++) {
		const struct policy_view *pv = &policy->views[i];
		struct store_view *view = &rec->views[i];

		view->name = strdup(pv->name);
		view->target = strdup(pv->target);
		if (!view->name || !view->target)
			goto out_free;
		if (pv->n_pass_through &&
		    !(view->pass_through = calloc(pv->n_pass_through, sizeof(char *))))
			goto out_free;
		for (size_t j = 0; j < pv->n_pass_through; j++)
			if (!(view->pass_through[view->n_pass_through++] =
				      strdup(pv->pass_through[j])))
				goto out_free;
	}
	*ret = rec;
	return 0;

out_free:
	store_record_free(rec);
	return -ENOMEM;
}

/* Each view's lowers: its base generations, newest first, then the policy's lowers. The stack is
 * read once, now, after the job dir exists: gc, which lists job dirs only after it has replaced a
 * stack, then sees this job and keeps every generation until its record names the ones it uses. */
static int add_lowers(struct store *store, const struct policy *policy, struct store_record *rec)
{
	for (size_t i = 0; i < policy->n_views; i++) {
		int r = bases_view_lowers(store, &policy->views[i], &rec->views[i].lowers,
					  &rec->views[i].n_lowers);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A job none of whose views matched: a record without views or daemon, mounted until umount, so
 * that umount, mark-ok and promote of it are clean no-ops. */
static int mount_no_views(const struct cli_verb *verb, int job_fd, struct store_record *rec)
{
	int r;

	rec->state = STORE_MOUNTED;
	r = store_record_write(job_fd, rec);
	if (r < 0) {
		cli_error(verb, "cannot record job '%s': %s", rec->id, strerror(-r));
		return JOBFS_EXIT_SYSTEM;
	}
	cli_error(verb, "job '%s' matches no view of policy '%s': nothing to mount", rec->id,
		  rec->policy_source);
	return JOBFS_EXIT_OK;
}

static void stop_daemon(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

int cmd_mount(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'},
		{"policy", required_argument, NULL, 'p'},
		{"foreground", no_argument, NULL, 'f'},
		{"namespace", required_argument, NULL, 'n'},
		{"context", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *job_id = NULL, *path = NULL;
	struct policy_context context = {0};
	struct made_dirs made = {0}, kept = {0};
	struct store_record *rec = NULL;
	struct daemon_view *dviews = NULL;
	struct policy *policy = NULL;
	struct store *store = NULL;
	char(*uppers)[PATH_MAX] = NULL, (*works)[PATH_MAX] = NULL;
	char err[1400];
	bool foreground = false, job_made = false, private_ns = false;
	int c, r, rc, job_fd = -1, lock_fd = -1, log_fd = -1;
	pid_t pid = 0;

	while ((c = getopt_long(argc, argv, ":j:p:fh", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'p':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'n':
			if (strcmp(optarg, "private") == 0)
				private_ns = true;
			else if (strcmp(optarg, "host") == 0)
				private_ns = false;
			else
				return cli_usage_error(verb,
						       "invalid namespace '%s' (expected host or "
						       "private)",
						       optarg);
			break;
		case 'C':
			rc = parse_context(verb, optarg, &context);
			if (rc)
				return rc;
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
	/* only the views whose `when` matches the job are expanded: a target that needs a
	 * variable the job lacks stops nobody who does not get the view */
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;
	{
		struct policy *selected;

		r = policy_select(policy, &context, &selected);
		if (r < 0) {
			cli_error(verb, "out of memory");
			rc = JOBFS_EXIT_SYSTEM;
			goto out;
		}
		policy_free(policy);
		policy = selected;
	}
	rc = cli_expand_policy(&policy, job_id);
	if (rc)
		goto out;

	rc = JOBFS_EXIT_SYSTEM;
	r = store_open(policy->state_dir, true, &store);
	if (r < 0) {
		cli_error(verb, "cannot open state dir '%s': %s", policy->state_dir, strerror(-r));
		goto out;
	}
	r = store_job_create(store, job_id, &job_fd, &lock_fd);
	if (r == -EEXIST) {
		rc = report_existing(verb, store, job_id);
		goto out;
	}
	if (r < 0) {
		cli_error(verb, "cannot create job '%s' in '%s/jobs': %s", job_id, store->path,
			  strerror(-r));
		goto out;
	}
	job_made = true;
	r = record_from_policy(policy, job_id, &context, &rec);
	if (r == 0 && policy->n_views == 0) {
		rc = mount_no_views(verb, job_fd, rec);
		if (rc)
			goto out_rollback;
		goto out;
	}
	if (r == 0 && (r = add_lowers(store, policy, rec)) < 0 && r != -ENOMEM) {
		cli_error(verb, "cannot read the base stacks in '%s/bases': %s", store->path,
			  strerror(-r));
		goto out_rollback;
	}
	if (rec)
		rec->private_ns = private_ns;
	dviews = calloc(policy->n_views + 1, sizeof(*dviews));
	uppers = calloc(policy->n_views + 1, sizeof(*uppers));
	works = calloc(policy->n_views + 1, sizeof(*works));
	if (r < 0 || !dviews || !uppers || !works) {
		cli_error(verb, "out of memory");
		goto out_rollback;
	}
	for (size_t i = 0; i < policy->n_views; i++) {
		const struct policy_view *pv = &policy->views[i];
		struct procs_mount m;
		bool nested;

		r = make_view_dirs(job_fd, pv->name);
		if (r < 0) {
			cli_error(verb, "view '%s': cannot create its layers in '%s/jobs/%s': %s",
				  pv->name, store->path, job_id, strerror(-r));
			goto out_rollback;
		}
		if (procs_mount_at(pv->target, &m) == 0) {
			cli_error(verb, "view '%s': target '%s' is already a mount point", pv->name,
				  pv->target);
			goto out_rollback;
		}
		nested = false;
		for (size_t j = 0; j < i; j++) /* the policy lists an outer view first */
			nested =
				nested || policy_path_overlaps(pv->target, policy->views[j].target);
		/* a nested view's target is made by the daemon, through the view it is in (once
		 * that serves), so it never lands in the real directory the outer view covers */
		r = nested ? 0
			   : make_target(pv->target, private_ns ? &kept : &made,
					 &rec->views[i].target_created);
		/* A private job's targets stay: other jobs may mount their own views at the same
		 * canonical path in their namespaces, and removing a directory detaches every mount
		 * on it in every namespace (the kernel does that since 3.18). */
		if (private_ns)
			rec->views[i].target_created = 0;
		if (r < 0) {
			cli_error(verb, "view '%s': cannot create target '%s': %s", pv->name,
				  pv->target, strerror(-r));
			goto out_rollback;
		}
		snprintf(uppers[i], PATH_MAX, "%s/jobs/%s/views/%s/upper", store->path, job_id,
			 pv->name);
		snprintf(works[i], PATH_MAX, "%s/jobs/%s/views/%s/work", store->path, job_id,
			 pv->name);
		dviews[i] = (struct daemon_view){
			.name = pv->name,
			.lowers = (const char *const *)rec->views[i].lowers,
			.n_lowers = (int)rec->views[i].n_lowers,
			.upper = uppers[i],
			.work = works[i],
			.target = pv->target,
			.quota = pv->quota,
			.volatile_upper = pv->volatile_upper,
			.pass_through = (const char *const *)pv->pass_through,
			.n_pass_through = pv->n_pass_through,
		};
	}
	r = store_record_write(job_fd, rec);
	if (r < 0) {
		cli_error(verb, "cannot write the record of job '%s': %s", job_id, strerror(-r));
		goto out_rollback;
	}
	if (!foreground) {
		log_fd = store_openat_new(job_fd, "daemon.log",
					  O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (log_fd < 0) {
			cli_error(verb, "cannot open the daemon log of job '%s': %s", job_id,
				  strerror(-log_fd));
			goto out_rollback;
		}
	}
	{
		int close_fds[] = {job_fd,	   lock_fd,	    store->dir_fd,
				   store->jobs_fd, store->trash_fd, store->lock_fd};
		struct daemon_spec spec = {
			.job_id = job_id,
			.views = dviews,
			.n_views = policy->n_views,
			.log_fd = log_fd,
			.close_fds = close_fds,
			.n_close_fds = sizeof(close_fds) / sizeof(close_fds[0]),
			.private_ns = private_ns,
		};

		r = daemon_start(&spec, &pid, err, sizeof(err));
	}
	if (r < 0) {
		char log_path[PATH_MAX];

		pid = 0;
		/* the job dir is rolled back; its log, which tells the rest, is kept */
		if (foreground)
			cli_error(verb, "job '%s': %s (the daemon logged to this terminal)", job_id,
				  err);
		else if ((r = store_keep_daemon_log(store, job_fd, job_id, log_path,
						    sizeof(log_path))) == 0)
			cli_error(verb, "job '%s': %s (daemon log: %s)", job_id, err, log_path);
		else
			cli_error(verb, "job '%s': %s (its daemon log could not be kept: %s)",
				  job_id, err, strerror(-r));
		goto out_rollback;
	}
	rec->pid = pid;
	rec->state = STORE_MOUNTED;
	r = procs_start_time(pid, &rec->pid_start);
	if (r == 0 && private_ns)
		r = ns_inode(pid, &rec->ns_ino);
	if (r == 0)
		r = store_record_write(job_fd, rec);
	if (r < 0) {
		cli_error(verb, "cannot record job '%s': %s", job_id, strerror(-r));
		goto out_rollback;
	}
	for (size_t i = 0; i < policy->n_views; i++)
		printf("%s\t%s\n", policy->views[i].name, policy->views[i].target);
	close(lock_fd);
	lock_fd = -1;
	rc = JOBFS_EXIT_OK;
	if (foreground) {
		int status;

		fflush(stdout);
		/* the terminal's ^C reaches the daemon too; it unmounts and we follow it */
		signal(SIGINT, SIG_IGN);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = JOBFS_EXIT_SYSTEM;
	}
	goto out;

out_rollback:
	if (pid > 0)
		stop_daemon(pid);
	if (job_made && (r = gc_remove_job(store, job_id)) < 0)
		cli_error(verb, "cannot remove job '%s' while rolling back: %s", job_id,
			  strerror(-r));
	made_dirs_rollback(&made);
	rc = JOBFS_EXIT_SYSTEM;
out:
	if (log_fd >= 0)
		close(log_fd);
	if (lock_fd >= 0)
		close(lock_fd);
	if (job_fd >= 0)
		close(job_fd);
	made_dirs_free(&made);
	made_dirs_free(&kept);
	free(dviews);
	free(uppers);
	free(works);
	store_record_free(rec);
	store_close(store);
	policy_free(policy);
	return rc;
}
