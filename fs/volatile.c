/* A volatile view (-o volatile): nothing is synced. Copy-ups are not fsynced before they become
 * visible, and fsync/fdatasync/fsyncdir from the job return at once. For caches a job fills and
 * that are promoted or dropped, durability is paid for by the job's whole life: a crash of the
 * machine kills the job anyway.
 *
 * What it must not do is let a torn layer be used as if whole. Like kernel overlayfs's volatile
 * option, a marker dir, WORK/work/incompat/volatile, exists from the moment the view is served
 * until the upper has been flushed with syncfs at a clean stop; kernel overlayfs refuses to mount
 * a work dir holding it, and so do we, with one refinement: the marker holds the boot ID of the
 * machine that wrote it, so a daemon killed and restarted on the same boot (page cache intact,
 * nothing lost) may go on. Only a restart of the machine makes the layer suspect. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

#define INCOMPAT_DIR JFS_INCOMPAT_DIR
#define MARKER_DIR "volatile"
#define MARKER_FILE "boot_id"
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_LEN 36

int jfs_boot_id(char id[BOOT_ID_LEN + 1])
{
	int fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, id, BOOT_ID_LEN);
	n = n < 0 ? -errno : n;
	close(fd);
	if (n < 0)
		return (int)n;
	if (n != BOOT_ID_LEN)
		return -EIO;
	id[BOOT_ID_LEN] = '\0';
	return 0;
}

/* The boot ID in the marker under work_fd (the work dir's "work" subdir): 1 with it, 0 when there
 * is no marker, -errno. A marker without a readable ID (cut short by a crash while it was made)
 * reads as an ID of no boot: suspect. */
static int marker_read(int work_fd, char id[BOOT_ID_LEN + 1])
{
	int fd = openat(work_fd, INCOMPAT_DIR "/" MARKER_DIR "/" MARKER_FILE,
			O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;
	struct stat st;

	id[0] = '\0';
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		/* the dir alone (kernel overlayfs's marker, or ours cut short) */
		if (fstatat(work_fd, INCOMPAT_DIR "/" MARKER_DIR, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return 1;
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	}
	n = read(fd, id, BOOT_ID_LEN);
	close(fd);
	if (n == BOOT_ID_LEN)
		id[BOOT_ID_LEN] = '\0';
	else
		id[0] = '\0';
	return 1;
}

static int fsync_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* 0: no marker; 1: a marker from this boot (a killed daemon: nothing lost); -EUCLEAN with why
 * set: a marker from another boot. */
static int check(int work_fd, char *why, size_t whysize)
{
	char mine[BOOT_ID_LEN + 1], theirs[BOOT_ID_LEN + 1];
	int r = marker_read(work_fd, theirs);

	if (r <= 0)
		return r;
	r = jfs_boot_id(mine);
	if (r < 0)
		return r;
	if (theirs[0] && !strcmp(mine, theirs))
		return 1;
	snprintf(why, whysize,
		 "it was served volatile (nothing synced) and the machine has restarted since, "
		 "so it may be torn; remove '%s/%s' in its work dir to use it anyway",
		 JFS_WORK_SUBDIR "/" INCOMPAT_DIR, MARKER_DIR);
	return -EUCLEAN;
}

int jfs_volatile_check(int workdir_fd, char *why, size_t whysize)
{
	int fd = openat(workdir_fd, JFS_WORK_SUBDIR,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = check(fd, why, whysize);
	close(fd);
	return r;
}

/* Removes the marker once the upper is known to be on disk. */
static int marker_remove(struct jfs_fs *fs)
{
	int r;

	if (syncfs(fs->layers[JFS_UPPER].fd) < 0)
		return -errno;
	if (unlinkat(fs->work_fd, INCOMPAT_DIR "/" MARKER_DIR "/" MARKER_FILE, 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	if (unlinkat(fs->work_fd, INCOMPAT_DIR "/" MARKER_DIR, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	/* the incompat dir stays: kernel overlayfs keeps it too */
	r = fsync_dir_at(fs->work_fd, INCOMPAT_DIR);
	return r == -ENOENT ? 0 : r;
}

/* Writes the marker, durably, before anything unsynced can reach the upper. */
static int marker_write(struct jfs_fs *fs)
{
	char id[BOOT_ID_LEN + 1];
	int dfd, fd, r;

	r = jfs_boot_id(id);
	if (r < 0)
		return r;
	if (mkdirat(fs->work_fd, INCOMPAT_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	dfd = openat(fs->work_fd, INCOMPAT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, MARKER_DIR, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	fd = openat(dfd, MARKER_DIR "/" MARKER_FILE,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write(fd, id, BOOT_ID_LEN) == BOOT_ID_LEN ? 0 : (errno ? -errno : -EIO);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0)
		r = fsync_dir_at(dfd, MARKER_DIR);
	if (r == 0 && fsync(dfd) < 0)
		r = -errno;
	if (r == 0)
		r = fsync_dir_at(fs->work_fd, ".");
out:
	close(dfd);
	return r;
}

int jfs_volatile_begin(struct jfs_fs *fs, char *why, size_t whysize)
{
	int r = check(fs->work_fd, why, whysize);

	if (r < 0)
		return r;
	if (fs->opts.volatile_upper)
		return marker_write(fs);
	/* a durable view over a layer a killed volatile daemon left, on this boot: flush what it
	 * left in the page cache, and the layer is whole again */
	return r == 1 ? marker_remove(fs) : 0;
}

int jfs_volatile_end(struct jfs_fs *fs)
{
	if (!fs->opts.volatile_upper)
		return 0;
	return marker_remove(fs);
}
