/* Processes and mounts, read from /proc without touching a possibly dead FUSE mount: the mount at
 * a path (from /proc/self/mountinfo), whether a daemon is still the one recorded (PID and start
 * time), and the processes that hold a mount (cwd, root, exe, open files, mapped files). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCS_SOURCE_MAX 320 /* "jobfs:" JOB "/" VIEW "@" TAG */

struct procs_mount {
	uint64_t mnt_id;    /* mountinfo field 1, the same as statx's stx_mnt_id */
	uint64_t parent_id; /* field 2: the mount it is mounted on */
	unsigned dev_major; /* st_dev of the mounted filesystem */
	unsigned dev_minor;
	char fstype[64]; /* "fuse.jobfs" */
	char source[PROCS_SOURCE_MAX];
	long user_id; /* a FUSE mount's user_id= super option (who mounted it); -1 without */
	char mountpoint[4096];
};

/* One line of /proc/PID/mountinfo (no newline). Returns 0 or -EINVAL. */
int procs_mountinfo_parse(const char *line, struct procs_mount *ret_mount);
/* The topmost mount whose mount point is path (absolute, normalised); -ENOENT if none. */
int procs_mount_at(const char *path, struct procs_mount *ret_mount);
/* True when path is a mount of a jobfs view that answers (not ENOTCONN). */
bool procs_view_connected(const char *path);

/* A job's view is mounted with the source "jobfs:JOB/VIEW@TAG": found by it, not by its target
 * path, which the job's user may have moved or replaced with a symlink to another job's view. TAG
 * names the state dir (a hash of its device and inode, set by store_open through
 * procs_set_state_dir), so that jobs of the same ID in two state dirs never take each other's
 * views; without one (no state dir opened) the source is "jobfs:JOB/VIEW". */
void procs_set_state_dir(dev_t dev, ino_t ino);
void procs_view_source(const char *job_id, const char *view, char *buf, size_t size);
/* A view's pass-through number index, when it is a plain jobfs view (not root): mounted with the
 * source "jobfs:JOB/VIEW/pass_through/INDEX@TAG". */
void procs_pass_through_source(const char *job_id, const char *view, size_t index, char *buf,
			       size_t size);
/* The topmost jobfs mount with that source made by this user (root: user_id=0); -ENOENT if none. */
int procs_view_mount(const char *job_id, const char *view, struct procs_mount *ret_mount);
int procs_mount_by_source(const char *source, struct procs_mount *ret_mount);
/* Every mount below the mount mnt_id (mounted on something inside it, or below those), in
 * mountinfo order: parents before their children. *ret_mounts is malloc'ed. */
int procs_mounts_below(uint64_t mnt_id, struct procs_mount **ret_mounts, size_t *ret_n);
/* Whether that view is mounted and answering (not ENOTCONN) in the mount namespace of pid (the
 * job's daemon), which may be another than ours; ours when pid is 0 or its /proc is closed. */
bool procs_view_mount_connected(pid_t pid, const char *job_id, const char *view);
/* 1 when pid lives in another mount namespace than ours, 0 when in ours, or -errno. */
int procs_mount_ns_other(pid_t pid);
/* The mount with that id (mountinfo field 1), where it is now; -ENOENT if none. */
int procs_mount_by_id(uint64_t mnt_id, struct procs_mount *ret_mount);

/* The device of a /proc/PID/maps line ("... 00:2f 1234 /path"); -EINVAL when malformed. */
int procs_maps_line_dev(const char *line, unsigned *ret_major, unsigned *ret_minor);
/* The start time (field 22) from the text of /proc/PID/stat. */
int procs_stat_parse_start(const char *text, uint64_t *ret_ticks);
int procs_start_time(pid_t pid, uint64_t *ret_ticks);
/* True when pid exists, is not a zombie, and started at start_ticks (0: any). */
bool procs_alive(pid_t pid, uint64_t start_ticks);

/* The command line of pid, arguments joined by spaces, control characters as '?'. */
void procs_cmdline(pid_t pid, char *buf, size_t size);
/* Joins a NUL-separated argument block the same way (pure, for tests). */
void procs_cmdline_format(const char *raw, size_t len, char *buf, size_t size);

/* Processes (other than this one) whose cwd, root, exe, an open file or a mapped file is on the
 * mount. *ret_pids is malloc'ed, sorted ascending. */
int procs_holders(const struct procs_mount *mount, pid_t **ret_pids, size_t *ret_n);

/* The job marker: `JOBFS_JOB_ID=ID` in a process's environment. The GitHub job-started hook puts it
 * in GITHUB_ENV, so the runner gives it to every later step of the job and whatever they start
 * inherits it; umount --kill ends such processes even when they hold no view (a server whose cwd
 * is in a pass-through). */
#define PROCS_MARKER_VAR "JOBFS_JOB_ID"
#define PROCS_ENVIRON_MAX (4 * 1024 * 1024) /* bytes of /proc/PID/environ read at most */

/* True when the NUL-separated block env holds entry ("NAME=VALUE") exactly (pure, for tests). */
bool procs_environ_has(const char *env, size_t len, const char *entry);
/* Processes whose environment (as /proc/PID/environ shows it: the one they were exec'ed with)
 * holds entry exactly, except this process and its ancestors; only those whose environment we
 * may read (our own user's, or all for root). *ret_pids is malloc'ed, sorted ascending. */
int procs_marked(const char *entry, pid_t **ret_pids, size_t *ret_n);
