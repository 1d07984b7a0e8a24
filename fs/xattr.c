/* Extended attributes of view objects; the overlay's private namespace is never shown or set. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "jfs.h"

/* Symlinks have no path through /proc that reaches them without following: their xattrs are not
 * served (user.* is refused on symlinks by Linux anyway). */
static bool is_symlink(struct jfs_inode *inode)
{
	return inode->type == S_IFLNK;
}

void jfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	char proc[64], *buf = NULL;
	ssize_t n;
	int fd;

	if (jfs_is_private_xattr(fs, name)) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (is_symlink(inode)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	fd = jfs_inode_fd(fs, inode, 0, NULL);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	jfs_proc_path(proc, sizeof(proc), fd);
	if (size > 0)
		buf = malloc(size);
	if (size > 0 && !buf) {
		fuse_reply_err(req, ENOMEM);
	} else {
		n = getxattr(proc, name, buf, size);
		if (n < 0)
			fuse_reply_err(req, errno);
		else if (size == 0)
			fuse_reply_xattr(req, (size_t)n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
	}
	free(buf);
	close(fd);
}

/* Reads the whole name list, retrying if it grows meanwhile. */
static ssize_t read_names(const char *path, char **ret_names)
{
	char *names = NULL;
	ssize_t n;

	for (;;) {
		n = listxattr(path, NULL, 0);
		if (n < 0)
			break;
		free(names);
		names = malloc((size_t)n + 1);
		if (!names)
			return -ENOMEM;
		n = listxattr(path, names, (size_t)n);
		if (n >= 0) {
			*ret_names = names;
			return n;
		}
		if (errno != ERANGE)
			break;
	}
	n = -errno;
	free(names);
	return n;
}

void jfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	char proc[64], *names = NULL;
	ssize_t n;
	size_t out = 0;
	int fd;

	if (is_symlink(inode)) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	fd = jfs_inode_fd(fs, inode, 0, NULL);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	jfs_proc_path(proc, sizeof(proc), fd);
	n = read_names(proc, &names);
	close(fd);
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
	char proc[64];
	int fd, r;

	if (jfs_is_private_xattr(fs, name))
		return -ENOTSUP;
	if (is_symlink(inode))
		return -EPERM;
	r = jfs_copy_up(fs, inode);
	if (r < 0)
		return r;
	fd = jfs_inode_fd(fs, inode, 0, NULL);
	if (fd < 0)
		return fd;
	jfs_proc_path(proc, sizeof(proc), fd);
	if (remove)
		r = removexattr(proc, name);
	else
		r = setxattr(proc, name, value, size, flags);
	r = r < 0 ? -errno : 0;
	close(fd);
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

	fuse_reply_err(req,
		       -change_xattr(fs, jfs_inode_from_id(fs, ino), name, NULL, 0, 0, true));
}
