/* The engine's public interface: what cli/ and the jobfs-fs daemon may use to serve a view. */
#ifndef JFS_FS_H
#define JFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jfs_options {
	bool user_xattr;      /* overlay xattrs in user.overlay.* (unprivileged daemons) */
	bool allow_other;     /* let users other than the mounter in (root default) */
	bool fsync_copy_up;   /* fsync copied-up data before it becomes visible (default on) */
	bool volatile_upper;  /* sync nothing, not even on fsync; a marker keeps the layer from
			       * being served after the machine restarts (volatile.c) */
	bool metacopy;	      /* link/chmod/chown/utimes/xattrs/rename of a lower file copy up
			       * its metadata only; data follows on the first write (default on) */
	bool open_files;      /* track each open file (one request per open and close); off, a
			       * root daemon asks the kernel not to send opens (default: on for
			       * unprivileged daemons, which could not re-open for writing) */
	double entry_timeout; /* seconds the kernel may cache names and attributes */
	unsigned int max_threads;
	unsigned long max_cached_fds; /* 0: two fifths of the descriptor limit */
	uint64_t quota;		      /* bytes the upper may hold (ENOSPC past it); 0: no limit */
	bool plain; /* no lowers and no work dir: the upper is an ordinary directory served as it
		     * is. Nothing of the layer format is read or written there (a 0:0 device is a
		     * device; no whiteout, opaque or metacopy xattr is made, and user.overlay.* or
		     * trusted.overlay.* xattrs are not hidden), no quota, and names, attributes and
		     * data are cached for at most entry_timeout, since others change it too */
};

struct jfs_config {
	const char *const *lowers; /* top first */
	int nlowers;
	const char *upper;
	int upper_fd;	  /* >= 0: the upper, already open (a directory, duplicated here), and upper
			   * only names it in messages; -1 (the default): opened from upper */
	const char *work; /* may be NULL with opts.plain */
	const char *mountpoint;
	const char *fuse_opts; /* extra -o options for the mount, may be NULL */
	const char *fsname;    /* the mount's source in mountinfo; NULL: "jobfs" */
	bool foreground;
	bool debug;
	struct jfs_options opts;
};

/* One-line error reported to the user, naming the argument at fault. */
struct jfs_error {
	char msg[1024];
};

void jfs_config_defaults(struct jfs_config *cfg);

/* One view: checks the layers and mounts the view (jfs_view_open), serves its requests on a
 * thread pool until it is unmounted or stopped (jfs_view_serve; blocks), and unmounts it if still
 * mounted and frees it (jfs_view_close, accepts NULL). jfs_view_stop() is async-signal-unsafe but
 * thread-safe: it makes jfs_view_serve() return. Several views may live in one process; signal
 * handling is then the caller's (libfuse's handlers serve only one session). */
struct jfs_view;
struct fuse_session;
int jfs_view_open(const struct jfs_config *cfg, struct jfs_view **ret_view, struct jfs_error *err);
int jfs_view_serve(struct jfs_view *view, struct jfs_error *err);
void jfs_view_stop(struct jfs_view *view);
void jfs_view_close(struct jfs_view *view);
struct fuse_session *jfs_view_session(struct jfs_view *view);

/* Checks the layers, mounts the view, serves it until unmount or SIGTERM/SIGINT. Returns 0 after a
 * clean unmount, or -errno with err->msg set. With !cfg->foreground the process daemonizes once the
 * view is live. */
int jfs_serve(const struct jfs_config *cfg, struct jfs_error *err);

/* The on-disk layer format, for tools that read layers directly (inspect, gc). */
struct stat;
bool jfs_is_whiteout(const struct stat *st);
/* Removes name below dirfd and everything under it without following symlinks or crossing mount
 * points (returns -EXDEV after removing the rest if it met one); a missing name is not an error. */
int jfs_remove_tree_at(int dirfd, const char *name);
/* Whether a layer whose work dir is workdir_fd may be used: 0 yes (never served volatile, or
 * flushed since); 1 yes, a volatile daemon was killed on this boot and left it in the page cache;
 * -EUCLEAN no, it was served volatile before the machine restarted (why says so, for a message);
 * another -errno if the marker could not be read. */
int jfs_volatile_check(int workdir_fd, char *why, size_t whysize);

#endif
