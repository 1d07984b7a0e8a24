/* The job store: the state dir's layout, job records (written atomically, parsed strictly), the
 * locks, a job's live state, and the sizes of its layers. gc.c deletes layers; see store.c for the
 * layout and the lock order. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "policy.h"

#define STORE_RECORD_VERSION 1
#define STORE_RECORD_MAX (1024 * 1024) /* bytes a record may have */
#define STORE_LOWERS_MAX 127	       /* a view's lowers: its generations, then the policy's */

/* How the job went, as its runner said: `jobfs mark-ok` or `jobfs umount --outcome`. Only a
 * successful job may be promoted. */
enum store_outcome {
	STORE_OUTCOME_UNKNOWN, /* nobody said */
	STORE_OUTCOME_SUCCESS,
	STORE_OUTCOME_FAILURE,
};

/* What a record says (recorded) and what ls shows (live). */
enum store_state {
	STORE_MOUNTING,	 /* recorded before the daemon is ready; live while mount holds the lock */
	STORE_MOUNTED,	 /* the daemon is alive and every view is connected */
	STORE_UNMOUNTED, /* the layer stays for inspection until gc */
	STORE_STALE,	 /* live state only: daemon dead, or a view not connected */
	STORE_ORPHAN,	 /* live state only: a job directory without a valid record */
};

struct store_view {
	char *name;
	char *target;
	char **lowers; /* top first */
	size_t n_lowers;
	unsigned target_created; /* trailing components of target jobfs made; removed if empty */
	char **pass_through;	 /* real directories bound back through the view (policy) */
	size_t n_pass_through;
};

struct store_record {
	char *id;
	enum store_state state;
	pid_t pid;	    /* the job's daemon; 0 when none */
	uint64_t pid_start; /* its start time in clock ticks after boot (/proc/PID/stat field 22) */
	int64_t created;    /* Unix time */
	int64_t unmounted;  /* Unix time; 0 while mounted */
	char *policy_digest; /* 16 hex digits: XXH64 of the expanded policy */
	char *policy_source;
	enum store_outcome outcome; /* an "outcome=" line, written only once known */
	/* what `mount --context` said, by enum policy_context_key; NULL: not said */
	char *context[POLICY_CONTEXT_COUNT];
	/* mount --namespace private: the views live in a mount namespace of their own, held by
	 * the daemon (pid, pid_start), and are reached by entering it (ns.c) */
	bool private_ns;
	/* its inode (of /proc/PID/ns/mnt), once the daemon made it; 0 unknown. When the daemon is
	 * gone, a process it left inside still holds the namespace: found by this inode */
	uint64_t ns_ino;
	struct store_view *views;
	size_t n_views;
};

/* An open state dir. */
struct store {
	char *path;   /* the state dir, absolute */
	int dir_fd;   /* STATE */
	int jobs_fd;  /* STATE/jobs */
	int trash_fd; /* STATE/trash */
	int lock_fd;  /* STATE/lock, -1 until store_lock_state() */
};

/* The record's context as a policy context (pointing into the record). */
void store_record_context(const struct store_record *record, struct policy_context *ret);

const char *store_state_name(enum store_state state);
/* "unknown", "success", "failure"; parsing returns -EINVAL for anything else. */
const char *store_outcome_name(enum store_outcome outcome);
int store_outcome_from_name(const char *name, enum store_outcome *ret_outcome);

/* Opens STATE, creating STATE, STATE/jobs and STATE/trash (mode 0700) when create is true. Returns
 * -ENOENT when the state dir does not exist and create is false. */
int store_open(const char *state_dir, bool create, struct store **ret_store);
void store_close(struct store *store);

/* Root in a state dir owned by another user gives what it creates there to that owner (see
 * store.c); otherwise these are mkdirat/openat. store_mkdirat returns 0 or -errno (-EEXIST
 * included); store_openat_new (O_CREAT implied) a descriptor or -errno, and gives the file away
 * only if root owns it. store_adopt* do it for what the caller made some other way. */
int store_mkdirat(int dirfd, const char *name, mode_t mode);
int store_openat_new(int dirfd, const char *name, int flags, mode_t mode);
int store_adopt(int fd);
int store_adopt_at(int dirfd, const char *name);

/* The state-dir lock: mount takes it shared while it creates a job dir and takes the job's lock;
 * gc takes it exclusive while it decides about one job. So gc never sees a job dir that mount
 * created but has not locked yet. */
int store_lock_state(struct store *store, bool exclusive);
void store_unlock_state(struct store *store);

/* Creates STATE/jobs/ID and takes its lock (held by the returned lock fd). -EEXIST if it exists. */
int store_job_create(struct store *store, const char *id, int *ret_job_fd, int *ret_lock_fd);
/* Opens STATE/jobs/ID (never following a symlink); -ENOENT if there is no such job. */
int store_job_open(struct store *store, const char *id, int *ret_job_fd);
/* flock on JOB/lock: -EWOULDBLOCK when another process holds it and !wait. */
int store_job_lock(int job_fd, bool wait, int *ret_lock_fd);

/* A failed mount's daemon log, moved to STATE/logs/ID.daemon.log before its job dir is rolled
 * back; its path in ret_path. */
int store_keep_daemon_log(struct store *store, int job_fd, const char *id, char *ret_path,
			  size_t size);
/* Removes the logs in STATE/logs last written keep seconds or more before now; returns how many
 * (would be) removed, or -errno. */
int store_expire_logs(struct store *store, int64_t now, uint64_t keep, bool dry_run);

/* Records: key=value lines; see store.c. Parse returns -EINVAL for anything unexpected. */
int store_record_parse(const char *text, size_t size, struct store_record **ret_record);
int store_record_format(const struct store_record *record, FILE *out);
/* Writes JOB/record.tmp and renames it over JOB/record: readers see the old record or the new one.
 * Not fsynced (see store.c): a power cut loses the views anyway. */
int store_record_write(int job_fd, const struct store_record *record);
/* -ENOENT without a record, -EINVAL for an invalid one. */
int store_record_read(int job_fd, struct store_record **ret_record);
void store_record_free(struct store_record *record);

/* rmdir the target and the parents jobfs made for it, as long as they are empty and no other
 * job that is not unmounted has a target there or below (in another mount namespace, removing a
 * dir detaches the mounts on it). store NULL skips that check. */
void store_remove_target(struct store *store, const char *job_id, const struct store_view *view);

/* XXH64 of the expanded policy's content, as 16 hex digits. */
void store_policy_digest(const struct policy *policy, char ret_hex[static 17]);

/* The live state of a recorded job: MOUNTED only when the daemon (PID and start time) is alive
 * and every view's target is a connected jobfs mount. */
enum store_state store_live_state(const struct store_record *record);

/* Bytes (st_blocks * 512) and entries below the upper dirs of a job, walked without following
 * symlinks; missing dirs count as empty. */
int store_job_usage(int job_fd, uint64_t *ret_bytes, uint64_t *ret_files);
/* The same for one directory below dirfd. */
int store_tree_usage(int dirfd, const char *name, uint64_t *ret_bytes, uint64_t *ret_files);

/* "0 B", "512 B", "1.5 KiB", "20.0 GiB". */
const char *store_format_bytes(uint64_t bytes, char buf[static 32]);
/* "42s", "5m", "3h", "2d". */
const char *store_format_age(int64_t seconds, char buf[static 32]);
