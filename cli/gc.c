/* Deleting layers: a job dir leaves STATE/jobs with one rename into STATE/trash, so nobody sees
 * half a layer, and is then deleted there by jfs_remove_tree_at, which walks with directory
 * descriptors, never follows a symlink and never crosses a mount point. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "gc.h"

int gc_remove_job(struct store *store, const char *id)
{
	char name[POLICY_JOB_ID_MAX + 64];
	static unsigned counter;

	if (store->trash_fd < 0)
		return -ENOENT;
	snprintf(name, sizeof(name), "%s.%lld.%d.%u", id, (long long)time(NULL), (int)getpid(),
		 counter++);
	if (renameat(store->jobs_fd, id, store->trash_fd, name) < 0)
		return errno == ENOENT ? 0 : -errno;
	return jfs_remove_tree_at(store->trash_fd, name);
}

const char *gc_strerror(int r)
{
	if (r == -EXDEV)
		return "something is mounted inside the layer; the rest is deleted, the mount "
		       "point "
		       "stays in the trash until it is unmounted and gc runs again";
	return strerror(-r);
}

int gc_empty_dir(int dirfd)
{
	struct dirent *de;
	int fd, r = 0;
	DIR *dir;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(dir))) {
		int rr;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rr = jfs_remove_tree_at(dirfd, de->d_name);
		if (rr < 0 && r == 0)
			r = rr;
	}
	closedir(dir);
	return r;
}

int gc_empty_trash(struct store *store)
{
	return store->trash_fd < 0 ? 0 : gc_empty_dir(store->trash_fd);
}

static int run_fusermount(const char *target, bool lazy)
{
	int status, devnull;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", "--", target,
		       (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	/* fusermount3 does not say why; busy is the usual reason */
	return -EBUSY;
}

static int umount_checked(const struct procs_mount *m, int flags)
{
	char parent[sizeof(m->mountpoint)], path[sizeof(m->mountpoint) + 32];
	const char *name;
	struct statx stx;
	char *slash;
	int pfd, r = 0;

	strcpy(parent, m->mountpoint);
	slash = strrchr(parent, '/');
	if (!slash || !slash[1])
		return -EINVAL; /* "/" is never a view */
	name = m->mountpoint + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? -ESTALE : -errno;
	/* cached attributes only: a dead daemon must not hang us */
	if (statx(pfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0) {
		r = errno == ENOENT ? -ESTALE : -errno;
	} else if (!(stx.stx_mask & STATX_MNT_ID) || stx.stx_mnt_id != m->mnt_id ||
		   !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		r = -ESTALE;
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", pfd, name);
		if (umount2(path, flags | UMOUNT_NOFOLLOW) < 0)
			r = -errno;
	}
	close(pfd);
	return r;
}

int gc_unmount(const struct procs_mount *m, bool lazy)
{
	int r = -ESTALE;

	if (geteuid() != 0)
		return run_fusermount(m->mountpoint, lazy);
	/* moved meanwhile: mountinfo says where it is now */
	for (int tries = 0; tries < 8 && r == -ESTALE; tries++) {
		struct procs_mount now;

		if (tries > 0 && (procs_mount_by_id(m->mnt_id, &now) < 0))
			return -EINVAL; /* gone */
		r = umount_checked(tries > 0 ? &now : m, lazy ? MNT_DETACH : 0);
	}
	return r;
}
