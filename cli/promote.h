/* Promotion of one view: what a job's upper layer adds to the view's base, decided by the view's
 * promote kind (plan), then built into a new generation (apply). The upper is hostile: it is
 * walked with directory descriptors, never following a symlink. cmd_promote.c does the locking,
 * publishing and reporting. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "merge.h"
#include "policy.h"

enum promote_action {
	PROMOTE_ADDED,	   /* new in the base: copied into the generation */
	PROMOTE_IDENTICAL, /* already in the base with the same content */
	PROMOTE_MERGED,	   /* an index merged with the base's (merge_counts says how) */
	PROMOTE_IGNORED,   /* never promoted: a deletion, a metacopy, a path the kind ignores */
	PROMOTE_CONFLICT,  /* in the base with other content or another type: not promoted */
	PROMOTE_DIR,	   /* not reported: a directory on the way to what is added */
	PROMOTE_ACTION_COUNT,
};

struct promote_item {
	char *path; /* relative to the view's root */
	enum promote_action action;
	const char *reason; /* static text, why (for ignored and conflict) */
	uint64_t bytes;	    /* the job's file: size, or the subtree's for an ignored dir */
	struct merge_counts merge;
	/* what plan saw, checked again by apply */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime;
	dev_t dev;
	ino_t ino;
	nlink_t nlink;
	int base_layer; /* merged: the layer holding the base's file; -1 without one */
	int rule;
};

struct promote_view {
	/* in */
	const char *name;
	const struct policy_promote *promote;
	int upper_fd;		 /* the job's upper layer of this view */
	const int *base_fds;	 /* the base, top first: generations, then the policy's lowers */
	char *const *base_paths; /* the same, as paths (for the merges) */
	size_t n_base;
	/* optional: called after each entry plan looks at and each chunk apply writes, for progress
	 * reports (the callee decides how often to print) */
	void (*progress)(const struct promote_view *pv, void *userdata);
	void *progress_data;
	/* out */
	struct promote_item *items;
	size_t n_items;
	uint64_t count[PROMOTE_ACTION_COUNT];
	uint64_t bytes[PROMOTE_ACTION_COUNT];
	/* so far: entries of the upper plan looked at; items apply wrote, and their bytes */
	uint64_t planned, written, written_bytes;
};

const char *promote_action_name(enum promote_action action);

/* Walks the upper and decides about every entry; changes nothing. */
int promote_plan(struct promote_view *pv, char *err, size_t errsize);
/* Builds what the plan added and merged into gen_fd (gen_path: its path, for the merges), using
 * work_fd for copies of the job's index files. */
int promote_apply(struct promote_view *pv, int gen_fd, const char *gen_path, int work_fd,
		  const char *work_path, char *err, size_t errsize);
/* True when apply has anything to write. */
bool promote_has_changes(const struct promote_view *pv);
void promote_view_free(struct promote_view *pv);

/* Copies the regular file behind src_fd (already checked) into a new file name below dirfd: data,
 * then owner, mode (without set-ID bits) and times of st. */
int promote_copy_file(int src_fd, const struct stat *st, int dirfd, const char *name);
