/* Extended attributes of view objects; the overlay's private namespace is never shown or set. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "jfs.h"

/*
 * Most objects are reached through /proc/self/fd/N of their O_PATH descriptor. That path follows a
 * symlink, so a symlink is reached through its parent and name with the *xattrat() calls of Linux
 * 6.13 (no libc wrappers yet); on older kernels symlinks have no xattrs in the view.
 */
#define SYS_setxattrat_nr 463
#define SYS_getxattrat_nr 464
#define SYS_listxattrat_nr 465
#define SYS_removexattrat_nr 466

struct xattr_at_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

struct xattr_target {
	int fd;	       /* the object's O_PATH descriptor */
	int pfd;       /* symlinks: the parent's descriptor in the object's layer */
	char *name;    /* symlinks: the name in that parent */
	char proc[64]; /* others: /proc/self/fd/N */
};

static void target_close(struct xattr_target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->pfd >= 0)
		close(t->pfd);
	free(t->name);
}

static int target_open(struct jfs_fs *fs, struct jfs_inode *inode, struct xattr_target *t)
{
	struct stat st;
	int idx;

	t->pfd = -1;
	t->name = NULL;
	t->fd = jfs_inode_fd(fs, inode, 0, &idx);
	if (t->fd < 0)
		return t->fd;
	if (inode->type != S_IFLNK) {
		jfs_proc_path(t->proc, sizeof(t->proc), t->fd);
		return 0;
	}
	t->pfd = jfs_inode_parent_fd(fs, inode, idx, &t->name);
	if (t->pfd < 0) {
		int r = t->pfd;
		target_close(t);
		return r;
	}
	/* the name must still lead to this very symlink */
	struct stat own;
	if (fstatat(t->pfd, t->name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstatat(t->fd, "", &own, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_ino != own.st_ino) {
		target_close(t);
		return -ESTALE;
	}
	return 0;
}

#define XATTR_FCAPS "security.capability"

static bool no_fcaps(struct jfs_inode *inode)
{
	bool r;

	jfs_lock(&inode->lock);
	r = inode->no_fcaps;
	jfs_unlock(&inode->lock);
	return r;
}

static ssize_t target_get(struct xattr_target *t, const char *name, void *buf, size_t size)
{
	ssize_t n;

	if (!t->name) {
		n = getxattr(t->proc, name, buf, size);
	} else {
		struct xattr_at_args a = {.value = (uintptr_t)buf, .size = (uint32_t)size};
		n = syscall(SYS_getxattrat_nr, t->pfd, t->name, AT_SYMLINK_NOFOLLOW, name, &a,
			    sizeof(a));
		if (n < 0 && errno == ENOSYS)
			errno = ENODATA;
	}
	return n < 0 ? -errno : n;
}

static ssize_t target_list(struct xattr_target *t, char *buf, size_t size)
{
	ssize_t n;

	if (!t->name) {
		n = listxattr(t->proc, buf, size);
	} else {
		n = syscall(SYS_listxattrat_nr, t->pfd, t->name, AT_SYMLINK_NOFOLLOW, buf, size);
		if (n < 0 && errno == ENOSYS)
			return 0;
	}
	return n < 0 ? -errno : n;
}

static int target_set(struct xattr_target *t, const char *name, const void *value, size_t size,
		      int flags)
{
	long r;

	if (!t->name) {
		r = setxattr(t->proc, name, value, size, flags);
	} else {
		struct xattr_at_args a = {.value = (uintptr_t)value,
					  .size = (uint32_t)size,
					  .flags = (uint32_t)flags};
		r = syscall(SYS_setxattrat_nr, t->pfd, t->name, AT_SYMLINK_NOFOLLOW, name, &a,
			    sizeof(a));
		if (r < 0 && errno == ENOSYS)
			errno = EPERM;
	}
	return r < 0 ? -errno : 0;
}

static int target_remove(struct xattr_target *t, const char *name)
{
	long r;

	if (!t->name) {
		r = removexattr(t->proc, name);
	} else {
		r = syscall(SYS_removexattrat_nr, t->pfd, t->name, AT_SYMLINK_NOFOLLOW, name);
		if (r < 0 && errno == ENOSYS)
			errno = ENODATA;
	}
	return r < 0 ? -errno : 0;
}

void jfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct xattr_target t;
	char *buf = NULL;
	ssize_t n;

	if (jfs_is_private_xattr(fs, name)) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	/* the kernel asks before every write (file_remove_privs: FUSE never marks inodes S_NOSEC
	 * without HANDLE_KILLPRIV_V2), and for a file made here the answer is known */
	if (!strcmp(name, XATTR_FCAPS) && no_fcaps(jfs_inode_from_id(fs, ino))) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	n = target_open(fs, jfs_inode_from_id(fs, ino), &t);
	if (n == -ESTALE)
		n = -ENODATA; /* a hard-linked symlink that lost the name we knew it by */
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	if (size > 0 && !(buf = malloc(size)))
		n = -ENOMEM;
	else
		n = target_get(&t, name, buf, size);
	target_close(&t);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* Reads the whole name list, retrying if it grows meanwhile. */
static ssize_t read_names(struct xattr_target *t, char **ret_names)
{
	char *names = NULL;
	ssize_t n;

	for (;;) {
		n = target_list(t, NULL, 0);
		if (n < 0)
			break;
		free(names);
		names = malloc((size_t)n + 1);
		if (!names)
			return -ENOMEM;
		n = target_list(t, names, (size_t)n);
		if (n >= 0) {
			*ret_names = names;
			return n;
		}
		if (n != -ERANGE)
			break;
	}
	free(names);
	return n;
}

void jfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct xattr_target t;
	char *names = NULL;
	ssize_t n;
	size_t out = 0;

	n = target_open(fs, jfs_inode_from_id(fs, ino), &t);
	if (n == -ESTALE) {
		/* a hard-linked symlink that lost the name we knew it by */
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	n = read_names(&t, &names);
	target_close(&t);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	/* drop the private names in place */
	for (char *p = names; p < names + n;) {
		size_t len = strlen(p) + 1;
		if (!jfs_is_private_xattr(fs, p)) {
			memmove(names + out, p, len);
			out += len;
		}
		p += len;
	}
	if (size == 0)
		fuse_reply_xattr(req, out);
	else if (out > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, out);
	free(names);
}

static int change_xattr(struct jfs_fs *fs, struct jfs_inode *inode, const char *name,
			const char *value, size_t size, int flags, bool remove)
{
	struct xattr_target t;
	int r;

	if (jfs_is_private_xattr(fs, name))
		return -ENOTSUP;
	/* a change that must fail anyway (removing or replacing a missing attribute, creating an
	 * existing one) must not copy the object up first */
	if (remove || (flags & (XATTR_CREATE | XATTR_REPLACE))) {
		r = target_open(fs, inode, &t);
		if (r < 0)
			return r;
		ssize_t n = target_get(&t, name, NULL, 0);
		target_close(&t);
		if (n == -ENODATA && (remove || (flags & XATTR_REPLACE)))
			return -ENODATA;
		if (n >= 0 && (flags & XATTR_CREATE))
			return -EEXIST;
	}
	if (!remove && !strcmp(name, XATTR_FCAPS)) {
		jfs_lock(&inode->lock); /* before it may exist: never set again */
		inode->no_fcaps = false;
		jfs_unlock(&inode->lock);
	}
	r = jfs_copy_up_meta(fs, inode);
	if (r < 0)
		return r;
	r = target_open(fs, inode, &t);
	if (r < 0)
		return r;
	r = remove ? target_remove(&t, name) : target_set(&t, name, value, size, flags);
	target_close(&t);
	return r;
}

void jfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	fuse_reply_err(req, -change_xattr(fs, jfs_inode_from_id(fs, ino), name, value, size, flags,
					  false));
}

void jfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	fuse_reply_err(req, -change_xattr(fs, jfs_inode_from_id(fs, ino), name, NULL, 0, 0, true));
}
