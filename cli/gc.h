/* Safe deletion of job layers and unmounting of views, shared by umount --collect and gc. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Moves STATE/jobs/ID into STATE/trash with one rename, then deletes it there without following
 * symlinks or crossing mount points. The caller holds the job's lock. */
int gc_remove_job(struct store *store, const char *id);
/* Why gc_remove_job or gc_empty_trash failed, for a message: -EXDEV (a mount point inside the
 * layer, which is never entered) gets words of its own. */
const char *gc_strerror(int r);
/* Deletes whatever an interrupted gc left in STATE/trash. */
int gc_empty_trash(struct store *store);
/* Unmounts the view at target: umount2(target, 0) as root, `fusermount3 -u` otherwise; with lazy,
 * MNT_DETACH / `fusermount3 -uz`. Returns 0, -EBUSY, -EINVAL (not a mount) or another -errno. */
int gc_unmount(const char *target, bool lazy);

/* What gc_generations did: action "flattened" (value: how many generations it replaced, name: the
 * new one), "removed" (value: bytes), or with dry_run "would flatten", "would remove". */
typedef void gc_generation_fn(const char *view, const char *name, const char *action,
			      uint64_t value, void *userdata);
/* gc of STATE/bases/VIEW (gc_gens.c): flattens a stack deeper than max_generations, then removes
 * the generations neither the stack nor any job record names. Skips a view whose lock a promote
 * holds. */
int gc_generations(struct store *store, const char *view, uint64_t max_generations, bool dry_run,
		   gc_generation_fn *report, void *userdata);
