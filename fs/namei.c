/* Lookup across layers: the topmost layer with the name wins, a whiteout stops the search, and a
 * directory merges with the directories below it until one is opaque. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jfs.h"

void jfs_resolved_release(struct jfs_resolved *res)
{
	for (int i = 0; i < res->nlayers; i++)
		if (res->layers[i].fd >= 0)
			close(res->layers[i].fd);
	res->nlayers = 0;
}

int jfs_open_object(int dirfd, const char *name, mode_t mode)
{
	int flags = S_ISDIR(mode) ? O_RDONLY | O_DIRECTORY : O_PATH;
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);

	if (fd < 0 && errno == EPERM) /* O_NOATIME needs ownership or CAP_FOWNER */
		fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Resolves name in dir. ret->exists is false (and 0 returned) when no layer shows the name. */
int jfs_resolve(struct jfs_fs *fs, struct jfs_inode *dir, const char *name,
		struct jfs_resolved *ret)
{
	struct jfs_ilayer dl[JFS_MAX_LAYERS];
	int ndl, r;

	ret->exists = false;
	ret->nlayers = 0;
	ret->upper_whiteout = false;
	r = jfs_check_name(name);
	if (r < 0)
		return r;
	ndl = jfs_inode_layers(fs, dir, dl, JFS_MAX_LAYERS);
	if (ndl < 0)
		return ndl;
	for (int i = 0; i < ndl; i++) {
		struct stat st;
		int fd;

		if (fstatat(dl[i].fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			r = -errno;
			goto out_release;
		}
		if (jfs_is_whiteout(&st)) {
			if (dl[i].idx == JFS_UPPER)
				ret->upper_whiteout = true;
			break;
		}
		if (ret->exists && !S_ISDIR(st.st_mode))
			break; /* a non-directory below a directory is hidden */
		fd = jfs_open_object(dl[i].fd, name, st.st_mode);
		if (fd < 0) {
			if (fd == -ENOENT)
				continue;
			r = fd;
			goto out_release;
		}
		if (!ret->exists) {
			ret->exists = true;
			ret->st = st;
		}
		ret->layers[ret->nlayers].idx = dl[i].idx;
		ret->layers[ret->nlayers].fd = fd;
		ret->layers[ret->nlayers].ino = st.st_ino;
		ret->nlayers++;
		if (!S_ISDIR(st.st_mode) || ret->nlayers == JFS_MAX_LAYERS)
			break;
		r = jfs_is_opaque(fs, fd);
		if (r < 0)
			goto out_release;
		if (r > 0)
			break;
	}
	jfs_ilayers_close(dl, ndl);
	return 0;

out_release:
	jfs_ilayers_close(dl, ndl);
	jfs_resolved_release(ret);
	ret->exists = false;
	return r;
}

/* Returns 1 when a lower layer of dir shows name (ignoring the upper), so that removing or moving
 * the upper entry needs a whiteout to keep it hidden. */
int jfs_lower_visible(struct jfs_fs *fs, struct jfs_inode *dir, const char *name)
{
	struct jfs_ilayer dl[JFS_MAX_LAYERS];
	int ndl, r = 0;

	ndl = jfs_inode_layers(fs, dir, dl, JFS_MAX_LAYERS);
	if (ndl < 0)
		return ndl;
	for (int i = 0; i < ndl; i++) {
		struct stat st;

		if (dl[i].idx == JFS_UPPER)
			continue;
		if (fstatat(dl[i].fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			r = -errno;
			break;
		}
		r = !jfs_is_whiteout(&st);
		break;
	}
	jfs_ilayers_close(dl, ndl);
	return r;
}

int jfs_lookup(struct jfs_fs *fs, struct jfs_inode *dir, const char *name, bool kernel_ref,
	       struct jfs_inode **ret_inode)
{
	struct jfs_resolved res;
	int r;

	if (dir->type != S_IFDIR)
		return -ENOTDIR;
	r = jfs_resolve(fs, dir, name, &res);
	if (r < 0)
		return r;
	if (!res.exists)
		return -ENOENT;
	return jfs_inode_get(fs, dir, name, &res, kernel_ref, ret_inode);
}

/* A lookup on the kernel's behalf: one kernel reference, and the entry filled from the stat the
 * resolution already made. */
int jfs_lookup_entry(struct jfs_fs *fs, struct jfs_inode *dir, const char *name,
		     struct jfs_inode **ret_inode, struct fuse_entry_param *ret_e)
{
	struct jfs_resolved res;
	struct jfs_inode *inode;
	struct stat st;
	int r;

	if (dir->type != S_IFDIR)
		return -ENOTDIR;
	r = jfs_resolve(fs, dir, name, &res);
	if (r < 0)
		return r;
	if (!res.exists)
		return -ENOENT;
	st = res.st;
	r = jfs_inode_get(fs, dir, name, &res, true, &inode);
	if (r < 0)
		return r;
	r = jfs_fill_entry(fs, inode, &st, ret_e);
	if (r < 0) {
		jfs_inode_forget(fs, inode, 1);
		return r;
	}
	*ret_inode = inode;
	return 0;
}

void jfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *dir = jfs_inode_from_id(fs, parent);
	struct jfs_inode *inode;
	struct fuse_entry_param e;
	int r;

	r = jfs_lookup_entry(fs, dir, name, &inode, &e);
	if (r == -ENOENT) {
		/* a negative entry: the view changes only through us, and the kernel drops it when
		 * it creates the name itself */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->opts.entry_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
}

void jfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd;

	fd = jfs_inode_fd(fs, inode, 0, NULL);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf));
	if (n < 0) {
		fuse_reply_err(req, errno);
		close(fd);
		return;
	}
	close(fd);
	if ((size_t)n >= sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}
