/* Session life: checking and opening the layers, the work dir, the fuse_lowlevel_ops table,
 * init/destroy, statfs, and serving a view until it is unmounted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "jfs.h"

static int set_error(struct jfs_error *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return r;
}

void jfs_config_defaults(struct jfs_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->upper_fd = -1;
	cfg->opts.user_xattr = geteuid() != 0;
	cfg->opts.allow_other = geteuid() == 0;
	cfg->opts.fsync_copy_up = true;
	cfg->opts.metacopy = true;
	/* the lowers never change and the upper changes only through us, so the kernel may keep
	 * names and attributes: it drops what its own operations invalidate */
	cfg->opts.entry_timeout = 86400.0;
	cfg->opts.max_threads = 16;
	cfg->opts.open_files = geteuid() != 0;
}

static void jfs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct jfs_fs *fs = userdata;

	/* the kernel clears set-ID bits on write, truncate and chown itself unless we take that
	 * over, but then it first asks for the mode (a GETATTR before every chown: tar's fchown of
	 * each extracted file). Without opens every truncate reaches us as a setattr, so we can:
	 * inode.c applies the kernel's rules. With opens an O_TRUNC truncates in the open, where
	 * we would not know the caller: the kernel keeps the job. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* directories need no per-open state (readdir.c), and symlinks change only through us */
	if (!fs->opts.plain && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		fs->no_opendir = true;
	}
	/* nor files: requests go to each inode's own descriptors (file.c); an O_TRUNC open then
	 * comes as a truncating setattr, since no open reaches us to truncate */
	if (!fs->opts.open_files && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)) {
		conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
		fs->no_open = true;
		if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV) {
			fs->init_add_flags |= FUSE_HANDLE_KILLPRIV;
			fs->killpriv = true;
		}
		/* version 2 of the same (protocol 7.33, which libfuse 3.14 does not speak, but the
		 * flag is all it takes) lets the kernel mark an inode it found without set-ID bits
		 * and file capabilities as such until its attributes next come from us, so it stops
		 * asking for security.capability before every write (one GETXATTR per 4 KiB random
		 * write). What it leaves to us is what kill_setid already does: it still sends the
		 * set-ID clearing of a write as a setattr (file_remove_privs, whenever the mode has
		 * the bits), and still removes capabilities itself. */
		if (fs->killpriv && (fs->kernel_init_flags & FUSE_HANDLE_KILLPRIV_V2))
			fs->init_add_flags |= FUSE_HANDLE_KILLPRIV_V2;
	}
	/* READDIRPLUS for every listing, not the kernel's adaptive choice: in AUTO mode a cold
	 * find lists a directory with READDIRPLUS and then LOOKUPs half its entries anyway (one
	 * request per entry); always plus, the listing brings every entry's attributes at once */
	if (!fs->opts.plain)
		conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
}

void jfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(fs->layers[JFS_UPPER].fd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = NAME_MAX;
	jfs_quota_statfs(fs, &sv); /* the view's size is its quota */
	fuse_reply_statfs(req, &sv);
}

/*
 * libfuse 3.14 takes FUSE_CAP_HANDLE_KILLPRIV in conn->want but never tells the kernel (libfuse
 * issue 884, fixed in 3.16), so the INIT reply is amended on its way to /dev/fuse: the read hook
 * notes the INIT request (it arrives by read(2): libfuse splices only after INIT) and the flags
 * the kernel offers in it, which libfuse drops where it does not know them; the writev
 * hook adds fs->init_add_flags to the reply to it. Every other request and reply passes through
 * untouched; both run in the thread serving INIT, before any other request is read.
 */
static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct jfs_fs *fs = userdata;
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;

	if (n >= (ssize_t)(sizeof(*in) + offsetof(struct fuse_init_in, flags) + sizeof(uint32_t)) &&
	    in->opcode == FUSE_INIT) {
		const struct fuse_init_in *init = (const void *)(in + 1);

		fs->init_unique = in->unique;
		fs->kernel_init_flags = init->flags; /* what the kernel offers, for jfs_op_init */
	}
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct jfs_fs *fs = userdata;

	if (fs->init_unique && count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
		const struct fuse_out_header *out = iov[0].iov_base;
		if (out->unique == fs->init_unique) {
			struct fuse_init_out *init = iov[1].iov_base;
			if (out->error == 0)
				init->flags |= fs->init_add_flags;
			fs->init_unique = 0;
		}
	}
	return writev(fd, iov, count);
}

/* Given custom I/O, libfuse splices only through these: the same calls it makes without it. */
static ssize_t io_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				 unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t io_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			      unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io jfs_io = {
	.read = io_read,
	.writev = io_writev,
	.splice_receive = io_splice_receive,
	.splice_send = io_splice_send,
};

static const struct fuse_lowlevel_ops jfs_ops = {
	.init = jfs_op_init,
	.lookup = jfs_op_lookup,
	.forget = jfs_op_forget,
	.forget_multi = jfs_op_forget_multi,
	.getattr = jfs_op_getattr,
	.setattr = jfs_op_setattr,
	.readlink = jfs_op_readlink,
	.mknod = jfs_op_mknod,
	.mkdir = jfs_op_mkdir,
	.symlink = jfs_op_symlink,
	.link = jfs_op_link,
	.unlink = jfs_op_unlink,
	.rmdir = jfs_op_rmdir,
	.rename = jfs_op_rename,
	.create = jfs_op_create,
	.open = jfs_op_open,
	.read = jfs_op_read,
	.write_buf = jfs_op_write_buf,
	/* no flush: close(2) has nothing for us to do, and ENOSYS tells the kernel so */
	.release = jfs_op_release,
	.fsync = jfs_op_fsync,
	.fallocate = jfs_op_fallocate,
	.copy_file_range = jfs_op_copy_file_range,
	.lseek = jfs_op_lseek,
	.opendir = jfs_op_opendir,
	.readdir = jfs_op_readdir,
	.readdirplus = jfs_op_readdirplus,
	.releasedir = jfs_op_releasedir,
	.fsyncdir = jfs_op_fsyncdir,
	.statfs = jfs_op_statfs,
	.setxattr = jfs_op_setxattr,
	.getxattr = jfs_op_getxattr,
	.listxattr = jfs_op_listxattr,
	.removexattr = jfs_op_removexattr,
};

static int open_dir(const char *what, const char *path, struct jfs_error *err, struct stat *ret_st)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return set_error(err, -errno, "cannot open %s '%s': %s", what, path,
				 strerror(errno));
	if (fstat(fd, ret_st) < 0) {
		int r = -errno;
		close(fd);
		return set_error(err, r, "cannot stat %s '%s': %s", what, path, strerror(-r));
	}
	return fd;
}

/*
 * A lower is served through a private, detached, read-only and noatime clone of its mount when the
 * daemon may make one (root): the kernel itself then refuses any write to the base, and reading a
 * symlink no longer touches its atime. Elsewhere the lower is opened as it is.
 */
static int open_lower(const char *path, struct jfs_error *err, struct stat *ret_st,
		      int *ret_tree_fd)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME | MOUNT_ATTR_NOSUID |
			    MOUNT_ATTR_NODEV,
		.attr_clr = MOUNT_ATTR__ATIME,
	};
	int tree_fd, fd;

	*ret_tree_fd = -1;
	tree_fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree_fd >= 0 &&
	    mount_setattr(tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) == 0) {
		fd = openat(tree_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, ret_st) == 0) {
			*ret_tree_fd = tree_fd;
			return fd;
		}
		if (fd >= 0)
			close(fd);
	}
	if (tree_fd >= 0)
		close(tree_fd);
	return open_dir("lower layer", path, err, ret_st);
}

/* The upper given as a descriptor (cfg->upper_fd): a directory, duplicated. */
static int open_upper_fd(const struct jfs_config *cfg, struct jfs_error *err, struct stat *ret_st)
{
	const char *name = cfg->upper ? cfg->upper : "(descriptor)";
	int fd = fcntl(cfg->upper_fd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return set_error(err, -errno, "cannot use upper '%s': %s", name, strerror(errno));
	if (fstat(fd, ret_st) < 0 || !S_ISDIR(ret_st->st_mode)) {
		int r = S_ISDIR(ret_st->st_mode) ? -errno : -ENOTDIR;

		close(fd);
		return set_error(err, r, "cannot use upper '%s': %s", name, strerror(-r));
	}
	return fd;
}

/* True when a is b or lies below it. */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/' || (n == 1 && b[0] == '/'));
}

static void fs_free(struct jfs_fs *fs)
{
	if (!fs)
		return;
	jfs_files_free_all(fs);
	pthread_mutex_destroy(&fs->files_lock);
	if (fs->root) {
		for (int i = 0; i < fs->root->nlayers; i++)
			close(fs->root->layers[i].fd);
		if (jfs_inode_layers_owned(fs->root))
			free(fs->root->layers);
		jfs_inode_rare_free(fs->root->rare);
		free(fs->root->name);
		free(fs->root);
	}
	if (fs->itable.buckets)
		jfs_itable_destroy(&fs->itable);
	if (fs->inomap.buckets)
		jfs_inomap_destroy(&fs->inomap);
	for (int i = 0; i < fs->nlayers; i++) {
		if (fs->layers[i].fd >= 0)
			close(fs->layers[i].fd);
		if (fs->layers[i].tree_fd >= 0)
			close(fs->layers[i].tree_fd);
		free(fs->layers[i].path);
	}
	free(fs->layers);
	if (fs->work_fd >= 0)
		close(fs->work_fd);
	for (int i = 0; i < JFS_LOCK_STRIPES; i++) {
		pthread_mutex_destroy(&fs->copy_locks[i]);
		pthread_mutex_destroy(&fs->list_locks[i]);
	}
	free(fs->xattr_prefix);
	free(fs);
}

/* Empties the work dir of what an earlier, interrupted daemon left there. */
static int clean_work_dir(struct jfs_fs *fs)
{
	int fd = fcntl(fs->work_fd, F_DUPFD_CLOEXEC, 0);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, JFS_INCOMPAT_DIR))
			continue;
		int rr = jfs_remove_tree_at(fs->work_fd, de->d_name);
		if (rr < 0 && r == 0)
			r = rr;
	}
	closedir(d);
	return r;
}

static int fs_open(const struct jfs_config *cfg, struct jfs_fs **ret_fs, struct jfs_error *err)
{
	char real_upper[PATH_MAX], real_work[PATH_MAX], real_mnt[PATH_MAX];
	struct stat st, ust, wst, mst, pst;
	struct jfs_fs *fs;
	int fd, r;

	if (cfg->nlowers < 0)
		return set_error(err, -EINVAL, "bad number of lower layers");
	if (cfg->nlowers >= JFS_MAX_LAYERS)
		return set_error(err, -E2BIG, "too many lower layers: %d (at most %d)",
				 cfg->nlowers, JFS_MAX_LAYERS - 1);
	if ((!cfg->upper && cfg->upper_fd < 0) || (!cfg->work && !cfg->opts.plain))
		return set_error(err, -EINVAL,
				 "an upper (--upper) and a work dir (--work) are needed");
	if (cfg->opts.plain && cfg->nlowers > 0)
		return set_error(err, -EINVAL, "a plain view has no lower layers");
	if (!cfg->mountpoint)
		return set_error(err, -EINVAL, "a mount point is needed");

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return set_error(err, -ENOMEM, "out of memory");
	fs->work_fd = -1;
	pthread_mutex_init(&fs->files_lock, NULL);
	fs->euid = geteuid();
	fs->egid = getegid();
	fs->work_gid = fs->egid;
	for (int i = 0; i < JFS_LOCK_STRIPES; i++) {
		pthread_mutex_init(&fs->copy_locks[i], NULL);
		pthread_mutex_init(&fs->list_locks[i], NULL);
	}
	fs->opts = cfg->opts;
	if (fs->opts.plain) {
		fs->opts.open_files = true; /* the kernel must not keep pages across opens */
		fs->opts.quota = 0;
		fs->opts.metacopy = false;
		fs->opts.volatile_upper = false; /* its marker would need a work dir */
		/* others change the directory beside us: what the kernel caches goes stale */
		if (fs->opts.entry_timeout > 1.0)
			fs->opts.entry_timeout = 1.0;
	}
	fs->nlayers = cfg->nlowers + 1;
	fs->layers = calloc((size_t)fs->nlayers, sizeof(*fs->layers));
	if (!fs->layers) {
		r = set_error(err, -ENOMEM, "out of memory");
		goto out_free;
	}
	for (int i = 0; i < fs->nlayers; i++)
		fs->layers[i].fd = fs->layers[i].tree_fd = -1;

	if (cfg->upper_fd >= 0)
		fd = open_upper_fd(cfg, err, &ust);
	else
		fd = open_dir("upper", cfg->upper, err, &ust);
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	fs->layers[JFS_UPPER].fd = fd;
	fs->layers[JFS_UPPER].dev = ust.st_dev;
	fs->layers[JFS_UPPER].path = strdup(cfg->upper ? cfg->upper : "(descriptor)");
	fs->open_handles = jfs_can_open_handles(fd);
	if (faccessat(fd, ".", W_OK, AT_EACCESS) < 0) {
		r = set_error(err, -errno, "upper '%s' is not writable: %s", cfg->upper,
			      strerror(errno));
		goto out_free;
	}
	for (int i = 0; i < cfg->nlowers; i++) {
		fd = open_lower(cfg->lowers[i], err, &st, &fs->layers[i + 1].tree_fd);
		if (fd < 0) {
			r = fd;
			goto out_free;
		}
		fs->layers[i + 1].fd = fd;
		fs->layers[i + 1].dev = st.st_dev;
		fs->layers[i + 1].path = strdup(cfg->lowers[i]);
	}
	if (fs->opts.plain)
		goto skip_work; /* nothing is ever copied up or replaced in two steps */
	fd = open_dir("work dir", cfg->work, err, &wst);
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	if (wst.st_dev != ust.st_dev) {
		close(fd);
		r = set_error(err, -EXDEV,
			      "upper '%s' and work dir '%s' are on different filesystems",
			      cfg->upper, cfg->work);
		goto out_free;
	}
	if (!realpath(cfg->upper, real_upper) || !realpath(cfg->work, real_work)) {
		close(fd);
		r = set_error(err, -errno, "cannot resolve '%s': %s", cfg->work, strerror(errno));
		goto out_free;
	}
	if (path_within(real_work, real_upper) || path_within(real_upper, real_work)) {
		close(fd);
		r = set_error(err, -EINVAL,
			      "work dir '%s' and upper '%s' must not contain each other", cfg->work,
			      cfg->upper);
		goto out_free;
	}
	if (mkdirat(fd, JFS_WORK_SUBDIR, 0700) < 0 && errno != EEXIST) {
		r = set_error(err, -errno, "cannot create '%s/%s': %s", cfg->work, JFS_WORK_SUBDIR,
			      strerror(errno));
		close(fd);
		goto out_free;
	}
	fs->work_fd = openat(fd, JFS_WORK_SUBDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(fd);
	if (fs->work_fd < 0) {
		r = set_error(err, -errno, "cannot open '%s/%s': %s", cfg->work, JFS_WORK_SUBDIR,
			      strerror(errno));
		goto out_free;
	}
	fs->work_gid =
		fstat(fs->work_fd, &wst) == 0 && (wst.st_mode & S_ISGID) ? wst.st_gid : fs->egid;
	r = clean_work_dir(fs);
	if (r < 0) {
		set_error(err, r, "cannot clean work dir '%s': %s", cfg->work, strerror(-r));
		goto out_free;
	}
	{
		char why[256] = "";
		r = jfs_volatile_begin(fs, why, sizeof(why));
		if (r < 0) {
			set_error(err, r, "cannot serve upper '%s': %s", cfg->upper,
				  why[0] ? why : strerror(-r));
			goto out_free;
		}
	}

skip_work:
	if (stat(cfg->mountpoint, &mst) < 0) {
		r = set_error(err, -errno, "cannot use mount point '%s': %s", cfg->mountpoint,
			      strerror(errno));
		goto out_free;
	}
	if (!S_ISDIR(mst.st_mode)) {
		r = set_error(err, -ENOTDIR, "mount point '%s' is not a directory",
			      cfg->mountpoint);
		goto out_free;
	}
	if (!fs->opts.plain && realpath(cfg->mountpoint, real_mnt) && strcmp(real_mnt, "/") &&
	    (path_within(real_mnt, real_upper) || path_within(real_mnt, real_work))) {
		r = set_error(err, -EINVAL, "mount point '%s' lies inside the upper or work dir",
			      cfg->mountpoint);
		goto out_free;
	}
	{
		char parent[PATH_MAX + 4];
		snprintf(parent, sizeof(parent), "%s/..", cfg->mountpoint);
		if (stat(parent, &pst) == 0 &&
		    (pst.st_dev != mst.st_dev || pst.st_ino == mst.st_ino)) {
			r = set_error(err, -EBUSY,
				      "mount point '%s' is busy: something is mounted there",
				      cfg->mountpoint);
			goto out_free;
		}
	}

	/* descriptors: raise the soft limit to the hard one, and let the inode cache use a part of
	 * it; the rest serves open files */
	{
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		rlim_t limit = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : rl.rlim_cur;
		fs->max_cached_fds = cfg->opts.max_cached_fds ? cfg->opts.max_cached_fds
							      : (uint64_t)limit / 5 * 2;
		if (fs->max_cached_fds < 64)
			fs->max_cached_fds = 64;
	}
	pthread_mutex_init(&fs->evict_lock, NULL);
	jfs_fdlist_init(fs);

	/* after raising the descriptor limit: the walk holds one per level of the tree */
	r = fs->opts.plain ? 0 : jfs_quota_measure(fs);
	if (r < 0) {
		set_error(err, r, "cannot measure the usage of upper '%s': %s", cfg->upper,
			  strerror(-r));
		goto out_free;
	}

	fs->xattr_prefix = strdup(cfg->opts.user_xattr ? "user.overlay." : "trusted.overlay.");
	if (!fs->xattr_prefix) {
		r = set_error(err, -ENOMEM, "out of memory");
		goto out_free;
	}
	fs->xattr_prefix_len = strlen(fs->xattr_prefix);
	r = jfs_itable_init(&fs->itable, 1 << 16);
	if (r == 0)
		r = jfs_inomap_init(&fs->inomap);
	if (r == 0)
		r = jfs_inode_make_root(fs);
	if (r < 0) {
		set_error(err, r, "cannot set up the view: %s", strerror(-r));
		goto out_free;
	}
	*ret_fs = fs;
	return 0;

out_free:
	fs_free(fs);
	return r;
}

static int add_arg(struct fuse_args *args, const char *arg, struct jfs_error *err)
{
	if (fuse_opt_add_arg(args, arg) < 0)
		return set_error(err, -ENOMEM, "out of memory");
	return 0;
}

/* A view: one session over one set of layers, mounted at one place. */
struct jfs_view {
	struct jfs_fs *fs;
	struct fuse_session *se;
	bool mounted;
	unsigned int max_threads;
};

int jfs_view_open(const struct jfs_config *cfg, struct jfs_view **ret_view, struct jfs_error *err)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct jfs_view *view;
	char opts[2048];
	int r;

	umask(0); /* modes arrive with the caller's umask applied */
	/* a daemon process serves views and nothing else: inodes allocated by every worker thread
	 * in a few arenas, not one arena each, fragment less and go back after forgets */
	mallopt(M_ARENA_MAX, 2);
	view = calloc(1, sizeof(*view));
	if (!view)
		return set_error(err, -ENOMEM, "out of memory");
	view->max_threads = cfg->opts.max_threads;
	r = fs_open(cfg, &view->fs, err);
	if (r < 0)
		goto out_free;

	snprintf(opts, sizeof(opts),
		 "fsname=%s,subtype=jobfs,default_permissions,nosuid,nodev%s%s%s",
		 cfg->fsname ? cfg->fsname : "jobfs", cfg->opts.allow_other ? ",allow_other" : "",
		 cfg->fuse_opts ? "," : "", cfg->fuse_opts ? cfg->fuse_opts : "");
	if ((r = add_arg(&args, "jobfs-fs", err)) < 0 || (r = add_arg(&args, "-o", err)) < 0 ||
	    (r = add_arg(&args, opts, err)) < 0 ||
	    (cfg->debug && (r = add_arg(&args, "-d", err)) < 0))
		goto out_free;
	view->se = fuse_session_new(&args, &jfs_ops, sizeof(jfs_ops), view->fs);
	if (!view->se) {
		r = set_error(err, -EINVAL, "cannot start a FUSE session (options '%s')", opts);
		goto out_free;
	}
	view->fs->se = view->se;
	if (fuse_session_mount(view->se, cfg->mountpoint) < 0) {
		r = set_error(err, -EIO, "cannot mount on '%s' (see the message above)",
			      cfg->mountpoint);
		goto out_free;
	}
	view->mounted = true;
	if (fuse_session_custom_io(view->se, &jfs_io, fuse_session_fd(view->se)) < 0) {
		r = set_error(err, -EIO, "cannot set up the FUSE session on '%s'", cfg->mountpoint);
		goto out_free;
	}
	fuse_opt_free_args(&args);
	*ret_view = view;
	return 0;

out_free:
	fuse_opt_free_args(&args);
	jfs_view_close(view);
	return r;
}

int jfs_view_serve(struct jfs_view *view, struct jfs_error *err)
{
	struct fuse_loop_config *loop;
	int r;

	loop = fuse_loop_cfg_create();
	if (!loop)
		return set_error(err, -ENOMEM, "out of memory");
	fuse_loop_cfg_set_clone_fd(loop, 1);
	fuse_loop_cfg_set_max_threads(loop, view->max_threads);
	r = fuse_session_loop_mt(view->se, loop);
	fuse_loop_cfg_destroy(loop);
	/* a positive value is the signal that ended the loop: a clean stop */
	if (r < 0)
		return set_error(err, r, "the FUSE session failed: %s", strerror(-r));
	return 0;
}

void jfs_view_stop(struct jfs_view *view)
{
	if (view && view->se)
		fuse_session_exit(view->se);
}

void jfs_view_close(struct jfs_view *view)
{
	if (!view)
		return;
	if (view->mounted)
		fuse_session_unmount(view->se);
	if (view->se)
		fuse_session_destroy(view->se);
	if (view->fs) {
		int r = jfs_volatile_end(view->fs);
		/* the marker stays: the layer is refused after a restart, never served torn */
		if (r < 0)
			fprintf(stderr, "jobfs-fs: cannot flush the volatile upper '%s': %s\n",
				view->fs->layers[JFS_UPPER].path, strerror(-r));
	}
	fs_free(view->fs);
	free(view);
}

struct fuse_session *jfs_view_session(struct jfs_view *view)
{
	return view->se;
}

int jfs_serve(const struct jfs_config *cfg, struct jfs_error *err)
{
	struct jfs_view *view;
	int r;

	r = jfs_view_open(cfg, &view, err);
	if (r < 0)
		return r;
	if (fuse_set_signal_handlers(view->se) < 0) {
		r = set_error(err, -EIO, "cannot install signal handlers");
		goto out_close;
	}
	if (fuse_daemonize(cfg->foreground) < 0) {
		r = set_error(err, -EIO, "cannot daemonize");
		goto out_signals;
	}
	r = jfs_view_serve(view, err);
out_signals:
	fuse_remove_signal_handlers(view->se);
out_close:
	jfs_view_close(view);
	return r;
}
