/* The on-disk layer format shared by the daemon and the CLI: whiteouts, opaque directories, the
 * private xattr namespace, temporaries in the work dir, and removal that never follows a link. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "jfs.h"

bool jfs_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static void xattr_name(struct jfs_fs *fs, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", fs->xattr_prefix, suffix);
}

/* Returns 1 when the directory behind dirfd (a real, non-O_PATH descriptor) is opaque. */
int jfs_is_opaque(struct jfs_fs *fs, int dirfd)
{
	char name[64], val[2];
	ssize_t n;

	xattr_name(fs, "opaque", name, sizeof(name));
	n = fgetxattr(dirfd, name, val, sizeof(val));
	if (n < 0) {
		if (errno == ENODATA || errno == ENOTSUP || errno == ERANGE)
			return 0;
		return -errno;
	}
	return n == 1 && val[0] == 'y';
}

int jfs_set_opaque(struct jfs_fs *fs, int dirfd)
{
	char name[64];

	if (fs->opts.plain)
		return -EIO; /* a plain view's directory is someone's real one: never marked */
	xattr_name(fs, "opaque", name, sizeof(name));
	if (fsetxattr(dirfd, name, "y", 1, 0) < 0)
		return -errno;
	return 0;
}

/*
 * Metacopy xattrs, on the object behind fd (any descriptor, O_PATH included, of a regular file).
 * Returns 1 and the redirect (owned by the caller, NULL when there is none) for a metacopy, 0 for
 * an ordinary file.
 */
int jfs_get_metacopy(struct jfs_fs *fs, int fd, char **ret_redirect)
{
	char proc[64], name[64], *redirect, *shrunk;
	ssize_t n;

	*ret_redirect = NULL;
	jfs_proc_path(proc, sizeof(proc), fd);
	xattr_name(fs, "metacopy", name, sizeof(name));
	if (getxattr(proc, name, NULL, 0) < 0) {
		if (errno == ENODATA || errno == ENOTSUP)
			return 0;
		return -errno;
	}
	xattr_name(fs, "redirect", name, sizeof(name));
	redirect = malloc(PATH_MAX);
	if (!redirect)
		return -ENOMEM;
	n = getxattr(proc, name, redirect, PATH_MAX - 1);
	if (n < 0) {
		free(redirect);
		return errno == ENODATA ? 1 : -errno;
	}
	redirect[n] = '\0';
	if (redirect[0] != '/') {
		/* relative redirects (renames within a directory) are for directories only */
		free(redirect);
		return -EIO;
	}
	/* inodes keep it: no more than it needs */
	shrunk = realloc(redirect, (size_t)n + 1);
	*ret_redirect = shrunk ? shrunk : redirect;
	return 1;
}

int jfs_set_metacopy(struct jfs_fs *fs, int fd, const char *redirect)
{
	char proc[64], name[64];

	if (fs->opts.plain)
		return -EIO;
	jfs_proc_path(proc, sizeof(proc), fd);
	xattr_name(fs, "redirect", name, sizeof(name));
	if (redirect && setxattr(proc, name, redirect, strlen(redirect), 0) < 0)
		return -errno;
	xattr_name(fs, "metacopy", name, sizeof(name));
	if (setxattr(proc, name, "", 0, 0) < 0)
		return -errno;
	return 0;
}

/* After the data is in place: metacopy first, so that a crash in between leaves an ordinary file
 * (a leftover redirect on a regular file without metacopy means nothing). */
int jfs_clear_metacopy(struct jfs_fs *fs, int fd)
{
	char proc[64], name[64];

	jfs_proc_path(proc, sizeof(proc), fd);
	xattr_name(fs, "metacopy", name, sizeof(name));
	if (removexattr(proc, name) < 0 && errno != ENODATA)
		return -errno;
	xattr_name(fs, "redirect", name, sizeof(name));
	if (removexattr(proc, name) < 0 && errno != ENODATA)
		return -errno;
	return 0;
}

bool jfs_is_private_xattr(struct jfs_fs *fs, const char *name)
{
	return !fs->opts.plain && strncmp(name, fs->xattr_prefix, fs->xattr_prefix_len) == 0;
}

/* The kernel does not check NAME_MAX for a FUSE filesystem: we must. */
int jfs_check_name(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || strchr(name, '/'))
		return -EINVAL;
	return 0;
}

int jfs_tmpname(struct jfs_fs *fs, char *buf, size_t size)
{
	uint64_t n = __atomic_add_fetch(&fs->tmp_counter, 1, __ATOMIC_RELAXED);

	snprintf(buf, size, "#jfs.%ld.%llx", (long)getpid(), (unsigned long long)n);
	return 0;
}

int jfs_make_whiteout(struct jfs_fs *fs, int dirfd, const char *name)
{
	if (fs->opts.plain)
		return -EIO;
	if (mknodat(dirfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
		return -errno;
	return 0;
}

/* The mount a descriptor (name "") or an entry below it lies on; 0 when the kernel cannot say
 * (before Linux 5.8), so only the device check below is left. */
static int mount_id_at(int dirfd, const char *name, uint64_t *ret_id, bool *ret_root)
{
	struct statx stx;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH), STATX_MNT_ID,
		  &stx) < 0)
		return -errno;
	*ret_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
	*ret_root = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
		    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	return 0;
}

/* Tries a few times when name changes type between the stat and the open (a directory swapped
 * with a symlink): the link is then removed as a link, never followed. */
#define REMOVE_RETRIES 8

static int remove_tree(int dirfd, const char *name, dev_t dev, uint64_t mnt_id, int depth_retries)
{
	struct stat st, sub;
	struct dirent *de;
	/* set by mount_id_at on success; initialised because gcc -O2 cannot see that a failing
	 * statx returns a negative -errno (a Release build failed with -Werror=maybe-uninitialized)
	 */
	uint64_t sub_mnt = 0;
	bool mount_root = false;
	DIR *dir;
	int fd, r = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* a bind mount of the same filesystem has the same st_dev: the mount ID tells it */
	r = mount_id_at(dirfd, name, &sub_mnt, &mount_root);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (st.st_dev != dev || mount_root || (mnt_id && sub_mnt && sub_mnt != mnt_id))
		return -EXDEV; /* a mount point inside: leave it alone */
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0) {
			if (errno == EISDIR && depth_retries > 0)
				return remove_tree(dirfd, name, dev, mnt_id, depth_retries - 1);
			return errno == ENOENT ? 0 : -errno;
		}
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if ((errno == ELOOP || errno == ENOTDIR) && depth_retries > 0)
			return remove_tree(dirfd, name, dev, mnt_id, depth_retries - 1);
		return errno == ENOENT ? 0 : -errno;
	}
	/* what was opened is what was checked, and lies on the same mount: checked on the
	 * descriptor itself, so nothing swapped in after the checks above is entered */
	if (fstat(fd, &sub) < 0 || sub.st_dev != st.st_dev || sub.st_ino != st.st_ino) {
		close(fd);
		return depth_retries > 0 ? remove_tree(dirfd, name, dev, mnt_id, depth_retries - 1)
					 : -ESTALE;
	}
	r = mount_id_at(fd, "", &sub_mnt, &mount_root);
	if (r < 0 || mount_root || (mnt_id && sub_mnt && sub_mnt != mnt_id)) {
		close(fd);
		return r < 0 ? r : -EXDEV;
	}
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int rr = remove_tree(fd, de->d_name, dev, mnt_id, REMOVE_RETRIES);
		/* a mount point inside says so over any other error */
		if (rr < 0 && (r == 0 || rr == -EXDEV))
			r = rr;
	}
	closedir(dir);
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0) {
		/* someone still writing into the tree, or swapped it for a link: again */
		if ((errno == ENOTEMPTY || errno == ENOTDIR) && depth_retries > 0)
			return remove_tree(dirfd, name, dev, mnt_id, depth_retries - 1);
		return errno == ENOENT ? 0 : -errno;
	}
	return 0;
}

/* Removes name below dirfd and everything under it. Directories are entered with O_NOFOLLOW and
 * O_DIRECTORY relative to their parent's descriptor, so a symlink is removed, never followed, and
 * nothing outside the tree can be reached by swapping a component. Mount points, bind mounts of
 * the same filesystem included, are neither entered nor removed: -EXDEV once the rest is gone. */
int jfs_remove_tree_at(int dirfd, const char *name)
{
	struct stat parent;
	uint64_t mnt_id = 0; /* initialised for gcc -O2, as in remove_tree */
	bool mount_root = false;
	int r;

	if (fstat(dirfd, &parent) < 0)
		return -errno;
	r = mount_id_at(dirfd, "", &mnt_id, &mount_root);
	if (r < 0)
		return r;
	return remove_tree(dirfd, name, parent.st_dev, mnt_id, REMOVE_RETRIES);
}

void jfs_proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}
