/* `jobfs gc`: detaches the mounts of stale jobs, removes unmounted layers past retention (and the
 * oldest ones while all unmounted layers hold more than max_total), removes orphans, and reports
 * what it removed and the bytes freed. Never touches a mounted job or one whose lock is held.
 * Then base generations: a stack deeper than gc.max_generations is flattened, and generations no
 * stack and no job record names are removed (gc_gens.c). --dry-run runs the same decisions and
 * changes nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "gc.h"
#include "json.h"
#include "ns.h"
#include "policy.h"
#include "procs.h"
#include "store.h"

struct gc_action {
	char *id;
	char *what; /* "removed": orphan, expired, over-max-total; "detached": the view's target */
	char *reason; /* removed: why; detached: the view name; skipped: why */
	uint64_t bytes;
};

struct gc_list {
	struct gc_action *items;
	size_t n;
};

struct gc_run {
	const struct cli_verb *verb;
	struct store *store;
	bool dry_run;
	bool progress; /* stderr is a terminal */
	uint64_t keep;
	uint64_t max_total;
	int64_t now;
	struct gc_list removed, detached, skipped;
	struct gc_list generations; /* id: view, what: generation, reason: action */
	struct gc_list
		kept; /* unmounted layers left: candidates for max_total (what = unmounted) */
	uint64_t freed;
	int errors;
};

static int list_add(struct gc_list *list, const char *id, const char *what, const char *reason,
		    uint64_t bytes)
{
	struct gc_action *grown = realloc(list->items, sizeof(*grown) * (list->n + 1));
	struct gc_action *a;

	if (!grown)
		return -ENOMEM;
	list->items = grown;
	a = &list->items[list->n];
	a->id = strdup(id);
	a->what = strdup(what ? what : "");
	a->reason = strdup(reason ? reason : "");
	a->bytes = bytes;
	if (!a->id || !a->what || !a->reason) {
		free(a->id);
		free(a->what);
		free(a->reason);
		return -ENOMEM;
	}
	list->n++;
	return 0;
}

static void list_free(struct gc_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->items[i].id);
		free(list->items[i].what);
		free(list->items[i].reason);
	}
	free(list->items);
}

static void job_bytes(struct gc_run *run, const char *id, uint64_t *ret)
{
	uint64_t files;

	if (store_tree_usage(run->store->jobs_fd, id, ret, &files) < 0)
		*ret = 0;
}

/* Removes a job dir whose lock the caller holds (or reports what it would remove). */
static void remove_job(struct gc_run *run, const char *id, const char *reason)
{
	uint64_t bytes;
	int r;

	job_bytes(run, id, &bytes);
	if (run->progress)
		fprintf(stderr, "gc: %s %s (%s)\n", run->dry_run ? "would remove" : "removing", id,
			reason);
	if (!run->dry_run) {
		r = gc_remove_job(run->store, id);
		if (r < 0) {
			cli_error(run->verb, "cannot remove job '%s': %s", id, gc_strerror(r));
			run->errors++;
			return;
		}
	}
	run->freed += bytes;
	list_add(&run->removed, id, "removed", reason, bytes);
}

/* A stale job: detach what is still mounted, stop a daemon that outlived its views, and record
 * the job as unmounted now. */
static int detach_stale(struct gc_run *run, int job_fd, struct store_record *rec)
{
	struct ns_saved saved = NS_SAVED_INIT;
	int r;

	/* a private namespace that is gone (-ESRCH) took its views with it: nothing to detach */
	r = ns_enter_job(rec, &saved);
	if (r < 0 && r != -ESRCH) {
		cli_error(run->verb, "cannot enter the mount namespace of job '%s': %s", rec->id,
			  strerror(-r));
		run->errors++;
		return r;
	}
	for (size_t i = 0; i < rec->n_views; i++) {
		const struct store_view *view = &rec->views[i];
		struct procs_mount m;

		if (procs_view_mount(rec->id, view->name, &m) < 0)
			continue;
		if (!run->dry_run) {
			r = gc_unmount(&m, true);
			if (r < 0 && r != -EINVAL) {
				cli_error(run->verb,
					  "cannot detach view '%s' of job '%s' at '%s': %s",
					  view->name, rec->id, view->target, strerror(-r));
				run->errors++;
				ns_leave(&saved);
				return r;
			}
		}
		list_add(&run->detached, rec->id, view->target, view->name, 0);
	}
	ns_leave(&saved);
	if (run->dry_run)
		return 0;
	if (procs_alive(rec->pid, rec->pid_start))
		kill(rec->pid, SIGTERM);
	for (size_t i = rec->n_views;
	     i-- > 0;) /* later views may sit in dirs made for earlier ones */
		store_remove_target(run->store, rec->id, &rec->views[i]);
	rec->state = STORE_UNMOUNTED;
	rec->unmounted = run->now;
	return store_record_write(job_fd, rec);
}

/* Takes the job's lock without waiting, under the state-dir lock, so a job being created is
 * never seen unlocked. Returns -EWOULDBLOCK when someone works on it. */
static int lock_job(struct gc_run *run, const char *id, int *ret_job_fd, int *ret_lock_fd)
{
	int job_fd = -1, r;

	r = store_lock_state(run->store, true);
	if (r < 0)
		return r;
	r = store_job_open(run->store, id, &job_fd);
	if (r == 0) {
		r = store_job_lock(job_fd, false, ret_lock_fd);
		if (r < 0)
			close(job_fd);
		else
			*ret_job_fd = job_fd;
	}
	store_unlock_state(run->store);
	return r;
}

static void collect_job(struct gc_run *run, const char *id)
{
	struct store_record *rec = NULL;
	int job_fd = -1, lock_fd = -1, r;
	uint64_t bytes;

	r = lock_job(run, id, &job_fd, &lock_fd);
	if (r == -EWOULDBLOCK) {
		list_add(&run->skipped, id, "skipped", "locked by another jobfs", 0);
		return;
	}
	if (r < 0)
		return; /* gone meanwhile */
	r = store_record_read(job_fd, &rec);
	if (r < 0) {
		remove_job(run, id, "orphan");
		goto out;
	}
	switch (store_live_state(rec)) {
	case STORE_MOUNTED:
		list_add(&run->skipped, id, "skipped", "mounted", 0);
		goto out;
	case STORE_UNMOUNTED:
		break;
	default:
		if (detach_stale(run, job_fd, rec) < 0)
			goto out;
		if (run->dry_run)
			rec->unmounted = run->now;
		break;
	}
	/* in unsigned terms: keep may exceed INT64_MAX ("--older-than 18446744073709551615s"),
	 * which as int64_t was negative and expired every layer */
	if (run->now >= rec->unmounted && (uint64_t)(run->now - rec->unmounted) >= run->keep) {
		remove_job(run, id, "expired");
	} else {
		char when[32];

		job_bytes(run, id, &bytes);
		snprintf(when, sizeof(when), "%" PRId64, rec->unmounted);
		list_add(&run->kept, id, when, "", bytes);
	}
out:
	store_record_free(rec);
	close(lock_fd);
	close(job_fd);
}

static int compare_oldest(const void *a, const void *b)
{
	const struct gc_action *x = a, *y = b;
	long long tx = atoll(x->what), ty = atoll(y->what);

	if (tx != ty)
		return (tx > ty) - (tx < ty);
	return strcmp(x->id, y->id);
}

/* Above max_total, the oldest unmounted layers go first. */
static void enforce_max_total(struct gc_run *run)
{
	uint64_t total = 0;

	if (!run->max_total)
		return;
	for (size_t i = 0; i < run->kept.n; i++)
		total += run->kept.items[i].bytes;
	if (run->kept.n)
		qsort(run->kept.items, run->kept.n, sizeof(*run->kept.items), compare_oldest);
	for (size_t i = 0; i < run->kept.n && total > run->max_total; i++) {
		struct store_record *rec = NULL;
		int job_fd = -1, lock_fd = -1;

		if (lock_job(run, run->kept.items[i].id, &job_fd, &lock_fd) < 0)
			continue;
		/* still unmounted? a job could have been collected and re-made meanwhile */
		if (store_record_read(job_fd, &rec) == 0 && rec->state == STORE_UNMOUNTED) {
			total -= run->kept.items[i].bytes;
			remove_job(run, run->kept.items[i].id, "over max_total");
		}
		store_record_free(rec);
		close(lock_fd);
		close(job_fd);
	}
}

static void report_generation(const char *view, const char *name, const char *action,
			      uint64_t value, void *userdata)
{
	struct gc_run *run = userdata;

	list_add(&run->generations, view, name, action, value);
	if (strstr(action, "remove"))
		run->freed += value;
}

/* Every view that has a base: STATE/bases/VIEW. */
static void collect_generations(struct gc_run *run, uint64_t max_generations)
{
	struct dirent *de;
	DIR *dir;
	int fd;

	fd = openat(run->store->dir_fd, "bases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		int r;

		if (!policy_view_name_valid(de->d_name))
			continue;
		r = gc_generations(run->store, de->d_name, max_generations, run->dry_run,
				   report_generation, run);
		if (r < 0) {
			cli_error(run->verb, "cannot collect the generations of view '%s': %s",
				  de->d_name, gc_strerror(r));
			run->errors++;
		}
	}
	closedir(dir);
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_json(struct gc_run *run)
{
	struct json_writer w;

	json_init(&w, stdout);
	json_object_begin(&w);
	json_key(&w, "dry_run");
	json_bool(&w, run->dry_run);
	json_key(&w, "detached");
	json_array_begin(&w);
	for (size_t i = 0; i < run->detached.n; i++) {
		json_object_begin(&w);
		json_key(&w, "id");
		json_string(&w, run->detached.items[i].id);
		json_key(&w, "view");
		json_string(&w, run->detached.items[i].reason);
		json_key(&w, "target");
		json_string(&w, run->detached.items[i].what);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "removed");
	json_array_begin(&w);
	for (size_t i = 0; i < run->removed.n; i++) {
		json_object_begin(&w);
		json_key(&w, "id");
		json_string(&w, run->removed.items[i].id);
		json_key(&w, "reason");
		json_string(&w, run->removed.items[i].reason);
		json_key(&w, "bytes");
		json_uint(&w, run->removed.items[i].bytes);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "skipped");
	json_array_begin(&w);
	for (size_t i = 0; i < run->skipped.n; i++) {
		json_object_begin(&w);
		json_key(&w, "id");
		json_string(&w, run->skipped.items[i].id);
		json_key(&w, "reason");
		json_string(&w, run->skipped.items[i].reason);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "generations");
	json_array_begin(&w);
	for (size_t i = 0; i < run->generations.n; i++) {
		const struct gc_action *a = &run->generations.items[i];

		json_object_begin(&w);
		json_key(&w, "view");
		json_string(&w, a->id);
		json_key(&w, "generation");
		json_string(&w, a->what);
		json_key(&w, "action");
		json_string(&w, a->reason);
		json_key(&w, strstr(a->reason, "flatten") ? "depth" : "bytes");
		json_uint(&w, a->bytes);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "freed_bytes");
	json_uint(&w, run->freed);
	json_object_end(&w);
	json_finish(&w);
}

static void print_text(struct gc_run *run)
{
	const char *would = run->dry_run ? "would " : "";
	char size[32];

	for (size_t i = 0; i < run->detached.n; i++)
		printf("%s %s view %s at %s\n", run->dry_run ? "would detach" : "detached",
		       run->detached.items[i].id, run->detached.items[i].reason,
		       run->detached.items[i].what);
	for (size_t i = 0; i < run->removed.n; i++)
		printf("%s%s %s (%s, %s)\n", would, run->dry_run ? "remove" : "removed",
		       run->removed.items[i].id, run->removed.items[i].reason,
		       store_format_bytes(run->removed.items[i].bytes, size));
	for (size_t i = 0; i < run->generations.n; i++) {
		const struct gc_action *a = &run->generations.items[i];

		if (strstr(a->reason, "flatten"))
			printf("%s view %s: %llu generations into %s\n", a->reason, a->id,
			       (unsigned long long)a->bytes, a->what);
		else
			printf("%s generation %s/%s (%s)\n", a->reason, a->id, a->what,
			       store_format_bytes(a->bytes, size));
	}
	printf("%s%s %zu layer(s), %s %s\n", would, run->dry_run ? "remove" : "removed",
	       run->removed.n, run->dry_run ? "freeing" : "freed",
	       store_format_bytes(run->freed, size));
}

int cmd_gc(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"older-than", required_argument, NULL, 'o'},
		{"max-total", required_argument, NULL, 'm'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'J'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *path = NULL, *older_than = NULL, *max_total = NULL;
	struct gc_run run = {.verb = verb};
	struct policy *policy = NULL;
	struct dirent *de;
	bool json = false;
	char **ids = NULL;
	size_t n_ids = 0;
	DIR *dir = NULL;
	int c, r, rc, fd;

	while ((c = getopt_long(argc, argv, ":o:m:np:h", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			older_than = optarg;
			break;
		case 'm':
			max_total = optarg;
			break;
		case 'n':
			run.dry_run = true;
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
	if (older_than && policy_parse_duration(older_than, &run.keep) < 0)
		return cli_usage_error(verb,
				       "invalid duration '%s' (expected a whole number and "
				       "a unit: s, m, h or d, as in 24h)",
				       older_than);
	if (max_total && (policy_parse_size(max_total, &run.max_total) < 0 || !run.max_total))
		return cli_usage_error(verb,
				       "invalid size '%s' (expected a whole number and a "
				       "unit: B, KiB, MiB, GiB or TiB, as in 20GiB)",
				       max_total);
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;
	if (!older_than)
		run.keep = policy->gc.keep_unmounted;
	if (!max_total)
		run.max_total = policy->gc.max_total;
	run.now = (int64_t)time(NULL);
	run.progress = isatty(STDERR_FILENO);

	rc = JOBFS_EXIT_SYSTEM;
	r = store_open(policy->state_dir, false, &run.store);
	if (r < 0 && r != -ENOENT) {
		cli_error(verb, "cannot open state dir '%s': %s", policy->state_dir, strerror(-r));
		goto out;
	}
	if (run.store) {
		if (!run.dry_run && (r = gc_empty_trash(run.store)) < 0) {
			cli_error(verb, "cannot empty '%s/trash': %s", run.store->path,
				  gc_strerror(r));
			run.errors++;
		}
		fd = openat(run.store->jobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dir) {
			cli_error(verb, "cannot list '%s/jobs': %s", run.store->path,
				  strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		/* names first, then work: removing entries while reading the dir skips some */
		while ((de = readdir(dir))) {
			char **grown;

			if (!policy_job_id_valid(de->d_name))
				continue;
			grown = realloc(ids, sizeof(*ids) * (n_ids + 1));
			if (!grown || !(grown[n_ids] = strdup(de->d_name))) {
				if (grown)
					ids = grown;
				cli_error(verb, "out of memory");
				goto out;
			}
			ids = grown;
			n_ids++;
		}
		if (n_ids)
			qsort(ids, n_ids, sizeof(*ids), compare_ids);
		for (size_t i = 0; i < n_ids; i++) {
			if (run.progress)
				fprintf(stderr, "gc: [%zu/%zu] %s\n", i + 1, n_ids, ids[i]);
			collect_job(&run, ids[i]);
		}
		enforce_max_total(&run);
		collect_generations(&run, policy->gc.max_generations);
	}
	if (json)
		print_json(&run);
	else
		print_text(&run);
	rc = run.errors ? JOBFS_EXIT_SYSTEM : JOBFS_EXIT_OK;
out:
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < n_ids; i++)
		free(ids[i]);
	free(ids);
	list_free(&run.removed);
	list_free(&run.detached);
	list_free(&run.skipped);
	list_free(&run.kept);
	list_free(&run.generations);
	store_close(run.store);
	policy_free(policy);
	return rc;
}
