/* `jobfs inspect ID`: what a job changed, read from its upper dirs directly (never through a view,
 * mounted or not), compared with the recorded lowers: added, modified, deleted (whiteouts) and
 * opaque paths with their sizes. A summary first, then the list. A metacopy (a base file whose
 * metadata changed, or a new hard link to one) holds no data: its bytes are not counted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "fs.h"
#include "json.h"
#include "policy.h"
#include "store.h"

enum change { CHANGE_ADDED, CHANGE_MODIFIED, CHANGE_DELETED, CHANGE_OPAQUE };

static const char *const change_names[] = {"added", "modified", "deleted", "opaque"};

struct entry {
	char *path;
	enum change change;
	const char *type;
	uint64_t size;
	bool metacopy; /* metadata only: the data is still the lower's */
};

struct summary {
	uint64_t added, added_bytes, modified, modified_bytes, deleted, opaque;
};

struct view_changes {
	const struct store_view *view;
	struct entry *entries;
	size_t n, cap;
	struct summary sum;
	int error; /* -errno from the walk, reported once */
};

static const char *type_name(mode_t mode)
{
	if (S_ISREG(mode))
		return "file";
	if (S_ISDIR(mode))
		return "dir";
	if (S_ISLNK(mode))
		return "symlink";
	if (S_ISFIFO(mode))
		return "fifo";
	if (S_ISSOCK(mode))
		return "socket";
	if (S_ISCHR(mode))
		return "char";
	return "block";
}

/* trusted.overlay.opaque (root daemons) or user.overlay.opaque (unprivileged ones) is "y". */
static bool dir_opaque(int dirfd)
{
	static const char *const names[] = {"trusted.overlay.opaque", "user.overlay.opaque"};
	char val[2];

	for (size_t i = 0; i < 2; i++)
		if (fgetxattr(dirfd, names[i], val, sizeof(val)) == 1 && val[0] == 'y')
			return true;
	return false;
}

/* A regular file that is a metacopy: trusted.overlay.metacopy or user.overlay.metacopy. */
static bool is_metacopy(int dirfd, const char *name)
{
	static const char *const names[] = {"trusted.overlay.metacopy", "user.overlay.metacopy"};
	char proc[64];
	bool found = false;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return false;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (size_t i = 0; i < 2 && !found; i++)
		found = getxattr(proc, names[i], NULL, 0) >= 0;
	close(fd);
	return found;
}

static int add_entry(struct view_changes *vc, const char *path, enum change change,
		     const struct stat *st, bool metacopy)
{
	uint64_t stored;

	struct entry *e;

	if (vc->n == vc->cap) {
		struct entry *grown = realloc(
			vc->entries, sizeof(*grown) * (vc->cap = vc->cap ? vc->cap * 2 : 64));
		if (!grown)
			return -ENOMEM;
		vc->entries = grown;
	}
	e = &vc->entries[vc->n];
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	e->change = change;
	e->type = change == CHANGE_DELETED ? "whiteout" : type_name(st->st_mode);
	e->size = S_ISDIR(st->st_mode) || change == CHANGE_DELETED ? 0 : (uint64_t)st->st_size;
	e->metacopy = metacopy;
	stored = metacopy ? 0 : e->size;
	vc->n++;
	switch (change) {
	case CHANGE_ADDED:
		vc->sum.added++;
		vc->sum.added_bytes += stored;
		break;
	case CHANGE_MODIFIED:
		vc->sum.modified++;
		vc->sum.modified_bytes += stored;
		break;
	case CHANGE_DELETED:
		vc->sum.deleted++;
		break;
	case CHANGE_OPAQUE:
		vc->sum.opaque++;
		break;
	}
	return 0;
}

/* Walks the upper dir behind dirfd (consumed). lower_fds[i] is the same dir in lower i, or -1;
 * when new is true nothing below exists in a lower (an added or opaque dir). */
static int walk(struct view_changes *vc, int dirfd, const char *prefix, const int *lower_fds,
		size_t n_lowers, bool new)
{
	struct dirent **names = NULL;
	char path[8192];
	int n, r = 0;

	n = scandirat(dirfd, ".", &names, NULL, alphasort);
	if (n < 0) {
		r = -errno;
		close(dirfd);
		return r;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		bool in_lower = false, opaque = false;
		struct stat st, lst;
		int *child_lowers = NULL, child;

		if (r < 0 || !strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", name);
		for (size_t l = 0; !new &&l < n_lowers && !in_lower; l++)
			in_lower = lower_fds[l] >= 0 &&
				   fstatat(lower_fds[l], name, &lst, AT_SYMLINK_NOFOLLOW) == 0;
		if (jfs_is_whiteout(&st)) {
			r = add_entry(vc, path, CHANGE_DELETED, &st, false);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = add_entry(vc, path, in_lower ? CHANGE_MODIFIED : CHANGE_ADDED, &st,
				      S_ISREG(st.st_mode) && is_metacopy(dirfd, name));
			continue;
		}
		child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (child < 0)
			continue;
		opaque = dir_opaque(child);
		if (opaque)
			r = add_entry(vc, path, CHANGE_OPAQUE, &st, false);
		else if (!in_lower)
			r = add_entry(vc, path, CHANGE_ADDED, &st, false);
		if (r < 0) {
			close(child);
			continue;
		}
		/* a copied-up dir is only a container: its children say what changed */
		child_lowers = calloc(n_lowers ? n_lowers : 1, sizeof(int));
		if (!child_lowers) {
			close(child);
			r = -ENOMEM;
			continue;
		}
		for (size_t l = 0; l < n_lowers; l++)
			child_lowers[l] =
				!in_lower || opaque || lower_fds[l] < 0
					? -1
					: openat(lower_fds[l], name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = walk(vc, child, path, child_lowers, n_lowers, new || opaque || !in_lower);
		for (size_t l = 0; l < n_lowers; l++)
			if (child_lowers[l] >= 0)
				close(child_lowers[l]);
		free(child_lowers);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	close(dirfd);
	return r;
}

static int inspect_view(int job_fd, struct view_changes *vc)
{
	const struct store_view *view = vc->view;
	char rel[POLICY_NAME_MAX + 32];
	int upper_fd, *lower_fds, r;

	snprintf(rel, sizeof(rel), "views/%s/upper", view->name);
	upper_fd = openat(job_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (upper_fd < 0)
		return errno == ENOENT ? 0 : -errno;
	lower_fds = calloc(view->n_lowers ? view->n_lowers : 1, sizeof(int));
	if (!lower_fds) {
		close(upper_fd);
		return -ENOMEM;
	}
	for (size_t l = 0; l < view->n_lowers; l++)
		lower_fds[l] = open(view->lowers[l], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = walk(vc, upper_fd, "", lower_fds, view->n_lowers, false);
	for (size_t l = 0; l < view->n_lowers; l++)
		if (lower_fds[l] >= 0)
			close(lower_fds[l]);
	free(lower_fds);
	return r;
}

static void summary_add(struct summary *total, const struct summary *s)
{
	total->added += s->added;
	total->added_bytes += s->added_bytes;
	total->modified += s->modified;
	total->modified_bytes += s->modified_bytes;
	total->deleted += s->deleted;
	total->opaque += s->opaque;
}

static void print_summary(const char *what, const struct summary *s)
{
	char a[32], m[32];

	printf("%s: %llu added (%s), %llu modified (%s), %llu deleted, %llu opaque\n", what,
	       (unsigned long long)s->added, store_format_bytes(s->added_bytes, a),
	       (unsigned long long)s->modified, store_format_bytes(s->modified_bytes, m),
	       (unsigned long long)s->deleted, (unsigned long long)s->opaque);
}

static void json_summary(struct json_writer *w, const struct summary *s)
{
	json_object_begin(w);
	json_key(w, "added");
	json_uint(w, s->added);
	json_key(w, "added_bytes");
	json_uint(w, s->added_bytes);
	json_key(w, "modified");
	json_uint(w, s->modified);
	json_key(w, "modified_bytes");
	json_uint(w, s->modified_bytes);
	json_key(w, "deleted");
	json_uint(w, s->deleted);
	json_key(w, "opaque");
	json_uint(w, s->opaque);
	json_object_end(w);
}

static void print_text(const struct store_record *rec, enum store_state state,
		       const struct view_changes *vcs, size_t n, const struct summary *total)
{
	char what[256];

	snprintf(what, sizeof(what), "job %s (%s)", rec->id, store_state_name(state));
	print_summary(what, total);
	cli_print_context(rec);
	if (rec->n_views == 0)
		printf("  no views: none of the policy's views matched the job's context\n");
	for (size_t i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "  view %s", vcs[i].view->name);
		print_summary(what, &vcs[i].sum);
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < vcs[i].n; j++) {
			const struct entry *e = &vcs[i].entries[j];

			printf("%-8s %-8s %10llu  %s/%s%s%s\n", change_names[e->change], e->type,
			       (unsigned long long)e->size, vcs[i].view->name, e->path,
			       strcmp(e->type, "dir") == 0 ? "/" : "",
			       e->metacopy ? "  (metadata only)" : "");
		}
	}
}

static void print_json(const struct store_record *rec, enum store_state state,
		       const struct view_changes *vcs, size_t n, const struct summary *total)
{
	struct json_writer w;

	json_init(&w, stdout);
	json_object_begin(&w);
	json_key(&w, "id");
	json_string(&w, rec->id);
	json_key(&w, "state");
	json_string(&w, store_state_name(state));
	json_key(&w, "context");
	cli_json_context(&w, rec);
	json_key(&w, "summary");
	json_summary(&w, total);
	json_key(&w, "views");
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		json_object_begin(&w);
		json_key(&w, "name");
		json_string(&w, vcs[i].view->name);
		json_key(&w, "summary");
		json_summary(&w, &vcs[i].sum);
		json_key(&w, "changes");
		json_array_begin(&w);
		for (size_t j = 0; j < vcs[i].n; j++) {
			const struct entry *e = &vcs[i].entries[j];

			json_object_begin(&w);
			json_key(&w, "path");
			json_string(&w, e->path);
			json_key(&w, "change");
			json_string(&w, change_names[e->change]);
			json_key(&w, "type");
			json_string(&w, e->type);
			json_key(&w, "size");
			json_uint(&w, e->size);
			json_key(&w, "metacopy");
			json_bool(&w, e->metacopy);
			json_object_end(&w);
		}
		json_array_end(&w);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	json_finish(&w);
}

int cmd_inspect(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"view", required_argument, NULL, 'v'},
		{"json", no_argument, NULL, 'J'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *path = NULL, *view_name = NULL, *job_id;
	struct view_changes *vcs = NULL;
	struct store_record *rec = NULL;
	struct policy *policy = NULL;
	struct store *store = NULL;
	struct summary total = {0};
	size_t n = 0;
	bool json = false;
	int c, r, rc, job_fd = -1;

	while ((c = getopt_long(argc, argv, ":v:p:h", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			view_name = optarg;
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
	job_id = argv[optind];
	rc = cli_check_job_id(verb, job_id);
	if (rc)
		return rc;
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;

	rc = JOBFS_EXIT_NO_JOB;
	r = store_open(policy->state_dir, false, &store);
	if (r == 0)
		r = store_job_open(store, job_id, &job_fd);
	if (r == 0)
		r = store_record_read(job_fd, &rec);
	if (r == -ENOENT || r == -EINVAL) {
		cli_error(verb, r == -ENOENT ? "no such job '%s'" : "job '%s' has no valid record",
			  job_id);
		goto out;
	}
	rc = JOBFS_EXIT_SYSTEM;
	if (r < 0) {
		cli_error(verb, "cannot read job '%s': %s", job_id, strerror(-r));
		goto out;
	}
	vcs = calloc(rec->n_views ? rec->n_views : 1, sizeof(*vcs));
	if (!vcs) {
		cli_error(verb, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < rec->n_views; i++) {
		if (view_name && strcmp(view_name, rec->views[i].name) != 0)
			continue;
		vcs[n].view = &rec->views[i];
		r = inspect_view(job_fd, &vcs[n]);
		if (r < 0) {
			cli_error(verb, "cannot read the upper of view '%s': %s",
				  rec->views[i].name, strerror(-r));
			n++;
			goto out;
		}
		summary_add(&total, &vcs[n].sum);
		n++;
	}
	if (view_name && n == 0) {
		cli_error(verb, "job '%s' has no view '%s'", job_id, view_name);
		rc = JOBFS_EXIT_NO_JOB;
		goto out;
	}
	if (json)
		print_json(rec, store_live_state(rec), vcs, n, &total);
	else
		print_text(rec, store_live_state(rec), vcs, n, &total);
	rc = JOBFS_EXIT_OK;
out:
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < vcs[i].n; j++)
			free(vcs[i].entries[j].path);
		free(vcs[i].entries);
	}
	free(vcs);
	if (job_fd >= 0)
		close(job_fd);
	store_record_free(rec);
	store_close(store);
	policy_free(policy);
	return rc;
}
