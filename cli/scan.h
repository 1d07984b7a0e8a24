/* Scanning a base into a manifest: the merged walk over its directories (top first, overlay
 * rules) and the pool of threads that hash its files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "manifest.h"

#define SCAN_THREADS_MAX 64
#define SCAN_READ_SIZE (1024 * 1024) /* bytes per read(): large reads keep a disk streaming */

enum scan_progress {
	SCAN_PROGRESS_OFF,
	SCAN_PROGRESS_TTY,   /* one line rewritten in place, 5 times a second */
	SCAN_PROGRESS_LINES, /* a new line every second, for logs */
};

struct scan_options {
	unsigned threads; /* hashing threads; the walk runs on the caller's thread */
	enum scan_progress progress;
	FILE *progress_out; /* stderr */
};

struct scan_stats {
	uint64_t entries, files, bytes;
	double seconds;
};

/* One-line error naming the path at fault. */
struct scan_error {
	char msg[1024];
};

/* The merged tree of dirs[0..n) (top first): a name in a higher dir hides it below; a non-dir
 * hides a whole lower subtree; a whiteout (char 0:0) hides the name below and is not listed; an
 * opaque dir (trusted. or user.overlay.opaque = y) hides what lies below it. Never follows a
 * symlink; refuses to cross into another filesystem (-EXDEV). Returns 0 and a sorted manifest,
 * or -errno with err filled. */
int scan_base(const char *const *dirs, size_t n_dirs, const struct scan_options *opts,
	      struct manifest **ret_manifest, struct scan_stats *ret_stats, struct scan_error *err);

/* XXH3-128 of what fd holds from its offset to EOF, read in chunks of buf_size, in canonical
 * (big-endian) bytes. Returns 0 and sets *ret_bytes, or -errno. */
int scan_hash_fd(int fd, void *buf, size_t buf_size, uint8_t ret_hash[16], uint64_t *ret_bytes);

/* The default for --threads: the online CPUs, at most 8. */
unsigned scan_default_threads(void);
