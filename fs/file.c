/* Open files: open (copying up on a write open), create, the data path, and the per-file calls
 * that go straight to the layer's descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

static int file_new(int fd, int idx, int flags, struct jfs_file **ret)
{
	struct jfs_file *file = calloc(1, sizeof(*file));

	if (!file)
		return -ENOMEM;
	file->fd = fd;
	file->idx = idx;
	file->flags = flags;
	file->retired_fd = -1;
	pthread_mutex_init(&file->lock, NULL);
	*ret = file;
	return 0;
}

static void file_free(struct jfs_file *file)
{
	if (!file)
		return;
	close(file->fd);
	if (file->retired_fd >= 0)
		close(file->retired_fd);
	pthread_mutex_destroy(&file->lock);
	free(file);
}

static struct jfs_file *fi_file(struct fuse_file_info *fi)
{
	return (struct jfs_file *)(uintptr_t)fi->fh;
}

/* Flags of an open that a shared read-only descriptor serves as well as its own would. */
static bool plain_read_only(int flags)
{
	return (flags & O_ACCMODE) == O_RDONLY && !(flags & ~(O_ACCMODE | O_LARGEFILE | O_NOCTTY |
							      O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
}

static int open_top(struct jfs_fs *fs, struct jfs_inode *inode, int flags, int *ret_idx)
{
	char proc[64];
	int idx, fd, path_fd;

	if (inode->type == S_IFREG && plain_read_only(flags))
		return jfs_inode_read_fd(fs, inode, ret_idx);
	jfs_inode_pin(inode);
	path_fd = jfs_inode_data_fd_pinned(fs, inode, &idx);
	if (path_fd < 0) {
		jfs_inode_unpin(inode);
		return path_fd;
	}
	jfs_proc_path(proc, sizeof(proc), path_fd);
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
	flags |= O_CLOEXEC;
	/* the lowers are never written, not even their atime */
	fd = idx != JFS_UPPER ? jfs_open_noatime(AT_FDCWD, proc, flags) : open(proc, flags);
	if (fd < 0 && idx == JFS_UPPER)
		fd = -errno;
	jfs_inode_unpin(inode);
	if (fd >= 0)
		*ret_idx = idx;
	return fd;
}

void jfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct jfs_file *file;
	int fd, idx, r;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		r = jfs_copy_up(fs, inode);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	fd = open_top(fs, inode, fi->flags, &idx);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	r = file_new(fd, idx, fi->flags, &file);
	if (r < 0) {
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)file;
	/* a file changes only through this mount, so the kernel may keep its pages; and we have
	 * nothing to do on close(2) */
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		file_free(file);
}

void jfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_entry_param e;
	struct jfs_file *file;
	int fd = -1, r;

	r = jfs_create_object(fs, req, jfs_inode_from_id(fs, parent), name,
			      S_IFREG | (mode & 07777), 0, NULL, fi->flags, &fd, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = file_new(fd, JFS_UPPER, fi->flags, &file);
	if (r < 0) {
		close(fd);
		jfs_inode_forget(fs, jfs_inode_from_id(fs, e.ino), 1);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)file;
	fi->noflush = 1;
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		file_free(file);
}

/* A file opened read-only on a lower that has since been copied up must read the copy. */
static int file_fd(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_file *file)
{
	int idx, fd;

	if (__atomic_load_n(&file->idx, __ATOMIC_ACQUIRE) == JFS_UPPER)
		return file->fd;
	if (jfs_inode_data_idx(inode) != JFS_UPPER)
		return file->fd;
	pthread_mutex_lock(&file->lock);
	if (file->idx != JFS_UPPER && file->retired_fd < 0) {
		fd = open_top(fs, inode, file->flags & ~O_TRUNC, &idx);
		if (fd >= 0) {
			/* the old descriptor retires, not closes: a read may still use it */
			file->retired_fd = file->fd;
			file->fd = fd;
			__atomic_store_n(&file->idx, idx, __ATOMIC_RELEASE);
		}
	}
	fd = file->fd;
	pthread_mutex_unlock(&file->lock);
	return fd;
}

void jfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = file_fd(fs, jfs_inode_from_id(fs, ino), fi_file(fi));
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void jfs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		      struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct jfs_quota_op quota;
	ssize_t n;

	/* past the quota's end, a short write */
	n = jfs_quota_write_begin(fs, inode, off, fuse_buf_size(in_buf), &quota);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	struct fuse_bufvec out = FUSE_BUFVEC_INIT((size_t)n);
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fi_file(fi)->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	jfs_quota_end(fs, inode, out.buf[0].fd, &quota);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void jfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void jfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	file_free(fi_file(fi));
	fuse_reply_err(req, 0);
}

void jfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = fi_file(fi)->fd;

	(void)ino;
	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

void jfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct jfs_quota_op quota;
	int fd = fi_file(fi)->fd, r;

	r = jfs_quota_fallocate_begin(fs, inode, mode, offset, length, &quota);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = fallocate(fd, mode, offset, length) < 0 ? errno : 0;
	jfs_quota_end(fs, inode, fd, &quota);
	fuse_reply_err(req, r);
}

void jfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			    struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode_out = jfs_inode_from_id(fs, ino_out);
	struct jfs_quota_op quota;
	loff_t in = off_in, out = off_out;
	ssize_t n;

	n = jfs_quota_write_begin(fs, inode_out, off_out, len, &quota);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	n = copy_file_range(file_fd(fs, jfs_inode_from_id(fs, ino_in), fi_file(fi_in)), &in,
			    fi_file(fi_out)->fd, &out, (size_t)n, (unsigned int)flags);
	if (n < 0)
		n = -errno;
	jfs_quota_end(fs, inode_out, fi_file(fi_out)->fd, &quota);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void jfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	off_t r = lseek(file_fd(fs, jfs_inode_from_id(fs, ino), fi_file(fi)), off, whence);

	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}
