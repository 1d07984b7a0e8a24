/* Tests for cli/bases.c: the stack file (round trip, hostile contents and file types), generation
 * names and the next one, the depth limit, publishing and cleaning up after a crash, the lowers a
 * mount gets. */
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
#include "policy.h"
#include "store.h"

struct fixture {
	struct bases_fixture b;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return bases_fixture_open(&f->b, "test_bases");
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	bases_fixture_close(&f->b);
	free(f);
	return 0;
}

/* Writes STATE/bases/cache/stack by hand, len bytes of text. */
static void write_stack(struct fixture *f, const char *text, size_t len)
{
	int fd = openat(f->b.bases->dir_fd, "stack", O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static char *read_text(int dir_fd, const char *name)
{
	static char buf[8192];
	int fd = openat(dir_fd, name, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void make_stack(struct bases_stack *stack, size_t n, unsigned first)
{
	*stack = (struct bases_stack){0};
	for (size_t i = 0; i < n; i++) {
		char name[BASES_NAME_MAX];

		snprintf(name, sizeof(name), "G%06u", first + (unsigned)i);
		assert_int_equal(bases_stack_push(stack, name), 0);
	}
}

static void test_bases_name_valid(void **state)
{
	(void)state;
	assert_true(bases_name_valid("G000001"));
	assert_true(bases_name_valid("G1234567"));
	assert_true(bases_name_valid("G00000000000000")); /* 15 bytes: the longest */
	assert_false(bases_name_valid("G000000000000000"));
	assert_false(bases_name_valid("G00001")); /* fewer than six digits */
	assert_false(bases_name_valid("g000001"));
	assert_false(bases_name_valid("G00000a"));
	assert_false(bases_name_valid("G000001 "));
	assert_false(bases_name_valid("G-00001"));
	assert_false(bases_name_valid("../G000001"));
	assert_false(bases_name_valid(""));
	assert_false(bases_name_valid("tmp"));
}

static void test_bases_stack_missing_is_empty(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;

	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 0);
	bases_stack_free(&stack);
}

static void test_bases_stack_round_trip(void **state)
{
	struct fixture *f = *state;
	struct bases_stack out, in;

	/* push puts a name on top: G000003 G000002 G000001 */
	make_stack(&out, 3, 1);
	assert_string_equal(out.names[0], "G000003");
	assert_int_equal(bases_stack_write(f->b.bases, &out), 0);
	assert_string_equal(read_text(f->b.bases->dir_fd, "stack"),
			    "jobfs-stack 1\nG000003\nG000002\nG000001\n");
	assert_int_equal(faccessat(f->b.bases->dir_fd, "stack.tmp", F_OK, 0), -1);
	assert_int_equal(bases_stack_read(f->b.bases, &in), 0);
	assert_int_equal(in.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(in.names[i], out.names[i]);
	assert_true(bases_stack_has(&in, "G000002"));
	assert_false(bases_stack_has(&in, "G000004"));
	bases_stack_free(&in);

	/* an empty stack round-trips too */
	bases_stack_free(&out);
	assert_int_equal(bases_stack_write(f->b.bases, &out), 0);
	assert_int_equal(bases_stack_read(f->b.bases, &in), 0);
	assert_int_equal(in.n, 0);
	bases_stack_free(&in);
}

static void test_bases_stack_hostile(void **state)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
	} bad[] = {
		{"", 0},
		{"jobfs-stack 2\nG000001\n", 0},
		{"jobfs-stack 1", 0}, /* magic without its newline */
		{"JOBFS-STACK 1\nG000001\n", 0},
		{"jobfs-stack 1\nG000001", 0},		  /* last line without a newline */
		{"jobfs-stack 1\nG000001\n\n", 0},	  /* an empty line */
		{"jobfs-stack 1\nG000001\r\n", 0},	  /* CRLF */
		{"jobfs-stack 1\nG000001\nG000001\n", 0}, /* twice */
		{"jobfs-stack 1\n../../etc\n", 0},
		{"jobfs-stack 1\n/abs/path\n", 0},
		{"jobfs-stack 1\nG00001\n", 0},
		{"jobfs-stack 1\n G000001\n", 0},
		{"jobfs-stack 1\nG000000000000000000000000000001\n", 0},
		/* a NUL ends the name early: the rest of the line must not pass */
		{"jobfs-stack 1\nG000001\0/../x\n", 28},
		{"jobfs-stack 1\nG000001\0\n", 23},
	};
	struct fixture *f = *state;
	struct bases_stack stack;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);

		write_stack(f, bad[i].text, len);
		stack = (struct bases_stack){0};
		if (bases_stack_read(f->b.bases, &stack) != -EINVAL)
			fail_msg("stack %zu was accepted", i);
		assert_null(stack.names);
	}
}

static void test_bases_stack_depth(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack, in;
	char text[8192];
	size_t len;

	/* the deepest stack there may be, through a file and back */
	make_stack(&stack, BASES_STACK_MAX, 1);
	assert_int_equal(bases_stack_write(f->b.bases, &stack), 0);
	assert_int_equal(bases_stack_read(f->b.bases, &in), 0);
	assert_int_equal(in.n, BASES_STACK_MAX);
	bases_stack_free(&in);
	/* one more is refused by the writer, by publish and by the reader */
	assert_int_equal(bases_stack_push(&stack, "G000999"), 0);
	assert_int_equal(bases_stack_write(f->b.bases, &stack), -E2BIG);
	bases_stack_free(&stack);
	make_stack(&stack, BASES_STACK_MAX, 1);
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "next", 0755), 0);
	assert_int_equal(bases_publish(f->b.bases, "next", "G000999", &stack), -E2BIG);
	assert_int_equal(faccessat(f->b.bases->gens_fd, "G000999", F_OK, 0), -1);
	bases_stack_free(&stack);
	len = (size_t)snprintf(text, sizeof(text), "jobfs-stack 1\n");
	for (unsigned i = 0; i <= BASES_STACK_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "G%06u\n", i + 1);
	write_stack(f, text, len);
	assert_int_equal(bases_stack_read(f->b.bases, &in), -EINVAL);
	/* and a file past the size limit, whatever it holds */
	memset(text, 'x', sizeof(text));
	memcpy(text, "jobfs-stack 1\n", 14);
	write_stack(f, text, sizeof(text));
	assert_int_equal(bases_stack_read(f->b.bases, &in), -EINVAL);
}

static void test_bases_stack_write_refuses_unreadable(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack = {0};

	make_stack(&stack, 2, 1);
	memcpy(stack.names[1], stack.names[0], BASES_NAME_MAX); /* a repeat */
	assert_int_equal(bases_stack_write(f->b.bases, &stack), -EINVAL);
	snprintf(stack.names[1], BASES_NAME_MAX, "../x");
	assert_int_equal(bases_stack_write(f->b.bases, &stack), -EINVAL);
	assert_int_equal(faccessat(f->b.bases->dir_fd, "stack", F_OK, 0), -1);
	assert_int_equal(bases_stack_push(&stack, "G1"), -EINVAL);
	bases_stack_free(&stack);
}

static void test_bases_stack_not_a_file(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack = {0};

	/* a symlink is never followed, even to a valid stack */
	write_stack(f, "jobfs-stack 1\nG000001\n", 22);
	assert_int_equal(renameat(f->b.bases->dir_fd, "stack", f->b.bases->dir_fd, "real"), 0);
	assert_int_equal(symlinkat("real", f->b.bases->dir_fd, "stack"), 0);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), -EINVAL);
	assert_int_equal(unlinkat(f->b.bases->dir_fd, "stack", 0), 0);
	/* a directory */
	assert_int_equal(mkdirat(f->b.bases->dir_fd, "stack", 0755), 0);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), -EINVAL);
	assert_int_equal(unlinkat(f->b.bases->dir_fd, "stack", AT_REMOVEDIR), 0);
	/* a FIFO nobody writes to: refused at once, not waited on */
	assert_int_equal(mkfifoat(f->b.bases->dir_fd, "stack", 0644), 0);
	assert_int_equal(bases_stack_read(f->b.bases, &stack), -EINVAL);
}

static void test_bases_next_name(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack = {0};
	char name[BASES_NAME_MAX];

	assert_int_equal(bases_next_name(f->b.bases, &stack, name), 0);
	assert_string_equal(name, "G000001");
	/* one past the highest of the stack and gens/, whatever else gens/ holds */
	make_stack(&stack, 1, 3);
	assert_int_equal(bases_next_name(f->b.bases, &stack, name), 0);
	assert_string_equal(name, "G000004");
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "G000007", 0755), 0); /* unnamed leftover */
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "G99", 0755), 0);
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "G0000500x", 0755), 0);
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "junk", 0755), 0);
	assert_int_equal(bases_next_name(f->b.bases, &stack, name), 0);
	assert_string_equal(name, "G000008");
	/* past six digits the name grows */
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "G999999", 0755), 0);
	assert_int_equal(bases_next_name(f->b.bases, &stack, name), 0);
	assert_string_equal(name, "G1000000");
	assert_true(bases_name_valid(name));
	/* and stops before it wraps */
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "G999999999", 0755), 0);
	assert_int_equal(bases_next_name(f->b.bases, &stack, name), -EOVERFLOW);
	bases_stack_free(&stack);
}

static void test_bases_publish(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack = {0}, in;
	struct stat st;

	make_stack(&stack, 1, 1);
	assert_int_equal(mkdirat(f->b.bases->gens_fd, "G000001", 0755), 0);
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "build", 0755), 0);
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "build/sub", 0755), 0);
	assert_int_equal(bases_publish(f->b.bases, "build", "G000002", &stack), 0);
	assert_int_equal(fstatat(f->b.bases->gens_fd, "G000002/sub", &st, 0), 0);
	assert_int_equal(faccessat(f->b.bases->tmp_fd, "build", F_OK, 0), -1);
	assert_int_equal(bases_stack_read(f->b.bases, &in), 0);
	assert_int_equal(in.n, 2);
	assert_string_equal(in.names[0], "G000002");
	assert_string_equal(in.names[1], "G000001");
	bases_stack_free(&in);
	/* the caller's stack is left as it was */
	assert_int_equal(stack.n, 1);
	bases_stack_free(&stack);
}

static void test_bases_clean_tmp(void **state)
{
	struct fixture *f = *state;
	struct bases_stack stack;
	int fd;

	/* what a promote killed while building leaves, and a stack.tmp never renamed */
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "G000001", 0755), 0);
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "G000001/deep", 0755), 0);
	assert_int_equal(symlinkat("/", f->b.bases->tmp_fd, "G000001/deep/root"), 0);
	assert_int_equal(mkdirat(f->b.bases->tmp_fd, "G000001.work", 0700), 0);
	fd = openat(f->b.bases->dir_fd, "stack.tmp", O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "jobfs-stack 1\nG000001\n", 22), 22);
	close(fd);
	write_stack(f, "jobfs-stack 1\n", 14);
	assert_int_equal(bases_clean_tmp(f->b.bases), 0);
	assert_int_equal(faccessat(f->b.bases->tmp_fd, "G000001", F_OK, 0), -1);
	assert_int_equal(faccessat(f->b.bases->tmp_fd, "G000001.work", F_OK, 0), -1);
	assert_int_equal(faccessat(f->b.bases->dir_fd, "stack.tmp", F_OK, 0), -1);
	assert_int_equal(faccessat(f->b.bases->dir_fd, "tmp", F_OK, 0), 0);
	/* the stack itself is left alone */
	assert_int_equal(bases_stack_read(f->b.bases, &stack), 0);
	assert_int_equal(stack.n, 0);
	assert_string_equal(read_text(f->b.bases->dir_fd, "stack"), "jobfs-stack 1\n");
	/* nothing to clean is not an error */
	assert_int_equal(bases_clean_tmp(f->b.bases), 0);
}

static void test_bases_lock(void **state)
{
	struct fixture *f = *state;
	struct bases_view *other;

	assert_int_equal(bases_lock(f->b.bases, false), 0);
	assert_int_equal(bases_open(f->b.store, "cache", false, &other), 0);
	assert_int_equal(bases_lock(other, false), -EWOULDBLOCK);
	bases_close(f->b.bases); /* releases it */
	f->b.bases = NULL;
	assert_int_equal(bases_lock(other, false), 0);
	f->b.bases = other;
}

static void test_bases_open(void **state)
{
	struct fixture *f = *state;
	struct bases_view *bases;

	assert_int_equal(bases_open(f->b.store, "never", false, &bases), -ENOENT);
	assert_int_equal(bases_open(f->b.store, "../cache", true, &bases), -EINVAL);
	assert_int_equal(bases_open(f->b.store, "", true, &bases), -EINVAL);
	/* a symlink in place of a view's dir is not followed */
	assert_int_equal(symlinkat(f->b.dir, f->b.bases->dir_fd, "../linked"), 0);
	assert_int_equal(bases_open(f->b.store, "linked", false, &bases), -ENOTDIR);
}

static void test_bases_view_lowers(void **state)
{
	struct fixture *f = *state;
	char *policy_lowers[] = {"/srv/a", "/srv/b"};
	struct policy_view view = {.name = "cache", .lower = policy_lowers, .n_lower = 2};
	struct policy_view fresh = {.name = "fresh", .lower = policy_lowers, .n_lower = 1};
	struct bases_stack stack;
	char want[256], **lowers;
	size_t n;

	make_stack(&stack, 2, 1);
	assert_int_equal(bases_stack_write(f->b.bases, &stack), 0);
	bases_stack_free(&stack);
	assert_int_equal(bases_view_lowers(f->b.store, &view, &lowers, &n), 0);
	assert_int_equal(n, 4);
	snprintf(want, sizeof(want), "%s/bases/cache/gens/G000002", f->b.state);
	assert_string_equal(lowers[0], want);
	snprintf(want, sizeof(want), "%s/bases/cache/gens/G000001", f->b.state);
	assert_string_equal(lowers[1], want);
	assert_string_equal(lowers[2], "/srv/a");
	assert_string_equal(lowers[3], "/srv/b");
	bases_lowers_free(lowers, n);
	/* a view never promoted into: its policy lowers only */
	assert_int_equal(bases_view_lowers(f->b.store, &fresh, &lowers, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(lowers[0], "/srv/a");
	bases_lowers_free(lowers, n);
	/* a malformed stack is an error, not an empty base */
	write_stack(f, "jobfs-stack 1\nbad\n", 18);
	assert_int_equal(bases_view_lowers(f->b.store, &view, &lowers, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bases_name_valid),
		cmocka_unit_test_setup_teardown(test_bases_stack_missing_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_stack_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_stack_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_stack_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_stack_write_refuses_unreadable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bases_stack_not_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_next_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_clean_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bases_view_lowers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
