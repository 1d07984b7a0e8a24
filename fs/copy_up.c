/* Atomic copy-up: a lower object is rebuilt in the work dir (data, xattrs, owner, mode, times),
 * then renamed into the upper, parents first; see the invariants in jfs.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "jfs.h"

#define COPY_CHUNK (1 << 20)

static int copy_range_rw(int src_fd, int dst_fd, off_t off, off_t len)
{
	char *buf = malloc(COPY_CHUNK);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		ssize_t n = pread(src_fd, buf, want, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(dst_fd, buf + done, (size_t)(n - done), off + done);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				r = -errno;
				goto out;
			}
			done += w;
		}
		off += n;
		len -= n;
	}
out:
	free(buf);
	return r;
}

static int copy_range(int src_fd, int dst_fd, off_t off, off_t len)
{
	while (len > 0) {
		loff_t in = off, out = off;
		ssize_t n = copy_file_range(src_fd, &in, dst_fd, &out, (size_t)len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			    errno == EOPNOTSUPP)
				return copy_range_rw(src_fd, dst_fd, off, len);
			return -errno;
		}
		if (n == 0)
			break;
		off += n;
		len -= n;
	}
	return 0;
}

/* Copies size bytes, keeping holes: a reflink where the filesystem shares extents, otherwise each
 * data extent found with SEEK_DATA/SEEK_HOLE. */
int jfs_copy_data(int src_fd, int dst_fd, off_t size)
{
	off_t off = 0;
	int r;

	if (size == 0)
		return 0;
	if (ioctl(dst_fd, FICLONE, src_fd) == 0)
		return 0;
	while (off < size) {
		off_t data = lseek(src_fd, off, SEEK_DATA);
		off_t hole;
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			/* no SEEK_DATA here: copy everything */
			r = copy_range(src_fd, dst_fd, off, size - off);
			if (r < 0)
				return r;
			break;
		}
		hole = lseek(src_fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		r = copy_range(src_fd, dst_fd, data, hole - data);
		if (r < 0)
			return r;
		off = hole;
	}
	if (ftruncate(dst_fd, size) < 0)
		return -errno;
	return 0;
}

/* Copies the xattrs of src to dst (descriptors or O_PATH descriptors of non-symlinks), except our
 * private ones. */
int jfs_copy_xattrs(struct jfs_fs *fs, int src_fd, int dst_fd)
{
	char src[64], dst[64], *names = NULL, *value = NULL;
	ssize_t len, vlen;
	int r = 0;

	jfs_proc_path(src, sizeof(src), src_fd);
	jfs_proc_path(dst, sizeof(dst), dst_fd);
	len = listxattr(src, NULL, 0);
	if (len <= 0)
		return (len < 0 && errno != ENOTSUP) ? -errno : 0;
	names = malloc((size_t)len);
	if (!names)
		return -ENOMEM;
	len = listxattr(src, names, (size_t)len);
	if (len < 0) {
		r = -errno;
		goto out;
	}
	for (char *name = names; name < names + len; name += strlen(name) + 1) {
		if (jfs_is_private_xattr(fs, name))
			continue;
		vlen = getxattr(src, name, NULL, 0);
		if (vlen < 0)
			continue;
		free(value);
		value = malloc((size_t)vlen + 1);
		if (!value) {
			r = -ENOMEM;
			goto out;
		}
		vlen = getxattr(src, name, value, (size_t)vlen);
		if (vlen < 0)
			continue;
		if (setxattr(dst, name, value, (size_t)vlen, 0) < 0) {
			/* security labels may be refused by policy: the copy is still faithful */
			if (!strncmp(name, "security.", 9) && (errno == EPERM || errno == ENOTSUP))
				continue;
			r = -errno;
			goto out;
		}
	}
out:
	free(value);
	free(names);
	return r;
}

static int set_metadata(struct jfs_fs *fs, int fd, const struct stat *st, bool is_symlink)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	char proc[64];

	/* a copy made in the work dir already has our owner: skip a chown that changes nothing
	 * (a base owned by the daemon's user: one syscall less per copy-up and per link of a base
	 * file); the chmod below sets the exact mode either way */
	if ((st->st_uid != fs->euid || st->st_gid != fs->work_gid) &&
	    fchownat(fd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!is_symlink) {
		jfs_proc_path(proc, sizeof(proc), fd);
		/* after chown, which clears set-id bits */
		if (chmod(proc, st->st_mode & 07777) < 0)
			return -errno;
	}
	if (utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* Builds a copy of the object behind src_fd in the work dir under tmp; with a redirect, a regular
 * file's copy is a metacopy: its size, no data. Returns an O_PATH (or directory) descriptor of the
 * copy. */
static int build_copy(struct jfs_fs *fs, int src_fd, const struct stat *st, const char *tmp,
		      const char *redirect)
{
	char proc[64], target[PATH_MAX + 1];
	int fd = -1, data_fd = -1, r = 0;
	ssize_t n;

	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		if (mkdirat(fs->work_fd, tmp, 0700) < 0)
			return -errno;
		fd = openat(fs->work_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		break;
	case S_IFREG:
		if (redirect) {
			fd = openat(fs->work_fd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
				    0600);
			if (fd < 0)
				return -errno;
			if (ftruncate(fd, st->st_size) < 0) {
				r = -errno;
				goto out_close;
			}
			break;
		}
		jfs_proc_path(proc, sizeof(proc), src_fd);
		data_fd = jfs_open_noatime(AT_FDCWD, proc, O_RDONLY);
		if (data_fd < 0)
			return data_fd;
		fd = openat(fs->work_fd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			close(data_fd);
			return r;
		}
		r = jfs_copy_data(data_fd, fd, st->st_size);
		close(data_fd);
		if (r == 0 && fs->opts.fsync_copy_up && fsync(fd) < 0)
			r = -errno;
		if (r < 0)
			goto out_close;
		break;
	case S_IFLNK:
		n = readlinkat(src_fd, "", target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		if (symlinkat(target, fs->work_fd, tmp) < 0)
			return -errno;
		fd = openat(fs->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		break;
	default:
		if (mknodat(fs->work_fd, tmp, st->st_mode & (S_IFMT | 0700), st->st_rdev) < 0)
			return -errno;
		fd = openat(fs->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		break;
	}
	if (fd < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode)) {
		r = jfs_copy_xattrs(fs, src_fd, fd);
		if (r < 0)
			goto out_close;
	}
	if (redirect && S_ISREG(st->st_mode)) {
		r = jfs_set_metacopy(fs, fd, redirect);
		if (r < 0)
			goto out_close;
	}
	r = set_metadata(fs, fd, st, S_ISLNK(st->st_mode));
	if (r < 0)
		goto out_close;
	return fd;

out_close:
	close(fd);
	return r;
}

/* The upper descriptor of a directory, copying it up first; owned by the caller. */
int jfs_upper_dir_fd(struct jfs_fs *fs, struct jfs_inode *dir)
{
	int r, fd, idx;

	r = jfs_copy_up(fs, dir);
	if (r < 0)
		return r;
	fd = jfs_inode_fd(fs, dir, 0, &idx);
	if (fd >= 0 && idx != JFS_UPPER) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* Moves the copy from the work dir to its name in the upper, keeping the parent's times. */
static int publish_copy(struct jfs_fs *fs, const char *tmp, int pfd, const char *name)
{
	struct stat pst;

	if (fstat(pfd, &pst) < 0)
		return -errno;
	if (renameat2(fs->work_fd, tmp, pfd, name, RENAME_NOREPLACE) < 0)
		return -errno;
	/* the parent's times are the view's: creating our copy in it must not move them */
	struct timespec ts[2] = {pst.st_atim, pst.st_mtim};
	futimens(pfd, ts);
	return 0;
}

/* Takes from the quota what a copy of a regular file's data will take, or fails with ENOSPC; the
 * rest (directories, symlinks, a metacopy) is too small to refuse: it is charged once made. */
static int64_t reserve_copy(struct jfs_fs *fs, const struct stat *st, const char *redirect)
{
	if (!S_ISREG(st->st_mode) || redirect)
		return 0;
	return jfs_quota_reserve(fs, (int64_t)st->st_blocks * 512, false);
}

static int copy_up_locked(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_inode *parent,
			  const char *name, bool meta)
{
	struct jfs_ilayer layers[JFS_MAX_LAYERS];
	struct stat st, ust;
	char tmp[64], *redirect = NULL;
	int nlayers, src_fd, src_idx, pfd, copy_fd, upper_fd, r;
	int64_t reserved = 0;
	bool inval_attrs = false;

	pfd = jfs_upper_dir_fd(fs, parent);
	if (pfd < 0)
		return pfd;
	src_fd = jfs_inode_fd(fs, inode, 0, &src_idx);
	if (src_fd < 0) {
		r = src_fd;
		goto out_close_parent;
	}
	if (fstatat(src_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		goto out_close_src;
	}
	/* an empty file has no data to spare copying; a path too long for a redirect is copied */
	if (meta && S_ISREG(st.st_mode) && st.st_size > 0)
		redirect = jfs_inode_path(inode);
	reserved = reserve_copy(fs, &st, redirect);
	if (reserved < 0) {
		r = (int)reserved;
		reserved = 0;
		goto out_close_src;
	}
	jfs_tmpname(fs, tmp, sizeof(tmp));
	copy_fd = build_copy(fs, src_fd, &st, tmp, redirect);
	if (copy_fd < 0) {
		r = copy_fd;
		goto out_remove;
	}
	close(copy_fd);
	r = publish_copy(fs, tmp, pfd, name);
	if (r < 0)
		goto out_remove;
	upper_fd = jfs_open_object(pfd, name, st.st_mode);
	if (upper_fd < 0) {
		r = upper_fd;
		goto out_close_src;
	}
	if (fstat(upper_fd, &ust) < 0) {
		r = -errno;
		close(upper_fd);
		goto out_close_src;
	}
	jfs_quota_charge(fs, inode, &ust);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		/* like overlayfs without an index, a copy-up breaks a lower hard link: the copy is
		 * a new object with a number of its own, the other names keep the shared one */
		jfs_inode_rekey(fs, inode, jfs_inomap_view_ino(&fs->inomap, JFS_UPPER, ust.st_ino),
				JFS_UPPER, ust.st_ino);
		inval_attrs = true;
	} else {
		/* the upper object stays this inode for later lookups of any of its names */
		r = jfs_inomap_add(&fs->inomap, JFS_UPPER, ust.st_ino, inode->ino);
		if (r < 0) {
			close(upper_fd);
			goto out_close_src;
		}
	}
	/* a directory keeps merging its lowers (re-opened on demand); anything else is now just
	 * the copy */
	nlayers = 1;
	if (S_ISDIR(st.st_mode)) {
		int n = jfs_inode_layer_ids(inode, layers + 1, JFS_MAX_LAYERS - 1);
		nlayers += n;
	} else if (redirect) {
		/* a metacopy reads the lower object it was made from */
		layers[1].idx = src_idx;
		layers[1].fd = src_fd;
		layers[1].ino = st.st_ino;
		src_fd = -1;
		nlayers = 2;
		jfs_inode_set_redirect(inode, redirect, st.st_blocks);
		redirect = NULL;
	}
	layers[0].idx = JFS_UPPER;
	layers[0].fd = upper_fd;
	layers[0].ino = ust.st_ino;
	jfs_inode_set_layers(fs, inode, nlayers, layers);
	if (inval_attrs)
		jfs_inval_attrs(fs, inode);
	r = 0;
	goto out_close_src;

out_remove:
	jfs_remove_tree_at(fs->work_fd, tmp);
out_close_src:
	jfs_quota_release(fs, reserved);
	if (src_fd >= 0)
		close(src_fd);
	free(redirect);
out_close_parent:
	close(pfd);
	return r;
}

/* Completes a metacopy: its data is copied into the upper object in place (other names may link
 * to it), made durable, and only then is the metacopy xattr removed. */
static int copy_up_data_locked(struct jfs_fs *fs, struct jfs_inode *inode)
{
	struct jfs_ilayer upper;
	struct stat st;
	char proc[64];
	int upath_fd, data_fd = -1, src_fd, dst_fd = -1, data_idx, r;
	int64_t reserved = 0;

	upath_fd = jfs_inode_fd(fs, inode, 0, NULL);
	if (upath_fd < 0)
		return upath_fd;
	src_fd = jfs_inode_data_fd(fs, inode, &data_idx);
	if (src_fd < 0) {
		close(upath_fd);
		return src_fd;
	}
	if (data_idx == JFS_UPPER) {
		close(src_fd);
		close(upath_fd);
		return 0;
	}
	jfs_proc_path(proc, sizeof(proc), src_fd);
	data_fd = jfs_open_noatime(AT_FDCWD, proc, O_RDONLY);
	close(src_fd);
	if (data_fd < 0) {
		r = data_fd;
		goto out;
	}
	jfs_proc_path(proc, sizeof(proc), upath_fd);
	dst_fd = open(proc, O_WRONLY | O_CLOEXEC);
	if (dst_fd < 0 || fstat(data_fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	reserved = reserve_copy(fs, &st, NULL);
	if (reserved < 0) {
		r = (int)reserved;
		reserved = 0;
		goto out;
	}
	r = jfs_copy_data(data_fd, dst_fd, st.st_size);
	if (r == 0 && fs->opts.fsync_copy_up && fsync(dst_fd) < 0)
		r = -errno;
	if (r == 0)
		r = jfs_clear_metacopy(fs, upath_fd);
	if (r < 0)
		goto out;
	upper.idx = JFS_UPPER;
	upper.fd = upath_fd;
	if (fstat(upath_fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	jfs_quota_observe(fs, inode, &st);
	upper.ino = st.st_ino;
	jfs_inode_set_layers(fs, inode, 1, &upper);
	jfs_inode_set_redirect(inode, NULL, 0);
	upath_fd = -1;
	jfs_inval_attrs(fs, inode); /* its blocks are its own now */
out:
	jfs_quota_release(fs, reserved);
	if (data_fd >= 0)
		close(data_fd);
	if (dst_fd >= 0)
		close(dst_fd);
	if (upath_fd >= 0)
		close(upath_fd);
	return r;
}

/* An open file whose name is gone still copies up, to an orphan nobody can reach by name, so that
 * changes through its descriptor never resurrect the name. */
static int copy_up_orphan(struct jfs_fs *fs, struct jfs_inode *inode)
{
	struct jfs_ilayer upper;
	struct stat st;
	char tmp[64];
	int fd, idx, src_fd;
	int64_t reserved;

	src_fd = jfs_inode_fd(fs, inode, 0, &idx);
	if (src_fd < 0)
		return src_fd;
	if (idx == JFS_UPPER) {
		close(src_fd);
		return 0;
	}
	if (fstatat(src_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		fd = -errno;
		close(src_fd);
		return fd;
	}
	/* an orphan is not charged (it has no name, like a deleted file), but it must fit */
	reserved = reserve_copy(fs, &st, NULL);
	if (reserved < 0) {
		close(src_fd);
		return (int)reserved;
	}
	jfs_tmpname(fs, tmp, sizeof(tmp));
	fd = build_copy(fs, src_fd, &st, tmp, NULL);
	close(src_fd);
	if (fd >= 0) {
		close(fd);
		fd = jfs_open_object(fs->work_fd, tmp, st.st_mode);
	}
	jfs_remove_tree_at(fs->work_fd, tmp);
	jfs_quota_release(fs, reserved);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	upper.idx = JFS_UPPER;
	upper.fd = fd;
	upper.ino = st.st_ino;
	jfs_inode_set_layers(fs, inode, 1, &upper);
	return 0;
}

/* Copies inode up: with meta, a regular file's metadata only (a metacopy); without, its data too
 * (completing a metacopy in place). */
static int copy_up(struct jfs_fs *fs, struct jfs_inode *inode, bool meta)
{
	struct jfs_inode *parent;
	char *name;
	bool unlinked;
	int r;

	if (jfs_inode_top_idx(inode) == JFS_UPPER) {
		if (meta || jfs_inode_data_idx(inode) == JFS_UPPER)
			return 0;
		pthread_mutex_lock(jfs_copy_lock(fs, inode));
		r = copy_up_data_locked(fs, inode);
		pthread_mutex_unlock(jfs_copy_lock(fs, inode));
		return r;
	}
	jfs_lock(&inode->lock);
	unlinked = inode->unlinked;
	jfs_unlock(&inode->lock);
	if (unlinked) {
		pthread_mutex_lock(jfs_copy_lock(fs, inode));
		r = copy_up_orphan(fs, inode);
		pthread_mutex_unlock(jfs_copy_lock(fs, inode));
		return r;
	}

	jfs_lock(&inode->lock);
	parent = inode->parent;
	name = strdup(inode->name ? inode->name : "");
	jfs_unlock(&inode->lock);
	if (!parent || !name) {
		free(name);
		return parent ? -ENOMEM : -EIO;
	}
	jfs_inode_ref(fs, parent);
	r = copy_up(fs, parent, false); /* invariant 1: parents first */
	if (r < 0)
		goto out;

	pthread_mutex_lock(jfs_copy_lock(fs, inode));
	if (jfs_inode_top_idx(inode) != JFS_UPPER) {
		/* re-read the name: a rename may have moved it while we copied the parents */
		struct jfs_inode *cur_parent;
		jfs_lock(&inode->lock);
		cur_parent = inode->parent;
		free(name);
		name = strdup(inode->name);
		jfs_unlock(&inode->lock);
		if (!name)
			r = -ENOMEM;
		else if (cur_parent != parent)
			r = -EAGAIN;
		else
			r = copy_up_locked(fs, inode, parent, name, meta);
	}
	pthread_mutex_unlock(jfs_copy_lock(fs, inode));
out:
	jfs_inode_put(fs, parent);
	free(name);
	if (r == -EAGAIN)
		return copy_up(fs, inode, meta);
	if (r == 0 && !meta && jfs_inode_data_idx(inode) != JFS_UPPER)
		return copy_up(fs, inode, false); /* a metacopy made meanwhile by another request */
	return r;
}

int jfs_copy_up(struct jfs_fs *fs, struct jfs_inode *inode)
{
	return copy_up(fs, inode, false);
}

int jfs_copy_up_meta(struct jfs_fs *fs, struct jfs_inode *inode)
{
	return copy_up(fs, inode, fs->opts.metacopy && inode->type == S_IFREG);
}

/* Makes dir and everything below it live in the upper, then opaque: the prerequisite for moving a
 * directory that has lower parts without redirects. */
int jfs_copy_up_tree(struct jfs_fs *fs, struct jfs_inode *dir)
{
	struct jfs_ilayer upper;
	struct jfs_dirlist list;
	struct stat st;
	int nlayers, r;

	r = jfs_copy_up(fs, dir);
	if (r < 0)
		return r;
	jfs_lock(&dir->lock);
	nlayers = dir->nlayers;
	jfs_unlock(&dir->lock);
	if (nlayers == 1)
		return 0; /* upper only: nothing below to merge */

	r = jfs_dirlist_build(fs, dir, &list);
	if (r < 0)
		return r;
	for (size_t i = 0; i < list.count && r == 0; i++) {
		struct jfs_inode *child;
		const char *name = list.entries[i].name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		r = jfs_lookup(fs, dir, name, false, &child);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		r = child->type == S_IFDIR ? jfs_copy_up_tree(fs, child)
					   : jfs_copy_up_meta(fs, child);
		jfs_inode_put(fs, child);
	}
	jfs_dirlist_free(&list);
	if (r < 0)
		return r;

	upper.idx = JFS_UPPER;
	upper.fd = jfs_inode_fd(fs, dir, 0, NULL);
	if (upper.fd < 0)
		return upper.fd;
	r = jfs_set_opaque(fs, upper.fd);
	if (r == 0 && fstat(upper.fd, &st) < 0)
		r = -errno;
	if (r < 0) {
		close(upper.fd);
		return r;
	}
	jfs_quota_observe(fs, dir, &st); /* an xattr may take a block */
	upper.ino = st.st_ino;
	jfs_inode_set_layers(fs, dir, 1, &upper);
	jfs_inval_attrs(fs, dir); /* no longer merged: its real link count shows */
	return 0;
}
