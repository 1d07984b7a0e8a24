/* A job's private mount namespace. The job's daemon is its holder: it unshares the namespace
 * before mounting the views and is its first process, so the namespace lives as long as the
 * daemon serves them, with no extra process to track. When the daemon dies its views die too (a
 * FUSE mount without its daemon answers nothing), and so does the namespace once the last
 * process in it leaves. Others reach it through the daemon's pidfd: setns(2) on a pidfd acts on
 * the process it names, never on a later process with the same PID; or, when the daemon is gone
 * and a process the job left keeps the namespace (and its dead views), through that process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exit_codes.h"
#include "ns.h"
#include "procs.h"
#include "store.h"

int ns_create_private(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	/* the copies start shared with the host's: make them slaves, so nothing mounted here
	 * propagates back, while what the host mounts later still shows here */
	if (mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0)
		return -errno;
	return 0;
}

/* Without pidfd_open (a kernel before 5.3, or valgrind 3.19): the namespace file itself, opened
 * before the start time is checked. If the recorded process still has its start time after the
 * open, the file was its namespace: a process that got the PID later cannot have that time. */
static int ns_file_open(pid_t pid, uint64_t start_ticks, int *ret_fd)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	if (!procs_alive(pid, start_ticks)) {
		close(fd);
		return -ESRCH;
	}
	*ret_fd = fd;
	return 0;
}

int ns_holder_open(pid_t pid, uint64_t start_ticks, int *ret_fd)
{
	int fd;

	if (pid <= 0)
		return -ESRCH;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0 && errno == ENOSYS)
		return ns_file_open(pid, start_ticks, ret_fd);
	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	/* the pidfd names whoever had the PID at open: if that was the recorded daemon, its start
	 * time matches now; if the daemon was gone by then, no process with this PID can have its
	 * (earlier) start time */
	if (!procs_alive(pid, start_ticks)) {
		close(fd);
		return -ESRCH;
	}
	*ret_fd = fd;
	return 0;
}

int ns_enter(int fd, struct ns_saved *ret_saved)
{
	struct ns_saved saved = NS_SAVED_INIT;
	int r;

	saved.ns_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (saved.ns_fd < 0)
		return -errno;
	saved.cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (setns(fd, CLONE_NEWNS) < 0) {
		r = errno == ESRCH ? -ESRCH : -errno;
		ns_stay(&saved);
		return r;
	}
	*ret_saved = saved;
	return 0;
}

void ns_leave(struct ns_saved *saved)
{
	if (saved->ns_fd < 0)
		return;
	if (setns(saved->ns_fd, CLONE_NEWNS) < 0) {
		fprintf(stderr, "jobfs: cannot return to our own mount namespace: %s\n",
			strerror(errno));
		_exit(JOBFS_EXIT_SYSTEM);
	}
	/* setns put us at the namespace's root */
	if (saved->cwd_fd >= 0 && fchdir(saved->cwd_fd) < 0 && chdir("/") < 0)
		_exit(JOBFS_EXIT_SYSTEM);
	ns_stay(saved);
}

void ns_stay(struct ns_saved *saved)
{
	if (saved->ns_fd >= 0)
		close(saved->ns_fd);
	if (saved->cwd_fd >= 0)
		close(saved->cwd_fd);
	*saved = (struct ns_saved)NS_SAVED_INIT;
}

int ns_inode(pid_t pid, uint64_t *ret_ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	*ret_ino = (uint64_t)st.st_ino;
	return 0;
}

/* The daemon is gone but its namespace may not be: a process the job left inside (a server with
 * its cwd in a view) keeps it, and the dead views in it, alive. Enter it through such a process:
 * one in a namespace with the recorded inode, which, entered, shows a view of this very job. */
static int enter_leftover(const struct store_record *rec, struct ns_saved *ret_saved)
{
	pid_t self = getpid();
	struct dirent *de;
	DIR *proc;

	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((de = readdir(proc))) {
		struct procs_mount m;
		uint64_t ino = 0;
		char *end, path[64];
		long pid = strtol(de->d_name, &end, 10);
		bool found = false;
		struct stat st;
		int fd, r;

		if (*end || pid <= 0 || pid == self || ns_inode((pid_t)pid, &ino) < 0 ||
		    ino != rec->ns_ino)
			continue;
		/* the namespace file, checked once open: whoever has the PID now, it is the one */
		snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || (uint64_t)st.st_ino != rec->ns_ino) {
			close(fd);
			continue;
		}
		r = ns_enter(fd, ret_saved);
		close(fd);
		if (r < 0)
			continue;
		for (size_t i = 0; i < rec->n_views && !found; i++)
			found = procs_view_mount(rec->id, rec->views[i].name, &m) == 0;
		if (found) {
			closedir(proc);
			return 1;
		}
		ns_leave(ret_saved);
	}
	closedir(proc);
	return -ESRCH;
}

int ns_enter_job(const struct store_record *rec, struct ns_saved *ret_saved)
{
	int pidfd = -1, r;

	if (!rec->private_ns)
		return 0;
	r = ns_holder_open(rec->pid, rec->pid_start, &pidfd);
	if (r == -ESRCH && rec->ns_ino)
		return enter_leftover(rec, ret_saved);
	if (r < 0)
		return r;
	r = ns_enter(pidfd, ret_saved);
	close(pidfd);
	return r < 0 ? r : 1;
}
