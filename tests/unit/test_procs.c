/* Tests for cli/procs.c: the pure parsers behind process matching (mountinfo, maps, stat, cmdline)
 * and the holder search on this very process's files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "procs.h"

static void test_procs_mountinfo_parse(void **state)
{
	struct procs_mount m;

	(void)state;
	assert_int_equal(procs_mountinfo_parse("36 35 0:52 / /run/jobfs/j\\0401/ws rw,nosuid "
					       "shared:1 master:2 - fuse.jobfs jobfs rw,user_id=0",
					       &m),
			 0);
	assert_int_equal(m.mnt_id, 36);
	assert_int_equal(m.parent_id, 35);
	assert_int_equal(m.dev_major, 0);
	assert_int_equal(m.dev_minor, 52);
	assert_string_equal(m.mountpoint, "/run/jobfs/j 1/ws");
	assert_string_equal(m.fstype, "fuse.jobfs");
	assert_int_equal(procs_mountinfo_parse("36 35 0:52 / /x rw - ext4 /dev/sda1 rw", &m), 0);
	assert_string_equal(m.fstype, "ext4");
	assert_int_equal(procs_mountinfo_parse("36 35 0:52 / /x rw", &m), -EINVAL);
	assert_int_equal(procs_mountinfo_parse("x 35 0:52 / /x rw - ext4 a b", &m), -EINVAL);
	assert_int_equal(procs_mountinfo_parse("", &m), -EINVAL);
}

/* Found by fuzz_procs: the length limit was on the escaped field, so a mount point of 1500
 * spaces (6000 bytes as "\040") was never found, and umount left it mounted. */
static void test_procs_mountinfo_long_escaped(void **state)
{
	static char line[8192], expected[1600];
	struct procs_mount m;
	int n;

	(void)state;
	n = snprintf(line, sizeof(line), "36 35 0:52 / /");
	expected[0] = '/';
	for (int i = 0; i < 1500; i++) {
		n += snprintf(line + n, sizeof(line) - (size_t)n, "\\040");
		expected[i + 1] = ' ';
	}
	snprintf(line + n, sizeof(line) - (size_t)n, " rw - fuse.jobfs jobfs rw");
	assert_int_equal(procs_mountinfo_parse(line, &m), 0);
	assert_string_equal(m.mountpoint, expected);
	/* a path that does not fit is still refused */
	n = snprintf(line, sizeof(line), "36 35 0:52 / /");
	for (int i = 0; i < 4096; i++)
		line[n++] = 'a';
	snprintf(line + n, sizeof(line) - (size_t)n, " rw - ext4 a b");
	assert_int_equal(procs_mountinfo_parse(line, &m), -EINVAL);
}

static void test_procs_maps_line_dev(void **state)
{
	unsigned major, minor;

	(void)state;
	assert_int_equal(procs_maps_line_dev("7f00-7f10 r--s 00000000 00:2f 1234   /run/x\n",
					     &major, &minor),
			 0);
	assert_int_equal(major, 0);
	assert_int_equal(minor, 0x2f);
	assert_int_equal(procs_maps_line_dev("7f00-7f10 rw-p 00000000 fd:01 0\n", &major, &minor),
			 0);
	assert_int_equal(major, 0xfd);
	assert_int_equal(minor, 1);
	assert_int_equal(procs_maps_line_dev("garbage", &major, &minor), -EINVAL);
}

static void test_procs_stat_parse_start(void **state)
{
	uint64_t ticks;

	(void)state;
	/* a command name with spaces and ')' must not shift the fields */
	assert_int_equal(procs_stat_parse_start("42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 "
						"0 0 20 0 1 0 987654 1000 10",
						&ticks),
			 0);
	assert_int_equal(ticks, 987654);
	assert_int_equal(procs_stat_parse_start("42 (x) S 1 2", &ticks), -EINVAL);
	assert_int_equal(procs_stat_parse_start("no paren", &ticks), -EINVAL);
}

static void test_procs_cmdline_format(void **state)
{
	char buf[64];

	(void)state;
	procs_cmdline_format("sleep\0"
			     "1000\0",
			     11, buf, sizeof(buf));
	assert_string_equal(buf, "sleep 1000");
	procs_cmdline_format("a\tb\0c", 5, buf, sizeof(buf));
	assert_string_equal(buf, "a?b c");
	procs_cmdline_format("abcdef", 6, buf, 4);
	assert_string_equal(buf, "abc");
}

static void test_procs_alive_self(void **state)
{
	uint64_t start;

	(void)state;
	assert_int_equal(procs_start_time(getpid(), &start), 0);
	assert_true(procs_alive(getpid(), start));
	assert_true(procs_alive(getpid(), 0));
	assert_false(procs_alive(getpid(), start + 1)); /* a reused PID is not the same process */
	assert_false(procs_alive(0, 0));
}

static void test_procs_mount_at_root(void **state)
{
	struct procs_mount m;

	(void)state;
	assert_int_equal(procs_mount_at("/", &m), 0);
	assert_string_equal(m.mountpoint, "/");
	assert_int_equal(procs_mount_at("/no/such/mount/point", &m), -ENOENT);
	assert_false(procs_view_connected("/"));
}

static void test_procs_environ_has(void **state)
{
	static const char env[] = "PATH=/bin\0JOBFS_JOB_ID=r1.7.1.build\0HOME=/h";
	static const char cut[] = "JOBFS_JOB_ID=r1.7"; /* no NUL at the end: the last entry */

	(void)state;
	assert_true(procs_environ_has(env, sizeof(env) - 1, "JOBFS_JOB_ID=r1.7.1.build"));
	assert_true(procs_environ_has(env, sizeof(env) - 1, "HOME=/h"));
	/* a prefix, a longer value or a value inside another entry is not the marker */
	assert_false(procs_environ_has(env, sizeof(env) - 1, "JOBFS_JOB_ID=r1.7"));
	assert_false(procs_environ_has(env, sizeof(env) - 1, "JOBFS_JOB_ID=r1.7.1.build.x"));
	assert_false(procs_environ_has(env, sizeof(env) - 1, "B_ID=r1.7.1.build"));
	assert_false(procs_environ_has(env, 0, "HOME=/h"));
	assert_true(procs_environ_has(cut, sizeof(cut) - 1, "JOBFS_JOB_ID=r1.7"));
}

static void test_procs_marked_child(void **state)
{
	char entry[64], *envp[2] = {entry, NULL};
	pid_t *pids = NULL, child;
	size_t n = 0;
	int status;

	(void)state;
	snprintf(entry, sizeof(entry), "JOBFS_TEST_MARK=%d", (int)getpid());
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		execle("/bin/sleep", "sleep", "10", (char *)NULL, envp);
		_exit(127);
	}
	/* found once the child has exec'ed with the entry; a prefix of it finds nothing */
	for (int i = 0; i < 200 && n == 0; i++) {
		free(pids);
		pids = NULL;
		assert_int_equal(procs_marked(entry, &pids, &n), 0);
		if (n == 0)
			usleep(10000);
	}
	assert_int_equal(n, 1);
	assert_int_equal(pids[0], child);
	free(pids);
	assert_int_equal(procs_marked("JOBFS_TEST_MARK=", &pids, &n), 0);
	assert_int_equal(n, 0);
	free(pids);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_procs_mountinfo_parse),
		cmocka_unit_test(test_procs_mountinfo_long_escaped),
		cmocka_unit_test(test_procs_maps_line_dev),
		cmocka_unit_test(test_procs_stat_parse_start),
		cmocka_unit_test(test_procs_cmdline_format),
		cmocka_unit_test(test_procs_alive_self),
		cmocka_unit_test(test_procs_mount_at_root),
		cmocka_unit_test(test_procs_environ_has),
		cmocka_unit_test(test_procs_marked_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
