/* Open files: open (copying up on a write open), create, the data path, and the per-file calls
 * that go straight to the layer's descriptor. Without per-open state (fs->no_open) requests come
 * without a handle and use the inode's cached descriptors, copying up on the first write. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

static int file_new(struct jfs_fs *fs, int fd, int idx, int flags, struct jfs_file **ret)
{
	struct jfs_file *file = calloc(1, sizeof(*file));

	if (!file)
		return -ENOMEM;
	file->fd = fd;
	file->idx = idx;
	file->flags = flags;
	file->retired_fd = -1;
	pthread_mutex_init(&file->lock, NULL);
	pthread_mutex_lock(&fs->files_lock);
	file->next = fs->files;
	if (fs->files)
		fs->files->prev = file;
	fs->files = file;
	pthread_mutex_unlock(&fs->files_lock);
	*ret = file;
	return 0;
}

static void file_free(struct jfs_fs *fs, struct jfs_file *file)
{
	if (!file)
		return;
	pthread_mutex_lock(&fs->files_lock);
	if (file->prev)
		file->prev->next = file->next;
	else
		fs->files = file->next;
	if (file->next)
		file->next->prev = file->prev;
	pthread_mutex_unlock(&fs->files_lock);
	close(file->fd);
	if (file->retired_fd >= 0)
		close(file->retired_fd);
	pthread_mutex_destroy(&file->lock);
	free(file);
}

void jfs_files_free_all(struct jfs_fs *fs)
{
	while (fs->files)
		file_free(fs, fs->files);
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

	if (fs->no_open) { /* the first open after init: the kernel stops sending them */
		fuse_reply_err(req, ENOSYS);
		return;
	}
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
	r = file_new(fs, fd, idx, fi->flags, &file);
	if (r < 0) {
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)file;
	/* a file changes only through this mount, so the kernel may keep its pages; and we have
	 * nothing to do on close(2) */
	fi->keep_cache = !fs->opts.plain;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		file_free(fs, file);
}

void jfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_entry_param e;
	struct jfs_file *file;
	int fd = -1, r;

	if (fs->no_open) { /* the kernel makes the file with mknod instead, and opens it itself */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	r = jfs_create_object(fs, req, jfs_inode_from_id(fs, parent), name,
			      S_IFREG | (mode & 07777), 0, NULL, fi->flags, &fd, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = file_new(fs, fd, JFS_UPPER, fi->flags, &file);
	if (r < 0) {
		close(fd);
		jfs_inode_forget(fs, jfs_inode_from_id(fs, e.ino), 1);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)file;
	fi->noflush = 1;
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		file_free(fs, file);
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

/* The inode's own descriptor for a request without a handle (pinned by the caller): for writing,
 * the data is copied up first. */
static int inode_io_fd(struct jfs_fs *fs, struct jfs_inode *inode, int accmode)
{
	int r, idx;

	if (accmode != O_RDONLY) {
		r = jfs_copy_up(fs, inode);
		if (r < 0)
			return r;
	}
	r = jfs_inode_io_fd_pinned(fs, inode, accmode, &idx);
	if (r >= 0 && accmode != O_RDONLY && idx != JFS_UPPER)
		return -EIO;
	return r;
}

/* The descriptor a request does I/O on: its open file's, or, without one, the inode's (pinned
 * and referenced here: once a reply is sent the kernel may forget the inode at once, so a reply
 * that still reads the descriptor, a spliced read, must not be the inode's last use). */
static int io_fd(struct jfs_fs *fs, fuse_ino_t ino, struct fuse_file_info *fi, int accmode,
		 struct jfs_inode **ret_pinned)
{
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct jfs_file *file = fi ? fi_file(fi) : NULL;
	int fd;

	*ret_pinned = NULL;
	if (file)
		return accmode == O_RDONLY ? file_fd(fs, inode, file) : file->fd;
	jfs_inode_ref(fs, inode);
	jfs_inode_pin(inode);
	fd = inode_io_fd(fs, inode, accmode);
	if (fd < 0) {
		jfs_inode_unpin(inode);
		jfs_inode_put(fs, inode);
	} else {
		*ret_pinned = inode;
	}
	return fd;
}

static void io_done(struct jfs_fs *fs, struct jfs_inode *pinned)
{
	if (pinned) {
		jfs_inode_unpin(pinned);
		jfs_inode_put(fs, pinned);
	}
}

void jfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct jfs_inode *pinned;
	int fd = io_fd(fs, ino, fi, O_RDONLY, &pinned);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	io_done(fs, pinned);
}

void jfs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		      struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct jfs_quota_op quota;
	struct jfs_inode *pinned;
	int fd;
	ssize_t n;

	/* past the quota's end, a short write */
	n = jfs_quota_write_begin(fs, inode, off, fuse_buf_size(in_buf), &quota);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	fd = io_fd(fs, ino, fi, O_RDWR, &pinned);
	if (fd < 0) {
		jfs_quota_end(fs, inode, -1, &quota);
		fuse_reply_err(req, -fd);
		return;
	}
	struct fuse_bufvec out = FUSE_BUFVEC_INIT((size_t)n);
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	jfs_quota_end(fs, inode, fd, &quota);
	io_done(fs, pinned);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void jfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	file_free(jfs_req_fs(req), fi_file(fi));
	fuse_reply_err(req, 0);
}

/* Without a handle: the upper object, if the inode has one (a lower one has nothing of ours). */
static int sync_inode(struct jfs_fs *fs, struct jfs_inode *inode, int datasync)
{
	char proc[64];
	int idx, path_fd, fd, r;

	path_fd = jfs_inode_fd(fs, inode, 0, &idx);
	if (path_fd < 0)
		return path_fd;
	if (idx != JFS_UPPER) {
		close(path_fd);
		return 0;
	}
	jfs_proc_path(proc, sizeof(proc), path_fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC); /* an O_PATH descriptor cannot be synced */
	r = fd < 0 ? -errno : 0;
	close(path_fd);
	if (r < 0)
		return r;
	/* a metacopy's data is in the base: only its metadata is ours to sync */
	if (datasync && jfs_inode_data_idx(inode) == JFS_UPPER)
		r = fdatasync(fd);
	else
		r = fsync(fd);
	r = r < 0 ? -errno : 0;
	close(fd);
	return r;
}

void jfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct jfs_file *file = fi ? fi_file(fi) : NULL;
	int r;

	if (jfs_req_fs(req)->opts.volatile_upper)
		r = 0; /* volatile: nothing is synced (volatile.c) */
	else if (file)
		r = (datasync ? fdatasync(file->fd) : fsync(file->fd)) < 0 ? -errno : 0;
	else
		r = sync_inode(jfs_req_fs(req), jfs_inode_from_id(jfs_req_fs(req), ino), datasync);
	fuse_reply_err(req, -r);
}

void jfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct jfs_quota_op quota;
	struct jfs_inode *pinned;
	int fd, r;

	r = jfs_quota_fallocate_begin(fs, inode, mode, offset, length, &quota);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fd = io_fd(fs, ino, fi, O_RDWR, &pinned);
	if (fd < 0) {
		jfs_quota_end(fs, inode, -1, &quota);
		fuse_reply_err(req, -fd);
		return;
	}
	r = fallocate(fd, mode, offset, length) < 0 ? errno : 0;
	jfs_quota_end(fs, inode, fd, &quota);
	io_done(fs, pinned);
	fuse_reply_err(req, r);
}

void jfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			    struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode_out = jfs_inode_from_id(fs, ino_out);
	struct jfs_inode *pin_in, *pin_out;
	struct jfs_quota_op quota;
	loff_t in = off_in, out = off_out;
	int fd_in, fd_out;
	ssize_t n;

	n = jfs_quota_write_begin(fs, inode_out, off_out, len, &quota);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	/* the destination first: copying it up may replace the source's descriptor (same file) */
	fd_out = io_fd(fs, ino_out, fi_out, O_RDWR, &pin_out);
	if (fd_out < 0) {
		jfs_quota_end(fs, inode_out, -1, &quota);
		fuse_reply_err(req, -fd_out);
		return;
	}
	fd_in = io_fd(fs, ino_in, fi_in, O_RDONLY, &pin_in);
	if (fd_in < 0) {
		jfs_quota_end(fs, inode_out, -1, &quota);
		io_done(fs, pin_out);
		fuse_reply_err(req, -fd_in);
		return;
	}
	n = copy_file_range(fd_in, &in, fd_out, &out, (size_t)n, (unsigned int)flags);
	if (n < 0)
		n = -errno;
	jfs_quota_end(fs, inode_out, fd_out, &quota);
	io_done(fs, pin_in);
	io_done(fs, pin_out);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void jfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *pinned;
	int fd = io_fd(fs, ino, fi, O_RDONLY, &pinned), err;
	off_t r;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	r = lseek(fd, off, whence);
	err = errno;
	io_done(fs, pinned);
	if (r < 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_lseek(req, r);
}
