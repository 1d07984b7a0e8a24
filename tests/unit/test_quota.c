/* Unit tests of fs/quota.c: the walk that measures an upper (hard links once, nothing below a
 * symlink), reservations, the per-inode ledger, and statfs against the quota. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/statvfs.h>

#include "unit.h"

#define MIB (1024 * 1024)

struct fixture {
	char dir[64];
	struct jfs_layer upper;
	struct jfs_fs fs; /* only the fields quota.c reads */
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	if (unit_mkdtemp(fx->dir, sizeof(fx->dir)) < 0) {
		free(fx);
		return -1;
	}
	fx->upper.fd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->upper.fd < 0) {
		unit_rm_tree(fx->dir);
		free(fx);
		return -1;
	}
	fx->upper.tree_fd = -1;
	fx->fs.layers = &fx->upper;
	fx->fs.nlayers = 1;
	fx->fs.opts.quota = 64 * MIB;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	close(fx->upper.fd);
	unit_rm_tree(fx->dir);
	free(fx);
	return 0;
}

static void write_bytes(int dirfd, const char *name, size_t size)
{
	char *buf = calloc(1, size);
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_non_null(buf);
	assert_true(fd >= 0);
	memset(buf, 'q', size);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	assert_int_equal(fsync(fd), 0);
	close(fd);
	free(buf);
}

static int64_t blocks_of(int dirfd, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), 0);
	return (int64_t)st.st_blocks * 512;
}

static void test_quota_measure_counts_everything_once(void **state)
{
	struct fixture *fx = *state;
	int dirfd = fx->upper.fd, subfd;
	int64_t expected, before;

	assert_int_equal(mkdirat(dirfd, "sub", 0755), 0);
	subfd = openat(dirfd, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(subfd >= 0);
	write_bytes(dirfd, "one", MIB);
	write_bytes(subfd, "two", 2 * MIB);
	assert_int_equal(symlinkat("/usr", dirfd, "link-out"), 0);
	expected = blocks_of(dirfd, "") + blocks_of(dirfd, "sub") + blocks_of(dirfd, "one") +
		   blocks_of(subfd, "two") + blocks_of(dirfd, "link-out");
	assert_int_equal(jfs_quota_measure(&fx->fs), 0);
	assert_int_equal(fx->fs.quota_used, expected);
	before = fx->fs.quota_used;

	/* three more names of one file: the same blocks */
	assert_int_equal(linkat(dirfd, "one", subfd, "one-a", 0), 0);
	assert_int_equal(linkat(dirfd, "one", subfd, "one-b", 0), 0);
	assert_int_equal(linkat(dirfd, "one", dirfd, "one-c", 0), 0);
	assert_int_equal(jfs_quota_measure(&fx->fs), 0);
	expected = blocks_of(dirfd, "") + blocks_of(dirfd, "sub") + blocks_of(dirfd, "one") +
		   blocks_of(subfd, "two") + blocks_of(dirfd, "link-out");
	assert_int_equal(fx->fs.quota_used, expected);
	/* a few names fit in the directories' blocks: only the links' count changed */
	assert_int_equal(fx->fs.quota_used, before);
	close(subfd);
}

static void test_quota_measure_off_without_quota(void **state)
{
	struct fixture *fx = *state;

	write_bytes(fx->upper.fd, "one", MIB);
	fx->fs.opts.quota = 0;
	assert_int_equal(jfs_quota_measure(&fx->fs), 0);
	assert_int_equal(fx->fs.quota_used, 0);
	assert_int_equal(jfs_quota_reserve(&fx->fs, 1LL << 40, false), 0);
}

static void test_quota_reserve(void **state)
{
	struct fixture *fx = *state;
	struct jfs_fs *fs = &fx->fs;

	fs->opts.quota = 10000;
	fs->quota_used = 0;
	assert_int_equal(jfs_quota_reserve(fs, 6000, false), 6000);
	/* all or nothing */
	assert_int_equal(jfs_quota_reserve(fs, 6000, false), -ENOSPC);
	assert_int_equal(fs->quota_used, 6000);
	/* a write gets what is left */
	assert_int_equal(jfs_quota_reserve(fs, 6000, true), 4000);
	assert_int_equal(fs->quota_used, 10000);
	/* full: nothing, not even an empty file */
	assert_int_equal(jfs_quota_reserve(fs, 0, false), -ENOSPC);
	assert_int_equal(jfs_quota_reserve(fs, 1, true), -ENOSPC);
	jfs_quota_release(fs, 4000);
	assert_int_equal(jfs_quota_reserve(fs, 0, false), 0);
	assert_int_equal(fs->quota_used, 6000);
}

static void test_quota_ledger(void **state)
{
	struct fixture *fx = *state;
	struct jfs_fs *fs = &fx->fs;
	struct jfs_ilayer layer = {.idx = JFS_UPPER, .fd = -1};
	struct jfs_inode inode = {.nlayers = 1, .layers = &layer};
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 4096, .st_blocks = 8};

	fs->quota_used = 4096; /* the walk counted the file */
	jfs_quota_inode_init(fs, &inode, &st);
	assert_int_equal(inode.quota_blocks, 8);
	assert_int_equal(inode.quota_dense, 4096);

	/* grown, seen twice (two concurrent writes): charged once */
	st.st_size = 3 * 4096;
	st.st_blocks = 24;
	jfs_quota_observe(fs, &inode, &st);
	jfs_quota_observe(fs, &inode, &st);
	assert_int_equal(fs->quota_used, 3 * 4096);
	/* truncated */
	st.st_size = 0;
	st.st_blocks = 0;
	jfs_quota_observe(fs, &inode, &st);
	assert_int_equal(fs->quota_used, 0);
	st.st_size = 2 * 4096;
	st.st_blocks = 16;
	jfs_quota_observe(fs, &inode, &st);
	assert_int_equal(fs->quota_used, 2 * 4096);

	/* the last name gone: discharged, and later writes to it are not counted */
	jfs_quota_removed(fs, &inode);
	assert_int_equal(fs->quota_used, 0);
	st.st_blocks = 64;
	jfs_quota_observe(fs, &inode, &st);
	assert_int_equal(fs->quota_used, 0);

	/* a lower object enters the upper by a copy-up */
	layer.idx = 1;
	jfs_quota_inode_init(fs, &inode, &st);
	assert_int_equal(inode.quota_blocks, JFS_QUOTA_UNCHARGED);
	jfs_quota_observe(fs, &inode, &st);
	assert_int_equal(fs->quota_used, 0);
	jfs_quota_charge(fs, &inode, &st);
	assert_int_equal(fs->quota_used, 64 * 512);
}

static void test_quota_write_skips_allocated(void **state)
{
	struct fixture *fx = *state;
	struct jfs_fs *fs = &fx->fs;
	struct jfs_ilayer layer = {.idx = JFS_UPPER, .fd = -1};
	struct jfs_inode inode = {.nlayers = 1, .layers = &layer};
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = MIB, .st_blocks = MIB / 512};
	struct jfs_quota_op op;

	fs->opts.quota = MIB;
	fs->quota_used = MIB;
	jfs_quota_inode_init(fs, &inode, &st);
	/* full, but an overwrite of allocated blocks takes nothing */
	assert_int_equal(jfs_quota_write_begin(fs, &inode, 0, 65536, &op), 65536);
	assert_false(op.observe);
	assert_int_equal(op.reserved, 0);
	assert_int_equal(jfs_quota_write_begin(fs, &inode, MIB - 1, 2, &op), -ENOSPC);

	/* a sparse file: any write may allocate */
	st.st_size = 16 * MIB;
	jfs_quota_observe(fs, &inode, &st);
	fs->quota_used = 0;
	assert_int_equal(jfs_quota_write_begin(fs, &inode, 0, 4096, &op), 4096);
	assert_true(op.observe);
	assert_int_equal(op.reserved, 4096);
	jfs_quota_release(fs, op.reserved);
	assert_int_equal(jfs_quota_fallocate_begin(fs, &inode, 0, 0, 2 * MIB, &op), -ENOSPC);
	assert_int_equal(jfs_quota_fallocate_begin(fs, &inode,
						   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
						   2 * MIB, &op),
			 0);
	assert_true(op.observe);
}

static void test_quota_statfs(void **state)
{
	struct fixture *fx = *state;
	struct jfs_fs *fs = &fx->fs;
	struct statvfs sv = {.f_bsize = 4096,
			     .f_frsize = 4096,
			     .f_blocks = 1000000,
			     .f_bfree = 500000,
			     .f_bavail = 400000};

	fs->opts.quota = 40 * 4096;
	fs->quota_used = 8 * 4096;
	jfs_quota_statfs(fs, &sv);
	assert_int_equal(sv.f_blocks, 40);
	assert_int_equal(sv.f_bfree, 32);
	assert_int_equal(sv.f_bavail, 32);

	/* never more than the upper's filesystem has */
	sv.f_bfree = 20;
	sv.f_bavail = 10;
	jfs_quota_statfs(fs, &sv);
	assert_int_equal(sv.f_bfree, 20);
	assert_int_equal(sv.f_bavail, 10);

	/* past the quota: full, not negative */
	fs->quota_used = 50 * 4096;
	sv.f_bfree = sv.f_bavail = 500000;
	jfs_quota_statfs(fs, &sv);
	assert_int_equal(sv.f_blocks, 40);
	assert_int_equal(sv.f_bfree, 0);
	assert_int_equal(sv.f_bavail, 0);

	/* no quota: the filesystem's own numbers */
	fs->opts.quota = 0;
	sv.f_blocks = 1000000;
	sv.f_bfree = 500000;
	jfs_quota_statfs(fs, &sv);
	assert_int_equal(sv.f_blocks, 1000000);
	assert_int_equal(sv.f_bfree, 500000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quota_measure_counts_everything_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quota_measure_off_without_quota, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quota_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_ledger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_write_skips_allocated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_statfs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
