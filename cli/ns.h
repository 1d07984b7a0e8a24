/* A job's private mount namespace (`jobfs mount --namespace private`): made by the job's daemon,
 * which holds it for as long as it serves the views, and entered through that daemon by exec,
 * umount, gc and ls, once it is checked to be the recorded one (PID and start time). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct store_record;

/* Where the caller was before ns_enter: its own mount namespace and working directory. */
struct ns_saved {
	int ns_fd; /* -1: nothing entered */
	int cwd_fd;
};
#define NS_SAVED_INIT                                                                              \
	{                                                                                          \
		.ns_fd = -1, .cwd_fd = -1                                                          \
	}

/* In the daemon, before it mounts anything: a new mount namespace, its mounts slaves of the
 * host's (mounts the host makes later still appear in it; none of its own reach the host). */
int ns_create_private(void);

/* A descriptor setns(2) takes for the mount namespace of the process recorded as pid, started at
 * start_ticks (/proc/PID/stat field 22): its pidfd, or its /proc/PID/ns/mnt where pidfd_open is
 * missing. Opened first and the start time checked after, so it names the recorded process and
 * never one that got its PID later. -ESRCH when that process is gone (or a zombie). */
int ns_holder_open(pid_t pid, uint64_t start_ticks, int *ret_fd);

/* Enters the mount namespace fd names (from ns_holder_open) (the working directory and root become
 * the namespace's root), saving where the caller was. The caller must be single-threaded. */
int ns_enter(int fd, struct ns_saved *ret_saved);
/* Back to the saved namespace and directory; nothing when nothing was entered. Exits the program
 * when that fails: carrying on in a job's namespace would act on the wrong mounts. */
void ns_leave(struct ns_saved *saved);
/* Stays where ns_enter went: only closes what it saved (exec). */
void ns_stay(struct ns_saved *saved);

/* The inode of pid's mount namespace (/proc/PID/ns/mnt): unique among live namespaces. */
int ns_inode(pid_t pid, uint64_t *ret_ino);

/* Enters the namespace of a job recorded with private_ns: through its checked daemon, or when
 * the daemon is gone, through a process it left inside (found by the namespace's inode, and
 * checked to see a view of this job: an inode is only unique while its namespace lives). 1 when
 * entered, 0 for a job in the caller's namespace (nothing done), -ESRCH when the namespace is
 * gone, and the views with it, or another -errno. */
int ns_enter_job(const struct store_record *rec, struct ns_saved *ret_saved);
