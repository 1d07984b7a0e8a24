/* The job daemon: one process per job that serves all of the job's views. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct daemon_view {
	const char *name;
	const char *const *lowers; /* top first */
	int n_lowers;
	const char *upper;
	const char *work;
	const char *target;
	uint64_t quota; /* bytes the upper may hold; 0: no limit */
	/* real directories inside target bound back through the view once it is mounted */
	const char *const *pass_through;
	size_t n_pass_through;
};

struct daemon_spec {
	const char *job_id;
	const struct daemon_view *views;
	size_t n_views;
	int log_fd;	      /* stdout and stderr of the daemon; -1: keep ours (--foreground) */
	const int *close_fds; /* descriptors the daemon must not keep (locks, the store) */
	size_t n_close_fds;
	bool private_ns; /* mount the views in a new mount namespace the daemon holds (ns.c) */
};

/* Forks the daemon and waits until every view is mounted and served, or until it failed. On
 * success sets *ret_pid and returns 0; on failure the daemon has closed what it opened and exited,
 * errbuf holds a one-line error naming the view, and the return is negative. */
int daemon_start(const struct daemon_spec *spec, pid_t *ret_pid, char *errbuf, size_t errsize);
