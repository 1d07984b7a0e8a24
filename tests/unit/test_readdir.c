/* Unit tests of fs/readdir.c: merged listings over an upper and a lower layer (de-duplicated, upper
 * first, whiteouts filtered, opaque directories alone) and the emptiness check rmdir relies on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>

#include "unit.h"

static int setup(void **state)
{
	struct unit_overlay *ov = NULL;

	if (unit_overlay_open(1024, &ov) < 0)
		return -1;
	*state = ov;
	return 0;
}

/* A descriptor cache of size 0: a listing re-opens every layer of the directory by name. */
static int setup_evicting(void **state)
{
	struct unit_overlay *ov = NULL;

	if (unit_overlay_open(0, &ov) < 0)
		return -1;
	*state = ov;
	return 0;
}

static int teardown(void **state)
{
	unit_overlay_close(*state);
	return 0;
}

/* Every lookup was forgotten: no inode left, the root's children all gone, no cached descriptor. */
static void assert_all_forgotten(struct jfs_fs *fs)
{
	assert_int_equal(unit_itable_count(fs), 0);
	assert_int_equal(fs->root->nref, 0);
	assert_int_equal(__atomic_load_n(&fs->nfds, __ATOMIC_RELAXED), 0);
}

/* Index of name in the listing, asserting it appears exactly once; -1 when absent. */
static ssize_t find_once(const struct jfs_dirlist *list, const char *name)
{
	ssize_t found = -1;

	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->entries[i].name, name))
			continue;
		assert_true(found < 0);
		found = (ssize_t)i;
	}
	return found;
}

static void assert_dots_first(struct jfs_dirlist *list, struct jfs_inode *dir, uint64_t parent_ino)
{
	assert_true(list->count >= 2);
	assert_string_equal(list->entries[0].name, ".");
	assert_int_equal(list->entries[0].type, DT_DIR);
	assert_int_equal(list->entries[0].ino, dir->ino);
	assert_string_equal(list->entries[1].name, "..");
	assert_int_equal(list->entries[1].type, DT_DIR);
	assert_int_equal(list->entries[1].ino, parent_ino);
	assert_true(find_once(list, ".") == 0);
	assert_true(find_once(list, "..") == 1);
}

static void test_readdir_dots_first(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_dirlist list;

	assert_int_equal(jfs_dirlist_build(fs, fs->root, &list), 0);
	assert_int_equal(list.count, 2);
	/* the root is its own parent */
	assert_dots_first(&list, fs->root, FUSE_ROOT_ID);
	jfs_dirlist_free(&list);
	assert_int_equal(list.count, 0);
	assert_null(list.entries);
}

static void test_readdir_dedup_upper_wins(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_dirlist list;
	struct stat st;
	ssize_t i;

	assert_int_equal(unit_write_file(ov->upper_fd, "only_up", "x"), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "only_low", "x"), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "same", "u"), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "same", "l"), 0);
	/* the types differ between layers: the upper's is the one reported */
	assert_int_equal(mkdirat(ov->upper_fd, "dir_over_file", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "dir_over_file", "x"), 0);
	assert_int_equal(symlinkat("t", ov->upper_fd, "link_over_dir"), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "link_over_dir", 0755), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "merged", 0755), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "merged", 0755), 0);

	assert_int_equal(jfs_dirlist_build(fs, fs->root, &list), 0);
	assert_dots_first(&list, fs->root, FUSE_ROOT_ID);
	assert_int_equal(list.count, 2 + 6);

	i = find_once(&list, "only_up");
	assert_true(i >= 2);
	assert_int_equal(list.entries[i].type, DT_REG);
	i = find_once(&list, "only_low");
	assert_true(i >= 2);
	assert_int_equal(list.entries[i].type, DT_REG);
	assert_int_equal(fstatat(ov->lower_fd, "only_low", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(list.entries[i].ino, jfs_inomap_view_ino(&fs->inomap, 1, st.st_ino));

	i = find_once(&list, "same");
	assert_true(i >= 2);
	assert_int_equal(fstatat(ov->upper_fd, "same", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(list.entries[i].ino,
			 jfs_inomap_view_ino(&fs->inomap, JFS_UPPER, st.st_ino));

	i = find_once(&list, "dir_over_file");
	assert_true(i >= 2);
	assert_int_equal(list.entries[i].type, DT_DIR);
	i = find_once(&list, "link_over_dir");
	assert_true(i >= 2);
	assert_int_equal(list.entries[i].type, DT_LNK);
	i = find_once(&list, "merged");
	assert_true(i >= 2);
	assert_int_equal(list.entries[i].type, DT_DIR);
	jfs_dirlist_free(&list);
}

static void test_readdir_whiteouts_filtered(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_dirlist list;
	bool made_chr;
	ssize_t i;
	int r;

	assert_int_equal(unit_write_file(ov->lower_fd, "gone", "x"), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "gone_dir", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "kept", "x"), 0);
	r = unit_mkwhiteout(ov->upper_fd, "gone");
	if (r == -EPERM)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(unit_mkwhiteout(ov->upper_fd, "gone_dir"), 0);
	assert_int_equal(unit_mkwhiteout(ov->upper_fd, "nothing_below"), 0);
	/* a real character device is listed, where we may make one */
	made_chr = mknodat(ov->upper_fd, "null", S_IFCHR | 0600, makedev(1, 3)) == 0;
	if (!made_chr) {
		assert_int_equal(errno, EPERM);
		assert_int_equal(mkfifoat(ov->upper_fd, "null", 0600), 0);
	}

	assert_int_equal(jfs_dirlist_build(fs, fs->root, &list), 0);
	assert_dots_first(&list, fs->root, FUSE_ROOT_ID);
	assert_true(find_once(&list, "gone") < 0);
	assert_true(find_once(&list, "gone_dir") < 0);
	assert_true(find_once(&list, "nothing_below") < 0);
	assert_true(find_once(&list, "kept") >= 2);
	i = find_once(&list, "null");
	assert_true(i >= 2);
	assert_int_equal(list.entries[i].type, made_chr ? DT_CHR : DT_FIFO);
	assert_int_equal(list.count, 2 + 2);
	jfs_dirlist_free(&list);
}

static void test_readdir_opaque_dir_lists_upper_only(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_dirlist list;
	struct jfs_inode *d;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/below", "x"), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/both", "x"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "d/own", "x"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d/both", 0755), 0);
	assert_int_equal(unit_mkopaque(ov->upper_fd, "d"), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(jfs_dirlist_build(fs, d, &list), 0);
	assert_dots_first(&list, d, FUSE_ROOT_ID);
	assert_int_equal(list.count, 2 + 2);
	assert_true(find_once(&list, "own") >= 2);
	assert_true(find_once(&list, "both") >= 2);
	assert_int_equal(list.entries[find_once(&list, "both")].type, DT_DIR);
	assert_true(find_once(&list, "below") < 0);
	jfs_dirlist_free(&list);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_readdir_merged_subdir(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_dirlist list;
	struct jfs_inode *d;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/below", "x"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "d/own", "x"), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(d->nlayers, 2);
	assert_int_equal(jfs_dirlist_build(fs, d, &list), 0);
	assert_dots_first(&list, d, FUSE_ROOT_ID);
	assert_int_equal(list.count, 2 + 2);
	assert_true(find_once(&list, "own") >= 2);
	assert_true(find_once(&list, "below") >= 2);
	jfs_dirlist_free(&list);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_readdir_dir_is_empty(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *d;
	int r;

	/* merged, every lower entry whited out in the upper */
	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/a", "x"), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "d/b", 0755), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	r = unit_mkwhiteout(ov->upper_fd, "d/a");
	if (r == -EPERM)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(unit_mkwhiteout(ov->upper_fd, "d/b"), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(d->nlayers, 2);
	assert_int_equal(jfs_dir_is_empty(fs, d), 1);

	/* one lower entry not whited out */
	assert_int_equal(unit_write_file(ov->lower_fd, "d/c", "x"), 0);
	assert_int_equal(jfs_dir_is_empty(fs, d), 0);
	assert_int_equal(unlinkat(ov->lower_fd, "d/c", 0), 0);
	assert_int_equal(jfs_dir_is_empty(fs, d), 1);

	/* one upper entry */
	assert_int_equal(unit_write_file(ov->upper_fd, "d/u", "x"), 0);
	assert_int_equal(jfs_dir_is_empty(fs, d), 0);

	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_readdir_dir_is_empty_single_layer(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *e, *f;

	assert_int_equal(mkdirat(ov->upper_fd, "empty", 0755), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "full", 0755), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "full/sub", 0755), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "empty", true, &e), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "full", true, &f), 0);
	assert_int_equal(jfs_dir_is_empty(fs, e), 1);
	assert_int_equal(jfs_dir_is_empty(fs, f), 0);
	assert_int_equal(jfs_dir_is_empty(fs, fs->root), 0);
	jfs_inode_forget(fs, e, 1);
	jfs_inode_forget(fs, f, 1);
	assert_all_forgotten(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_readdir_dots_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_dedup_upper_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_whiteouts_filtered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_opaque_dir_lists_upper_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readdir_merged_subdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_dir_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_dir_is_empty_single_layer, setup,
						teardown),
		/* again with every layer of a directory re-opened by name */
		{"test_readdir_opaque_dir_lists_upper_only_evicting",
		 test_readdir_opaque_dir_lists_upper_only, setup_evicting, teardown, NULL},
		{"test_readdir_merged_subdir_evicting", test_readdir_merged_subdir, setup_evicting,
		 teardown, NULL},
		{"test_readdir_dir_is_empty_evicting", test_readdir_dir_is_empty, setup_evicting,
		 teardown, NULL},
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
