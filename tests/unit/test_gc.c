/* Tests for cli/gc.c: a job dir leaves through the trash with one rename and is deleted without
 * following symlinks (a link to a dir outside is removed as a link, the dir stays); leftovers in
 * the trash go; a missing job is not an error. */
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

#include "fs.h"
#include "gc.h"

struct fixture {
	char dir[64];
	char state[128];
	char outside[128];
	struct store *store;
	int dir_fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/test_gc.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
	f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY);
	if (f->dir_fd < 0 || mkdir(f->outside, 0755) < 0 ||
	    mkdirat(f->dir_fd, "outside/keep", 0755) < 0 ||
	    store_open(f->state, true, &f->store) < 0)
		return -1;
	close(openat(f->dir_fd, "outside/keep/file", O_WRONLY | O_CREAT, 0644));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->store);
	jfs_remove_tree_at(f->dir_fd, "state");
	jfs_remove_tree_at(f->dir_fd, "outside");
	close(f->dir_fd);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_gc_remove_job_keeps_symlink_targets(void **state)
{
	struct fixture *f = *state;
	int job_fd, lock_fd;
	struct stat st;

	assert_int_equal(store_job_create(f->store, "j1", &job_fd, &lock_fd), 0);
	assert_int_equal(mkdirat(job_fd, "views", 0700), 0);
	assert_int_equal(mkdirat(job_fd, "views/ws", 0700), 0);
	assert_int_equal(mkdirat(job_fd, "views/ws/upper", 0755), 0);
	assert_int_equal(symlinkat(f->outside, job_fd, "views/ws/upper/to-outside"), 0);
	assert_int_equal(symlinkat(f->outside, job_fd, "views/evil"), 0);
	assert_int_equal(gc_remove_job(f->store, "j1"), 0);
	close(lock_fd);
	close(job_fd);
	assert_int_equal(fstatat(f->store->jobs_fd, "j1", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
	/* the outside dir and its contents are intact */
	assert_int_equal(fstatat(f->dir_fd, "outside/keep/file", &st, 0), 0);
	/* and the trash is empty again */
	assert_int_equal(fstatat(f->store->trash_fd, ".", &st, 0), 0);
	assert_int_equal(st.st_nlink, 2);
}

static void test_gc_remove_missing_job(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(gc_remove_job(f->store, "nosuchjob"), 0);
}

static void test_gc_empty_trash(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(mkdirat(f->store->trash_fd, "left.1", 0700), 0);
	assert_int_equal(mkdirat(f->store->trash_fd, "left.1/deep", 0700), 0);
	assert_int_equal(symlinkat(f->outside, f->store->trash_fd, "left.1/deep/link"), 0);
	close(openat(f->store->trash_fd, "left.2", O_WRONLY | O_CREAT, 0600));
	assert_int_equal(gc_empty_trash(f->store), 0);
	assert_int_equal(fstatat(f->store->trash_fd, "left.1", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(fstatat(f->store->trash_fd, "left.2", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(fstatat(f->dir_fd, "outside/keep/file", &st, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gc_remove_job_keeps_symlink_targets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gc_remove_missing_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_empty_trash, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
