/* Helpers shared by the unit tests: temporary directories removed without following links, small
 * files and whiteouts, and a two-layer session built by hand, since fs_open() in fs/super.c is
 * static and also wants a mount point. */
#ifndef JOBFS_UNIT_H
#define JOBFS_UNIT_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "jfs.h"

#define UNIT_XATTR_PREFIX "user.overlay."

static inline int unit_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		perror(path);
	return 0;
}

/* Removes a temporary tree; FTW_PHYS so a symlink in it is removed, never followed. */
static inline void unit_rm_tree(const char *path)
{
	nftw(path, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Creates a fresh directory under /tmp into buf (at least 32 bytes); returns 0 or -errno. */
static inline int unit_mkdtemp(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/jobfs-unit-XXXXXX");
	return mkdtemp(buf) ? 0 : -errno;
}

/* Creates (or replaces) a regular file below dirfd holding text; returns 0 or -errno. */
static inline int unit_write_file(int dirfd, const char *name, const char *text)
{
	size_t len = strlen(text);
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

/* Returns 0, -EPERM when the test may not create device nodes (the caller skips), or -errno. */
static inline int unit_mkwhiteout(int dirfd, const char *name)
{
	return mknodat(dirfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0 ? -errno : 0;
}

/* Makes the directory dirfd/name opaque in the session's namespace by hand, as a layer built by
 * another tool would be. */
static inline int unit_mkopaque(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsetxattr(fd, UNIT_XATTR_PREFIX "opaque", "y", 1, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* A view of one upper and one lower layer below a temporary directory, set up the way fs_open()
 * does it minus the mount: inode table, inode map, root. */
struct unit_overlay {
	char base[64];
	int base_fd;
	int upper_fd; /* borrowed from layers[JFS_UPPER] */
	int lower_fd; /* borrowed from layers[1] */
	struct jfs_layer layers[2];
	char prefix[sizeof(UNIT_XATTR_PREFIX)];
	struct jfs_fs fs;
};

static inline int unit_open_layer(struct unit_overlay *ov, int idx, const char *name)
{
	struct stat st;
	int fd;

	if (mkdirat(ov->base_fd, name, 0755) < 0)
		return -errno;
	fd = openat(ov->base_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	ov->layers[idx].fd = fd;
	ov->layers[idx].dev = st.st_dev;
	return 0;
}

static inline void unit_overlay_close(struct unit_overlay *ov)
{
	struct jfs_inode *root;

	if (!ov)
		return;
	root = ov->fs.root;
	if (root) {
		/* the root is pinned and never hashed: free it the way fs_free() does */
		for (int i = 0; i < root->nlayers; i++)
			if (root->layers[i].fd >= 0)
				close(root->layers[i].fd);
		if (jfs_inode_layers_owned(root))
			free(root->layers);
		jfs_inode_rare_free(root->rare);
		free(root->name);
		free(root);
	}
	if (ov->fs.itable.buckets)
		jfs_itable_destroy(&ov->fs.itable);
	if (ov->fs.inomap.buckets)
		jfs_inomap_destroy(&ov->fs.inomap);
	pthread_mutex_destroy(&ov->fs.evict_lock);
	for (int i = 0; i < JFS_LOCK_STRIPES; i++) {
		pthread_mutex_destroy(&ov->fs.copy_locks[i]);
		pthread_mutex_destroy(&ov->fs.list_locks[i]);
	}
	for (int i = 0; i < 2; i++)
		if (ov->layers[i].fd >= 0)
			close(ov->layers[i].fd);
	if (ov->fs.work_fd >= 0)
		close(ov->fs.work_fd);
	if (ov->base_fd >= 0)
		close(ov->base_fd);
	if (ov->base[0])
		unit_rm_tree(ov->base);
	free(ov);
}

/* max_cached_fds bounds the inodes' descriptor cache; 0 evicts every descriptor it can at once. */
static inline int unit_overlay_open(uint64_t max_cached_fds, struct unit_overlay **ret_ov)
{
	struct unit_overlay *ov = calloc(1, sizeof(*ov));
	int r;

	if (!ov)
		return -ENOMEM;
	ov->base_fd = -1;
	ov->layers[0].fd = ov->layers[1].fd = -1;
	ov->fs.work_fd = -1;
	ov->fs.max_cached_fds = max_cached_fds;
	pthread_mutex_init(&ov->fs.evict_lock, NULL);
	jfs_fdlist_init(&ov->fs);
	for (int i = 0; i < JFS_LOCK_STRIPES; i++) {
		pthread_mutex_init(&ov->fs.copy_locks[i], NULL);
		pthread_mutex_init(&ov->fs.list_locks[i], NULL);
	}
	r = unit_mkdtemp(ov->base, sizeof(ov->base));
	if (r < 0) {
		ov->base[0] = '\0';
		goto out_close;
	}
	ov->base_fd = open(ov->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ov->base_fd < 0) {
		r = -errno;
		goto out_close;
	}
	r = unit_open_layer(ov, JFS_UPPER, "upper");
	if (r == 0)
		r = unit_open_layer(ov, 1, "lower");
	if (r < 0)
		goto out_close;
	if (mkdirat(ov->base_fd, "work", 0700) < 0) {
		r = -errno;
		goto out_close;
	}
	ov->fs.work_fd = openat(ov->base_fd, "work", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ov->fs.work_fd < 0) {
		r = -errno;
		goto out_close;
	}
	ov->upper_fd = ov->layers[JFS_UPPER].fd;
	ov->lower_fd = ov->layers[1].fd;
	memcpy(ov->prefix, UNIT_XATTR_PREFIX, sizeof(ov->prefix));
	ov->fs.nlayers = 2;
	ov->fs.layers = ov->layers;
	ov->fs.xattr_prefix = ov->prefix;
	ov->fs.xattr_prefix_len = strlen(ov->prefix);
	ov->fs.opts.user_xattr = true;
	r = jfs_itable_init(&ov->fs.itable, 256);
	if (r == 0)
		r = jfs_inomap_init(&ov->fs.inomap);
	if (r == 0)
		r = jfs_inode_make_root(&ov->fs);
	if (r < 0)
		goto out_close;
	*ret_ov = ov;
	return 0;

out_close:
	unit_overlay_close(ov);
	return r;
}

/* Inodes left in the table: the root is not hashed, so 0 once every lookup is forgotten. */
static inline size_t unit_itable_count(struct jfs_fs *fs)
{
	size_t n = 0;

	for (uint32_t i = 0; i < fs->itable.nbuckets; i++)
		for (struct jfs_inode *inode = fs->itable.buckets[i]; inode; inode = inode->hnext)
			n++;
	return n;
}

#endif
