/* Unit tests of fs/inode.c: the inode map (stable view numbers) and the inode table (lookup
 * counting, forget, identity across layers, getattr), driven through lookups on real layers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>

#include "unit.h"

/* --- the inode map ---------------------------------------------------------------------------- */

static int setup_map(void **state)
{
	struct jfs_inomap *m = calloc(1, sizeof(*m));

	if (!m)
		return -1;
	if (jfs_inomap_init(m) < 0) {
		free(m);
		return -1;
	}
	*state = m;
	return 0;
}

static int teardown_map(void **state)
{
	struct jfs_inomap *m = *state;

	jfs_inomap_destroy(m);
	free(m);
	return 0;
}

static void test_inode_map_differs_per_layer(void **state)
{
	struct jfs_inomap *m = *state;
	uint64_t upper = jfs_inomap_view_ino(m, 0, 42);
	uint64_t lower1 = jfs_inomap_view_ino(m, 1, 42);
	uint64_t lower2 = jfs_inomap_view_ino(m, 2, 42);

	assert_int_not_equal(upper, lower1);
	assert_int_not_equal(upper, lower2);
	assert_int_not_equal(lower1, lower2);
	assert_int_not_equal(jfs_inomap_view_ino(m, 0, 43), upper);
	/* the root's node id is never handed to an object */
	assert_int_not_equal(upper, FUSE_ROOT_ID);
	assert_int_not_equal(jfs_inomap_view_ino(m, 0, 1), FUSE_ROOT_ID);
}

static void test_inode_map_stable(void **state)
{
	struct jfs_inomap *m = *state;
	uint64_t first = jfs_inomap_view_ino(m, 3, 123456);

	for (int i = 0; i < 100; i++) {
		assert_int_equal(jfs_inomap_view_ino(m, 3, 123456), first);
		(void)jfs_inomap_view_ino(m, 3, (ino_t)i);
	}
	assert_int_equal(jfs_inomap_view_ino(m, 3, 123456), first);
}

static void test_inode_map_alias_overrides_and_del_restores(void **state)
{
	struct jfs_inomap *m = *state;
	uint64_t lower = jfs_inomap_view_ino(m, 1, 100);
	uint64_t upper = jfs_inomap_view_ino(m, 0, 555);

	assert_int_not_equal(lower, upper);
	/* a copy-up: the upper object keeps the number it had below */
	assert_int_equal(jfs_inomap_add(m, 0, 555, lower), 0);
	assert_int_equal(jfs_inomap_view_ino(m, 0, 555), lower);
	assert_int_equal(jfs_inomap_view_ino(m, 0, 555), lower);
	/* the alias is per layer and per real number */
	assert_int_equal(jfs_inomap_view_ino(m, 1, 555), jfs_inomap_view_ino(m, 1, 555));
	assert_int_not_equal(jfs_inomap_view_ino(m, 1, 555), lower);
	assert_int_not_equal(jfs_inomap_view_ino(m, 0, 556), lower);
	assert_int_equal(jfs_inomap_view_ino(m, 1, 100), lower);

	/* adding again replaces the alias */
	assert_int_equal(jfs_inomap_add(m, 0, 555, 777), 0);
	assert_int_equal(jfs_inomap_view_ino(m, 0, 555), 777);

	jfs_inomap_del(m, 0, 555);
	assert_int_equal(jfs_inomap_view_ino(m, 0, 555), upper);
	/* deleting what is not there is harmless */
	jfs_inomap_del(m, 0, 555);
	jfs_inomap_del(m, 5, 1);
	assert_int_equal(jfs_inomap_view_ino(m, 0, 555), upper);
}

static void test_inode_map_huge_real_ino(void **state)
{
	struct jfs_inomap *m = *state;
	ino_t big = (ino_t)1 << 48;
	uint64_t a = jfs_inomap_view_ino(m, 0, big);
	uint64_t b = jfs_inomap_view_ino(m, 0, big + 1);
	uint64_t c = jfs_inomap_view_ino(m, 1, big);
	uint64_t d = jfs_inomap_view_ino(m, 0, (ino_t)UINT64_MAX);

	assert_int_equal(jfs_inomap_view_ino(m, 0, big), a);
	assert_int_equal(jfs_inomap_view_ino(m, 0, big + 1), b);
	assert_int_equal(jfs_inomap_view_ino(m, 1, big), c);
	assert_int_equal(jfs_inomap_view_ino(m, 0, (ino_t)UINT64_MAX), d);
	assert_int_not_equal(a, b);
	assert_int_not_equal(a, c);
	assert_int_not_equal(a, d);
	assert_int_not_equal(b, c);
	/* an allocated number must not collide with an encoded one: the encoding would truncate the
	 * real number to its low bits, 0 here */
	assert_int_not_equal(a, jfs_inomap_view_ino(m, 0, 0));
	assert_int_not_equal(a, jfs_inomap_view_ino(m, 1, 0));
	assert_int_not_equal(c, jfs_inomap_view_ino(m, 0, 0));
	assert_int_not_equal(a, FUSE_ROOT_ID);
	assert_int_not_equal(a, jfs_inomap_view_ino(m, 0, big - 1));
	assert_int_not_equal(a, jfs_inomap_view_ino(m, 1, big - 1));
}

/* --- the inode table -------------------------------------------------------------------------- */

static int setup_table(void **state)
{
	struct unit_overlay *ov = NULL;

	if (unit_overlay_open(1024, &ov) < 0)
		return -1;
	*state = ov;
	return 0;
}

/* The same table with a descriptor cache of size 0: every lookup evicts, every use re-opens. */
static int setup_table_evicting(void **state)
{
	struct unit_overlay *ov = NULL;

	if (unit_overlay_open(0, &ov) < 0)
		return -1;
	*state = ov;
	return 0;
}

static int teardown_table(void **state)
{
	unit_overlay_close(*state);
	return 0;
}

/* Every lookup was forgotten: no inode left, the root's children all gone, no cached descriptor. */
static void assert_all_forgotten(struct jfs_fs *fs)
{
	assert_int_equal(unit_itable_count(fs), 0);
	assert_int_equal(fs->root->nref, 0);
	assert_int_equal(fs->root->nlookup, 1);
	assert_int_equal(__atomic_load_n(&fs->nfds, __ATOMIC_RELAXED), 0);
}

static ino_t real_ino_at(int dirfd, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ino;
}

static void test_inode_root_is_pinned(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_inode *root = ov->fs.root;

	assert_non_null(root);
	assert_int_equal(root->ino, FUSE_ROOT_ID);
	assert_int_equal(root->type, S_IFDIR);
	assert_int_equal(root->nlookup, 1);
	assert_int_equal(root->nlayers, 2);
	assert_int_equal(root->layers[0].idx, JFS_UPPER);
	assert_int_equal(root->layers[1].idx, 1);
	assert_ptr_equal(jfs_inode_from_id(&ov->fs, FUSE_ROOT_ID), root);
	assert_int_equal(jfs_inode_id(&ov->fs, root), FUSE_ROOT_ID);
	assert_int_equal(unit_itable_count(&ov->fs), 0);
}

static void test_inode_lookup_counts_and_forget_frees(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *a, *b;
	uint64_t ino;

	assert_int_equal(unit_write_file(ov->upper_fd, "f", "x"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &a), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(a->nlookup, 2);
	assert_int_equal(a->nref, 0);
	assert_ptr_equal(a->parent, fs->root);
	assert_int_equal(fs->root->nref, 1); /* one child pins its parent once */
	assert_int_equal(unit_itable_count(fs), 1);
	assert_ptr_equal(jfs_inode_from_id(fs, jfs_inode_id(fs, a)), a);
	ino = a->ino;
	assert_int_equal(
		ino, jfs_inomap_view_ino(&fs->inomap, JFS_UPPER, real_ino_at(ov->upper_fd, "f")));

	jfs_inode_forget(fs, a, 1);
	assert_int_equal(a->nlookup, 1);
	assert_int_equal(unit_itable_count(fs), 1);
	jfs_inode_forget(fs, a, 1);
	/* freed at zero: gone from the table, its hold on the parent dropped */
	assert_int_equal(unit_itable_count(fs), 0);
	assert_int_equal(fs->root->nref, 0);
	assert_int_equal(fs->root->nlookup, 1);

	/* a new object for the same name has the same view number */
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &a), 0);
	assert_int_equal(a->nlookup, 1);
	assert_int_equal(a->ino, ino);
	jfs_inode_forget(fs, a, 1);
	assert_all_forgotten(fs);
}

static void test_inode_internal_refs_and_forget_many(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *a, *b, *c;

	assert_int_equal(unit_write_file(ov->upper_fd, "f", "x"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", false, &a), 0);
	assert_int_equal(a->nref, 1);
	assert_int_equal(a->nlookup, 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &b), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &c), 0);
	assert_ptr_equal(a, b);
	assert_ptr_equal(a, c);
	assert_int_equal(a->nlookup, 2);
	/* the kernel's references going away does not free what we still hold */
	jfs_inode_forget(fs, a, 2);
	assert_int_equal(unit_itable_count(fs), 1);
	assert_int_equal(a->nref, 1);
	jfs_inode_put(fs, a);
	assert_all_forgotten(fs);
}

static void test_inode_child_pins_parent(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *d, *f;

	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "d/f", "x"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(jfs_lookup(fs, d, "f", true, &f), 0);
	assert_ptr_equal(f->parent, d);
	assert_int_equal(d->nref, 1);
	/* the directory outlives the kernel's forget while a child is known */
	jfs_inode_forget(fs, d, 1);
	assert_int_equal(unit_itable_count(fs), 2);
	assert_int_equal(d->nlookup, 0);
	/* the child's forget frees both, child first */
	jfs_inode_forget(fs, f, 1);
	assert_all_forgotten(fs);
}

static void test_inode_upper_hard_links_share_inode(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *a, *b;

	assert_int_equal(unit_write_file(ov->upper_fd, "a", "x"), 0);
	assert_int_equal(linkat(ov->upper_fd, "a", ov->upper_fd, "b", 0), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "a", true, &a), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "b", true, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(a->nlookup, 2);
	assert_int_equal(unit_itable_count(fs), 1);
	jfs_inode_forget(fs, a, 2);
	assert_all_forgotten(fs);
}

static void test_inode_lower_hard_links_are_separate(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *a, *a2, *b;

	/* like overlayfs without an index: each name of a lower hard link copies up alone */
	assert_int_equal(unit_write_file(ov->lower_fd, "a", "x"), 0);
	assert_int_equal(linkat(ov->lower_fd, "a", ov->lower_fd, "b", 0), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "a", true, &a), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "b", true, &b), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "a", true, &a2), 0);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(a, a2);
	assert_int_equal(a->nlookup, 2);
	assert_int_equal(b->nlookup, 1);
	assert_int_equal(a->layers[0].idx, 1);
	jfs_inode_forget(fs, a, 2);
	jfs_inode_forget(fs, b, 1);
	assert_all_forgotten(fs);
}

static void test_inode_lookup_missing(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *sentinel = (struct jfs_inode *)&sentinel, *inode = sentinel;
	char long_name[NAME_MAX + 2];

	assert_int_equal(jfs_lookup(fs, fs->root, "nope", true, &inode), -ENOENT);
	assert_ptr_equal(inode, sentinel); /* ret_* set only on success */
	assert_int_equal(jfs_lookup(fs, fs->root, "a/b", true, &inode), -EINVAL);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(jfs_lookup(fs, fs->root, long_name, true, &inode), -ENAMETOOLONG);
	assert_ptr_equal(inode, sentinel);
	assert_all_forgotten(fs);
}

static void test_inode_lookup_below_file(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *f, *inode = NULL;

	assert_int_equal(unit_write_file(ov->upper_fd, "f", "x"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &f), 0);
	assert_int_equal(jfs_lookup(fs, f, "x", true, &inode), -ENOTDIR);
	assert_null(inode);
	jfs_inode_forget(fs, f, 1);
	assert_all_forgotten(fs);
}

static void test_inode_whiteout_hides_lower(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *inode = NULL;
	int r;

	assert_int_equal(unit_write_file(ov->lower_fd, "f", "x"), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/child", "x"), 0);
	r = unit_mkwhiteout(ov->upper_fd, "f");
	if (r == -EPERM)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(unit_mkwhiteout(ov->upper_fd, "d"), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &inode), -ENOENT);
	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &inode), -ENOENT);
	assert_null(inode);
	/* a whiteout with nothing below it is no object either */
	assert_int_equal(unit_mkwhiteout(ov->upper_fd, "lonely"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "lonely", true, &inode), -ENOENT);
	assert_all_forgotten(fs);
}

static void test_inode_opaque_dir_hides_lower(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *d, *own, *inode = NULL;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/below", "x"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "d/own", "x"), 0);
	assert_int_equal(unit_mkopaque(ov->upper_fd, "d"), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(d->nlayers, 1);
	assert_int_equal(d->layers[0].idx, JFS_UPPER);
	assert_int_equal(jfs_lookup(fs, d, "below", true, &inode), -ENOENT);
	assert_null(inode);
	assert_int_equal(jfs_lookup(fs, d, "own", true, &own), 0);
	assert_int_equal(own->layers[0].idx, JFS_UPPER);
	jfs_inode_forget(fs, own, 1);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_inode_merged_dir(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *d, *lc, *uc;
	struct stat st, real;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/lc", "x"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d/sub", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "d/uc", "x"), 0);

	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(d->type, S_IFDIR);
	assert_int_equal(d->nlayers, 2);
	assert_int_equal(d->layers[0].idx, JFS_UPPER);
	assert_int_equal(d->layers[1].idx, 1);
	assert_int_equal(jfs_lookup(fs, d, "lc", true, &lc), 0);
	assert_int_equal(lc->nlayers, 1);
	assert_int_equal(lc->layers[0].idx, 1);
	assert_int_equal(jfs_lookup(fs, d, "uc", true, &uc), 0);
	assert_int_equal(uc->layers[0].idx, JFS_UPPER);

	/* the view number, and nlink 1 for a merged directory, which overlayfs does not count */
	assert_int_equal(fstatat(ov->upper_fd, "d", &real, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(real.st_nlink, 3);
	assert_int_equal(jfs_getattr(fs, d, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_ino, d->ino);
	assert_int_equal(st.st_ino, jfs_inomap_view_ino(&fs->inomap, JFS_UPPER, real.st_ino));
	assert_int_equal(st.st_nlink, 1);

	assert_int_equal(jfs_getattr(fs, lc, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_ino, lc->ino);
	assert_int_equal(st.st_ino,
			 jfs_inomap_view_ino(&fs->inomap, 1, real_ino_at(ov->lower_fd, "d/lc")));
	assert_int_equal(st.st_size, 1);
	assert_int_equal(st.st_nlink, 1);

	jfs_inode_forget(fs, uc, 1);
	jfs_inode_forget(fs, lc, 1);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_inode_getattr_single_layer_dir_keeps_nlink(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *d;
	struct stat st;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "d/s1", 0755), 0);
	assert_int_equal(mkdirat(ov->lower_fd, "d/s2", 0755), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(d->nlayers, 1);
	assert_int_equal(jfs_getattr(fs, d, &st), 0);
	assert_int_equal(st.st_nlink, 4);
	assert_int_equal(st.st_ino, d->ino);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_inode_upper_file_hides_lower_dir(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *x, *d;

	assert_int_equal(mkdirat(ov->lower_fd, "x", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "x", "x"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "x", true, &x), 0);
	assert_int_equal(x->type, S_IFREG);
	assert_int_equal(x->nlayers, 1);
	assert_int_equal(x->layers[0].idx, JFS_UPPER);

	/* and a lower file below an upper directory is not merged into it */
	assert_int_equal(unit_write_file(ov->lower_fd, "d", "x"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(d->type, S_IFDIR);
	assert_int_equal(d->nlayers, 1);

	jfs_inode_forget(fs, x, 1);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static bool all_evicted(struct jfs_inode *inode)
{
	for (int i = 0; i < inode->nlayers; i++)
		if (inode->layers[i].fd >= 0)
			return false;
	return true;
}

/* Takes the inode's descriptor of its top layer (re-opened and cached if it had none) and closes
 * the caller's duplicate. */
static void close_fd_of(struct jfs_fs *fs, struct jfs_inode *inode)
{
	int fd = jfs_inode_fd(fs, inode, 0, NULL);

	assert_true(fd >= 0);
	close(fd);
}

static void test_inode_evicted_descriptors_reopen(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *d, *f, *sub, *g;
	struct stat before_f, before_g, st;
	struct jfs_dirlist list;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(unit_write_file(ov->lower_fd, "d/f", "lower data"), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d/sub", 0755), 0);
	assert_int_equal(unit_write_file(ov->upper_fd, "d/sub/g", "upper"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);
	assert_int_equal(jfs_lookup(fs, d, "f", true, &f), 0);
	assert_int_equal(jfs_lookup(fs, d, "sub", true, &sub), 0);
	assert_int_equal(jfs_lookup(fs, sub, "g", true, &g), 0);
	assert_int_equal(jfs_getattr(fs, f, &before_f), 0);
	assert_int_equal(jfs_getattr(fs, g, &before_g), 0);
	/* a stat opens nothing: the lower file f, which its lookup did not open, is stat-ed by name
	 * from d's lower descriptor (the upper g was opened by its lookup) */
	assert_int_equal(__atomic_load_n(&fs->nfds, __ATOMIC_RELAXED), 2 + 1 + 1);
	assert_true(all_evicted(f));
	close_fd_of(fs, f);
	assert_int_equal(__atomic_load_n(&fs->nfds, __ATOMIC_RELAXED), 2 + 1 + 1 + 1);

	/* a sweep past the limit closes every descriptor of inodes below the root */
	fs->max_cached_fds = 0;
	jfs_fd_cache_trim(fs);
	assert_int_equal(__atomic_load_n(&fs->nfds, __ATOMIC_RELAXED), 0);
	assert_true(all_evicted(d));
	assert_true(all_evicted(f));
	assert_true(all_evicted(sub));
	assert_true(all_evicted(g));
	fs->max_cached_fds = 1024;

	/* the deepest first: g is stat-ed through sub, which re-opens through d's upper layer */
	assert_int_equal(jfs_getattr(fs, g, &st), 0);
	assert_int_equal(st.st_ino, before_g.st_ino);
	assert_int_equal(st.st_size, 5);
	assert_true(all_evicted(g));
	assert_true(sub->layers[0].fd >= 0);
	assert_true(d->layers[0].fd >= 0);
	close_fd_of(fs, g); /* g's own descriptor re-opens by name too */
	assert_true(g->layers[0].fd >= 0);
	/* f's only layer is the lower: stat-ed through d's lower layer, re-opened for it */
	assert_int_equal(jfs_getattr(fs, f, &st), 0);
	assert_int_equal(st.st_ino, before_f.st_ino);
	assert_int_equal(st.st_size, 10);
	assert_true(d->layers[1].fd >= 0);
	close_fd_of(fs, f);
	assert_true(f->layers[0].fd >= 0);

	/* a listing of the re-opened merged directory still sees both layers */
	assert_int_equal(jfs_dirlist_build(fs, d, &list), 0);
	assert_int_equal(list.count, 2 + 2);
	jfs_dirlist_free(&list);

	jfs_inode_forget(fs, g, 1);
	jfs_inode_forget(fs, sub, 1);
	jfs_inode_forget(fs, f, 1);
	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

static void test_inode_evicted_replaced_object_is_stale(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_inode *f;
	struct stat st;

	assert_int_equal(unit_write_file(ov->upper_fd, "f", "old"), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "f", true, &f), 0);
	fs->max_cached_fds = 0;
	jfs_fd_cache_trim(fs);
	assert_true(all_evicted(f));
	fs->max_cached_fds = 1024;

	/* another object takes the name behind the view's back (made first, so its number differs):
	 * re-opening by name must not hand out the wrong object */
	assert_int_equal(unit_write_file(ov->upper_fd, "f.new", "new object"), 0);
	assert_int_equal(renameat(ov->upper_fd, "f.new", ov->upper_fd, "f"), 0);
	assert_int_equal(jfs_getattr(fs, f, &st), -ESTALE);

	jfs_inode_forget(fs, f, 1);
	assert_all_forgotten(fs);
}

/* A descriptor is still open: fcntl answers for it. */
static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_inode_pinned_descriptors_survive_eviction_and_replacement(void **state)
{
	struct unit_overlay *ov = *state;
	struct jfs_fs *fs = &ov->fs;
	struct jfs_ilayer dl[JFS_MAX_LAYERS], fresh;
	struct jfs_inode *d;
	struct stat st;
	int n, upper_fd, old_fd;

	assert_int_equal(mkdirat(ov->lower_fd, "d", 0755), 0);
	assert_int_equal(mkdirat(ov->upper_fd, "d", 0755), 0);
	assert_int_equal(jfs_lookup(fs, fs->root, "d", true, &d), 0);

	/* pinned: the sweep passes it by, the borrowed descriptors stay the cached ones */
	n = jfs_inode_layers_pin(fs, d, dl, JFS_MAX_LAYERS);
	assert_int_equal(n, 2);
	assert_int_equal(dl[0].fd, d->layers[0].fd);
	fs->max_cached_fds = 0;
	jfs_fd_cache_trim(fs);
	jfs_fd_cache_trim(fs); /* the second pass would evict what the first only marked */
	assert_false(all_evicted(d));
	assert_true(fd_open(dl[0].fd) && fd_open(dl[1].fd));
	/* a sweep that freed nothing does not run again for every request */
	assert_true(fs->evict_retry_at > __atomic_load_n(&fs->nfds, __ATOMIC_RELAXED));

	/* a copy-up that replaces the layers while pinned parks the old descriptors */
	upper_fd = openat(ov->upper_fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(upper_fd >= 0);
	assert_int_equal(fstat(upper_fd, &st), 0);
	fresh.idx = JFS_UPPER;
	fresh.fd = upper_fd;
	fresh.ino = st.st_ino;
	old_fd = dl[1].fd;
	jfs_inode_set_layers(fs, d, 1, &fresh);
	assert_int_equal(d->nlayers, 1);
	assert_true(fd_open(old_fd));
	assert_int_equal(fstatat(old_fd, "", &st, AT_EMPTY_PATH), 0);

	/* the last unpin closes them; unpinned, the sweep may evict again */
	jfs_inode_unpin(d);
	assert_false(fd_open(old_fd));
	assert_true(!d->rare || !d->rare->retired);
	fs->evict_retry_at = 0;
	jfs_fd_cache_trim(fs);
	jfs_fd_cache_trim(fs);
	assert_true(all_evicted(d));
	fs->max_cached_fds = 1024;

	jfs_inode_forget(fs, d, 1);
	assert_all_forgotten(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inode_map_differs_per_layer, setup_map,
						teardown_map),
		cmocka_unit_test_setup_teardown(test_inode_map_stable, setup_map, teardown_map),
		cmocka_unit_test_setup_teardown(test_inode_map_alias_overrides_and_del_restores,
						setup_map, teardown_map),
		cmocka_unit_test_setup_teardown(test_inode_map_huge_real_ino, setup_map,
						teardown_map),
		cmocka_unit_test_setup_teardown(test_inode_root_is_pinned, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_lookup_counts_and_forget_frees,
						setup_table, teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_internal_refs_and_forget_many,
						setup_table, teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_child_pins_parent, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_upper_hard_links_share_inode,
						setup_table, teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_lower_hard_links_are_separate,
						setup_table, teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_lookup_missing, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_lookup_below_file, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_whiteout_hides_lower, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_opaque_dir_hides_lower, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_merged_dir, setup_table, teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_getattr_single_layer_dir_keeps_nlink,
						setup_table, teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_upper_file_hides_lower_dir, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_evicted_descriptors_reopen, setup_table,
						teardown_table),
		cmocka_unit_test_setup_teardown(
			test_inode_pinned_descriptors_survive_eviction_and_replacement, setup_table,
			teardown_table),
		cmocka_unit_test_setup_teardown(test_inode_evicted_replaced_object_is_stale,
						setup_table, teardown_table),
		/* again with a descriptor cache that evicts on every lookup */
		{"test_inode_lookup_counts_and_forget_frees_evicting",
		 test_inode_lookup_counts_and_forget_frees, setup_table_evicting, teardown_table,
		 NULL},
		{"test_inode_child_pins_parent_evicting", test_inode_child_pins_parent,
		 setup_table_evicting, teardown_table, NULL},
		{"test_inode_upper_hard_links_share_inode_evicting",
		 test_inode_upper_hard_links_share_inode, setup_table_evicting, teardown_table,
		 NULL},
		{"test_inode_whiteout_hides_lower_evicting", test_inode_whiteout_hides_lower,
		 setup_table_evicting, teardown_table, NULL},
		{"test_inode_opaque_dir_hides_lower_evicting", test_inode_opaque_dir_hides_lower,
		 setup_table_evicting, teardown_table, NULL},
		{"test_inode_merged_dir_evicting", test_inode_merged_dir, setup_table_evicting,
		 teardown_table, NULL},
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
