/* Unit tests of fs/copy_up.c: the data copy (content, size and holes kept) and the xattr copy
 * (everything but the session's private namespace). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "unit.h"

#define MIB (1024 * 1024)

struct fixture {
	char dir[64];
	int dirfd;
	char prefix[sizeof(UNIT_XATTR_PREFIX)];
	struct jfs_fs fs; /* only the fields copy_up.c's helpers read */
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
	fx->dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->dirfd < 0) {
		unit_rm_tree(fx->dir);
		free(fx);
		return -1;
	}
	memcpy(fx->prefix, UNIT_XATTR_PREFIX, sizeof(fx->prefix));
	fx->fs.xattr_prefix = fx->prefix;
	fx->fs.xattr_prefix_len = strlen(fx->prefix);
	fx->fs.work_fd = -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	close(fx->dirfd);
	unit_rm_tree(fx->dir);
	free(fx);
	return 0;
}

static int open_new(struct fixture *fx, const char *name)
{
	int fd = openat(fx->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	return fd;
}

static void fill(int fd, off_t off, char c, size_t len)
{
	char *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, c, len);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	free(buf);
}

/* Asserts both descriptors hold the same size bytes. */
static void assert_same_bytes(int a_fd, int b_fd, off_t size)
{
	char *a = malloc(MIB), *b = malloc(MIB);

	assert_non_null(a);
	assert_non_null(b);
	for (off_t off = 0; off < size; off += MIB) {
		size_t want = size - off < MIB ? (size_t)(size - off) : MIB;
		assert_int_equal(pread(a_fd, a, want, off), (ssize_t)want);
		assert_int_equal(pread(b_fd, b, want, off), (ssize_t)want);
		assert_memory_equal(a, b, want);
	}
	free(a);
	free(b);
}

/* A file system that cannot represent holes makes the hole checks meaningless. */
static bool supports_holes(int fd, off_t size)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (off_t)st.st_blocks * 512 < size / 2;
}

static void test_copy_up_data_keeps_holes(void **state)
{
	struct fixture *fx = *state;
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");
	off_t size = 8 * MIB + 4096;
	struct stat st;
	off_t hole;

	fill(src, 0, 'A', 4096);
	fill(src, 8 * MIB, 'B', 4096);
	if (!supports_holes(src, size)) {
		close(src);
		close(dst);
		skip();
	}

	assert_int_equal(jfs_copy_data(src, dst, size), 0);
	assert_int_equal(fstat(dst, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_same_bytes(src, dst, size);
	assert_true((off_t)st.st_blocks * 512 < size / 8);
	hole = lseek(dst, 0, SEEK_HOLE);
	assert_true(hole >= 4096);
	assert_true(hole < 8 * MIB);
	/* the data after the hole is found where it was */
	assert_int_equal(lseek(dst, hole, SEEK_DATA), 8 * MIB);
	close(src);
	close(dst);
}

static void test_copy_up_data_trailing_hole(void **state)
{
	struct fixture *fx = *state;
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");
	off_t size = 8 * MIB;
	struct stat st;

	/* data, then nothing but a hole to the end: the size comes from the truncate alone */
	fill(src, 0, 'A', 4096);
	assert_int_equal(ftruncate(src, size), 0);
	if (!supports_holes(src, size)) {
		close(src);
		close(dst);
		skip();
	}

	assert_int_equal(jfs_copy_data(src, dst, size), 0);
	assert_int_equal(fstat(dst, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_true((off_t)st.st_blocks * 512 < size / 8);
	assert_same_bytes(src, dst, size);

	/* and a file that is one hole */
	close(dst);
	dst = open_new(fx, "dst2");
	assert_int_equal(ftruncate(src, 0), 0);
	assert_int_equal(ftruncate(src, size), 0);
	assert_int_equal(jfs_copy_data(src, dst, size), 0);
	assert_int_equal(fstat(dst, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_int_equal(lseek(dst, 0, SEEK_HOLE), 0);
	assert_same_bytes(src, dst, size);
	close(src);
	close(dst);
}

static void test_copy_up_data_dense(void **state)
{
	struct fixture *fx = *state;
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");
	off_t size = 3 * MIB + 123; /* several copy chunks and a ragged end */
	unsigned char *buf = malloc((size_t)size);
	uint32_t x = 2463534242u;
	struct stat st;

	assert_non_null(buf);
	for (off_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	assert_int_equal(pwrite(src, buf, (size_t)size, 0), size);
	free(buf);

	assert_int_equal(jfs_copy_data(src, dst, size), 0);
	assert_int_equal(fstat(dst, &st), 0);
	assert_int_equal(st.st_size, size);
	assert_same_bytes(src, dst, size);
	close(src);
	close(dst);
}

static void test_copy_up_data_empty(void **state)
{
	struct fixture *fx = *state;
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");
	struct stat st;

	assert_int_equal(jfs_copy_data(src, dst, 0), 0);
	assert_int_equal(fstat(dst, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	close(src);
	close(dst);
}

static void assert_xattr(int fd, const char *name, const void *value, size_t len)
{
	char buf[256];

	assert_int_equal(fgetxattr(fd, name, buf, sizeof(buf)), (ssize_t)len);
	assert_memory_equal(buf, value, len);
}

static void assert_no_xattr(int fd, const char *name)
{
	char buf[256];

	assert_int_equal(fgetxattr(fd, name, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
}

static void test_copy_up_xattrs_skip_private(void **state)
{
	struct fixture *fx = *state;
	static const char binary[] = {'a', '\0', 'b', '\xff'};
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");
	int src_path;

	assert_int_equal(fsetxattr(src, "user.mime_type", "text/plain", 10, 0), 0);
	assert_int_equal(fsetxattr(src, "user.binary", binary, sizeof(binary), 0), 0);
	assert_int_equal(fsetxattr(src, "user.empty", "", 0, 0), 0);
	assert_int_equal(fsetxattr(src, "user.overlay.opaque", "y", 1, 0), 0);
	assert_int_equal(fsetxattr(src, "user.overlay.origin", "xyz", 3, 0), 0);

	/* the engine copies from an O_PATH descriptor of the lower object */
	src_path = openat(fx->dirfd, "src", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(src_path >= 0);
	assert_int_equal(jfs_copy_xattrs(&fx->fs, src_path, dst), 0);

	assert_xattr(dst, "user.mime_type", "text/plain", 10);
	assert_xattr(dst, "user.binary", binary, sizeof(binary));
	assert_xattr(dst, "user.empty", "", 0);
	assert_no_xattr(dst, "user.overlay.opaque");
	assert_no_xattr(dst, "user.overlay.origin");
	/* the source is untouched */
	assert_xattr(src, "user.overlay.origin", "xyz", 3);
	close(src_path);
	close(src);
	close(dst);
}

static void test_copy_up_xattrs_private_is_per_session(void **state)
{
	struct fixture *fx = *state;
	char prefix[] = "trusted.overlay.";
	struct jfs_fs trusted = {.xattr_prefix = prefix, .xattr_prefix_len = sizeof(prefix) - 1};
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");

	/* a session keeping its own xattrs under trusted. copies user.overlay.* as user data */
	assert_int_equal(fsetxattr(src, "user.overlay.opaque", "y", 1, 0), 0);
	assert_int_equal(jfs_copy_xattrs(&trusted, src, dst), 0);
	assert_xattr(dst, "user.overlay.opaque", "y", 1);
	close(src);
	close(dst);
}

static void test_copy_up_xattrs_none(void **state)
{
	struct fixture *fx = *state;
	int src = open_new(fx, "src"), dst = open_new(fx, "dst");
	char names[1024];
	ssize_t len;

	assert_int_equal(jfs_copy_xattrs(&fx->fs, src, dst), 0);
	len = flistxattr(dst, names, sizeof(names));
	assert_true(len >= 0);
	for (char *name = names; name < names + len; name += strlen(name) + 1)
		assert_true(strncmp(name, "user.", 5) != 0);
	close(src);
	close(dst);
}

static void test_copy_up_xattrs_directory(void **state)
{
	struct fixture *fx = *state;
	int src, dst;

	assert_int_equal(mkdirat(fx->dirfd, "src", 0755), 0);
	assert_int_equal(mkdirat(fx->dirfd, "dst", 0755), 0);
	src = openat(fx->dirfd, "src", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dst = openat(fx->dirfd, "dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(src >= 0 && dst >= 0);
	assert_int_equal(fsetxattr(src, "user.tag", "v", 1, 0), 0);
	assert_int_equal(jfs_set_opaque(&fx->fs, src), 0);

	/* a copied-up directory keeps its lowers merged: the opaque marker must not follow it */
	assert_int_equal(jfs_copy_xattrs(&fx->fs, src, dst), 0);
	assert_xattr(dst, "user.tag", "v", 1);
	assert_int_equal(jfs_is_opaque(&fx->fs, dst), 0);
	close(src);
	close(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_up_data_keeps_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_data_trailing_hole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_data_dense, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_data_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_xattrs_skip_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_xattrs_private_is_per_session, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_xattrs_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_up_xattrs_directory, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
