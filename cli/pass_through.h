/* A view's pass-through directories (policy views[].pass_through): the real directory at a path
 * inside the view's target, taken before the view is mounted over it and bound back through the
 * view at the same path once it is, so that reads and writes there reach the real directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "procs.h"

/* As root, a bind mount: a detached clone of the real directory's mount (open_tree) moved onto the
 * path in the view. Otherwise a plain jobfs view (jfs_options.plain) whose upper is the real
 * directory, opened before the view was mounted, served by a process of its own and mounted on the
 * path through fusermount3: it outlives the job's daemon when it is detached lazily while busy (a
 * runner writing its log there), and ends when the kernel drops its last user. */
struct pass_through {
	const char *path;
	char source[PROCS_SOURCE_MAX]; /* the plain view's mount source */
	int tree_fd;  /* root: the clone to attach, then the attached mount; else -1 */
	pid_t server; /* otherwise: the process that serves the plain view; 0 once reaped */
	int go_fd;    /* its end of "mount now" */
	int ready_fd; /* "ready" or the error, from it */
	bool attached;
};

/* Takes the real directory at path, which must exist as a directory (not a symlink), before the
 * view is mounted. source names the plain view's mount (procs_pass_through_source); close_fds are
 * descriptors of the caller's that a server process must not keep. On failure errbuf holds the
 * reason and the return is negative. */
int pass_through_open(struct pass_through *pt, const char *path, const char *source,
		      const int *close_fds, size_t n_close_fds, char *errbuf, size_t errsize);
/* True when /etc/fuse.conf (or conf, for tests) allows user mounts to be allow_other, which an
 * unprivileged view with pass-through directories needs. */
bool pass_through_user_allow_other(const char *conf);
/* Binds it back at its path, once the view over it is mounted and served. */
int pass_through_attach(struct pass_through *pt, char *errbuf, size_t errsize);
/* Detaches it lazily if attached (the daemon's shutdown; `jobfs umount` detaches it before). */
void pass_through_detach(struct pass_through *pt);
/* Reaps an exited server without waiting; true when it has exited. */
bool pass_through_reap(struct pass_through *pt);
/* Releases what pass_through_open took; a server not yet told to mount exits. Accepts a zeroed or
 * closed pt. */
void pass_through_close(struct pass_through *pt);
