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
	free(res->redirect);
	res->redirect = NULL;
}

/* openat() that leaves the atime alone where it may (O_NOATIME needs ownership or CAP_FOWNER);
 * returns the descriptor or -errno. */
int jfs_open_noatime(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_CLOEXEC | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int jfs_open_object(int dirfd, const char *name, mode_t mode)
{
	return jfs_open_noatime(dirfd, name,
				(S_ISDIR(mode) ? O_RDONLY | O_DIRECTORY : O_PATH) | O_NOFOLLOW);
}

/* Opens (O_PATH) the object at an absolute redirect path in layer idx, one component at a time:
 * no path length limit, no symlink followed, no ".." out of the layer. */
int jfs_open_redirect(struct jfs_fs *fs, int idx, const char *path)
{
	char name[NAME_MAX + 1];
	int fd = fcntl(fs->layers[idx].fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	while (*path) {
		const char *end;
		size_t len;
		int next;

		while (*path == '/')
			path++;
		end = strchrnul(path, '/');
		len = (size_t)(end - path);
		if (len == 0)
			break;
		if (len > NAME_MAX || (len == 2 && path[0] == '.' && path[1] == '.')) {
			close(fd);
			return -EIO;
		}
		memcpy(name, path, len);
		name[len] = '\0';
		next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -errno;
		fd = next;
		path = end;
	}
	return fd;
}

/* The data of a metacopy found in the upper: at its redirect in the first lower that has a
 * regular file there. */
static int resolve_redirect(struct jfs_fs *fs, const char *redirect, struct jfs_ilayer *ret,
			    struct stat *ret_st)
{
	for (int idx = 1; idx < fs->nlayers; idx++) {
		int fd = jfs_open_redirect(fs, idx, redirect);
		if (fd == -ENOENT || fd == -ENOTDIR)
			continue;
		if (fd < 0)
			return fd;
		if (fstat(fd, ret_st) < 0 || !S_ISREG(ret_st->st_mode)) {
			close(fd);
			if (jfs_is_whiteout(ret_st))
				break;
			continue;
		}
		ret->idx = idx;
		ret->fd = fd;
		ret->ino = ret_st->st_ino;
		return 0;
	}
	return -EIO; /* a metacopy without its data */
}

/* Resolves name in the directory whose layers' descriptors dl holds (the caller's). ret->exists is
 * false (and 0 returned) when no layer shows the name. */
int jfs_resolve_in(struct jfs_fs *fs, const struct jfs_ilayer *dl, int ndl, const char *name,
		   struct jfs_resolved *ret)
{
	bool want_data = false;
	int r;

	ret->exists = false;
	ret->nlayers = 0;
	ret->upper_whiteout = false;
	ret->redirect = NULL;
	r = jfs_check_name(name);
	if (r < 0)
		return r;
	for (int i = 0; i < ndl; i++) {
		struct stat st;
		int fd;

		if (fstatat(dl[i].fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			r = -errno;
			goto out_release;
		}
		if (!fs->opts.plain && jfs_is_whiteout(&st)) {
			if (dl[i].idx == JFS_UPPER)
				ret->upper_whiteout = true;
			break;
		}
		if (want_data && !S_ISREG(st.st_mode))
			break;
		if (ret->exists && !S_ISDIR(st.st_mode) && !want_data)
			break; /* a non-directory below a directory is hidden */
		if (dl[i].idx != JFS_UPPER && !S_ISDIR(st.st_mode)) {
			/* opened when first needed (jfs_inode_fd re-opens by parent and name): a
			 * stat storm over the base opens no file at all */
			fd = -1;
		} else {
			fd = jfs_open_object(dl[i].fd, name, st.st_mode);
			if (fd < 0) {
				if (fd == -ENOENT)
					continue;
				r = fd;
				goto out_release;
			}
		}
		if (!ret->exists) {
			ret->exists = true;
			ret->st = st;
		}
		ret->layers[ret->nlayers].idx = dl[i].idx;
		ret->layers[ret->nlayers].fd = fd;
		ret->layers[ret->nlayers].ino = st.st_ino;
		ret->nlayers++;
		if (want_data) {
			ret->st.st_blocks = st.st_blocks; /* a metacopy's blocks are its data's */
			want_data = false;
			break;
		}
		if (dl[i].idx == JFS_UPPER && S_ISREG(st.st_mode) && st.st_size > 0 &&
		    fs->nlayers > 1) {
			/* perhaps a metacopy, whose data is in a lower (its blocks tell nothing: an
			 * xattr block may be all it has) */
			r = jfs_get_metacopy(fs, fd, &ret->redirect);
			if (r < 0)
				goto out_release;
			if (r > 0 && ret->redirect) {
				struct stat dst;
				r = resolve_redirect(fs, ret->redirect, &ret->layers[1], &dst);
				if (r < 0)
					goto out_release;
				ret->nlayers++;
				ret->st.st_blocks = dst.st_blocks;
				break;
			}
			if (r > 0) {
				want_data = true; /* at the same name in the lowers */
				continue;
			}
		}
		if (!S_ISDIR(st.st_mode) || ret->nlayers == JFS_MAX_LAYERS)
			break;
		if (i + 1 == ndl)
			break; /* nothing below to hide: an opaque marker would change nothing, so
				* its fgetxattr is saved (every directory of a one-lower base) */
		r = jfs_is_opaque(fs, fd);
		if (r < 0)
			goto out_release;
		if (r > 0)
			break;
	}
	if (want_data) {
		r = -EIO; /* a metacopy without its data */
		goto out_release;
	}
	return 0;

out_release:
	jfs_resolved_release(ret);
	ret->exists = false;
	return r;
}

/* Resolves name in dir. ret->exists is false (and 0 returned) when no layer shows the name. */
int jfs_resolve(struct jfs_fs *fs, struct jfs_inode *dir, const char *name,
		struct jfs_resolved *ret)
{
	struct jfs_ilayer dl[JFS_MAX_LAYERS];
	int ndl, r;

	ret->exists = false;
	ret->nlayers = 0;
	ret->redirect = NULL;
	ndl = jfs_inode_layers_pin(fs, dir, dl, JFS_MAX_LAYERS);
	if (ndl < 0)
		return ndl;
	r = jfs_resolve_in(fs, dl, ndl, name, ret);
	jfs_inode_unpin(dir);
	return r;
}

/* Returns 1 when a lower layer of dir shows name (ignoring the upper), so that removing or moving
 * the upper entry needs a whiteout to keep it hidden. */
int jfs_lower_visible(struct jfs_fs *fs, struct jfs_inode *dir, const char *name)
{
	struct jfs_ilayer dl[JFS_MAX_LAYERS];
	int ndl, r = 0;

	ndl = jfs_inode_layers_pin(fs, dir, dl, JFS_MAX_LAYERS);
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
	jfs_inode_unpin(dir);
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
 * resolution already made. dl holds dir's layer descriptors when the caller has them (readdirplus
 * resolves a whole listing with one set), or is NULL. */
int jfs_lookup_entry(struct jfs_fs *fs, struct jfs_inode *dir, const struct jfs_ilayer *dl, int ndl,
		     const char *name, struct jfs_inode **ret_inode, struct fuse_entry_param *ret_e)
{
	struct jfs_resolved res;
	struct jfs_inode *inode;
	struct stat st;
	int r;

	if (dir->type != S_IFDIR)
		return -ENOTDIR;
	r = dl ? jfs_resolve_in(fs, dl, ndl, name, &res) : jfs_resolve(fs, dir, name, &res);
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

	r = jfs_lookup_entry(fs, dir, NULL, 0, name, &inode, &e);
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
