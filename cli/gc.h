/* Safe deletion of job layers and unmounting of views, shared by umount --collect and gc. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "procs.h"
#include "store.h"

/* Moves STATE/jobs/ID into STATE/trash with one rename, then deletes it there without following
 * symlinks or crossing mount points. The caller holds the job's lock. */
int gc_remove_job(struct store *store, const char *id);
/* Why gc_remove_job or gc_empty_trash failed, for a message: -EXDEV (a mount point inside the
 * layer, which is never entered) gets words of its own. */
const char *gc_strerror(int r);
/* Deletes everything inside dirfd, never following a symlink nor entering a mount point. */
int gc_empty_dir(int dirfd);
/* Deletes whatever an interrupted gc left in STATE/trash. */
int gc_empty_trash(struct store *store);
/* Unmounts the view mounted as m (procs_view_mount), wherever its mount point now is: as root,
 * umount2 through a pinned parent dir whose child was checked to be that very mount (a mount point
 * cannot be renamed or removed, so the name stays bound to it); otherwise `fusermount3 -u`. With
 * lazy, MNT_DETACH / `fusermount3 -uz`. Returns 0, -EBUSY, -EINVAL (not a mount), -ESTALE (the
 * path leads to another mount: moved meanwhile) or another -errno. */
int gc_unmount(const struct procs_mount *m, bool lazy);

/* What gc_generations did: action "flattened" (value: how many generations it replaced, name: the
 * new one), "removed" (value: bytes), or with dry_run "would flatten", "would remove". */
typedef void gc_generation_fn(const char *view, const char *name, const char *action,
			      uint64_t value, void *userdata);
/* gc of STATE/bases/VIEW (gc_gens.c): flattens a stack deeper than max_generations, then removes
 * the generations neither the stack nor any job record names. Skips a view whose lock a promote
 * holds. */
int gc_generations(struct store *store, const char *view, uint64_t max_generations, bool dry_run,
		   gc_generation_fn *report, void *userdata);
