/* Namespace changes: create/mkdir/mknod/symlink/link/unlink/rmdir/rename, and the whiteouts and
 * opaque directories that keep lower names hidden after them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

static bool daemon_is_root(void)
{
	return geteuid() == 0;
}

/* Gives a new object to the caller, as if the caller had made it: a set-group-ID parent passes on
 * its group (and, to directories, the bit), and set-ID bits the chown cleared come back, except
 * set-group-ID on a file whose group the caller is not in. */
static int give_to_caller(struct jfs_fs *fs, int fd, const struct fuse_ctx *ctx, mode_t mode,
			  const struct stat *pst, bool in_parent)
{
	bool parent_sgid = pst->st_mode & S_ISGID;
	gid_t gid = parent_sgid ? pst->st_gid : ctx->gid;
	mode_t perm = mode & 07777;
	char proc[64];

	if (parent_sgid && S_ISDIR(mode))
		perm |= S_ISGID;
	if ((perm & S_ISGID) && !S_ISDIR(mode) && ctx->uid != 0 && gid != ctx->gid)
		perm &= ~S_ISGID;
	/* made in its parent by a caller with our own ids, the object is already the caller's (its
	 * group the parent's if set-group-ID, else ours): no chown (one syscall per file a root
	 * job creates). With set-ID bits the chown-then-chmod below stays, as before. */
	if (in_parent && ctx->uid == fs->euid && (parent_sgid || ctx->gid == fs->egid) &&
	    !(perm & (S_ISUID | S_ISGID)))
		return 0;
	if (fchownat(fd, "", ctx->uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != EPERM || daemon_is_root())
			return -errno;
		/* an unprivileged daemon owns what it creates */
	}
	if (!S_ISLNK(mode) && (perm & (S_ISUID | S_ISGID))) {
		jfs_proc_path(proc, sizeof(proc), fd);
		if (chmod(proc, perm) < 0)
			return -errno;
	}
	return 0;
}

/* Creates the object at (dirfd, name); returns an O_PATH descriptor (or, for a regular file with
 * open_flags >= 0, a descriptor open with those flags). */
static int make_object(int dirfd, const char *name, mode_t mode, dev_t rdev,
		       const char *link_target, int open_flags)
{
	int fd;

	switch (mode & S_IFMT) {
	case S_IFDIR:
		if (mkdirat(dirfd, name, mode & 07777) < 0)
			return -errno;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		break;
	case S_IFLNK:
		if (symlinkat(link_target, dirfd, name) < 0)
			return -errno;
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		break;
	case S_IFREG:
		if (open_flags >= 0) {
			fd = openat(dirfd, name,
				    (open_flags & ~(O_NOFOLLOW | O_TRUNC)) | O_CREAT | O_EXCL |
					    O_CLOEXEC,
				    mode & 07777);
			break;
		}
		__attribute__((fallthrough)); /* mknod of a regular file */
	default:
		if (mknodat(dirfd, name, mode, rdev) < 0)
			return -errno;
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		break;
	}
	return fd < 0 ? -errno : fd;
}

static int create_in(struct jfs_fs *fs, const struct fuse_ctx *ctx, int pfd, bool upper_whiteout,
		     struct jfs_inode *dir, const char *name, mode_t mode, dev_t rdev,
		     const char *link_target, int open_flags, int *ret_open_fd,
		     struct fuse_entry_param *ret_e);

int jfs_create_object(struct jfs_fs *fs, fuse_req_t req, struct jfs_inode *dir, const char *name,
		      mode_t mode, dev_t rdev, const char *link_target, int open_flags,
		      int *ret_open_fd, struct fuse_entry_param *ret_e)
{
	struct jfs_resolved res;
	int pfd, r;

	r = jfs_resolve(fs, dir, name, &res);
	if (r < 0)
		return r;
	if (res.exists) {
		jfs_resolved_release(&res);
		return -EEXIST;
	}
	/* a new object needs some room left; what it takes is charged once it exists */
	r = (int)jfs_quota_reserve(fs, 0, false);
	if (r < 0)
		return r;
	pfd = jfs_upper_dir_fd(fs, dir);
	if (pfd < 0)
		return pfd;
	r = create_in(fs, fuse_req_ctx(req), pfd, res.upper_whiteout, dir, name, mode, rdev,
		      link_target, open_flags, ret_open_fd, ret_e);
	if (r == 0)
		jfs_quota_observe_fd(fs, dir, pfd); /* a directory grows by blocks */
	close(pfd);
	return r;
}

/*
 * The entry of an object just made at (pfd, name) in dir's upper. It lives in the upper only: no
 * layer below showed the name, or a whiteout hid it (a directory made over one is opaque), so it
 * needs no second resolution. Takes obj_fd (O_PATH, a directory's descriptor or a new file's
 * open O_RDWR), or opens one when it is -1 (the caller keeps its open file, whose flags the inode's
 * descriptor must not inherit).
 */
static int new_entry(struct jfs_fs *fs, struct jfs_inode *dir, int pfd, const char *name,
		     int obj_fd, struct fuse_entry_param *ret_e)
{
	struct jfs_resolved res = {.exists = true, .nlayers = 1};
	struct jfs_inode *inode;
	struct stat st;
	int r;

	if (obj_fd < 0) {
		obj_fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (obj_fd < 0)
			return -errno;
	}
	if (fstatat(obj_fd, "", &res.st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		close(obj_fd);
		return r;
	}
	res.layers[0].idx = JFS_UPPER;
	res.layers[0].fd = obj_fd;
	res.layers[0].ino = res.st.st_ino;
	st = res.st;
	r = jfs_inode_get(fs, dir, name, &res, true, &inode);
	if (r < 0)
		return r;
	/* a new object has no file capabilities: the kernel's check before each write to it
	 * (GETXATTR security.capability) is answered without a syscall (xattr.c). Not in a
	 * plain view, whose directory others change beside us. */
	if (!fs->opts.plain) {
		jfs_lock(&inode->lock);
		inode->no_fcaps = true;
		jfs_unlock(&inode->lock);
	}
	jfs_quota_add(fs, st.st_blocks); /* its ledger starts at st */
	r = jfs_fill_entry(fs, inode, &st, ret_e);
	if (r < 0)
		jfs_inode_forget(fs, inode, 1);
	return r;
}

static int create_in(struct jfs_fs *fs, const struct fuse_ctx *ctx, int pfd, bool upper_whiteout,
		     struct jfs_inode *dir, const char *name, mode_t mode, dev_t rdev,
		     const char *link_target, int open_flags, int *ret_open_fd,
		     struct fuse_entry_param *ret_e)
{
	struct stat pst;
	char tmp[64];
	int fd, r = 0;

	if (fstat(pfd, &pst) < 0)
		return -errno;

	if (!upper_whiteout) {
		fd = make_object(pfd, name, mode, rdev, link_target, open_flags);
		if (fd < 0)
			return fd;
		r = give_to_caller(fs, fd, ctx, mode, &pst, true);
		if (r < 0) {
			close(fd);
			unlinkat(pfd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
			return r;
		}
	} else {
		/* replace the whiteout in one step: build aside, then rename over it */
		jfs_tmpname(fs, tmp, sizeof(tmp));
		fd = make_object(fs->work_fd, tmp, mode, rdev, link_target, open_flags);
		if (fd < 0)
			return fd;
		r = give_to_caller(fs, fd, ctx, mode, &pst, false);
		if (r == 0 && S_ISDIR(mode))
			r = jfs_set_opaque(fs, fd); /* the lower directory must not show through */
		if (r == 0) {
			if (S_ISDIR(mode)) {
				if (renameat2(fs->work_fd, tmp, pfd, name, RENAME_EXCHANGE) < 0)
					r = -errno;
				else
					unlinkat(fs->work_fd, tmp, 0);
			} else if (renameat(fs->work_fd, tmp, pfd, name) < 0) {
				r = -errno;
			}
		}
		if (r < 0) {
			close(fd);
			jfs_remove_tree_at(fs->work_fd, tmp);
			return r;
		}
	}

	if (ret_open_fd && open_flags >= 0) {
		r = new_entry(fs, dir, pfd, name, -1, ret_e);
		if (r < 0)
			close(fd);
		else
			*ret_open_fd = fd;
		return r;
	}
	return new_entry(fs, dir, pfd, name, fd, ret_e);
}

void jfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_entry_param e;
	int r;

	/* a 0:0 device would be read back as a whiteout: overlayfs refuses it too */
	if (S_ISCHR(mode) && rdev == 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* without opens, this is how files are created: the inode keeps a descriptor open for the
	 * writes that follow */
	r = jfs_create_object(fs, req, jfs_inode_from_id(fs, parent), name, mode, rdev, NULL,
			      S_ISREG(mode) && fs->no_open ? O_RDWR : -1, NULL, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
}

void jfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_entry_param e;
	int r;

	r = jfs_create_object(fs, req, jfs_inode_from_id(fs, parent), name,
			      S_IFDIR | (mode & 07777), 0, NULL, -1, NULL, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
}

void jfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_entry_param e;
	int r;

	r = jfs_create_object(fs, req, jfs_inode_from_id(fs, parent), name, S_IFLNK | 0777, 0, link,
			      -1, NULL, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
}

static int do_link(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_inode *dir,
		   const char *name, struct fuse_entry_param *ret_e)
{
	struct jfs_resolved res;
	char proc[64], tmp[64];
	int pfd, fd, r;

	if (inode->type == S_IFDIR)
		return -EPERM;
	r = jfs_resolve(fs, dir, name, &res);
	if (r < 0)
		return r;
	if (res.exists) {
		jfs_resolved_release(&res);
		return -EEXIST;
	}
	r = jfs_copy_up_meta(fs, inode);
	if (r < 0)
		return r;
	pfd = jfs_upper_dir_fd(fs, dir);
	if (pfd < 0)
		return pfd;
	/* pinned, the inode's own descriptor: no duplicate per link (pnpm links every file) */
	jfs_inode_pin(inode);
	fd = jfs_inode_fd_pinned(fs, inode, 0, NULL);
	if (fd < 0) {
		jfs_inode_unpin(inode);
		close(pfd);
		return fd;
	}
	jfs_proc_path(proc, sizeof(proc), fd);
	if (!res.upper_whiteout) {
		if (linkat(AT_FDCWD, proc, pfd, name, AT_SYMLINK_FOLLOW) < 0)
			r = -errno;
	} else {
		jfs_tmpname(fs, tmp, sizeof(tmp));
		if (linkat(AT_FDCWD, proc, fs->work_fd, tmp, AT_SYMLINK_FOLLOW) < 0) {
			r = -errno;
		} else if (renameat(fs->work_fd, tmp, pfd, name) < 0) {
			r = -errno;
			unlinkat(fs->work_fd, tmp, 0);
		}
	}
	jfs_inode_unpin(inode);
	if (r == 0)
		jfs_quota_observe_fd(fs, dir, pfd);
	close(pfd);
	if (r < 0)
		return r;
	/* the new name is one more of the same object: no lookup (nor redirect walk) needed */
	jfs_inode_kernel_ref(fs, inode);
	r = jfs_fill_entry(fs, inode, NULL, ret_e);
	if (r < 0) {
		jfs_inode_forget(fs, inode, 1);
		return r;
	}
	/* the newest name is the likeliest to survive: re-open and symlink xattrs go by it */
	jfs_inode_set_name(fs, inode, dir, name);
	return 0;
}

void jfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct fuse_entry_param e;
	int r;

	r = do_link(fs, jfs_inode_from_id(fs, ino), jfs_inode_from_id(fs, newparent), newname, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_entry(req, &e);
}

/* Pins the inode with its top descriptor open, while its name still leads to it: mark_removed()
 * needs the object after the name is gone. */
static int hold_object(struct jfs_fs *fs, struct jfs_inode *inode)
{
	int fd;

	jfs_inode_pin(inode);
	fd = jfs_inode_fd_pinned(fs, inode, 0, NULL);
	if (fd < 0) {
		jfs_inode_unpin(inode);
		return fd;
	}
	return 0;
}

/* After its name is gone (the caller holds the object, hold_object): an object whose last link
 * went away must never be matched again by a new object that reuses its real inode number. */
static void mark_removed(struct jfs_fs *fs, struct jfs_inode *inode)
{
	struct stat st;
	int idx, r, fd;

	/* the caller's pin (hold_object) keeps the cached descriptor: no duplicate needed */
	fd = jfs_inode_fd_pinned(fs, inode, 0, &idx);
	if (fd < 0)
		return;
	r = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (r == 0 && idx == JFS_UPPER && inode->type != S_IFDIR && st.st_nlink > 0) {
		/* other hard links remain, but maybe not the name we re-open it by */
		jfs_inode_lose_name(fs, inode, fd);
		return;
	}
	if (r == 0 && idx == JFS_UPPER) {
		jfs_inomap_del(&fs->inomap, JFS_UPPER, st.st_ino);
		jfs_quota_removed(fs, inode); /* its blocks go with its last name */
	}
	jfs_lock(&inode->lock);
	inode->unlinked = true;
	jfs_unlock(&inode->lock);
	jfs_inode_unhash(fs, inode);
}

/* Removes every whiteout directly inside an upper directory. */
static int clear_whiteouts(int dirfd)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_type != DT_CHR && de->d_type != DT_UNKNOWN)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    jfs_is_whiteout(&st) && unlinkat(fd, de->d_name, 0) < 0 && r == 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

/* Replaces the upper entry (dirfd, name) by a whiteout in one step, then deletes the old entry. */
static int whiteout_upper_entry(struct jfs_fs *fs, int dirfd, const char *name)
{
	char tmp[64];
	int r;

	jfs_tmpname(fs, tmp, sizeof(tmp));
	r = jfs_make_whiteout(fs, fs->work_fd, tmp);
	if (r < 0)
		return r;
	if (renameat2(fs->work_fd, tmp, dirfd, name, RENAME_EXCHANGE) < 0) {
		r = -errno;
		unlinkat(fs->work_fd, tmp, 0);
		return r;
	}
	return jfs_remove_tree_at(fs->work_fd, tmp);
}

static int do_remove(struct jfs_fs *fs, struct jfs_inode *dir, const char *name, bool want_dir)
{
	struct jfs_inode *child;
	int pfd, idx, lower, r;

	r = jfs_lookup(fs, dir, name, false, &child);
	if (r < 0)
		return r;
	if (want_dir && child->type != S_IFDIR) {
		r = -ENOTDIR;
		goto out_put;
	}
	if (!want_dir && child->type == S_IFDIR) {
		r = -EISDIR;
		goto out_put;
	}
	if (want_dir) {
		r = jfs_dir_is_empty(fs, child);
		if (r < 0)
			goto out_put;
		if (r == 0) {
			r = -ENOTEMPTY;
			goto out_put;
		}
		r = 0;
	}
	r = hold_object(fs, child);
	if (r < 0)
		goto out_put;
	pfd = jfs_upper_dir_fd(fs, dir);
	if (pfd < 0) {
		r = pfd;
		goto out_unpin;
	}
	lower = jfs_lower_visible(fs, dir, name);
	if (lower < 0) {
		r = lower;
		goto out_close;
	}
	idx = jfs_inode_top_idx(child);
	if (idx != JFS_UPPER) {
		r = jfs_make_whiteout(fs, pfd, name);
	} else if (lower) {
		r = whiteout_upper_entry(fs, pfd, name);
	} else if (unlinkat(pfd, name, want_dir ? AT_REMOVEDIR : 0) < 0) {
		r = -errno;
		if (r == -ENOTEMPTY && !fs->opts.plain) {
			/* only whiteouts left from an earlier life: empty it, then remove */
			int fd = jfs_inode_fd(fs, child, 0, NULL);
			r = fd < 0 ? fd : clear_whiteouts(fd);
			if (r == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0)
				r = -errno;
			if (fd >= 0)
				close(fd);
		}
	}
	if (r == 0) {
		mark_removed(fs, child);
		jfs_quota_observe_fd(fs, dir, pfd); /* a whiteout may grow the directory */
	}
out_close:
	close(pfd);
out_unpin:
	jfs_inode_unpin(child);
out_put:
	jfs_inode_put(fs, child);
	return r;
}

void jfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	fuse_reply_err(req, -do_remove(fs, jfs_inode_from_id(fs, parent), name, false));
}

void jfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	fuse_reply_err(req, -do_remove(fs, jfs_inode_from_id(fs, parent), name, true));
}

static int copy_up_for_move(struct jfs_fs *fs, struct jfs_inode *inode)
{
	return inode->type == S_IFDIR ? jfs_copy_up_tree(fs, inode) : jfs_copy_up_meta(fs, inode);
}

/* A directory moved to a name that a lower shows there must hide it. */
static int opaque_if_covering(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_inode *dir,
			      const char *name)
{
	int r;

	if (inode->type != S_IFDIR)
		return 0;
	int fd;

	r = jfs_lower_visible(fs, dir, name);
	if (r <= 0)
		return r;
	fd = jfs_inode_fd(fs, inode, 0, NULL);
	if (fd < 0)
		return fd;
	r = jfs_set_opaque(fs, fd);
	close(fd);
	return r;
}

static int rename_exchange(struct jfs_fs *fs, struct jfs_inode *odir, const char *oname,
			   struct jfs_inode *ndir, const char *nname, struct jfs_inode *src,
			   struct jfs_inode *tgt, int opfd, int npfd)
{
	int r;

	r = opaque_if_covering(fs, src, ndir, nname);
	if (r == 0)
		r = opaque_if_covering(fs, tgt, odir, oname);
	if (r < 0)
		return r;
	if (renameat2(opfd, oname, npfd, nname, RENAME_EXCHANGE) < 0)
		return -errno;
	jfs_inode_set_name(fs, src, ndir, nname);
	jfs_inode_set_name(fs, tgt, odir, oname);
	return 0;
}

static int rename_move(struct jfs_fs *fs, struct jfs_inode *odir, const char *oname,
		       struct jfs_inode *ndir, const char *nname, struct jfs_inode *src,
		       struct jfs_inode *tgt, int opfd, int npfd)
{
	struct stat st;
	bool target_whiteout = false;
	int owhite, r;

	owhite = jfs_lower_visible(fs, odir, oname);
	if (owhite < 0)
		return owhite;
	if (tgt && tgt->type == S_IFDIR) {
		int idx, fd = jfs_inode_fd(fs, tgt, 0, &idx);
		if (fd < 0)
			return fd;
		r = idx == JFS_UPPER && !fs->opts.plain ? clear_whiteouts(fd) : 0;
		close(fd);
		if (r < 0)
			return r;
	}
	r = opaque_if_covering(fs, src, ndir, nname);
	if (r < 0)
		return r;
	if (!tgt && !fs->opts.plain && fstatat(npfd, nname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    jfs_is_whiteout(&st))
		target_whiteout = true;

	if (target_whiteout && src->type == S_IFDIR) {
		/* a directory cannot replace the whiteout's device node: swap them instead */
		if (renameat2(opfd, oname, npfd, nname, RENAME_EXCHANGE) < 0)
			return -errno;
		if (!owhite && unlinkat(opfd, oname, 0) < 0)
			return -errno;
	} else if (owhite) {
		if (renameat2(opfd, oname, npfd, nname, RENAME_WHITEOUT) < 0) {
			if (errno != EINVAL && errno != EPERM)
				return -errno;
			if (renameat(opfd, oname, npfd, nname) < 0)
				return -errno;
			r = jfs_make_whiteout(fs, opfd, oname);
			if (r < 0)
				return r;
		}
	} else if (renameat(opfd, oname, npfd, nname) < 0) {
		return -errno;
	}
	if (tgt)
		mark_removed(fs, tgt);
	jfs_inode_set_name(fs, src, ndir, nname);
	return 0;
}

static int do_rename(struct jfs_fs *fs, struct jfs_inode *odir, const char *oname,
		     struct jfs_inode *ndir, const char *nname, unsigned int flags)
{
	struct jfs_inode *src = NULL, *tgt = NULL;
	int opfd = -1, npfd = -1, r;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	r = jfs_check_name(nname);
	if (r < 0)
		return r;
	r = jfs_lookup(fs, odir, oname, false, &src);
	if (r < 0)
		return r;
	r = jfs_lookup(fs, ndir, nname, false, &tgt);
	if (r == -ENOENT) {
		tgt = NULL;
		r = 0;
	}
	if (r < 0)
		goto out;
	if (!tgt && (flags & RENAME_EXCHANGE)) {
		r = -ENOENT;
		goto out;
	}
	if (tgt == src) {
		r = 0; /* two names of one object: nothing to do */
		goto out;
	}
	if (tgt && (flags & RENAME_NOREPLACE)) {
		r = -EEXIST;
		goto out;
	}
	if (tgt && !(flags & RENAME_EXCHANGE)) {
		if (src->type == S_IFDIR && tgt->type != S_IFDIR) {
			r = -ENOTDIR;
			goto out;
		}
		if (src->type != S_IFDIR && tgt->type == S_IFDIR) {
			r = -EISDIR;
			goto out;
		}
		if (tgt->type == S_IFDIR) {
			r = jfs_dir_is_empty(fs, tgt);
			if (r < 0)
				goto out;
			if (r == 0) {
				r = -ENOTEMPTY;
				goto out;
			}
		}
	}
	r = copy_up_for_move(fs, src);
	if (r == 0 && tgt && (flags & RENAME_EXCHANGE))
		r = copy_up_for_move(fs, tgt);
	if (r < 0)
		goto out;
	opfd = jfs_upper_dir_fd(fs, odir);
	if (opfd < 0) {
		r = opfd;
		goto out;
	}
	npfd = jfs_upper_dir_fd(fs, ndir);
	if (npfd < 0) {
		r = npfd;
		goto out;
	}
	if (flags & RENAME_EXCHANGE) {
		r = rename_exchange(fs, odir, oname, ndir, nname, src, tgt, opfd, npfd);
	} else if (tgt && (r = hold_object(fs, tgt)) == 0) {
		r = rename_move(fs, odir, oname, ndir, nname, src, tgt, opfd, npfd);
		jfs_inode_unpin(tgt);
	} else if (!tgt) {
		r = rename_move(fs, odir, oname, ndir, nname, src, tgt, opfd, npfd);
	}
	if (r == 0) {
		jfs_quota_observe_fd(fs, ndir, npfd);
		if (ndir != odir)
			jfs_quota_observe_fd(fs, odir, opfd);
	}
out:
	if (npfd >= 0)
		close(npfd);
	if (opfd >= 0)
		close(opfd);
	jfs_inode_put(fs, tgt);
	jfs_inode_put(fs, src);
	return r;
}

void jfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	fuse_reply_err(req, -do_rename(fs, jfs_inode_from_id(fs, parent), name,
				       jfs_inode_from_id(fs, newparent), newname, flags));
}
