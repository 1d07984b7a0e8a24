/* Tests for cli/pass_through.c: what it reads of /etc/fuse.conf, and that a pass-through must be
 * a real directory (the mounting itself is tested by integration/cli_home_view.sh). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pass_through.h"

static char dir[] = "/tmp/test_pass_through.XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static bool allows(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/fuse.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return pass_through_user_allow_other(path);
}

static void test_pass_through_user_allow_other(void **state)
{
	char path[128];

	(void)state;
	assert_true(allows("user_allow_other\n"));
	assert_true(allows("# mount_max = 1000\n  user_allow_other  # jobfs\n"));
	assert_true(allows("user_allow_other")); /* no final newline */
	assert_false(allows(""));
	assert_false(allows("#user_allow_other\n"));
	assert_false(allows("# user_allow_other\n"));
	assert_false(allows("user_allow_others\n"));
	assert_false(allows("xuser_allow_other\n"));
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	assert_false(pass_through_user_allow_other(path));
}

static void test_pass_through_open_refuses(void **state)
{
	struct pass_through pt;
	char path[128], link[128], err[1200];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(
		pass_through_open(&pt, path, "jobfs:j/v/pass_through/0", NULL, 0, err, sizeof(err)),
		-ENOENT);
	assert_non_null(strstr(err, "No such file or directory"));
	assert_non_null(strstr(err, path));
	snprintf(path, sizeof(path), "%s/file", dir);
	fclose(fopen(path, "w"));
	assert_int_equal(pass_through_open(&pt, path, "s", NULL, 0, err, sizeof(err)), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/real", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink("real", link), 0);
	assert_int_equal(pass_through_open(&pt, link, "s", NULL, 0, err, sizeof(err)), -ENOTDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_through_user_allow_other),
		cmocka_unit_test(test_pass_through_open_refuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
