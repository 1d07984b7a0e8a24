/* Tests for cli/gc_gens.c: flattening a stack built by hand merges it the way a mount does (top
 * wins, a non-directory hides the directories below it) with hard links of the same files;
 * generations nobody names go, leftovers of a crash go, a dry run and a held lock change
 * nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bases.h"
#include "bases_fixture.h"
#include "fs.h"
#include "gc.h"
#include "store.h"

struct fixture {
	struct bases_fixture b;
	char actions[16][64]; /* "ACTION NAME", as reported */
	size_t n_actions;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return bases_fixture_open(&f->b, "test_gc_gens");
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	bases_fixture_close(&f->b);
	free(f);
	return 0;
}

static void report(const char *view, const char *name, const char *action, uint64_t value,
		   void *userdata)
{
	struct fixture *f = userdata;

	(void)value;
	assert_string_equal(view, "cache");
	assert_true(f->n_actions < 16);
	snprintf(f->actions[f->n_actions++], sizeof(f->actions[0]), "%s %s", action, name);
}

static bool reported(struct fixture *f, const char *line)
{
	for (size_t i = 0; i < f->n_actions; i++)
		if (!strcmp(f->actions[i], line))
			return true;
	return false;
}

/* Writes text to gens/PATH, making its parents. */
static void put(struct fixture *f, const char *path, const char *text)
{
	char buf[256];
	int fd;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *slash = strchr(buf, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdirat(f->b.bases->gens_fd, buf, 0755);
		*slash = '/';
	}
	fd = openat(f->b.bases->gens_fd, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static ino_t ino_of(struct fixture *f, const char *path)
{
	struct stat st;

	assert_int_equal(fstatat(f->b.bases->gens_fd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ino;
}

static bool exists(struct fixture *f, const char *path)
{
	struct stat st;

	return fstatat(f->b.bases->gens_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* G000003 over G000002 over G000001; x is a dir in 1 and 3 with a file in between. */
static void build_stack(struct fixture *f)
{
	struct bases_stack stack = {0};

	put(f, "G000001/x/y", "hidden by G000002's file x");
	put(f, "G000001/keep", "keep");
	put(f, "G000001/d/a", "old a");
	put(f, "G000002/x", "a file");
	put(f, "G000002/d/b", "b");
	put(f, "G000003/x/z", "z");
	put(f, "G000003/d/a", "new a");
	assert_int_equal(symlinkat("d/a", f->b.bases->gens_fd, "G000003/link"), 0);
	assert_int_equal(fchmodat(f->b.bases->gens_fd, "G000003/d", 0750, 0), 0);
	assert_int_equal(bases_stack_push(&stack, "G000001"), 0);
	assert_int_equal(bases_stack_push(&stack, "G000002"), 0);
	assert_int_equal(bases_stack_push(&stack, "G000003"), 0);
	assert_int_equal(bases_stack_write(f->b.bases, &stack), 0);
	bases_stack_free(&stack);
}

static void test_gc_gens_flatten(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;
	ino_t keep, a, b, z;
	struct stat st;
	char target[16];

	build_stack(f);
	keep = ino_of(f, "G000001/keep");
	a = ino_of(f, "G000003/d/a");
	b = ino_of(f, "G000002/d/b");
	z = ino_of(f, "G000003/x/z");
	assert_int_equal(gc_generations(f->b.store, "cache", 2, false, report, f), 0);
	assert_true(reported(f, "flattened G000004"));
	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 1);
	assert_string_equal(stack.names[0], "G000004");
	bases_stack_free(&stack);

	/* the same files, hard-linked, top wins */
	assert_int_equal(ino_of(f, "G000004/keep"), keep);
	assert_int_equal(ino_of(f, "G000004/d/a"), a);
	assert_int_equal(ino_of(f, "G000004/d/b"), b);
	assert_int_equal(ino_of(f, "G000004/x/z"), z);
	assert_int_equal(readlinkat(f->b.bases->gens_fd, "G000004/link", target, sizeof(target)),
			 3);
	assert_int_equal(fstatat(f->b.bases->gens_fd, "G000004/d", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	/* G000002's file x hides G000001's dir x from a mount: from the flattening too */
	assert_false(exists(f, "G000004/x/y"));
	/* nobody names the old generations: gone */
	assert_true(reported(f, "removed G000001"));
	assert_false(exists(f, "G000001"));
	assert_false(exists(f, "G000002"));
	assert_false(exists(f, "G000003"));
	assert_int_equal(f->n_actions, 4);
}

static void test_gc_gens_shallow_stack_kept(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;

	build_stack(f);
	assert_int_equal(gc_generations(f->b.store, "cache", 3, false, report, f), 0);
	assert_int_equal(f->n_actions, 0);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 3);
	bases_stack_free(&stack);
	assert_true(exists(f, "G000001/x/y"));
}

static void test_gc_gens_crash_leftovers(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;
	int fd;

	build_stack(f);
	/* a generation renamed into gens/ but never named, a half-built one in tmp/, a stack.tmp */
	put(f, "G000009/orphan", "never published");
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "G000010", 0755), 0);
	fd = openat(f->b.bases->dir_fd, "stack.tmp", O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gc_generations(f->b.store, "cache", 8, false, report, f), 0);
	assert_true(reported(f, "removed G000009"));
	assert_int_equal(f->n_actions, 1);
	assert_false(exists(f, "G000009"));
	assert_int_equal(faccessat(f->b.bases->tmp_fd, "G000010", F_OK, 0), -1);
	assert_int_equal(faccessat(f->b.bases->dir_fd, "stack.tmp", F_OK, 0), -1);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 3);
	bases_stack_free(&stack);
}

static void test_gc_gens_dry_run(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;

	build_stack(f);
	put(f, "G000009/orphan", "never published");
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "G000010", 0755), 0);
	assert_int_equal(gc_generations(f->b.store, "cache", 2, true, report, f), 0);
	assert_true(reported(f, "would flatten (new)"));
	assert_true(reported(f, "would remove G000009"));
	assert_true(exists(f, "G000009"));
	assert_int_equal(faccessat(f->b.bases->tmp_fd, "G000010", F_OK, 0), 0);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 3);
	bases_stack_free(&stack);
}

static void test_gc_gens_locked_view_skipped(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;

	build_stack(f);
	assert_int_equal(bases_lock(f->b.bases, false), 0); /* a promote at work */
	assert_int_equal(gc_generations(f->b.store, "cache", 1, false, report, f), 0);
	assert_int_equal(f->n_actions, 0);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 3);
	bases_stack_free(&stack);
	/* and a view that was never promoted into is no error */
	assert_int_equal(gc_generations(f->b.store, "other", 1, false, report, f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gc_gens_flatten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_gens_shallow_stack_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_gens_crash_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_gens_dry_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_gens_locked_view_skipped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
