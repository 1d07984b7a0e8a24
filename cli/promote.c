/* Promotion rules and the walk that applies them. plan() reads the job's upper layer (kernel
 * overlayfs format: whiteouts, opaque dirs, metacopy files, redirects) against the base, top layer
 * first, and decides about each entry; apply() copies what plan added into a new generation and
 * merges the index files. Both walk relative to directory descriptors with O_NOFOLLOW, and every
 * file is checked on its open descriptor, so nothing a job left in its layer (symlinks, FIFOs,
 * devices, a swapped component) is ever followed or read as something else. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs.h"
#include "promote.h"
#include "store.h"

#define WALK_DEPTH_MAX 128
#define HASH_BUFFER (1024 * 1024)

static const char metacopy_reason[] = "metacopy: a base file whose metadata the job changed";

enum rule {
	RULE_ADD,	  /* add-only: new files join the base */
	RULE_MERGE_PNPM,  /* pnpm's index.db */
	RULE_MERGE_NPM,	  /* a cacache index bucket */
	RULE_MERGE_JSONL, /* pnpm's lockfile-verified.jsonl */
	RULE_SQLITE_WAL,  /* ignored when empty; rows the index lacks when not */
	RULE_IGNORE,
};

/* A kind's table: the first pattern that matches a path (relative to the cache's root, after an
 * optional version prefix) decides; '*' also matches '/'. A directory matches as "DIR/". */
struct rule_row {
	const char *pattern;
	enum rule rule;
	const char *reason; /* for ignored paths */
};

static const struct rule_row add_only_rules[] = {
	{"*", RULE_ADD, NULL},
};

static const struct rule_row pnpm_rules[] = {
	{"files/*", RULE_ADD, NULL},
	{"index.db", RULE_MERGE_PNPM, NULL},
	{"projects/*", RULE_IGNORE, "pnpm-store: projects/ is per install"},
	{"tmp/*", RULE_IGNORE, "pnpm-store: tmp/"},
	{"*.db-wal", RULE_SQLITE_WAL, "pnpm-store: SQLite side file"},
	{"*.db-shm", RULE_IGNORE, "pnpm-store: SQLite side file"},
	{"*", RULE_IGNORE, "pnpm-store: not part of the store's content"},
};

static const struct rule_row npm_rules[] = {
	{"content-v2/*", RULE_ADD, NULL},
	{"index-v5/*", RULE_MERGE_NPM, NULL},
	{"tmp/*", RULE_IGNORE, "npm-cache: tmp/"},
	{"*", RULE_IGNORE, "npm-cache: not part of the cache's content"},
};

/* pnpm's cache dir (~/.cache/pnpm): registry metadata, which an offline install resolves from and
 * checks a lockfile against, and the record of lockfiles already checked. */
static const struct rule_row pnpm_cache_rules[] = {
	{"metadata/*", RULE_ADD, NULL},
	{"metadata-full/*", RULE_ADD, NULL},
	{"lockfile-verified.jsonl", RULE_MERGE_JSONL, NULL},
	{"*", RULE_IGNORE, "pnpm-cache: not registry metadata"},
};

const char *promote_action_name(enum promote_action action)
{
	static const char *const names[PROMOTE_ACTION_COUNT] = {
		[PROMOTE_ADDED] = "added",	 [PROMOTE_IDENTICAL] = "identical",
		[PROMOTE_MERGED] = "merged",	 [PROMOTE_IGNORED] = "ignored",
		[PROMOTE_CONFLICT] = "conflict", [PROMOTE_DIR] = "dir",
	};

	return (unsigned)action < PROMOTE_ACTION_COUNT ? names[action] : "unknown";
}

/* The version prefix a kind's root may have: pnpm's "v11/" (the view is the store dir) or "v12/"
 * (its cache dir), npm's "_cacache/" (the view is ~/.npm). Returns the path past it, or path
 * itself. */
static const char *strip_prefix(enum policy_promote_kind kind, const char *path)
{
	const char *slash = strchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : strlen(path);

	if ((kind == POLICY_PROMOTE_PNPM_STORE || kind == POLICY_PROMOTE_PNPM_CACHE) && len >= 2 &&
	    path[0] == 'v' && strspn(path + 1, "0123456789") == len - 1)
		return slash ? slash + 1 : "";
	if (kind == POLICY_PROMOTE_NPM_CACHE && len == 8 && !strncmp(path, "_cacache", 8))
		return slash ? slash + 1 : "";
	return path;
}

static bool glob_match(const char *pattern, const char *path, bool is_dir)
{
	char buf[PATH_MAX + 2];

	if (fnmatch(pattern, path, 0) == 0)
		return true;
	if (!is_dir || strlen(path) >= PATH_MAX)
		return false;
	snprintf(buf, sizeof(buf), "%s/", path);
	return fnmatch(pattern, buf, 0) == 0;
}

/* What the view's policy says about path; for a directory, RULE_IGNORE skips its subtree and
 * anything else enters it. */
static enum rule rule_for(const struct policy_promote *promote, const char *path, bool is_dir,
			  const char **ret_reason)
{
	const struct rule_row *rows;
	size_t n_rows;
	const char *rest;

	*ret_reason = NULL;
	for (size_t i = 0; i < promote->n_ignore; i++)
		if (glob_match(promote->ignore[i], path, is_dir)) {
			*ret_reason = "matches an ignore pattern of the policy";
			return RULE_IGNORE;
		}
	switch (promote->kind) {
	case POLICY_PROMOTE_PNPM_STORE:
		rows = pnpm_rules;
		n_rows = sizeof(pnpm_rules) / sizeof(pnpm_rules[0]);
		break;
	case POLICY_PROMOTE_NPM_CACHE:
		rows = npm_rules;
		n_rows = sizeof(npm_rules) / sizeof(npm_rules[0]);
		break;
	case POLICY_PROMOTE_PNPM_CACHE:
		rows = pnpm_cache_rules;
		n_rows = sizeof(pnpm_cache_rules) / sizeof(pnpm_cache_rules[0]);
		break;
	default:
		rows = add_only_rules;
		n_rows = 1;
		break;
	}
	rest = strip_prefix(promote->kind, path);
	if (!*rest)
		return RULE_ADD; /* the version dir itself: enter it */
	for (size_t i = 0; i < n_rows; i++)
		if (glob_match(rows[i].pattern, rest, is_dir)) {
			*ret_reason = rows[i].reason;
			return rows[i].rule;
		}
	*ret_reason = "not promoted by this kind";
	return RULE_IGNORE;
}

/* --- reading the layers -------------------------------------------------------------------- */

/* 1 when the open object carries overlay xattr suffix (trusted.overlay.* or, for layers of
 * unprivileged daemons, user.overlay.*). */
static int has_overlay_xattr(int fd, const char *suffix)
{
	static const char *const prefixes[] = {"trusted.overlay.", "user.overlay."};
	char name[64];

	for (size_t i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%s%s", prefixes[i], suffix);
		if (fgetxattr(fd, name, NULL, 0) >= 0)
			return 1;
		if (errno != ENODATA && errno != ENOTSUP)
			return -errno;
	}
	return 0;
}

/* Opens name below dirfd as what st (from fstatat without following) said it was, and checks
 * that the descriptor is that very object. */
static int open_checked(int dirfd, const char *name, const struct stat *st, int flags)
{
	struct stat now;
	int fd, r;

	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &now) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (now.st_dev != st->st_dev || now.st_ino != st->st_ino ||
	    (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static int hash_fd(int fd, XXH128_hash_t *ret)
{
	XXH3_state_t *state = XXH3_createState();
	char *buf = malloc(HASH_BUFFER);
	off_t off = 0;
	int r = 0;

	if (!state || !buf) {
		r = -ENOMEM;
		goto out;
	}
	XXH3_128bits_reset(state);
	for (;;) {
		ssize_t n = pread(fd, buf, HASH_BUFFER, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(state, buf, (size_t)n);
		off += n;
	}
	*ret = XXH3_128bits_digest(state);
out:
	free(buf);
	XXH3_freeState(state);
	return r;
}

/* 1 when the two regular files have the same content, 0 when not. */
static int same_content(int a_fd, const struct stat *a, int b_fd, const struct stat *b)
{
	XXH128_hash_t ha, hb;
	int r;

	if (a->st_size != b->st_size)
		return 0;
	if ((r = hash_fd(a_fd, &ha)) < 0 || (r = hash_fd(b_fd, &hb)) < 0)
		return r;
	return XXH128_isEqual(ha, hb);
}

/* Finds name in the base dirs, top first: *ret_layer is the layer that has it, -1 when no layer
 * has it or a whiteout hides it. */
static int base_find(const int *base_fds, size_t n_base, const char *name, struct stat *ret_st,
		     int *ret_layer)
{
	*ret_layer = -1;
	for (size_t l = 0; l < n_base; l++) {
		if (base_fds[l] < 0)
			continue;
		if (fstatat(base_fds[l], name, ret_st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (!jfs_is_whiteout(ret_st))
			*ret_layer = (int)l;
		return 0;
	}
	return 0;
}

/* The dir name in each layer from top down, as long as they are dirs (a non-dir below ends the
 * merge, as in overlayfs); -1 elsewhere. */
static int base_open_dirs(const int *base_fds, size_t n_base, int top, const char *name,
			  int *child_fds)
{
	bool open = top >= 0;

	for (size_t l = 0; l < n_base; l++) {
		struct stat st;

		child_fds[l] = -1;
		if (!open || (int)l < top || base_fds[l] < 0)
			continue;
		if (fstatat(base_fds[l], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			open = false;
			continue;
		}
		child_fds[l] =
			openat(base_fds[l], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (child_fds[l] < 0)
			return -errno;
	}
	return 0;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* --- plan ---------------------------------------------------------------------------------- */

struct plan {
	struct promote_view *pv;
	char *err;
	size_t errsize;
};

static int add_item(struct plan *p, const char *path, enum promote_action action,
		    const char *reason, const struct stat *st, uint64_t bytes,
		    struct promote_item **ret)
{
	struct promote_view *pv = p->pv;
	struct promote_item *grown, *item;

	grown = realloc(pv->items, sizeof(*grown) * (pv->n_items + 1));
	if (!grown)
		return -ENOMEM;
	pv->items = grown;
	item = &pv->items[pv->n_items];
	memset(item, 0, sizeof(*item));
	item->path = strdup(path);
	if (!item->path)
		return -ENOMEM;
	item->action = action;
	item->reason = reason;
	item->bytes = bytes;
	item->base_layer = -1;
	if (st) {
		item->mode = st->st_mode;
		item->uid = st->st_uid;
		item->gid = st->st_gid;
		item->atime = st->st_atim;
		item->mtime = st->st_mtim;
		item->dev = st->st_dev;
		item->ino = st->st_ino;
		item->nlink = st->st_nlink;
	}
	pv->n_items++;
	if (ret)
		*ret = item;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the dir behind dirfd (not consumed), sorted, so reports come out in a stable
 * order. */
static int list_dir(int dirfd, char ***ret_names, size_t *ret_n)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *dir;
	int fd, r = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(dir))) {
		char **grown;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		grown = realloc(names, sizeof(*names) * (n + 1));
		if (!grown || !(grown[n] = strdup(de->d_name))) {
			names = grown ? grown : names;
			r = -ENOMEM;
			break;
		}
		names = grown;
		n++;
	}
	closedir(dir);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return r;
	}
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	*ret_names = names;
	*ret_n = n;
	return 0;
}

static int plan_dir(struct plan *p, int upper_fd, const char *prefix, const int *base_fds,
		    unsigned depth);

static int plan_file(struct plan *p, int upper_fd, const char *name, const char *path,
		     const struct stat *st, const int *base_fds)
{
	const struct policy_promote *promote = p->pv->promote;
	struct promote_item *item;
	struct stat bst;
	const char *reason;
	enum rule rule;
	int fd, bfd, layer, r;

	rule = rule_for(promote, path, false, &reason);
	fd = open_checked(upper_fd, name, st, O_RDONLY);
	if (fd < 0)
		return fd;
	r = has_overlay_xattr(fd, "metacopy");
	if (r != 0) {
		close(fd);
		return r < 0 ? r
			     : add_item(p, path, PROMOTE_IGNORED, metacopy_reason, st,
					(uint64_t)st->st_size, NULL);
	}
	if (rule == RULE_SQLITE_WAL && st->st_size > 0) {
		/* committed rows that never reached the database file (the writer was killed before
		 * its last close): the merge reads the file alone, so say what it leaves out */
		close(fd);
		return add_item(
			p, path, PROMOTE_CONFLICT,
			"an uncheckpointed SQLite write-ahead log: the index rows in it are "
			"not promoted",
			st, (uint64_t)st->st_size, NULL);
	}
	if (rule == RULE_IGNORE || rule == RULE_SQLITE_WAL) {
		close(fd);
		return add_item(p, path, PROMOTE_IGNORED, reason, st, (uint64_t)st->st_size, NULL);
	}
	r = base_find(base_fds, p->pv->n_base, name, &bst, &layer);
	if (r < 0 || layer < 0) {
		close(fd);
		if (r < 0)
			return r;
		r = add_item(p, path, rule == RULE_ADD ? PROMOTE_ADDED : PROMOTE_MERGED, NULL, st,
			     (uint64_t)st->st_size, &item);
		if (r == 0)
			item->rule = (int)rule;
		return r;
	}
	if (!S_ISREG(bst.st_mode)) {
		close(fd);
		return add_item(p, path, PROMOTE_CONFLICT,
				S_ISDIR(bst.st_mode) ? "a directory in the base"
						     : "another type in the base",
				st, (uint64_t)st->st_size, NULL);
	}
	bfd = open_checked(base_fds[layer], name, &bst, O_RDONLY);
	if (bfd < 0) {
		close(fd);
		return bfd;
	}
	r = same_content(fd, st, bfd, &bst);
	close(bfd);
	close(fd);
	if (r < 0)
		return r;
	if (r == 1)
		return add_item(p, path, PROMOTE_IDENTICAL, NULL, st, (uint64_t)st->st_size, NULL);
	if (rule == RULE_ADD)
		return add_item(p, path, PROMOTE_CONFLICT, "different content in the base", st,
				(uint64_t)st->st_size, NULL);
	r = add_item(p, path, PROMOTE_MERGED, NULL, st, (uint64_t)st->st_size, &item);
	if (r == 0) {
		item->rule = (int)rule;
		item->base_layer = layer;
	}
	return r;
}

static int plan_symlink(struct plan *p, int upper_fd, const char *name, const char *path,
			const struct stat *st, const int *base_fds)
{
	char target[PATH_MAX], base_target[PATH_MAX];
	struct stat bst;
	const char *reason;
	ssize_t n, bn;
	int layer, r;

	if (rule_for(p->pv->promote, path, false, &reason) != RULE_ADD)
		return add_item(p, path, PROMOTE_IGNORED, reason ? reason : "not a regular file",
				st, (uint64_t)st->st_size, NULL);
	r = base_find(base_fds, p->pv->n_base, name, &bst, &layer);
	if (r < 0)
		return r;
	if (layer < 0)
		return add_item(p, path, PROMOTE_ADDED, NULL, st, (uint64_t)st->st_size, NULL);
	if (!S_ISLNK(bst.st_mode))
		return add_item(p, path, PROMOTE_CONFLICT,
				S_ISDIR(bst.st_mode) ? "a directory in the base"
						     : "another type in the base",
				st, (uint64_t)st->st_size, NULL);
	n = readlinkat(upper_fd, name, target, sizeof(target));
	bn = readlinkat(base_fds[layer], name, base_target, sizeof(base_target));
	if (n < 0 || bn < 0)
		return -errno;
	if (n == bn && memcmp(target, base_target, (size_t)n) == 0)
		return add_item(p, path, PROMOTE_IDENTICAL, NULL, st, (uint64_t)st->st_size, NULL);
	return add_item(p, path, PROMOTE_CONFLICT, "another target in the base", st,
			(uint64_t)st->st_size, NULL);
}

static uint64_t subtree_bytes(int dirfd, const char *name)
{
	uint64_t bytes = 0, files;

	if (store_tree_usage(dirfd, name, &bytes, &files) < 0)
		return 0;
	return bytes;
}

static int plan_subdir(struct plan *p, int upper_fd, const char *name, const char *path,
		       const struct stat *st, const int *base_fds, unsigned depth)
{
	size_t n_base = p->pv->n_base;
	struct stat bst;
	const char *reason;
	int fd, layer, r, *child_fds;

	if (rule_for(p->pv->promote, path, true, &reason) == RULE_IGNORE)
		return add_item(p, path, PROMOTE_IGNORED, reason, st, subtree_bytes(upper_fd, name),
				NULL);
	if (depth >= WALK_DEPTH_MAX)
		return add_item(p, path, PROMOTE_IGNORED, "deeper than 128 directories", st, 0,
				NULL);
	fd = open_checked(upper_fd, name, st, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = has_overlay_xattr(fd, "redirect");
	if (r != 0) {
		close(fd);
		return r < 0 ? r
			     : add_item(p, path, PROMOTE_IGNORED,
					"redirect: a renamed base directory", st,
					subtree_bytes(upper_fd, name), NULL);
	}
	r = base_find(base_fds, n_base, name, &bst, &layer);
	if (r == 0 && layer >= 0 && !S_ISDIR(bst.st_mode)) {
		close(fd);
		return add_item(p, path, PROMOTE_CONFLICT, "not a directory in the base", st,
				subtree_bytes(upper_fd, name), NULL);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	r = has_overlay_xattr(fd, "opaque");
	if (r > 0)
		/* the job replaced a base dir; what it hid stays in the base, what it added is
		 * weighed below like anything else */
		r = add_item(p, path, PROMOTE_IGNORED, "opaque: the base's entries it hid stay", st,
			     0, NULL);
	/* the generation's dir copies the base's attributes where there is one, so promoting
	 * never changes how an existing dir looks */
	if (r == 0)
		r = add_item(p, path, PROMOTE_DIR, NULL, layer >= 0 ? &bst : st, 0, NULL);
	child_fds = calloc(n_base ? n_base : 1, sizeof(int));
	if (r == 0 && !child_fds)
		r = -ENOMEM;
	if (r == 0)
		r = base_open_dirs(base_fds, n_base, layer, name, child_fds);
	if (r == 0)
		r = plan_dir(p, fd, path, child_fds, depth + 1);
	if (child_fds) {
		close_all(child_fds, n_base);
		free(child_fds);
	}
	close(fd);
	return r;
}

static int plan_dir(struct plan *p, int upper_fd, const char *prefix, const int *base_fds,
		    unsigned depth)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	r = list_dir(upper_fd, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		char path[PATH_MAX];
		struct stat st;

		if (snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", names[i]) >=
		    (int)sizeof(path)) {
			r = add_item(p, prefix, PROMOTE_IGNORED, "path longer than PATH_MAX", NULL,
				     0, NULL);
			continue;
		}
		if (fstatat(upper_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = errno == ENOENT ? 0 : -errno;
			continue;
		}
		if (jfs_is_whiteout(&st))
			r = add_item(p, path, PROMOTE_IGNORED, "whiteout: a deleted base file", &st,
				     0, NULL);
		else if (S_ISREG(st.st_mode))
			r = plan_file(p, upper_fd, names[i], path, &st, base_fds);
		else if (S_ISLNK(st.st_mode))
			r = plan_symlink(p, upper_fd, names[i], path, &st, base_fds);
		else if (S_ISDIR(st.st_mode))
			r = plan_subdir(p, upper_fd, names[i], path, &st, base_fds, depth);
		else
			r = add_item(p, path, PROMOTE_IGNORED, "not a regular file or symlink", &st,
				     0, NULL);
		if (r < 0)
			snprintf(p->err, p->errsize, "'%s': %s", path, strerror(-r));
		p->pv->planned++;
		if (p->pv->progress)
			p->pv->progress(p->pv, p->pv->progress_data);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static bool carries_base_data(const struct promote_item *item)
{
	return item->action == PROMOTE_CONFLICT || item->action == PROMOTE_IDENTICAL ||
	       item->action == PROMOTE_MERGED || item->reason == metacopy_reason;
}

static int compare_inodes(const void *a, const void *b)
{
	const struct promote_item *x = *(const struct promote_item *const *)a;
	const struct promote_item *y = *(const struct promote_item *const *)b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

/* A new name of a file the job also has at a base path (changed through a hard link, say), or of
 * a metacopy, carries base data: none of its names is added. The linked files are sorted by
 * inode, so a job of many hard links costs n log n, not n squared. */
static int drop_tainted_links(struct promote_view *pv)
{
	struct promote_item **linked;
	size_t n = 0;

	linked = malloc(sizeof(*linked) * (pv->n_items ? pv->n_items : 1));
	if (!linked)
		return -ENOMEM;
	for (size_t i = 0; i < pv->n_items; i++)
		if (S_ISREG(pv->items[i].mode) && pv->items[i].nlink >= 2)
			linked[n++] = &pv->items[i];
	if (n > 1)
		qsort(linked, n, sizeof(*linked), compare_inodes);
	for (size_t i = 0, end; i < n; i = end) {
		bool tainted = false;

		for (end = i; end < n && compare_inodes(&linked[i], &linked[end]) == 0; end++)
			tainted = tainted || carries_base_data(linked[end]);
		for (size_t j = i; tainted && j < end; j++)
			if (linked[j]->action == PROMOTE_ADDED) {
				linked[j]->action = PROMOTE_IGNORED;
				linked[j]->reason = "a hard link to a base file the job changed";
			}
	}
	free(linked);
	return 0;
}

int promote_plan(struct promote_view *pv, char *err, size_t errsize)
{
	struct plan p = {.pv = pv, .err = err, .errsize = errsize};
	int r;

	err[0] = '\0';
	r = plan_dir(&p, pv->upper_fd, "", pv->base_fds, 0);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errsize, "%s", strerror(-r));
		return r;
	}
	r = drop_tainted_links(pv);
	if (r < 0) {
		snprintf(err, errsize, "%s", strerror(-r));
		return r;
	}
	memset(pv->count, 0, sizeof(pv->count));
	memset(pv->bytes, 0, sizeof(pv->bytes));
	for (size_t i = 0; i < pv->n_items; i++) {
		pv->count[pv->items[i].action]++;
		pv->bytes[pv->items[i].action] += pv->items[i].bytes;
	}
	return 0;
}

bool promote_has_changes(const struct promote_view *pv)
{
	return pv->count[PROMOTE_ADDED] || pv->count[PROMOTE_MERGED];
}

void promote_view_free(struct promote_view *pv)
{
	for (size_t i = 0; i < pv->n_items; i++)
		free(pv->items[i].path);
	free(pv->items);
	pv->items = NULL;
	pv->n_items = 0;
}

/* --- apply --------------------------------------------------------------------------------- */

/* Bytes per copy_file_range(): small enough that progress moves during a large file. */
#define COPY_CHUNK (8 << 20)

/* Copies size bytes; pv (NULL: none) counts them and hears of each chunk. */
static int copy_data(struct promote_view *pv, int src_fd, int dst_fd, off_t size)
{
	static char buf[1 << 16];
	off_t done = 0;
	bool plain = false;

	while (done < size) {
		ssize_t n;

		if (!plain) {
			n = copy_file_range(
				src_fd, NULL, dst_fd, NULL,
				size - done < COPY_CHUNK ? (size_t)(size - done) : COPY_CHUNK, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				      errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else {
			n = read(src_fd, buf,
				 sizeof(buf) < (size_t)(size - done) ? sizeof(buf)
								     : (size_t)(size - done));
			if (n > 0) {
				for (ssize_t w = 0; w < n;) {
					ssize_t m = write(dst_fd, buf + w, (size_t)(n - w));
					if (m < 0 && errno == EINTR)
						continue;
					if (m < 0)
						return -errno;
					w += m;
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ESTALE; /* shorter than it said: changed under us */
		done += n;
		if (pv) {
			pv->written_bytes += (uint64_t)n;
			if (pv->progress)
				pv->progress(pv, pv->progress_data);
		}
	}
	return 0;
}

static int copy_file(struct promote_view *pv, int src_fd, const struct stat *st, int dirfd,
		     const char *name)
{
	struct timespec times[2] = {st->st_atim, st->st_mtim};
	int fd, r;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = copy_data(pv, src_fd, fd, st->st_size);
	/* set-ID bits never reach the base: views are nosuid, and the base outlives the job */
	if (r == 0 && (fchown(fd, st->st_uid, st->st_gid) < 0 ||
		       fchmod(fd, st->st_mode & 01777) < 0 || futimens(fd, times) < 0))
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, name, 0);
	return r;
}

int promote_copy_file(int src_fd, const struct stat *st, int dirfd, const char *name)
{
	return copy_file(NULL, src_fd, st, dirfd, name);
}

/* The directories from the generation's root down to the item being written, created as needed
 * (with the attributes plan chose) and given their times once their subtree is done. */
struct gen_dirs {
	int root_fd;
	struct {
		const struct promote_item *item;
		int fd; /* -1 until created */
	} level[WALK_DEPTH_MAX + 1];
	unsigned depth; /* levels in use */
};

static unsigned path_depth(const char *path)
{
	unsigned depth = 0;

	for (; *path; path++)
		depth += *path == '/';
	return depth;
}

static int dirs_pop(struct gen_dirs *dirs, unsigned keep)
{
	int r = 0;

	while (dirs->depth > keep) {
		unsigned i = --dirs->depth;

		if (dirs->level[i].fd < 0)
			continue;
		struct timespec times[2] = {dirs->level[i].item->atime, dirs->level[i].item->mtime};
		if (futimens(dirs->level[i].fd, times) < 0 && r == 0)
			r = -errno;
		close(dirs->level[i].fd);
		dirs->level[i].fd = -1;
	}
	return r;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The descriptor of the item's parent in the generation, creating it and its parents. */
static int dirs_parent(struct gen_dirs *dirs, unsigned depth)
{
	int parent = dirs->root_fd;

	for (unsigned i = 0; i < depth; i++) {
		const struct promote_item *item = dirs->level[i].item;

		if (dirs->level[i].fd < 0) {
			const char *name = base_name(item->path);
			int fd;

			if (mkdirat(parent, name, 0700) < 0)
				return -errno;
			fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			if (fchown(fd, item->uid, item->gid) < 0 ||
			    fchmod(fd, item->mode & 01777) < 0) {
				close(fd);
				return -errno;
			}
			dirs->level[i].fd = fd;
		}
		parent = dirs->level[i].fd;
	}
	return parent;
}

/* The job's directories, opened from the upper's root along a path without following anything,
 * with the last one cached (items come in walk order). */
struct upper_cursor {
	int root_fd;
	char dir[PATH_MAX];
	int dir_fd;
};

static int upper_parent(struct upper_cursor *c, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;
	char buf[PATH_MAX];
	int fd;

	if (c->dir_fd >= 0 && strlen(c->dir) == len && !strncmp(c->dir, path, len))
		return c->dir_fd;
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	c->dir_fd = -1;
	memcpy(buf, path, len);
	buf[len] = '\0';
	fd = openat(c->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (char *part = buf, *next; fd >= 0 && len && part; part = next) {
		int sub;

		next = strchr(part, '/');
		if (next)
			*next++ = '\0';
		sub = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = sub;
	}
	if (fd < 0)
		return -errno;
	memcpy(c->dir, path, len);
	c->dir[len] = '\0';
	c->dir_fd = fd;
	return fd;
}

static int apply_symlink(int upper_dir, int gen_dir, const struct promote_item *item)
{
	struct timespec times[2] = {item->atime, item->mtime};
	const char *name = base_name(item->path);
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (fstatat(upper_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (st.st_ino != item->ino || !S_ISLNK(st.st_mode))
		return -ESTALE;
	n = readlinkat(upper_dir, name, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	/* a link is stored as a link: its target is never looked at, let alone followed */
	if (symlinkat(target, gen_dir, name) < 0 ||
	    fchownat(gen_dir, name, item->uid, item->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    utimensat(gen_dir, name, times, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int apply_file(struct promote_view *pv, int upper_dir, int gen_dir,
		      const struct promote_item *item)
{
	const char *name = base_name(item->path);
	struct stat st = {.st_dev = item->dev, .st_ino = item->ino, .st_mode = S_IFREG};
	int fd, r;

	fd = open_checked(upper_dir, name, &st, O_RDONLY);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = copy_file(pv, fd, &st, gen_dir, name);
	close(fd);
	return r;
}

/* Copies the job's index file into the work dir, merges it with the base's into the generation,
 * and gives the result the base's attributes. The file alone: a -wal beside it in the layer that
 * still holds rows is reported as a conflict by plan_file. */
static int apply_merge(struct promote_view *pv, int upper_dir, int gen_dir, const char *gen_path,
		       int work_fd, const char *work_path, struct promote_item *item, char *err,
		       size_t errsize)
{
	const char *name = base_name(item->path);
	char job_copy[PATH_MAX], base[PATH_MAX], out[PATH_MAX], copy_name[64];
	static unsigned counter;
	struct stat st = {.st_dev = item->dev, .st_ino = item->ino, .st_mode = S_IFREG};
	int fd, r;

	fd = open_checked(upper_dir, name, &st, O_RDONLY);
	if (fd < 0)
		return fd;
	r = fstat(fd, &st) < 0 ? -errno : 0;
	snprintf(copy_name, sizeof(copy_name), "job-%u", counter++);
	if (r == 0)
		r = copy_file(pv, fd, &st, work_fd, copy_name);
	close(fd);
	if (r < 0)
		return r;
	snprintf(job_copy, sizeof(job_copy), "%s/%s", work_path, copy_name);
	if (item->base_layer >= 0)
		snprintf(base, sizeof(base), "%s/%s", pv->base_paths[item->base_layer], item->path);
	if (snprintf(out, sizeof(out), "%s/%s", gen_path, item->path) >= (int)sizeof(out))
		return -ENAMETOOLONG;
	if (item->rule == RULE_MERGE_PNPM)
		r = merge_pnpm_index(item->base_layer >= 0 ? base : NULL, job_copy, out,
				     &item->merge, err, errsize);
	else if (item->rule == RULE_MERGE_JSONL)
		r = merge_jsonl(item->base_layer >= 0 ? base : NULL, job_copy, out, &item->merge,
				err, errsize);
	else
		r = merge_npm_bucket(item->base_layer >= 0 ? base : NULL, job_copy, out,
				     &item->merge, err, errsize);
	unlinkat(work_fd, copy_name, 0);
	if (r < 0)
		return r;
	/* readable like the job's file was; the content is new, so is its mtime */
	if (fchmodat(gen_dir, name, item->mode & 0777, 0) < 0 ||
	    fchownat(gen_dir, name, item->uid, item->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int promote_apply(struct promote_view *pv, int gen_fd, const char *gen_path, int work_fd,
		  const char *work_path, char *err, size_t errsize)
{
	struct gen_dirs dirs = {.root_fd = gen_fd};
	struct upper_cursor cursor = {.root_fd = pv->upper_fd, .dir_fd = -1};
	int r = 0;

	err[0] = '\0';
	for (size_t i = 0; i < pv->n_items && r == 0; i++) {
		struct promote_item *item = &pv->items[i];
		unsigned depth = path_depth(item->path);
		int gen_dir, upper_dir;

		if (item->action == PROMOTE_DIR) {
			if ((r = dirs_pop(&dirs, depth)) < 0)
				break;
			dirs.level[depth].item = item;
			dirs.level[depth].fd = -1;
			dirs.depth = depth + 1;
			continue;
		}
		if (item->action != PROMOTE_ADDED && item->action != PROMOTE_MERGED)
			continue;
		if ((r = dirs_pop(&dirs, depth)) < 0)
			break;
		gen_dir = dirs_parent(&dirs, depth);
		upper_dir = upper_parent(&cursor, item->path);
		if (gen_dir < 0 || upper_dir < 0) {
			r = gen_dir < 0 ? gen_dir : upper_dir;
		} else if (item->action == PROMOTE_MERGED) {
			r = apply_merge(pv, upper_dir, gen_dir, gen_path, work_fd, work_path, item,
					err, errsize);
			if (r < 0 && err[0]) {
				char why[512];

				snprintf(why, sizeof(why), "%s", err);
				snprintf(err, errsize, "'%s': %s", item->path, why);
			}
		} else if (S_ISLNK(item->mode)) {
			r = apply_symlink(upper_dir, gen_dir, item);
			pv->written_bytes += r == 0 ? item->bytes : 0;
		} else {
			r = apply_file(pv, upper_dir, gen_dir, item);
		}
		if (r == 0) {
			pv->written++;
			if (pv->progress)
				pv->progress(pv, pv->progress_data);
		}
		if (r < 0 && !err[0])
			snprintf(err, errsize, "'%s': %s", item->path,
				 r == -ESTALE ? "changed while being promoted" : strerror(-r));
	}
	if (r == 0)
		r = dirs_pop(&dirs, 0);
	else
		dirs_pop(&dirs, 0);
	if (cursor.dir_fd >= 0)
		close(cursor.dir_fd);
	if (r < 0 && !err[0])
		snprintf(err, errsize, "%s", strerror(-r));
	/* the counts of merged rows are known now */
	return r;
}
