/* Pass-through directories: the real directory at a path inside a view, bound back through the
 * view once it is mounted (a bind mount as root, where the kernel clones mounts; a plain jobfs view
 * otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "pass_through.h"

static int fail(char *errbuf, size_t errsize, int r, const char *fmt, const char *path)
{
	snprintf(errbuf, errsize, fmt, path, strerror(-r));
	return r;
}

static void write_all(int fd, const char *text)
{
	size_t len = strlen(text);

	while (len > 0) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* The server process: waits for "mount now", mounts the plain view over the path (which the job's
 * view covers by then), reports, and serves until the kernel ends the session. It ignores the
 * signals that stop the daemon: a runner may still write through it after the job's views are
 * gone, and it must then go on until the detached mount's last user leaves. */
static int serve_plain(const char *path, const char *source, int upper_fd, int go_fd, int ready_fd)
{
	struct jfs_config cfg;
	struct jfs_error err = {{0}};
	struct jfs_view *view;
	char go, msg[1200];
	ssize_t n;

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	while ((n = read(go_fd, &go, 1)) < 0 && errno == EINTR)
		;
	close(go_fd);
	if (n != 1)
		return 0; /* the daemon gave up before mounting */
	jfs_config_defaults(&cfg);
	cfg.opts.plain = true;
	cfg.upper = path;
	cfg.upper_fd = upper_fd;
	cfg.mountpoint = path;
	cfg.fsname = source;
	cfg.foreground = true;
	cfg.opts.allow_other = true; /* like the view it is mounted in (daemon.c) */
	if (jfs_view_open(&cfg, &view, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s\n", err.msg);
		write_all(ready_fd, msg);
		return 1;
	}
	close(upper_fd);
	write_all(ready_fd, "ready\n");
	close(ready_fd);
	if (jfs_view_serve(view, &err) < 0)
		fprintf(stderr, "pass-through '%s': %s\n", path, err.msg);
	jfs_view_close(view);
	return 0;
}

bool pass_through_user_allow_other(const char *conf)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(conf ? conf : "/etc/fuse.conf", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strcspn(p, " \t\r\n#");
		found = end - p == 16 && memcmp(p, "user_allow_other", 16) == 0;
	}
	fclose(f);
	return found;
}

int pass_through_open(struct pass_through *pt, const char *path, const char *source,
		      const int *close_fds, size_t n_close_fds, char *errbuf, size_t errsize)
{
	int go[2], ready[2], fd, r;
	struct stat st;
	pid_t pid;

	*pt = (struct pass_through){.path = path, .tree_fd = -1, .go_fd = -1, .ready_fd = -1};
	snprintf(pt->source, sizeof(pt->source), "%s", source);
	if (lstat(path, &st) < 0)
		return fail(errbuf, errsize, -errno, "pass-through '%s': %s", path);
	if (!S_ISDIR(st.st_mode))
		return fail(errbuf, errsize, -ENOTDIR, "pass-through '%s': %s", path);
	if (geteuid() == 0) {
		pt->tree_fd = open_tree(AT_FDCWD, path,
					OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
						AT_SYMLINK_NOFOLLOW);
		if (pt->tree_fd >= 0)
			return 0;
		/* no open_tree (a kernel before 5.2, or valgrind, which does not know it): served
		 * as a plain view, as for a user */
		if (errno != ENOSYS)
			return fail(errbuf, errsize, -errno,
				    "pass-through '%s': cannot clone its mount: %s", path);
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(errbuf, errsize, -errno, "pass-through '%s': %s", path);
	if (pipe2(go, O_CLOEXEC) < 0) {
		r = -errno;
		close(fd);
		return fail(errbuf, errsize, r, "pass-through '%s': cannot create a pipe: %s",
			    path);
	}
	if (pipe2(ready, O_CLOEXEC) < 0) {
		r = -errno;
		close(fd);
		close(go[0]);
		close(go[1]);
		return fail(errbuf, errsize, r, "pass-through '%s': cannot create a pipe: %s",
			    path);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fd);
		close(go[0]);
		close(go[1]);
		close(ready[0]);
		close(ready[1]);
		return fail(errbuf, errsize, r, "pass-through '%s': cannot start its server: %s",
			    path);
	}
	if (pid == 0) {
		for (size_t i = 0; i < n_close_fds; i++)
			if (close_fds[i] >= 0)
				close(close_fds[i]);
		close(go[1]);
		close(ready[0]);
		_exit(serve_plain(path, pt->source, fd, go[0], ready[1]));
	}
	close(fd);
	close(go[0]);
	close(ready[1]);
	pt->server = pid;
	pt->go_fd = go[1];
	pt->ready_fd = ready[0];
	return 0;
}

/* mkdir -p of what the view lacks of path (its lower may not have the directory). */
static int make_in_view(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (last)
			return 0;
		*p = '/';
	}
}

int pass_through_attach(struct pass_through *pt, char *errbuf, size_t errsize)
{
	char line[1200];
	size_t len = 0;
	int r;

	r = make_in_view(pt->path);
	if (r < 0)
		return fail(errbuf, errsize, r, "pass-through '%s': cannot make it in the view: %s",
			    pt->path);
	if (pt->tree_fd >= 0) {
		if (move_mount(pt->tree_fd, "", AT_FDCWD, pt->path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return fail(errbuf, errsize, -errno,
				    "pass-through '%s': cannot bind it back: %s", pt->path);
		pt->attached = true;
		return 0;
	}
	write_all(pt->go_fd, "g");
	close(pt->go_fd);
	pt->go_fd = -1;
	while (len + 1 < sizeof(line)) {
		ssize_t n = read(pt->ready_fd, line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	close(pt->ready_fd);
	pt->ready_fd = -1;
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, "ready") != 0) {
		snprintf(errbuf, errsize, "pass-through '%s': %s", pt->path,
			 line[0] ? line : "its server exited before it was mounted");
		return -EIO;
	}
	pt->attached = true;
	return 0;
}

void pass_through_detach(struct pass_through *pt)
{
	struct procs_mount m;
	char path[64];
	pid_t pid;
	int status;

	if (!pt->attached)
		return;
	pt->attached = false;
	if (pt->tree_fd >= 0) {
		/* the very mount we attached, wherever it is now */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", pt->tree_fd);
		umount2(path, MNT_DETACH);
		return;
	}
	/* by its source: gone already (unmounted, or detached while busy), nothing is done to
	 * whatever is at the path now */
	if (pass_through_reap(pt) || procs_mount_by_source(pt->source, &m) < 0)
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		execlp("fusermount3", "fusermount3", "-uz", "--", m.mountpoint, (char *)NULL);
		_exit(127);
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

bool pass_through_reap(struct pass_through *pt)
{
	int status;

	if (pt->server <= 0)
		return true;
	if (waitpid(pt->server, &status, WNOHANG) == pt->server) {
		pt->server = 0;
		return true;
	}
	return false;
}

void pass_through_close(struct pass_through *pt)
{
	if (pt->tree_fd >= 0)
		close(pt->tree_fd);
	if (pt->go_fd >= 0)
		close(pt->go_fd); /* a server still waiting exits */
	if (pt->ready_fd >= 0)
		close(pt->ready_fd);
	pt->tree_fd = pt->go_fd = pt->ready_fd = -1;
	pass_through_reap(pt);
}
