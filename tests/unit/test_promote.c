/* Tests for cli/promote.c without FUSE: an upper layer and a base of two layers (a generation
 * over a lower) built by hand in a temp dir, planned by each kind's rules and the policy's
 * ignore globs, then applied into a generation: modes without set-ID bits, times, links kept as
 * links, nothing a plan did not add, and a file swapped between plan and apply refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/time.h>

#include "promote.h"
#include "unit.h"

struct fixture {
	char dir[64];
	char paths[3][128]; /* unused, base0 (a generation), base1 (a policy lower) */
	int dir_fd, upper_fd, base_fds[2], gen_fd, work_fd;
	char *base_paths[2];
	struct policy_promote promote;
	struct promote_view pv;
	char err[1024];
	unsigned ticks;
};

static int open_sub(struct fixture *f, const char *name)
{
	if (mkdirat(f->dir_fd, name, 0755) < 0)
		return -1;
	return openat(f->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || unit_mkdtemp(f->dir, sizeof(f->dir)) < 0)
		return -1;
	f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->upper_fd = open_sub(f, "upper");
	f->base_fds[0] = open_sub(f, "base0");
	f->base_fds[1] = open_sub(f, "base1");
	f->gen_fd = open_sub(f, "gen");
	f->work_fd = open_sub(f, "work");
	if (f->dir_fd < 0 || f->upper_fd < 0 || f->base_fds[0] < 0 || f->base_fds[1] < 0 ||
	    f->gen_fd < 0 || f->work_fd < 0)
		return -1;
	snprintf(f->paths[1], sizeof(f->paths[1]), "%s/base0", f->dir);
	snprintf(f->paths[2], sizeof(f->paths[2]), "%s/base1", f->dir);
	f->base_paths[0] = f->paths[1];
	f->base_paths[1] = f->paths[2];
	f->promote.kind = POLICY_PROMOTE_ADD_ONLY;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	promote_view_free(&f->pv);
	close(f->upper_fd);
	close(f->base_fds[0]);
	close(f->base_fds[1]);
	close(f->gen_fd);
	close(f->work_fd);
	close(f->dir_fd);
	unit_rm_tree(f->dir);
	free(f);
	return 0;
}

static void tick(const struct promote_view *pv, void *userdata)
{
	(void)pv;
	((struct fixture *)userdata)->ticks++;
}

static void plan(struct fixture *f)
{
	promote_view_free(&f->pv);
	f->pv = (struct promote_view){
		.name = "cache",
		.promote = &f->promote,
		.upper_fd = f->upper_fd,
		.base_fds = f->base_fds,
		.base_paths = f->base_paths,
		.n_base = 2,
		.progress = tick,
		.progress_data = f,
	};
	if (promote_plan(&f->pv, f->err, sizeof(f->err)) < 0)
		fail_msg("plan: %s", f->err);
}

static const struct promote_item *item_of(struct fixture *f, const char *path)
{
	for (size_t i = 0; i < f->pv.n_items; i++)
		if (!strcmp(f->pv.items[i].path, path))
			return &f->pv.items[i];
	return NULL;
}

/* Asserts path was planned as action (and, unless NULL, for a reason containing why). */
static void expect(struct fixture *f, const char *path, enum promote_action action, const char *why)
{
	const struct promote_item *item = item_of(f, path);

	if (!item)
		fail_msg("'%s' was not planned", path);
	if (item->action != action)
		fail_msg("'%s': %s, expected %s (%s)", path, promote_action_name(item->action),
			 promote_action_name(action), item->reason ? item->reason : "");
	if (why && (!item->reason || !strstr(item->reason, why)))
		fail_msg("'%s': reason '%s', expected '%s'", path,
			 item->reason ? item->reason : "(none)", why);
}

static void mkdirs(int dirfd, const char *path)
{
	char buf[256], *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	for (slash = strchr(buf, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdirat(dirfd, buf, 0755);
		*slash = '/';
	}
	mkdirat(dirfd, buf, 0755);
}

/* Writes text to dirfd/path, making its parents. */
static void put(int dirfd, const char *path, const char *text)
{
	const char *slash = strrchr(path, '/');

	if (slash) {
		char parent[256];

		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
		mkdirs(dirfd, parent);
	}
	assert_int_equal(unit_write_file(dirfd, path, text), 0);
}

static void test_promote_add_only(void **state)
{
	struct fixture *f = *state;
	int wh;

	put(f->upper_fd, "new", "new");
	put(f->base_fds[1], "same", "same");
	put(f->upper_fd, "same", "same");
	put(f->base_fds[1], "diff", "aaaa");
	put(f->upper_fd, "diff", "bbbb"); /* same size, other content: the hash tells */
	put(f->base_fds[1], "longer", "a");
	put(f->upper_fd, "longer", "ab");
	mkdirs(f->base_fds[1], "isdir");
	put(f->upper_fd, "isdir", "a file where the base has a dir");
	put(f->base_fds[1], "isfile", "a file");
	put(f->upper_fd, "isfile/inner", "a dir where the base has a file");
	assert_int_equal(symlinkat("target", f->upper_fd, "ln-new"), 0);
	assert_int_equal(symlinkat("target", f->base_fds[1], "ln-same"), 0);
	assert_int_equal(symlinkat("target", f->upper_fd, "ln-same"), 0);
	assert_int_equal(symlinkat("old", f->base_fds[1], "ln-other"), 0);
	assert_int_equal(symlinkat("new", f->upper_fd, "ln-other"), 0);
	put(f->base_fds[1], "ln-file", "a file where the job has a link");
	assert_int_equal(symlinkat("x", f->upper_fd, "ln-file"), 0);
	assert_int_equal(mkfifoat(f->upper_fd, "fifo", 0644), 0);
	/* the top layer wins: compared with the generation's file, not the lower's */
	put(f->base_fds[0], "shadow", "from the generation");
	put(f->base_fds[1], "shadow", "from the lower");
	put(f->upper_fd, "shadow", "from the lower");
	/* a whiteout in the generation hides the lower's file: the job's is new */
	wh = unit_mkwhiteout(f->base_fds[0], "gone");
	put(f->base_fds[1], "gone", "deleted by a generation");
	put(f->upper_fd, "gone", "back again");
	/* a dir in both: entered, its new file added */
	put(f->base_fds[1], "pkg/old", "old");
	put(f->upper_fd, "pkg/added", "added");
	plan(f);

	expect(f, "new", PROMOTE_ADDED, NULL);
	expect(f, "same", PROMOTE_IDENTICAL, NULL);
	expect(f, "diff", PROMOTE_CONFLICT, "different content");
	expect(f, "longer", PROMOTE_CONFLICT, "different content");
	expect(f, "isdir", PROMOTE_CONFLICT, "a directory in the base");
	expect(f, "isfile", PROMOTE_CONFLICT, "not a directory in the base");
	assert_null(item_of(f, "isfile/inner"));
	expect(f, "ln-new", PROMOTE_ADDED, NULL);
	expect(f, "ln-same", PROMOTE_IDENTICAL, NULL);
	expect(f, "ln-other", PROMOTE_CONFLICT, "another target");
	expect(f, "ln-file", PROMOTE_CONFLICT, NULL);
	expect(f, "fifo", PROMOTE_IGNORED, "not a regular file or symlink");
	expect(f, "shadow", PROMOTE_CONFLICT, NULL);
	if (wh == 0)
		expect(f, "gone", PROMOTE_ADDED, NULL);
	expect(f, "pkg", PROMOTE_DIR, NULL);
	expect(f, "pkg/added", PROMOTE_ADDED, NULL);
	assert_null(item_of(f, "pkg/old"));
	/* the totals are the items' */
	assert_int_equal(f->pv.count[PROMOTE_IDENTICAL], 2);
	assert_int_equal(f->pv.count[PROMOTE_CONFLICT], 7);
	assert_int_equal(f->pv.bytes[PROMOTE_IDENTICAL], 4 + 6);
	assert_int_equal(f->pv.count[PROMOTE_ADDED], wh == 0 ? 4 : 3);
	assert_true(promote_has_changes(&f->pv));
	/* progress heard of every entry the walk looked at */
	assert_int_equal(f->pv.planned, f->pv.n_items);
	assert_true(f->ticks >= f->pv.planned);
}

static void test_promote_overlay_markers(void **state)
{
	struct fixture *f = *state;
	int fd;

	put(f->base_fds[1], "deleted", "base");
	if (unit_mkwhiteout(f->upper_fd, "deleted") == -EPERM)
		skip(); /* no device nodes here */
	/* a metacopy: the base's data with the job's metadata */
	put(f->base_fds[1], "meta", "base data");
	put(f->upper_fd, "meta", "");
	fd = openat(f->upper_fd, "meta", O_RDONLY);
	assert_int_equal(fsetxattr(fd, "user.overlay.metacopy", "", 0, 0), 0);
	close(fd);
	/* a renamed base dir */
	put(f->upper_fd, "moved/file", "x");
	fd = openat(f->upper_fd, "moved", O_RDONLY | O_DIRECTORY);
	assert_int_equal(fsetxattr(fd, "user.overlay.redirect", "/old", 4, 0), 0);
	close(fd);
	/* a dir the job replaced: what it hid stays, what it added is weighed */
	put(f->base_fds[1], "opq/hidden", "base");
	put(f->upper_fd, "opq/fresh", "fresh");
	assert_int_equal(unit_mkopaque(f->upper_fd, "opq"), 0);
	plan(f);

	expect(f, "deleted", PROMOTE_IGNORED, "whiteout");
	expect(f, "meta", PROMOTE_IGNORED, "metacopy");
	expect(f, "moved", PROMOTE_IGNORED, "redirect");
	assert_null(item_of(f, "moved/file"));
	assert_int_equal(f->pv.count[PROMOTE_DIR], 1);
	expect(f, "opq/fresh", PROMOTE_ADDED, NULL);
	assert_null(item_of(f, "opq/hidden"));
	assert_int_equal(f->pv.count[PROMOTE_IGNORED], 4); /* opq itself is one */
}

static void test_promote_hard_links(void **state)
{
	struct fixture *f = *state;
	int fd;

	/* changed through a hard link: neither name promoted */
	put(f->base_fds[1], "pkg/a.txt", "base");
	put(f->upper_fd, "pkg/a.txt", "base, then more");
	assert_int_equal(linkat(f->upper_fd, "pkg/a.txt", f->upper_fd, "hl", 0), 0);
	/* a link to an identical copy of a base file: base data too */
	put(f->base_fds[0], "same", "same");
	put(f->upper_fd, "same", "same");
	assert_int_equal(linkat(f->upper_fd, "same", f->upper_fd, "same-link", 0), 0);
	/* a link to a metacopy */
	put(f->base_fds[1], "meta", "base data");
	put(f->upper_fd, "meta", "");
	fd = openat(f->upper_fd, "meta", O_RDONLY);
	assert_int_equal(fsetxattr(fd, "user.overlay.metacopy", "", 0, 0), 0);
	close(fd);
	assert_int_equal(linkat(f->upper_fd, "meta", f->upper_fd, "meta-link", 0), 0);
	/* new files linked to each other: every name added */
	put(f->upper_fd, "x", "new");
	assert_int_equal(linkat(f->upper_fd, "x", f->upper_fd, "y", 0), 0);
	assert_int_equal(linkat(f->upper_fd, "x", f->upper_fd, "pkg/z", 0), 0);
	plan(f);

	expect(f, "pkg/a.txt", PROMOTE_CONFLICT, NULL);
	expect(f, "hl", PROMOTE_IGNORED, "hard link");
	expect(f, "same", PROMOTE_IDENTICAL, NULL);
	expect(f, "same-link", PROMOTE_IGNORED, "hard link");
	expect(f, "meta", PROMOTE_IGNORED, "metacopy");
	expect(f, "meta-link", PROMOTE_IGNORED, "metacopy"); /* the xattr is the inode's */
	expect(f, "x", PROMOTE_ADDED, NULL);
	expect(f, "y", PROMOTE_ADDED, NULL);
	expect(f, "pkg/z", PROMOTE_ADDED, NULL);
	/* the totals count what the links became */
	assert_int_equal(f->pv.count[PROMOTE_ADDED], 3);
}

static void test_promote_pnpm_store(void **state)
{
	struct fixture *f = *state;

	f->promote.kind = POLICY_PROMOTE_PNPM_STORE;
	put(f->upper_fd, "v11/files/00/abc", "blob");
	put(f->upper_fd, "v11/files/00/abc-exec", "blob");
	put(f->upper_fd, "v11/index.db", "not really SQLite: plan does not open it");
	put(f->base_fds[1], "v10/index.db", "the base's");
	put(f->upper_fd, "v10/index.db", "the job's");
	put(f->base_fds[0], "v9/index.db", "the same");
	put(f->upper_fd, "v9/index.db", "the same");
	put(f->upper_fd, "v11/index.db-wal", "rows never checkpointed");
	put(f->upper_fd, "v10/index.db-wal", "");
	put(f->upper_fd, "v11/index.db-shm", "shm");
	put(f->upper_fd, "v11/projects/p1/x", "per install");
	put(f->upper_fd, "v11/tmp/t", "tmp");
	put(f->upper_fd, "v11/other.json", "?");
	put(f->upper_fd, "files/ff/def", "a store mounted at its version dir");
	put(f->upper_fd, "v3/files/ee/old", "another version dir");
	plan(f);

	expect(f, "v11", PROMOTE_DIR, NULL);
	expect(f, "v11/files/00/abc", PROMOTE_ADDED, NULL);
	expect(f, "v11/files/00/abc-exec", PROMOTE_ADDED, NULL);
	expect(f, "v11/index.db", PROMOTE_MERGED, NULL);
	assert_int_equal(item_of(f, "v11/index.db")->base_layer, -1);
	expect(f, "v10/index.db", PROMOTE_MERGED, NULL); /* with the lower's */
	assert_int_equal(item_of(f, "v10/index.db")->base_layer, 1);
	expect(f, "v9/index.db", PROMOTE_IDENTICAL, NULL);
	/* rows only in a write-ahead log would be lost by the merge: said, not dropped */
	expect(f, "v11/index.db-wal", PROMOTE_CONFLICT, "write-ahead log");
	expect(f, "v10/index.db-wal", PROMOTE_IGNORED, "SQLite side file");
	expect(f, "v11/index.db-shm", PROMOTE_IGNORED, "SQLite side file");
	expect(f, "v11/projects", PROMOTE_IGNORED, "projects/");
	assert_null(item_of(f, "v11/projects/p1/x"));
	expect(f, "v11/tmp", PROMOTE_IGNORED, "tmp/");
	expect(f, "v11/other.json", PROMOTE_IGNORED, "not part of the store");
	expect(f, "files/ff/def", PROMOTE_ADDED, NULL);
	expect(f, "v3/files/ee/old", PROMOTE_ADDED, NULL);
	/* an ignored dir reports the space below it */
	assert_true(item_of(f, "v11/projects")->bytes >= strlen("per install"));
}

static void test_promote_npm_cache(void **state)
{
	struct fixture *f = *state;

	f->promote.kind = POLICY_PROMOTE_NPM_CACHE;
	put(f->upper_fd, "_cacache/content-v2/sha512/aa/bb/cc", "tarball");
	put(f->upper_fd, "_cacache/index-v5/12/34/5678", "bucket");
	put(f->upper_fd, "_cacache/tmp/x", "tmp");
	put(f->upper_fd, "_logs/debug.log", "log");
	put(f->upper_fd, "content-v2/sha1/dd", "a cache mounted at _cacache");
	put(f->upper_fd, "index-v5/ab/cd/ef", "bucket");
	plan(f);

	expect(f, "_cacache/content-v2/sha512/aa/bb/cc", PROMOTE_ADDED, NULL);
	expect(f, "_cacache/index-v5/12/34/5678", PROMOTE_MERGED, NULL);
	expect(f, "_cacache/tmp", PROMOTE_IGNORED, "tmp/");
	expect(f, "_logs", PROMOTE_IGNORED, "not part of the cache");
	expect(f, "content-v2/sha1/dd", PROMOTE_ADDED, NULL);
	expect(f, "index-v5/ab/cd/ef", PROMOTE_MERGED, NULL);
}

static void test_promote_pnpm_cache(void **state)
{
	struct fixture *f = *state;

	f->promote.kind = POLICY_PROMOTE_PNPM_CACHE;
	put(f->upper_fd, "v12/metadata/registry.npmjs.org/left-pad.json", "{}");
	put(f->upper_fd, "v12/metadata-full/registry.npmjs.org/left-pad.json", "{}");
	put(f->upper_fd, "v12/lockfile-verified.jsonl", "{}\n");
	put(f->upper_fd, "v12/dlx/x", "per run");
	plan(f);
	expect(f, "v12/metadata/registry.npmjs.org/left-pad.json", PROMOTE_ADDED, NULL);
	expect(f, "v12/metadata-full/registry.npmjs.org/left-pad.json", PROMOTE_ADDED, NULL);
	expect(f, "v12/lockfile-verified.jsonl", PROMOTE_MERGED, NULL);
	expect(f, "v12/dlx", PROMOTE_IGNORED, "not registry metadata");
}

static void test_promote_ignore_globs(void **state)
{
	struct fixture *f = *state;
	char *ignore[] = {"*.tmp", "cache/", "v11/files/*/*.part"};

	f->promote.ignore = ignore;
	f->promote.n_ignore = 3;
	put(f->upper_fd, "a.tmp", "a");
	put(f->upper_fd, "sub/deep/b.tmp", "b"); /* '*' also matches '/' */
	put(f->upper_fd, "cache/x", "xx");
	put(f->upper_fd, "cache/y/z", "zzz");
	put(f->upper_fd, "cachex", "a file, not the dir");
	put(f->upper_fd, "keep", "k");
	plan(f);
	expect(f, "a.tmp", PROMOTE_IGNORED, "ignore pattern");
	expect(f, "sub/deep/b.tmp", PROMOTE_IGNORED, "ignore pattern");
	expect(f, "cache", PROMOTE_IGNORED, "ignore pattern");
	assert_true(item_of(f, "cache")->bytes >= 5);
	assert_null(item_of(f, "cache/x"));
	expect(f, "cachex", PROMOTE_ADDED, NULL);
	expect(f, "keep", PROMOTE_ADDED, NULL);

	/* the policy's globs apply before the kind's table, to the path with its version dir */
	f->promote.kind = POLICY_PROMOTE_PNPM_STORE;
	put(f->upper_fd, "v11/files/00/abc.part", "partial");
	put(f->upper_fd, "v11/files/00/abc", "whole");
	plan(f);
	expect(f, "v11/files/00/abc.part", PROMOTE_IGNORED, "ignore pattern");
	expect(f, "v11/files/00/abc", PROMOTE_ADDED, NULL);
}

static mode_t mode_at(int dirfd, const char *path)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_mode & 07777;
}

static void set_mtime(int dirfd, const char *path, time_t sec, long nsec)
{
	struct timespec times[2] = {{sec, nsec}, {sec, nsec}};

	assert_int_equal(utimensat(dirfd, path, times, AT_SYMLINK_NOFOLLOW), 0);
}

static void test_promote_apply(void **state)
{
	struct fixture *f = *state;
	char gen_path[128], work_path[128], target[64];
	struct stat st;
	ssize_t n;

	snprintf(gen_path, sizeof(gen_path), "%s/gen", f->dir);
	snprintf(work_path, sizeof(work_path), "%s/work", f->dir);
	put(f->upper_fd, "bin/tool", "#!/bin/sh\n");
	assert_int_equal(fchmodat(f->upper_fd, "bin/tool", 06755, 0), 0);
	set_mtime(f->upper_fd, "bin/tool", 981158400, 123456789);
	assert_int_equal(fchmodat(f->upper_fd, "bin", 02775, 0), 0);
	mkdirs(f->upper_fd, "shared");
	assert_int_equal(fchmodat(f->upper_fd, "shared", 01777, 0), 0);
	put(f->upper_fd, "shared/f", "f");
	assert_int_equal(fchmodat(f->upper_fd, "shared/f", 0640, 0), 0);
	assert_int_equal(symlinkat("../outside/secret", f->upper_fd, "link"), 0);
	/* a dir of the base keeps the base's attributes in the generation */
	put(f->base_fds[1], "pkg/old", "old");
	assert_int_equal(fchmodat(f->base_fds[1], "pkg", 0750, 0), 0);
	put(f->upper_fd, "pkg/new", "new");
	assert_int_equal(fchmodat(f->upper_fd, "pkg", 0777, 0), 0);
	put(f->base_fds[1], "conflict", "base");
	put(f->upper_fd, "conflict", "job");
	assert_int_equal(mkfifoat(f->upper_fd, "fifo", 0644), 0);
	plan(f);
	f->ticks = 0;
	assert_int_equal(promote_apply(&f->pv, f->gen_fd, gen_path, f->work_fd, work_path, f->err,
				       sizeof(f->err)),
			 0);

	/* set-ID bits never reach the base; the rest of the mode, the times and the data do */
	assert_int_equal(mode_at(f->gen_fd, "bin/tool"), 0755);
	assert_int_equal(fstatat(f->gen_fd, "bin/tool", &st, 0), 0);
	assert_int_equal(st.st_mtim.tv_sec, 981158400);
	assert_int_equal(st.st_mtim.tv_nsec, 123456789);
	assert_int_equal(st.st_size, 10);
	assert_int_equal(mode_at(f->gen_fd, "bin"), 0775);
	assert_int_equal(mode_at(f->gen_fd, "shared"), 01777);
	assert_int_equal(mode_at(f->gen_fd, "shared/f"), 0640);
	/* a link is stored as a link, its target never looked at */
	n = readlinkat(f->gen_fd, "link", target, sizeof(target) - 1);
	assert_int_equal(n, 17);
	target[n] = '\0';
	assert_string_equal(target, "../outside/secret");
	assert_int_equal(mode_at(f->gen_fd, "pkg"), 0750);
	assert_int_equal(faccessat(f->gen_fd, "pkg/new", F_OK, 0), 0);
	/* only what was added */
	assert_int_equal(faccessat(f->gen_fd, "pkg/old", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(faccessat(f->gen_fd, "conflict", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(faccessat(f->gen_fd, "fifo", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	/* progress counted every item and byte */
	assert_int_equal(f->pv.written, f->pv.count[PROMOTE_ADDED]);
	assert_int_equal(f->pv.written_bytes, f->pv.bytes[PROMOTE_ADDED]);
	assert_true(f->ticks >= f->pv.written);
}

static void test_promote_copy_file_strips_setid(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	int fd;

	put(f->upper_fd, "suid", "data");
	assert_int_equal(fchmodat(f->upper_fd, "suid", 07755, 0), 0);
	fd = openat(f->upper_fd, "suid", O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(promote_copy_file(fd, &st, f->gen_fd, "copy"), 0);
	close(fd);
	assert_int_equal(mode_at(f->gen_fd, "copy"), 01755);
	/* never over an existing name */
	fd = openat(f->upper_fd, "suid", O_RDONLY);
	assert_int_equal(promote_copy_file(fd, &st, f->gen_fd, "copy"), -EEXIST);
	close(fd);
}

static void test_promote_apply_refuses_a_swapped_file(void **state)
{
	struct fixture *f = *state;
	char gen_path[128], work_path[128];

	snprintf(gen_path, sizeof(gen_path), "%s/gen", f->dir);
	snprintf(work_path, sizeof(work_path), "%s/work", f->dir);
	put(f->upper_fd, "a", "planned");
	put(f->upper_fd, "b", "planned");
	plan(f);
	/* another file under the planned name: another inode (made before the old one goes, so
	 * its number cannot be reused) */
	put(f->upper_fd, "b.new", "swapped in after the plan");
	assert_int_equal(renameat(f->upper_fd, "b.new", f->upper_fd, "b"), 0);
	assert_int_equal(promote_apply(&f->pv, f->gen_fd, gen_path, f->work_fd, work_path, f->err,
				       sizeof(f->err)),
			 -ESTALE);
	assert_non_null(strstr(f->err, "'b': changed while being promoted"));
	assert_int_equal(faccessat(f->gen_fd, "b", F_OK, AT_SYMLINK_NOFOLLOW), -1);
}

static void test_promote_nothing(void **state)
{
	struct fixture *f = *state;

	put(f->base_fds[1], "same", "same");
	put(f->upper_fd, "same", "same");
	assert_int_equal(mkfifoat(f->upper_fd, "fifo", 0644), 0);
	plan(f);
	assert_int_equal(f->pv.n_items, 2);
	assert_false(promote_has_changes(&f->pv));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_promote_add_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_overlay_markers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_hard_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_pnpm_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_npm_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_pnpm_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_ignore_globs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_copy_file_strips_setid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_promote_apply_refuses_a_swapped_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_promote_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
