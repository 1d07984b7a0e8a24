/* Unit tests of fs/layer.c: the on-disk format (whiteouts, opaque directories, private xattrs),
 * temporary names, and tree removal that never follows a link. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>

#include "unit.h"

struct fixture {
	char dir[64];
	int dirfd;
	char prefix[sizeof(UNIT_XATTR_PREFIX)];
	struct jfs_fs fs; /* only the fields layer.c reads */
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

static bool exists_at(int dirfd, const char *path)
{
	struct stat st;

	return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void test_layer_whiteout_is_char_device_0_0(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	if (mknodat(fx->dirfd, "wh", S_IFCHR | 0000, makedev(0, 0)) < 0) {
		if (errno == EPERM)
			skip();
		fail_msg("mknodat: %s", strerror(errno));
	}
	assert_int_equal(fstatat(fx->dirfd, "wh", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(jfs_is_whiteout(&st));

	/* a real device is not a whiteout: /dev/null is 1:3 (Linux lets anyone make a 0:0 device,
	 * only a privileged user a real one) */
	if (mknodat(fx->dirfd, "null", S_IFCHR | 0600, makedev(1, 3)) == 0) {
		assert_int_equal(fstatat(fx->dirfd, "null", &st, AT_SYMLINK_NOFOLLOW), 0);
		assert_false(jfs_is_whiteout(&st));
	} else {
		assert_int_equal(errno, EPERM);
	}
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFCHR | 0600;
	st.st_rdev = makedev(0, 1);
	assert_false(jfs_is_whiteout(&st));
	st.st_rdev = makedev(1, 0);
	assert_false(jfs_is_whiteout(&st));
}

static void test_layer_whiteout_made_by_make_whiteout(void **state)
{
	struct fixture *fx = *state;
	struct stat st;
	int r;

	r = jfs_make_whiteout(&fx->fs, fx->dirfd, "gone");
	if (r == -EPERM)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(fstatat(fx->dirfd, "gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(jfs_is_whiteout(&st));
	/* an existing name is not replaced */
	assert_int_equal(jfs_make_whiteout(&fx->fs, fx->dirfd, "gone"), -EEXIST);
}

static void test_layer_whiteout_not_other_types(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	assert_int_equal(unit_write_file(fx->dirfd, "file", ""), 0);
	assert_int_equal(fstatat(fx->dirfd, "file", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_rdev, 0);
	assert_false(jfs_is_whiteout(&st));

	assert_int_equal(mkfifoat(fx->dirfd, "fifo", 0600), 0);
	assert_int_equal(fstatat(fx->dirfd, "fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_false(jfs_is_whiteout(&st));

	assert_int_equal(mkdirat(fx->dirfd, "dir", 0700), 0);
	assert_int_equal(fstatat(fx->dirfd, "dir", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_false(jfs_is_whiteout(&st));

	assert_int_equal(symlinkat("target", fx->dirfd, "link"), 0);
	assert_int_equal(fstatat(fx->dirfd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_false(jfs_is_whiteout(&st));

	/* the format is a character device: a block device 0:0 is not a whiteout */
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFBLK;
	st.st_rdev = makedev(0, 0);
	assert_false(jfs_is_whiteout(&st));
}

static void test_layer_check_name_max_length(void **state)
{
	char name[NAME_MAX + 2];

	(void)state;
	memset(name, 'n', NAME_MAX);
	name[NAME_MAX] = '\0';
	assert_int_equal(strlen(name), 255);
	assert_int_equal(jfs_check_name(name), 0);

	name[NAME_MAX] = 'n';
	name[NAME_MAX + 1] = '\0';
	assert_int_equal(strlen(name), 256);
	assert_int_equal(jfs_check_name(name), -ENAMETOOLONG);

	assert_int_equal(jfs_check_name("a"), 0);
}

static void test_layer_check_name_invalid(void **state)
{
	(void)state;
	assert_int_equal(jfs_check_name(""), -EINVAL);
	assert_int_equal(jfs_check_name("a/b"), -EINVAL);
	assert_int_equal(jfs_check_name("/"), -EINVAL);
	assert_int_equal(jfs_check_name("a/"), -EINVAL);
}

static void test_layer_opaque_set_and_read(void **state)
{
	struct fixture *fx = *state;
	char val[8];
	int fd;

	assert_int_equal(mkdirat(fx->dirfd, "d", 0755), 0);
	fd = openat(fx->dirfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(jfs_is_opaque(&fx->fs, fd), 0);

	assert_int_equal(jfs_set_opaque(&fx->fs, fd), 0);
	assert_int_equal(jfs_is_opaque(&fx->fs, fd), 1);
	/* the marker is the session's prefix + "opaque" = "y", as kernel overlayfs writes it */
	assert_int_equal(fgetxattr(fd, "user.overlay.opaque", val, sizeof(val)), 1);
	assert_int_equal(val[0], 'y');

	/* setting it twice is harmless */
	assert_int_equal(jfs_set_opaque(&fx->fs, fd), 0);
	assert_int_equal(jfs_is_opaque(&fx->fs, fd), 1);
	close(fd);
}

static void test_layer_opaque_only_value_y(void **state)
{
	struct fixture *fx = *state;
	static const char *const values[] = {"n", "Y", "yes", "y\n", ""};
	int fd;

	assert_int_equal(mkdirat(fx->dirfd, "d", 0755), 0);
	fd = openat(fx->dirfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		assert_int_equal(
			fsetxattr(fd, "user.overlay.opaque", values[i], strlen(values[i]), 0), 0);
		assert_int_equal(jfs_is_opaque(&fx->fs, fd), 0);
	}
	/* "y" under another namespace's prefix is not ours */
	assert_int_equal(fremovexattr(fd, "user.overlay.opaque"), 0);
	assert_int_equal(fsetxattr(fd, "user.opaque", "y", 1, 0), 0);
	assert_int_equal(jfs_is_opaque(&fx->fs, fd), 0);
	close(fd);
}

static void test_layer_private_xattr(void **state)
{
	struct fixture *fx = *state;
	struct jfs_fs trusted = {0};
	char prefix[] = "trusted.overlay.";

	assert_true(jfs_is_private_xattr(&fx->fs, "user.overlay.opaque"));
	assert_true(jfs_is_private_xattr(&fx->fs, "user.overlay.origin"));
	assert_false(jfs_is_private_xattr(&fx->fs, "user.overlayfoo"));
	assert_false(jfs_is_private_xattr(&fx->fs, "user.overlay"));
	assert_false(jfs_is_private_xattr(&fx->fs, "user.mime_type"));
	assert_false(jfs_is_private_xattr(&fx->fs, "trusted.overlay.opaque"));
	assert_false(jfs_is_private_xattr(&fx->fs, "security.selinux"));

	trusted.xattr_prefix = prefix;
	trusted.xattr_prefix_len = strlen(prefix);
	assert_true(jfs_is_private_xattr(&trusted, "trusted.overlay.opaque"));
	assert_false(jfs_is_private_xattr(&trusted, "user.overlay.opaque"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_layer_tmpname_distinct(void **state)
{
	struct fixture *fx = *state;
	enum { N = 1000, LEN = 64 };
	char(*names)[LEN] = calloc(N, LEN);

	assert_non_null(names);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jfs_tmpname(&fx->fs, names[i], LEN), 0);
		/* a temporary is created by name in the work dir */
		assert_int_equal(jfs_check_name(names[i]), 0);
	}
	qsort(names, N, LEN, cmp_names);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(names[i - 1], names[i]);
	free(names);
}

static void test_layer_remove_tree_nested(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(mkdirat(fx->dirfd, "t", 0755), 0);
	assert_int_equal(mkdirat(fx->dirfd, "t/a", 0755), 0);
	assert_int_equal(mkdirat(fx->dirfd, "t/a/b", 0755), 0);
	assert_int_equal(mkdirat(fx->dirfd, "t/a/b/empty", 0755), 0);
	assert_int_equal(unit_write_file(fx->dirfd, "t/top", "x"), 0);
	assert_int_equal(unit_write_file(fx->dirfd, "t/a/b/deep", "x"), 0);
	assert_int_equal(mkfifoat(fx->dirfd, "t/a/fifo", 0600), 0);
	assert_int_equal(symlinkat("b", fx->dirfd, "t/a/to_b"), 0);
	assert_int_equal(unit_write_file(fx->dirfd, "keep", "x"), 0);

	assert_int_equal(jfs_remove_tree_at(fx->dirfd, "t"), 0);
	assert_false(exists_at(fx->dirfd, "t"));
	assert_true(exists_at(fx->dirfd, "keep"));

	/* a non-directory is simply unlinked */
	assert_int_equal(jfs_remove_tree_at(fx->dirfd, "keep"), 0);
	assert_false(exists_at(fx->dirfd, "keep"));
}

static void test_layer_remove_tree_keeps_symlink_target(void **state)
{
	struct fixture *fx = *state;
	char target[128];

	assert_int_equal(mkdirat(fx->dirfd, "outside", 0755), 0);
	assert_int_equal(unit_write_file(fx->dirfd, "outside/precious", "data"), 0);
	assert_int_equal(mkdirat(fx->dirfd, "outside/sub", 0755), 0);
	assert_int_equal(unit_write_file(fx->dirfd, "outside/sub/precious", "data"), 0);

	assert_int_equal(mkdirat(fx->dirfd, "t", 0755), 0);
	assert_int_equal(mkdirat(fx->dirfd, "t/d", 0755), 0);
	snprintf(target, sizeof(target), "%s/outside", fx->dir);
	assert_int_equal(symlinkat(target, fx->dirfd, "t/abs"), 0);
	assert_int_equal(symlinkat("../../outside", fx->dirfd, "t/d/rel"), 0);
	assert_int_equal(symlinkat("../outside/precious", fx->dirfd, "t/file_link"), 0);

	assert_int_equal(jfs_remove_tree_at(fx->dirfd, "t"), 0);
	assert_false(exists_at(fx->dirfd, "t"));
	assert_true(exists_at(fx->dirfd, "outside"));
	assert_true(exists_at(fx->dirfd, "outside/precious"));
	assert_true(exists_at(fx->dirfd, "outside/sub"));
	assert_true(exists_at(fx->dirfd, "outside/sub/precious"));

	/* the name given may itself be a symlink to a directory: only the link goes */
	assert_int_equal(symlinkat("outside", fx->dirfd, "top_link"), 0);
	assert_int_equal(jfs_remove_tree_at(fx->dirfd, "top_link"), 0);
	assert_false(exists_at(fx->dirfd, "top_link"));
	assert_true(exists_at(fx->dirfd, "outside/precious"));
	assert_true(exists_at(fx->dirfd, "outside/sub/precious"));
}

static void test_layer_remove_tree_missing_name(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(jfs_remove_tree_at(fx->dirfd, "never-was"), 0);
	assert_true(exists_at(fx->dirfd, "."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layer_whiteout_is_char_device_0_0, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_layer_whiteout_made_by_make_whiteout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_layer_whiteout_not_other_types, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_layer_check_name_max_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_check_name_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_opaque_set_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_opaque_only_value_y, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_private_xattr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_tmpname_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_remove_tree_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_remove_tree_keeps_symlink_target, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_layer_remove_tree_missing_name, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
