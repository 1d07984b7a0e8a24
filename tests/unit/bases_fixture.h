/* The fixture test_bases and test_gc_gens share: a state dir in a fresh temporary directory and
 * the base of one view, "cache", opened in it; removed without following links. */
#ifndef JOBFS_BASES_FIXTURE_H
#define JOBFS_BASES_FIXTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bases.h"
#include "fs.h"
#include "store.h"

struct bases_fixture {
	char dir[64];
	char state[128];
	int dir_fd;
	struct store *store;
	struct bases_view *bases;
};

/* name: the test's, for the temporary directory's name. 0, or -1 with what was made left for
 * bases_fixture_close. */
static inline int bases_fixture_open(struct bases_fixture *b, const char *name)
{
	b->dir_fd = -1;
	snprintf(b->dir, sizeof(b->dir), "/tmp/%s.XXXXXX", name);
	if (!mkdtemp(b->dir))
		return -1;
	snprintf(b->state, sizeof(b->state), "%s/state", b->dir);
	b->dir_fd = open(b->dir, O_RDONLY | O_DIRECTORY);
	if (b->dir_fd < 0 || store_open(b->state, true, &b->store) < 0 ||
	    bases_open(b->store, "cache", true, &b->bases) < 0)
		return -1;
	return 0;
}

static inline void bases_fixture_close(struct bases_fixture *b)
{
	bases_close(b->bases);
	store_close(b->store);
	jfs_remove_tree_at(b->dir_fd, "state");
	close(b->dir_fd);
	rmdir(b->dir);
}

#endif
