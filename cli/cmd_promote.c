/* `jobfs promote --job ID`: for each view that promotes, what the job added joins the view's base
 * as a new generation. Only an unmounted job marked successful: a mounted job's daemon could still
 * be writing its upper while it is walked. Holds the job's lock (umount --collect and gc wait)
 * and, per view, the view's base lock (promotes serialise, each building on the newest stack). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bases.h"
#include "cli.h"
#include "exit_codes.h"
#include "fs.h"
#include "json.h"
#include "policy.h"
#include "promote.h"
#include "scan.h"
#include "store.h"

struct view_result {
	const struct policy_view *policy;
	struct promote_view pv;
	char generation[BASES_NAME_MAX]; /* published (or, dry run, would be); "" for none */
	bool planned;
	char *refused; /* why the job is not trusted for this view; NULL when it is */
};

/* Progress on stderr, the way manifest reports it: one line rewritten in place when stderr is a
 * terminal, a line a second with --progress (for logs), and a last line with what was done.
 * stdout, where --json goes, is never written to. */
enum progress_phase {
	PHASE_PLAN,
	PHASE_COPY,
	PHASE_SYNC,
};

struct progress {
	enum scan_progress mode;
	enum progress_phase phase;
	const struct view_result *res;
	struct timespec start, next;
	bool open_line; /* a tty line without its newline yet */
};

static double seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void progress_print(struct progress *pr, const char *outcome)
{
	const struct promote_view *pv = &pr->res->pv;
	uint64_t total = pv->count[PROMOTE_ADDED] + pv->count[PROMOTE_MERGED];
	uint64_t total_bytes = pv->bytes[PROMOTE_ADDED] + pv->bytes[PROMOTE_MERGED];
	double secs = seconds_since(&pr->start);
	char what[160], done[32], all[32], rate[32];
	bool tty = pr->mode == SCAN_PROGRESS_TTY;

	store_format_bytes(pv->written_bytes, done);
	store_format_bytes(total_bytes, all);
	store_format_bytes(secs > 0 ? (uint64_t)((double)pv->written_bytes / secs) : 0, rate);
	if (outcome)
		snprintf(what, sizeof(what), "%s: %llu entries planned, %llu files copied, %s",
			 outcome, (unsigned long long)pv->planned, (unsigned long long)pv->written,
			 done);
	else if (pr->phase == PHASE_PLAN)
		snprintf(what, sizeof(what), "planning, %llu entries",
			 (unsigned long long)pv->planned);
	else if (pr->phase == PHASE_COPY)
		snprintf(what, sizeof(what), "copying, %llu of %llu files, %s of %s, %s/s",
			 (unsigned long long)pv->written, (unsigned long long)total, done, all,
			 rate);
	else
		snprintf(what, sizeof(what), "syncing generation %s", pr->res->generation);
	fprintf(stderr, "%sjobfs: promote: view %s: %s, %.1fs%s", tty ? "\r\033[K" : "",
		pr->res->policy->name, what, secs, !tty || outcome ? "\n" : "");
	fflush(stderr);
	pr->open_line = tty && !outcome;
}

/* Called by plan and apply after every entry and chunk: prints when the interval has passed. */
static void progress_tick(const struct promote_view *pv, void *userdata)
{
	struct progress *pr = userdata;
	long interval_ns = pr->mode == SCAN_PROGRESS_TTY ? 200000000 : 1000000000;
	struct timespec now;

	(void)pv;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < pr->next.tv_sec ||
	    (now.tv_sec == pr->next.tv_sec && now.tv_nsec < pr->next.tv_nsec))
		return;
	pr->next = now;
	pr->next.tv_nsec += interval_ns;
	if (pr->next.tv_nsec >= 1000000000) {
		pr->next.tv_sec++;
		pr->next.tv_nsec -= 1000000000;
	}
	progress_print(pr, NULL);
}

static void progress_phase(struct progress *pr, enum progress_phase phase)
{
	pr->phase = phase;
	if (pr->mode != SCAN_PROGRESS_OFF && phase == PHASE_SYNC)
		progress_print(pr, NULL); /* syncfs can take a while: say so before it starts */
}

static void progress_end(struct progress *pr, const char *outcome)
{
	if (pr->mode != SCAN_PROGRESS_OFF)
		progress_print(pr, outcome);
}

/* An error message starts on a line of its own, not at the end of a tty line. */
#define view_error(pr, ...)                                                                        \
	do {                                                                                       \
		if ((pr)->open_line)                                                               \
			fputc('\n', stderr);                                                       \
		(pr)->open_line = false;                                                           \
		cli_error(__VA_ARGS__);                                                            \
	} while (0)

/* The view's base, top first, as descriptors and paths: its generations, then the policy's
 * lowers. */
static int open_base(struct bases_view *bases, const struct bases_stack *stack,
		     const struct policy_view *view, int **ret_fds, char ***ret_paths,
		     size_t *ret_n)
{
	size_t n = stack->n + view->n_lower, i = 0;
	char **paths = calloc(n + 1, sizeof(*paths));
	int *fds = calloc(n + 1, sizeof(*fds));
	int r = 0;

	if (!paths || !fds) {
		free(paths);
		free(fds);
		return -ENOMEM;
	}
	for (; i < n && r == 0; i++) {
		const char *name = i < stack->n ? stack->names[i] : NULL;

		fds[i] = -1;
		if (name && asprintf(&paths[i], "%s/gens/%s", bases->path, name) < 0)
			paths[i] = NULL;
		else if (!name)
			paths[i] = strdup(view->lower[i - stack->n]);
		if (!paths[i]) {
			r = -ENOMEM;
			break;
		}
		fds[i] = name ? openat(bases->gens_fd, name,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			      : open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fds[i] < 0)
			r = -errno;
	}
	*ret_fds = fds;
	*ret_paths = paths;
	*ret_n = i;
	return r;
}

static void close_base(int *fds, char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds && fds[i] >= 0)
			close(fds[i]);
		if (paths)
			free(paths[i]);
	}
	free(fds);
	free(paths);
}

/* Builds tmp/NAME from the plan and publishes it as generation NAME; on failure removes it. */
static int build_generation(const struct cli_verb *verb, struct bases_view *bases,
			    const struct bases_stack *stack, struct view_result *res,
			    struct progress *pr)
{
	char gen_path[PATH_MAX], work_path[PATH_MAX], work_name[BASES_NAME_MAX + 8];
	char err[1024];
	int gen_fd = -1, work_fd = -1, r;

	r = bases_next_name(bases, stack, res->generation);
	if (r < 0) {
		view_error(pr, verb, "view '%s': cannot name a new generation in '%s/gens': %s",
			   res->policy->name, bases->path, strerror(-r));
		return r;
	}
	snprintf(work_name, sizeof(work_name), "%s.work", res->generation);
	snprintf(gen_path, sizeof(gen_path), "%s/tmp/%s", bases->path, res->generation);
	snprintf(work_path, sizeof(work_path), "%s/tmp/%s", bases->path, work_name);
	if (store_mkdirat(bases->tmp_fd, res->generation, 0755) < 0 ||
	    (gen_fd = openat(bases->tmp_fd, res->generation,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    store_mkdirat(bases->tmp_fd, work_name, 0700) < 0 ||
	    (work_fd = openat(bases->tmp_fd, work_name,
			      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = -errno;
		view_error(pr, verb, "view '%s': cannot create '%s': %s", res->policy->name,
			   gen_path, strerror(-r));
		goto out;
	}
	progress_phase(pr, PHASE_COPY);
	r = promote_apply(&res->pv, gen_fd, gen_path, work_fd, work_path, err, sizeof(err));
	if (r < 0) {
		view_error(pr, verb, "view '%s': cannot build generation %s: %s", res->policy->name,
			   res->generation, err);
		goto out;
	}
	close(work_fd);
	work_fd = -1;
	jfs_remove_tree_at(bases->tmp_fd, work_name);
	progress_phase(pr, PHASE_SYNC);
	r = bases_publish(bases, res->generation, res->generation, stack);
	if (r < 0)
		view_error(pr, verb, "view '%s': cannot publish generation %s in '%s': %s",
			   res->policy->name, res->generation, bases->path, strerror(-r));
out:
	if (work_fd >= 0)
		close(work_fd);
	if (gen_fd >= 0)
		close(gen_fd);
	if (r < 0) {
		/* the old stack still stands; nothing of this attempt stays visible */
		jfs_remove_tree_at(bases->tmp_fd, res->generation);
		jfs_remove_tree_at(bases->tmp_fd, work_name);
		res->generation[0] = '\0';
	}
	return r;
}

static int promote_view(const struct cli_verb *verb, struct store *store, int job_fd,
			const char *job_id, bool dry_run, enum scan_progress progress,
			struct view_result *res)
{
	struct progress pr = {.mode = progress, .phase = PHASE_PLAN, .res = res};
	const struct policy_view *view = res->policy;
	struct bases_stack stack = {0};
	struct bases_view *bases = NULL;
	char upper[PATH_MAX], err[1024], **base_paths = NULL;
	int *base_fds = NULL, upper_fd, r;
	size_t n_base = 0;

	snprintf(upper, sizeof(upper), "views/%s/upper", view->name);
	upper_fd = openat(job_fd, upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (upper_fd < 0) {
		r = -errno;
		view_error(&pr, verb, "view '%s': cannot open '%s/jobs/%s/%s': %s", view->name,
			   store->path, job_id, upper, strerror(-r));
		return r;
	}
	/* a dry run creates nothing: without a base dir, the stack is empty */
	r = bases_open(store, view->name, !dry_run, &bases);
	if (r == 0)
		r = bases_lock(bases, true);
	if (r == 0 && !dry_run)
		r = bases_clean_tmp(bases);
	if (r == 0)
		r = bases_stack_read(bases, &stack);
	if (r < 0 && !(dry_run && r == -ENOENT)) {
		view_error(&pr, verb, "view '%s': cannot use the base in '%s/bases/%s': %s",
			   view->name, store->path, view->name, strerror(-r));
		goto out;
	}
	r = open_base(bases ? bases : NULL, &stack, view, &base_fds, &base_paths, &n_base);
	if (r < 0) {
		view_error(&pr, verb, "view '%s': cannot open base layer '%s': %s", view->name,
			   n_base && base_paths[n_base - 1] ? base_paths[n_base - 1] : "?",
			   strerror(-r));
		goto out;
	}
	res->pv = (struct promote_view){
		.name = view->name,
		.promote = &view->promote,
		.upper_fd = upper_fd,
		.base_fds = base_fds,
		.base_paths = base_paths,
		.n_base = n_base,
		.progress = progress != SCAN_PROGRESS_OFF ? progress_tick : NULL,
		.progress_data = &pr,
	};
	clock_gettime(CLOCK_MONOTONIC, &pr.start);
	pr.next = pr.start;
	pr.next.tv_sec += progress == SCAN_PROGRESS_TTY ? 0 : 1;
	pr.next.tv_nsec += progress == SCAN_PROGRESS_TTY ? 200000000 : 0;
	if (pr.next.tv_nsec >= 1000000000) {
		pr.next.tv_sec++;
		pr.next.tv_nsec -= 1000000000;
	}
	r = promote_plan(&res->pv, err, sizeof(err));
	if (r < 0) {
		view_error(&pr, verb, "view '%s': cannot read the layer of job '%s': %s",
			   view->name, job_id, err);
		goto out;
	}
	res->planned = true;
	if (!promote_has_changes(&res->pv))
		goto out;
	if (stack.n >= BASES_STACK_MAX) {
		r = -E2BIG;
		view_error(&pr, verb,
			   "view '%s': the base already has %d generations; 'jobfs gc' flattens it",
			   view->name, BASES_STACK_MAX);
		goto out;
	}
	if (dry_run) {
		if (bases)
			bases_next_name(bases, &stack, res->generation);
		else
			snprintf(res->generation, sizeof(res->generation), "G000001");
		goto out;
	}
	r = build_generation(verb, bases, &stack, res, &pr);
out:
	if (res->planned)
		progress_end(&pr, r < 0		       ? "failed"
				  : dry_run	       ? "dry run"
				  : res->generation[0] ? "published"
						       : "nothing to promote");
	res->pv.progress = NULL;
	res->pv.upper_fd = -1;
	close_base(base_fds, base_paths, n_base);
	res->pv.base_fds = NULL;
	res->pv.base_paths = NULL;
	bases_stack_free(&stack);
	bases_close(bases); /* and its lock */
	close(upper_fd);
	return r;
}

static const enum promote_action reported[] = {PROMOTE_ADDED, PROMOTE_IDENTICAL, PROMOTE_MERGED,
					       PROMOTE_IGNORED, PROMOTE_CONFLICT};
#define N_REPORTED (sizeof(reported) / sizeof(reported[0]))

static void print_text(const struct view_result *res, size_t n, bool dry_run)
{
	char size[32];

	for (size_t i = 0; i < n; i++) {
		const struct promote_view *pv = &res[i].pv;

		if (!res[i].planned)
			continue;
		printf("view %s (%s): ", res[i].policy->name,
		       policy_promote_name(res[i].policy->promote.kind));
		if (!res[i].generation[0])
			printf("nothing to promote\n");
		else
			printf("%s generation %s\n", dry_run ? "would publish" : "published",
			       res[i].generation);
		for (size_t a = 0; a < N_REPORTED; a++)
			printf("  %-9s %6llu  %s\n", promote_action_name(reported[a]),
			       (unsigned long long)pv->count[reported[a]],
			       store_format_bytes(pv->bytes[reported[a]], size));
		for (size_t j = 0; j < pv->n_items; j++) {
			const struct promote_item *item = &pv->items[j];

			if (item->action == PROMOTE_CONFLICT)
				printf("  conflict: %s (%s)\n", item->path, item->reason);
			else if (item->action == PROMOTE_MERGED && !dry_run)
				printf("  merged: %s (%llu added, %llu identical, %llu in "
				       "conflict)\n",
				       item->path, (unsigned long long)item->merge.added,
				       (unsigned long long)item->merge.identical,
				       (unsigned long long)item->merge.conflicts);
		}
	}
}

static void print_json(const char *job_id, const struct view_result *res, size_t n, bool dry_run)
{
	struct json_writer w;

	json_init(&w, stdout);
	json_object_begin(&w);
	json_key(&w, "job");
	json_string(&w, job_id);
	json_key(&w, "dry_run");
	json_bool(&w, dry_run);
	json_key(&w, "refused");
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		if (!res[i].refused)
			continue;
		json_object_begin(&w);
		json_key(&w, "view");
		json_string(&w, res[i].policy->name);
		json_key(&w, "reason");
		json_string(&w, res[i].refused);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "views");
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		const struct promote_view *pv = &res[i].pv;

		if (!res[i].planned)
			continue;
		json_object_begin(&w);
		json_key(&w, "view");
		json_string(&w, res[i].policy->name);
		json_key(&w, "kind");
		json_string(&w, policy_promote_name(res[i].policy->promote.kind));
		json_key(&w, "generation");
		json_string(&w, res[i].generation[0] ? res[i].generation : NULL);
		json_key(&w, "totals");
		json_object_begin(&w);
		for (size_t a = 0; a < N_REPORTED; a++) {
			json_key(&w, promote_action_name(reported[a]));
			json_object_begin(&w);
			json_key(&w, "count");
			json_uint(&w, pv->count[reported[a]]);
			json_key(&w, "bytes");
			json_uint(&w, pv->bytes[reported[a]]);
			json_object_end(&w);
		}
		json_object_end(&w);
		json_key(&w, "items");
		json_array_begin(&w);
		for (size_t j = 0; j < pv->n_items; j++) {
			const struct promote_item *item = &pv->items[j];

			if (item->action == PROMOTE_DIR)
				continue;
			json_object_begin(&w);
			json_key(&w, "path");
			json_string(&w, item->path);
			json_key(&w, "action");
			json_string(&w, promote_action_name(item->action));
			json_key(&w, "bytes");
			json_uint(&w, item->bytes);
			json_key(&w, "reason");
			json_string(&w, item->reason);
			if (item->action == PROMOTE_MERGED && !dry_run) {
				json_key(&w, "rows");
				json_object_begin(&w);
				json_key(&w, "added");
				json_uint(&w, item->merge.added);
				json_key(&w, "identical");
				json_uint(&w, item->merge.identical);
				json_key(&w, "conflicts");
				json_uint(&w, item->merge.conflicts);
				json_object_end(&w);
			}
			json_object_end(&w);
		}
		json_array_end(&w);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	json_finish(&w);
}

/* Whether the opened job may be promoted: unmounted, and marked successful; an exit code. */
static int check_job(const struct cli_verb *verb, const char *job_id,
		     const struct store_record *rec)
{
	if (store_live_state(rec) != STORE_UNMOUNTED) {
		cli_error(verb,
			  "job '%s' is still mounted: promote reads a layer nothing writes to; "
			  "'jobfs umount --job %s --outcome success' first",
			  job_id, job_id);
		return JOBFS_EXIT_MOUNTED;
	}
	if (rec->outcome != STORE_OUTCOME_SUCCESS) {
		cli_error(verb,
			  "job '%s' is not marked successful (outcome: %s): only successful jobs "
			  "are promoted ('jobfs mark-ok --job %s')",
			  job_id, store_outcome_name(rec->outcome), job_id);
		return JOBFS_EXIT_NOT_OK;
	}
	return JOBFS_EXIT_OK;
}

/* Whether the view's layer is whole: one served volatile (nothing synced) before the machine
 * restarted may be torn, and is refused like an untrusted one (*ret_reason set). */
static int check_layer_whole(int job_fd, const struct store_record *rec,
			     const struct policy_view *view, char **ret_reason)
{
	char path[PATH_MAX], why[512] = "";
	int fd, r;

	*ret_reason = NULL;
	snprintf(path, sizeof(path), "views/%s/work", view->name);
	fd = openat(job_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = jfs_volatile_check(fd, why, sizeof(why));
	close(fd);
	if (r != -EUCLEAN)
		return r < 0 ? r : 0;
	if (asprintf(ret_reason, "the layer of job '%s' for view '%s' may be torn: %s", rec->id,
		     view->name, why) < 0) {
		*ret_reason = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Whether the job's recorded context matches the view's promote.trust; when not, *ret_reason
 * (malloc'ed) names the selector that failed. -ENOMEM only. */
static int check_trust(const struct store_record *rec, const struct policy_view *view,
		       char **ret_reason)
{
	struct policy_context context;
	enum policy_context_key failed;
	const char *key, *value;
	int n;

	*ret_reason = NULL;
	store_record_context(rec, &context);
	if (policy_selector_matches(&view->promote.trust, &context, &failed))
		return 0;
	key = policy_context_key_name(failed);
	value = context.values[failed];
	if (value)
		n = asprintf(ret_reason,
			     "job '%s' is not trusted for view '%s': its %s '%s' matches none of "
			     "promote.trust.%s",
			     rec->id, view->name, key, value, key);
	else
		n = asprintf(ret_reason,
			     "job '%s' is not trusted for view '%s': it was mounted without a %s "
			     "(--context %s=...), which promote.trust.%s requires",
			     rec->id, view->name, key, key, key);
	return n < 0 ? -ENOMEM : 0;
}

static bool record_has_view(const struct store_record *rec, const char *name)
{
	for (size_t i = 0; i < rec->n_views; i++)
		if (!strcmp(rec->views[i].name, name))
			return true;
	return false;
}

int cmd_promote(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"job", required_argument, NULL, 'j'}, {"view", required_argument, NULL, 'v'},
		{"dry-run", no_argument, NULL, 'n'},   {"json", no_argument, NULL, 'J'},
		{"progress", no_argument, NULL, 'P'},  {"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},      {0},
	};
	const char *job_id = NULL, *path = NULL, *only = NULL;
	struct view_result *res = NULL;
	struct cli_job job = {.job_fd = -1, .lock_fd = -1};
	struct store_record *rec;
	struct policy *policy = NULL;
	struct store *store;
	bool dry_run = false, json = false, progress = false;
	int c, rc, job_fd;

	while ((c = getopt_long(argc, argv, ":j:v:np:h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			job_id = optarg;
			break;
		case 'v':
			only = optarg;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'J':
			json = true;
			break;
		case 'P':
			progress = true;
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
	if (only && !policy_view_name_valid(only))
		return cli_usage_error(verb, "invalid view name '%s'", only);
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;
	rc = cli_job_open(verb, policy, job_id, &job);
	if (rc)
		goto out;
	store = job.store;
	job_fd = job.job_fd;
	rec = job.rec;
	res = calloc(policy->n_views + 1, sizeof(*res));
	if (!res) {
		rc = JOBFS_EXIT_SYSTEM;
		cli_error(verb, "out of memory");
		goto out;
	}
	if (rec->n_views == 0) {
		/* none of the policy's views matched the job: nothing was mounted, nothing to
		 * promote, whatever its state or outcome */
		if (json)
			print_json(job_id, res, 0, dry_run);
		else
			printf("job %s has no views: nothing to promote\n", job_id);
		goto out;
	}
	rc = check_job(verb, job_id, rec);
	if (rc)
		goto out;
	if (only) {
		bool found = false;

		for (size_t i = 0; i < policy->n_views; i++)
			found = found || !strcmp(policy->views[i].name, only);
		if (!found || !record_has_view(rec, only)) {
			rc = cli_usage_error(verb, "job '%s' has no view '%s' in policy '%s'",
					     job_id, only, policy->source);
			goto out;
		}
	}
	/* trust first, for every view: a view the job is not trusted for is refused (exit 9)
	 * and the others still promote */
	for (size_t i = 0; i < policy->n_views; i++) {
		const struct policy_view *view = &policy->views[i];

		res[i].policy = view;
		if ((only && strcmp(view->name, only) != 0) ||
		    view->promote.kind == POLICY_PROMOTE_NONE || !record_has_view(rec, view->name))
			continue;
		if (check_trust(rec, view, &res[i].refused) < 0) {
			rc = JOBFS_EXIT_SYSTEM;
			cli_error(verb, "out of memory");
			goto out;
		}
		if (!res[i].refused) {
			int r = check_layer_whole(job_fd, rec, view, &res[i].refused);
			if (r < 0) {
				rc = JOBFS_EXIT_SYSTEM;
				cli_error(verb, "view '%s': cannot check its layer: %s", view->name,
					  strerror(-r));
				goto out;
			}
		}
		if (res[i].refused) {
			cli_error(verb, "refused: %s", res[i].refused);
			rc = JOBFS_EXIT_NOT_OK;
		}
	}
	for (size_t i = 0; i < policy->n_views; i++) {
		const struct policy_view *view = &policy->views[i];

		if ((only && strcmp(view->name, only) != 0) ||
		    view->promote.kind == POLICY_PROMOTE_NONE ||
		    !record_has_view(rec, view->name) || res[i].refused)
			continue;
		if (promote_view(verb, store, job_fd, job_id, dry_run,
				 isatty(STDERR_FILENO) ? SCAN_PROGRESS_TTY
				 : progress	       ? SCAN_PROGRESS_LINES
						       : SCAN_PROGRESS_OFF,
				 &res[i]) < 0)
			rc = JOBFS_EXIT_SYSTEM;
	}
	if (json)
		print_json(job_id, res, policy->n_views, dry_run);
	else
		print_text(res, policy->n_views, dry_run);
out:
	for (size_t i = 0; res && i < policy->n_views; i++) {
		promote_view_free(&res[i].pv);
		free(res[i].refused);
	}
	free(res);
	cli_job_close(&job);
	policy_free(policy);
	return rc;
}
