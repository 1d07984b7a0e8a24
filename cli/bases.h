/* A view's base generations: STATE/bases/VIEW/{lock, stack, gens/GNNNNNN/, tmp/}. The stack names
 * the published generations, newest first; mounts read it once, promote and gc replace it. See
 * bases.c for the rules that keep a crash from showing half a generation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"
#include "store.h"

/* Generations a stack may hold: with POLICY_LOWERS_MAX lowers they fit the 127 layers of a view. */
#define BASES_STACK_MAX 63
#define BASES_NAME_MAX 16 /* "G000001" and its NUL, with room */
_Static_assert(BASES_STACK_MAX + POLICY_LOWERS_MAX <= STORE_LOWERS_MAX, "a record holds them all");

struct bases_view {
	char *path;  /* STATE/bases/VIEW */
	int dir_fd;  /* STATE/bases/VIEW */
	int gens_fd; /* .../gens */
	int tmp_fd;  /* .../tmp */
	int lock_fd; /* .../lock, -1 until bases_lock() */
};

/* A stack: generation names, newest first. */
struct bases_stack {
	char (*names)[BASES_NAME_MAX];
	size_t n;
};

/* Opens STATE/bases/VIEW, creating its dirs when create is true; -ENOENT when it does not exist and
 * create is false. */
int bases_open(struct store *store, const char *view, bool create, struct bases_view **ret_bases);
void bases_close(struct bases_view *bases);

/* flock on the view's lock: promote and gc hold it while they read the stack, build on it and
 * replace it. -EWOULDBLOCK when another holds it and !wait. */
int bases_lock(struct bases_view *bases, bool wait);

/* Reads the stack; a view without one has an empty stack. -EINVAL for a malformed stack. */
int bases_stack_read(struct bases_view *bases, struct bases_stack *ret_stack);
/* Replaces the stack: stack.tmp written, fsynced, renamed over stack, the dir fsynced. -EINVAL
 * for an invalid or repeated name, -E2BIG past BASES_STACK_MAX. */
int bases_stack_write(struct bases_view *bases, const struct bases_stack *stack);
void bases_stack_free(struct bases_stack *stack);
/* Puts name on top of the stack. */
int bases_stack_push(struct bases_stack *stack, const char *name);
bool bases_stack_has(const struct bases_stack *stack, const char *name);

/* True for "G" and six or more digits. */
bool bases_name_valid(const char *name);
/* The next generation's name: one past the highest in gens/ and the stack. */
int bases_next_name(struct bases_view *bases, const struct bases_stack *stack,
		    char ret_name[static BASES_NAME_MAX]);
/* Deletes whatever an interrupted promote or flatten left: tmp/'s entries, a stack.tmp. The
 * caller holds the lock. */
int bases_clean_tmp(struct bases_view *bases);
/* Publishes tmp/TMP_NAME as generation name: syncs the filesystem, renames it into gens/, fsyncs
 * gens/, then writes the new stack (name on top of stack). The caller holds the lock. */
int bases_publish(struct bases_view *bases, const char *tmp_name, const char *name,
		  const struct bases_stack *stack);

/* The lowers a job's view mounts: the view's generations newest first (absolute paths under the
 * state dir), then the policy's lowers. Reads the stack once, without the lock (it is replaced
 * atomically). */
int bases_view_lowers(struct store *store, const struct policy_view *view, char ***ret_lowers,
		      size_t *ret_n);
void bases_lowers_free(char **lowers, size_t n);
