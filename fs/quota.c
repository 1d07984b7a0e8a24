/* The view's quota: the upper's usage measured at start, kept as an atomic count of bytes that
 * every allocating operation charges (with a per-inode ledger of st_blocks), enforced with
 * ENOSPC, and reported by statfs. See "Quota" in jfs.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "jfs.h"

static bool quota_on(struct jfs_fs *fs)
{
	return fs->opts.quota > 0;
}

static int64_t quota_limit(struct jfs_fs *fs)
{
	return fs->opts.quota > INT64_MAX ? INT64_MAX : (int64_t)fs->opts.quota;
}

static int64_t blocks_bytes(blkcnt_t blocks)
{
	return (int64_t)blocks * 512;
}

/* The inode numbers of hard-linked files already counted by the walk. */
struct ino_set {
	size_t cap; /* a power of two */
	size_t count;
	ino_t *slots; /* 0: empty (no file has inode 0) */
};

static int ino_set_add(struct ino_set *set, ino_t ino, bool *ret_added);

static int ino_set_grow(struct ino_set *set)
{
	struct ino_set bigger = {.cap = set->cap ? set->cap * 2 : 1024};
	bool added;

	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	for (size_t i = 0; i < set->cap; i++)
		if (set->slots[i])
			ino_set_add(&bigger, set->slots[i], &added);
	free(set->slots);
	*set = bigger;
	return 0;
}

static int ino_set_add(struct ino_set *set, ino_t ino, bool *ret_added)
{
	size_t i;
	int r;

	if ((set->count + 1) * 2 > set->cap) {
		r = ino_set_grow(set);
		if (r < 0)
			return r;
	}
	for (i = (ino * 0x9E3779B97F4A7C15ULL) & (set->cap - 1); set->slots[i];
	     i = (i + 1) & (set->cap - 1)) {
		if (set->slots[i] == ino) {
			*ret_added = false;
			return 0;
		}
	}
	set->slots[i] = ino;
	set->count++;
	*ret_added = true;
	return 0;
}

/* Adds the st_blocks of everything below dirfd to *total, each inode once, never following a
 * symlink nor leaving the filesystem (dev). Takes dirfd. */
static int measure_dir(int dirfd, dev_t dev, struct ino_set *seen, int64_t *total)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int r = 0;

	dir = fdopendir(dirfd);
	if (!dir) {
		r = -errno;
		close(dirfd);
		return r;
	}
	while ((de = readdir(dir))) {
		bool added = true;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			break;
		}
		if (st.st_dev != dev)
			continue; /* a mount point inside the upper holds none of its data */
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
			r = ino_set_add(seen, st.st_ino, &added);
			if (r < 0)
				break;
		}
		if (added)
			*total += blocks_bytes(st.st_blocks);
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				r = -errno;
				break;
			}
			r = measure_dir(fd, dev, seen, total);
			if (r < 0)
				break;
		}
	}
	closedir(dir);
	return r;
}

int jfs_quota_measure(struct jfs_fs *fs)
{
	struct ino_set seen = {0};
	struct stat st;
	int64_t total;
	int fd, r;

	if (!quota_on(fs))
		return 0;
	fd = openat(fs->layers[JFS_UPPER].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	total = blocks_bytes(st.st_blocks);
	r = measure_dir(fd, st.st_dev, &seen, &total);
	free(seen.slots);
	if (r < 0)
		return r;
	__atomic_store_n(&fs->quota_used, total, __ATOMIC_RELAXED);
	return 0;
}

void jfs_quota_inode_init(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st)
{
	struct stat own;

	inode->quota_blocks = JFS_QUOTA_UNCHARGED;
	inode->quota_dense = 0;
	if (!quota_on(fs) || inode->layers[0].idx != JFS_UPPER)
		return;
	/* a metacopy's st shows its data's blocks, in a lower: the upper object has its own */
	if (S_ISREG(st->st_mode) && inode->nlayers > 1) {
		if (inode->layers[0].fd < 0 ||
		    fstatat(inode->layers[0].fd, "", &own, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			own.st_blocks = 0;
		inode->quota_blocks = own.st_blocks;
		return;
	}
	/* an upper object found by a lookup is already counted: by the walk at start, or by the
	 * operation that made it */
	inode->quota_blocks = st->st_blocks;
	if (S_ISREG(st->st_mode) && blocks_bytes(st->st_blocks) >= st->st_size)
		inode->quota_dense = st->st_size;
}

int64_t jfs_quota_reserve(struct jfs_fs *fs, int64_t want, bool partial)
{
	int64_t used, left, grant;

	if (!quota_on(fs))
		return 0;
	used = __atomic_load_n(&fs->quota_used, __ATOMIC_RELAXED);
	do {
		left = quota_limit(fs) - used;
		if (left <= 0 || (!partial && want > left))
			return -ENOSPC;
		grant = want < left ? want : left;
	} while (!__atomic_compare_exchange_n(&fs->quota_used, &used, used + grant, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return grant;
}

void jfs_quota_release(struct jfs_fs *fs, int64_t reserved)
{
	if (reserved > 0)
		__atomic_sub_fetch(&fs->quota_used, reserved, __ATOMIC_RELAXED);
}

void jfs_quota_add(struct jfs_fs *fs, blkcnt_t blocks)
{
	if (quota_on(fs) && blocks)
		__atomic_add_fetch(&fs->quota_used, blocks_bytes(blocks), __ATOMIC_RELAXED);
}

/* Sets the ledger to what st shows, charging the difference; from UNCHARGED only with adopt. */
static void ledger_set(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st,
		       bool adopt)
{
	int64_t now = st->st_blocks, old;

	old = __atomic_load_n(&inode->quota_blocks, __ATOMIC_RELAXED);
	do {
		if (old == JFS_QUOTA_UNCHARGED && !adopt)
			return; /* gone from the upper's names: no longer counted */
	} while (!__atomic_compare_exchange_n(&inode->quota_blocks, &old, now, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	if (old == JFS_QUOTA_UNCHARGED)
		old = 0;
	if (now != old)
		__atomic_add_fetch(&fs->quota_used, blocks_bytes(now - old), __ATOMIC_RELAXED);
	__atomic_store_n(&inode->quota_dense,
			 S_ISREG(st->st_mode) && blocks_bytes(st->st_blocks) >= st->st_size
				 ? (int64_t)st->st_size
				 : 0,
			 __ATOMIC_RELAXED);
}

void jfs_quota_charge(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st)
{
	if (quota_on(fs))
		ledger_set(fs, inode, st, true);
}

void jfs_quota_observe(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st)
{
	if (quota_on(fs))
		ledger_set(fs, inode, st, false);
}

void jfs_quota_observe_fd(struct jfs_fs *fs, struct jfs_inode *inode, int fd)
{
	struct stat st;

	if (quota_on(fs) && fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		ledger_set(fs, inode, &st, false);
}

void jfs_quota_removed(struct jfs_fs *fs, struct jfs_inode *inode)
{
	int64_t old;

	if (!quota_on(fs))
		return;
	old = __atomic_exchange_n(&inode->quota_blocks, JFS_QUOTA_UNCHARGED, __ATOMIC_RELAXED);
	if (old != JFS_QUOTA_UNCHARGED && old)
		__atomic_sub_fetch(&fs->quota_used, blocks_bytes(old), __ATOMIC_RELAXED);
}

ssize_t jfs_quota_write_begin(struct jfs_fs *fs, struct jfs_inode *inode, off_t off, size_t size,
			      struct jfs_quota_op *op)
{
	int64_t grant;

	op->reserved = 0;
	op->observe = false;
	if (!quota_on(fs))
		return (ssize_t)size;
	/* an overwrite of allocated blocks takes no space: the hot path of a rewrite */
	if (off + (int64_t)size <= __atomic_load_n(&inode->quota_dense, __ATOMIC_RELAXED))
		return (ssize_t)size;
	grant = jfs_quota_reserve(fs, (int64_t)size, true);
	if (grant < 0)
		return grant;
	op->reserved = grant;
	op->observe = true;
	return (ssize_t)grant;
}

int jfs_quota_fallocate_begin(struct jfs_fs *fs, struct jfs_inode *inode, int mode, off_t off,
			      off_t len, struct jfs_quota_op *op)
{
	int64_t grant;

	op->reserved = 0;
	op->observe = false;
	if (!quota_on(fs))
		return 0;
	op->observe = true;
	/* punching or collapsing frees; anything else may allocate the whole range */
	if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)) ||
	    off + len <= __atomic_load_n(&inode->quota_dense, __ATOMIC_RELAXED))
		return 0;
	grant = jfs_quota_reserve(fs, len, false);
	if (grant < 0)
		return (int)grant;
	op->reserved = grant;
	return 0;
}

void jfs_quota_end(struct jfs_fs *fs, struct jfs_inode *inode, int fd, struct jfs_quota_op *op)
{
	if (op->observe)
		jfs_quota_observe_fd(fs, inode, fd);
	jfs_quota_release(fs, op->reserved);
}

void jfs_quota_statfs(struct jfs_fs *fs, struct statvfs *sv)
{
	int64_t used = __atomic_load_n(&fs->quota_used, __ATOMIC_RELAXED);
	uint64_t frsize = sv->f_frsize ? sv->f_frsize : sv->f_bsize;
	fsblkcnt_t left;

	if (!quota_on(fs) || !frsize)
		return;
	if (used < 0)
		used = 0;
	left = used < quota_limit(fs) ? (uint64_t)(quota_limit(fs) - used) / frsize : 0;
	sv->f_blocks = (uint64_t)quota_limit(fs) / frsize;
	/* never more than the filesystem under the upper really has */
	if (left < sv->f_bfree)
		sv->f_bfree = left;
	if (left < sv->f_bavail)
		sv->f_bavail = left;
}
