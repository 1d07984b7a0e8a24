/* Tests for cli/store.c: records round-trip and are parsed strictly, sizes and ages format, the
 * usage walk counts without following symlinks, and job dirs are created once with their lock. */
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
#include "store.h"

static const char good[] = "jobfs-record 1\n"
			   "id=job-42\n"
			   "state=mounted\n"
			   "pid=1234\n"
			   "pid_start=987654\n"
			   "created=1700000000\n"
			   "unmounted=0\n"
			   "policy_digest=0123456789abcdef\n"
			   "policy_source=/etc/jobfs/policy.yaml\n"
			   "view=workspace\n"
			   "target=/run/jobfs/job-42/workspace\n"
			   "target_created=2\n"
			   "view=cache\n"
			   "target=/home/runner/.npm\n"
			   "target_created=0\n"
			   "lower=/srv/a\n"
			   "lower=/srv/b\n"
			   "view=home\n"
			   "target=/home/runner\n"
			   "target_created=0\n"
			   "lower=/home/runner\n"
			   "pass_through=/home/runner/actions-runner\n"
			   "pass_through=/home/runner/work\n";

static void test_store_record_roundtrip(void **state)
{
	struct store_record *rec;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	assert_int_equal(store_record_parse(good, strlen(good), &rec), 0);
	assert_string_equal(rec->id, "job-42");
	assert_int_equal(rec->state, STORE_MOUNTED);
	assert_int_equal(rec->pid, 1234);
	assert_int_equal(rec->pid_start, 987654);
	assert_int_equal(rec->created, 1700000000);
	assert_int_equal(rec->n_views, 3);
	assert_string_equal(rec->views[0].name, "workspace");
	assert_int_equal(rec->views[0].target_created, 2);
	assert_int_equal(rec->views[0].n_lowers, 0);
	assert_int_equal(rec->views[1].n_lowers, 2);
	assert_string_equal(rec->views[1].lowers[1], "/srv/b");
	assert_int_equal(rec->views[1].n_pass_through, 0);
	assert_int_equal(rec->views[2].n_pass_through, 2);
	assert_string_equal(rec->views[2].pass_through[1], "/home/runner/work");
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(store_record_format(rec, out), 0);
	fclose(out);
	assert_string_equal(text, good);
	free(text);
	store_record_free(rec);
}

/* Replace the first occurrence of from by to in good, and expect the parse to fail. */
static void expect_invalid(const char *from, const char *to)
{
	char buf[2048];
	const char *at = strstr(good, from);
	struct store_record *rec = NULL;

	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
	if (store_record_parse(buf, strlen(buf), &rec) != -EINVAL) {
		fail_msg("accepted: %s -> %s", from, to);
	}
}

static void test_store_record_strict(void **state)
{
	struct store_record *rec = NULL;

	(void)state;
	expect_invalid("jobfs-record 1", "jobfs-record 2");
	expect_invalid("id=job-42", "id=../etc");
	expect_invalid("id=job-42", "id=");
	expect_invalid("state=mounted", "state=running");
	expect_invalid("pid=1234", "pid=-1");
	expect_invalid("pid=1234", "pid=12a");
	expect_invalid("pid=1234", "pid=01234");
	expect_invalid("pid=1234", "pid=0"); /* mounted without a daemon */
	expect_invalid("created=1700000000", "created=99999999999999999999999");
	expect_invalid("policy_digest=0123456789abcdef", "policy_digest=0123");
	expect_invalid("policy_source=/etc", "policy_source=/e\tc");
	expect_invalid("view=workspace", "view=../x");
	expect_invalid("view=cache", "view=workspace"); /* duplicate */
	expect_invalid("target=/run", "target=run");
	expect_invalid("target=/run/jobfs", "target=/run/../jobfs");
	expect_invalid("lower=/srv/a", "lower=srv");
	expect_invalid("lower=/srv/a", "bogus=/srv/a");
	expect_invalid("pass_through=/home/runner/work", "pass_through=work");
	expect_invalid("pass_through=/home/runner/work", "pass_through=/home/runner/../work");
	/* pass_through lines come after the view's lowers */
	expect_invalid("lower=/home/runner\npass_through=/home/runner/actions-runner\n",
		       "pass_through=/home/runner/actions-runner\nlower=/home/runner\n");
	expect_invalid("unmounted=0\n", ""); /* a missing key */
	expect_invalid("state=mounted\npid=1234\n", "pid=1234\nstate=mounted\n"); /* order */
	/* no final newline */
	assert_int_equal(store_record_parse(good, strlen(good) - 1, &rec), -EINVAL);
	/* a NUL inside */
	{
		char buf[sizeof(good)];

		memcpy(buf, good, sizeof(good));
		buf[20] = '\0';
		assert_int_equal(store_record_parse(buf, sizeof(good) - 1, &rec), -EINVAL);
	}
	/* found by fuzz_record: a NUL inside a key made "pid\0x" read as "pid" */
	{
		char buf[sizeof(good)];
		char *at;

		memcpy(buf, good, sizeof(good));
		at = strstr(buf, "pid=1234");
		memcpy(at, "pi\0=1234", 8);
		assert_int_equal(store_record_parse(buf, sizeof(good) - 1, &rec), -EINVAL);
		memcpy(at, "pid\0=123", 8);
		assert_int_equal(store_record_parse(buf, sizeof(good) - 1, &rec), -EINVAL);
	}
	expect_invalid("pid=1234", "PID=1234");
	/* found by fuzz_record: text ending in a partial "lower=" was read past its end (ASan) */
	{
		size_t len = strlen(good) + 3;
		char *buf = malloc(len);

		assert_non_null(buf);
		memcpy(buf, good, strlen(good));
		memcpy(buf + strlen(good), "low", 3);
		assert_int_equal(store_record_parse(buf, len, &rec), -EINVAL);
		free(buf);
	}
}

/* namespace=private: after policy_source, before outcome; written back the same; nothing else */
static void test_store_record_namespace(void **state)
{
	static const char src[] = "policy_source=/etc/jobfs/policy.yaml\n";
	char buf[2048], *text = NULL;
	const char *at = strstr(good, src) + strlen(src);
	struct store_record *rec = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	assert_int_equal(store_record_parse(good, strlen(good), &rec), 0);
	assert_false(rec->private_ns);
	store_record_free(rec);
	snprintf(buf, sizeof(buf), "%.*snamespace=private\noutcome=success\n%s", (int)(at - good),
		 good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), 0);
	assert_true(rec->private_ns);
	assert_int_equal(rec->outcome, STORE_OUTCOME_SUCCESS);
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(store_record_format(rec, out), 0);
	fclose(out);
	assert_string_equal(text, buf);
	free(text);
	store_record_free(rec);
	rec = NULL;
	snprintf(buf, sizeof(buf), "%.*snamespace=host\n%s", (int)(at - good), good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), -EINVAL);
	snprintf(buf, sizeof(buf), "%.*snamespace=\n%s", (int)(at - good), good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), -EINVAL);
	snprintf(buf, sizeof(buf), "%.*snamespace=private\nnamespace_ino=4026531840\n%s",
		 (int)(at - good), good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), 0);
	assert_int_equal(rec->ns_ino, 4026531840ULL);
	store_record_free(rec);
	rec = NULL;
	snprintf(buf, sizeof(buf), "%.*snamespace=private\nnamespace_ino=0\n%s", (int)(at - good),
		 good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), -EINVAL);
	/* an inode without a private namespace */
	snprintf(buf, sizeof(buf), "%.*snamespace_ino=4026531840\n%s", (int)(at - good), good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), -EINVAL);
	/* out of order: after outcome */
	snprintf(buf, sizeof(buf), "%.*soutcome=success\nnamespace=private\n%s", (int)(at - good),
		 good, at);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), -EINVAL);
	/* cut short inside the key: never read past the end */
	snprintf(buf, sizeof(buf), "%.*snamesp", (int)(at - good), good);
	assert_int_equal(store_record_parse(buf, strlen(buf), &rec), -EINVAL);
}

static const char with_context[] = "jobfs-record 1\n"
				   "id=j\n"
				   "state=unmounted\n"
				   "pid=0\n"
				   "pid_start=0\n"
				   "created=1700000000\n"
				   "unmounted=1700000100\n"
				   "policy_digest=0123456789abcdef\n"
				   "policy_source=/p.yaml\n"
				   "outcome=success\n"
				   "context_repository=acme/web\n"
				   "context_ref=refs/heads/caf\\xc3\\xa9\n"
				   "context_workflow=a\\\\b=c d\n"
				   "context_event=push\n"
				   "view=ws\n"
				   "target=/ws\n"
				   "target_created=0\n";

/* Replace the first occurrence of from by to in text, and expect the parse to fail. */
static void expect_invalid_in(const char *text, const char *from, const char *to)
{
	char buf[2048];
	const char *at = strstr(text, from);
	struct store_record *rec = NULL;

	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	if (store_record_parse(buf, strlen(buf), &rec) != -EINVAL)
		fail_msg("accepted: %s -> %s", from, to);
}

static void test_store_record_context(void **state)
{
	struct store_record *rec;
	struct policy_context ctx;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	assert_int_equal(store_record_parse(with_context, strlen(with_context), &rec), 0);
	assert_string_equal(rec->context[POLICY_CONTEXT_REPOSITORY], "acme/web");
	assert_string_equal(rec->context[POLICY_CONTEXT_REF], "refs/heads/caf\xc3\xa9");
	assert_string_equal(rec->context[POLICY_CONTEXT_WORKFLOW], "a\\b=c d");
	assert_null(rec->context[POLICY_CONTEXT_JOB]);
	assert_string_equal(rec->context[POLICY_CONTEXT_EVENT], "push");
	assert_int_equal(rec->outcome, STORE_OUTCOME_SUCCESS);
	assert_int_equal(rec->n_views, 1);
	store_record_context(rec, &ctx);
	assert_ptr_equal(ctx.values[POLICY_CONTEXT_REF], rec->context[POLICY_CONTEXT_REF]);
	assert_null(ctx.values[POLICY_CONTEXT_JOB]);
	/* written back byte for byte: one spelling per value */
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(store_record_format(rec, out), 0);
	fclose(out);
	assert_string_equal(text, with_context);
	free(text);
	store_record_free(rec);

	/* a record from before contexts (the one above) has none */
	assert_int_equal(store_record_parse(good, strlen(good), &rec), 0);
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		assert_null(rec->context[k]);
	store_record_free(rec);

	expect_invalid_in(with_context, "context_event=push", "context_event=");
	expect_invalid_in(with_context, "context_event=push", "context_events=push");
	expect_invalid_in(with_context, "context_event=push", "context_event=pu\\x");
	expect_invalid_in(with_context, "context_event=push", "context_event=pu\\x0");
	expect_invalid_in(with_context, "context_event=push", "context_event=pu\\xZZ");
	expect_invalid_in(with_context, "context_event=push", "context_event=pu\\n");
	/* escapes for what needs none, upper-case hex, a NUL, raw non-ASCII */
	expect_invalid_in(with_context, "context_event=push", "context_event=\\x70ush");
	expect_invalid_in(with_context, "\\xc3\\xa9", "\\xC3\\xA9");
	expect_invalid_in(with_context, "context_event=push", "context_event=p\\x00");
	expect_invalid_in(with_context, "\\xc3\\xa9", "\xc3\xa9");
	/* what must not be in a value, escaped or not */
	expect_invalid_in(with_context, "context_event=push", "context_event=a\\x0ab");
	expect_invalid_in(with_context, "context_event=push", "context_event=\\xff");
	expect_invalid_in(with_context, "context_event=push", "context_event=\\xe2\\x80\\xae");
	/* order and repeats */
	expect_invalid_in(with_context, "context_repository=acme/web\ncontext_ref",
			  "context_ref=x\ncontext_repository=acme/web\ncontext_ref");
	expect_invalid_in(with_context, "context_event=push\n",
			  "context_event=push\ncontext_event=push\n");
	/* context comes after the outcome */
	expect_invalid_in(with_context, "outcome=success\ncontext_repository=acme/web\n",
			  "context_repository=acme/web\noutcome=success\n");
}

static void test_store_record_no_views(void **state)
{
	static const char no_views[] = "jobfs-record 1\n"
				       "id=j\n"
				       "state=mounted\n"
				       "pid=0\n"
				       "pid_start=0\n"
				       "created=1700000000\n"
				       "unmounted=0\n"
				       "policy_digest=0123456789abcdef\n"
				       "policy_source=/p.yaml\n"
				       "context_job=lint\n";
	struct store_record *rec;

	(void)state;
	/* a job none of whose views matched: mounted, without a daemon, until umount */
	assert_int_equal(store_record_parse(no_views, strlen(no_views), &rec), 0);
	assert_int_equal(rec->n_views, 0);
	assert_int_equal(store_live_state(rec), STORE_MOUNTED);
	rec->state = STORE_UNMOUNTED;
	assert_int_equal(store_live_state(rec), STORE_UNMOUNTED);
	store_record_free(rec);
	/* found by fuzz_record: a record without views ending in a partial "outcome=" was read
	 * past its end (ASan) */
	{
		size_t len = strlen(no_views) - strlen("context_job=lint\n") + 6;
		char *buf = malloc(len);

		assert_non_null(buf);
		memcpy(buf, no_views, len - 6);
		memcpy(buf + len - 6, "outcom", 6);
		assert_int_equal(store_record_parse(buf, len, &rec), -EINVAL);
		memcpy(buf + len - 6, "contex", 6);
		assert_int_equal(store_record_parse(buf, len, &rec), -EINVAL);
		free(buf);
	}
	/* with a view, mounted needs a daemon */
	expect_invalid_in(no_views, "context_job=lint\n",
			  "context_job=lint\nview=a\ntarget=/a\ntarget_created=0\n");
}

static void test_store_format_bytes(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(store_format_bytes(0, buf), "0 B");
	assert_string_equal(store_format_bytes(1023, buf), "1023 B");
	assert_string_equal(store_format_bytes(1024, buf), "1.0 KiB");
	assert_string_equal(store_format_bytes(1536, buf), "1.5 KiB");
	assert_string_equal(store_format_bytes(1048575, buf), "1023.9 KiB");
	assert_string_equal(store_format_bytes(20ULL << 30, buf), "20.0 GiB");
	assert_string_equal(store_format_bytes(UINT64_MAX, buf), "15.9 EiB");
}

static void test_store_format_age(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(store_format_age(-5, buf), "0s");
	assert_string_equal(store_format_age(59, buf), "59s");
	assert_string_equal(store_format_age(600, buf), "10m");
	assert_string_equal(store_format_age(3 * 3600, buf), "3h");
	assert_string_equal(store_format_age(5 * 86400, buf), "5d");
}

static void test_store_job_create_and_usage(void **state)
{
	char dir[] = "/tmp/test_store.XXXXXX", path[256], outside[300];
	struct store *store;
	uint64_t bytes, files;
	int job_fd, lock_fd, other_fd, other_lock, fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(store_open(path, false, &store), -ENOENT);
	assert_int_equal(store_open(path, true, &store), 0);
	assert_int_equal(store_job_create(store, "../x", &job_fd, &lock_fd), -EINVAL);
	assert_int_equal(store_job_create(store, "j1", &job_fd, &lock_fd), 0);
	assert_int_equal(store_job_create(store, "j1", &other_fd, &other_lock), -EEXIST);
	/* the lock is held: a second taker does not get it */
	assert_int_equal(store_job_open(store, "j1", &other_fd), 0);
	assert_int_equal(store_job_lock(other_fd, false, &other_lock), -EWOULDBLOCK);
	close(lock_fd);
	assert_int_equal(store_job_lock(other_fd, false, &other_lock), 0);
	close(other_lock);
	close(other_fd);

	/* views/v/upper with a 4 KiB file and a symlink to a big outside file, not followed */
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	fd = open(outside, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	for (int i = 0; i < 256; i++)
		assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	assert_int_equal(mkdirat(job_fd, "views", 0700), 0);
	assert_int_equal(mkdirat(job_fd, "views/v", 0700), 0);
	assert_int_equal(mkdirat(job_fd, "views/v/upper", 0755), 0);
	assert_int_equal(symlinkat(outside, job_fd, "views/v/upper/link"), 0);
	fd = openat(job_fd, "views/v/upper/file", O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(store_job_usage(job_fd, &bytes, &files), 0);
	assert_int_equal(files, 2);
	assert_true(bytes < 8192 + 4096); /* the 8 KiB outside file is not counted */
	close(job_fd);

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(jfs_remove_tree_at(fd, "state"), 0);
	assert_int_equal(unlinkat(fd, "outside", 0), 0);
	close(fd);
	store_close(store);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_record_roundtrip),
		cmocka_unit_test(test_store_record_strict),
		cmocka_unit_test(test_store_record_context),
		cmocka_unit_test(test_store_record_no_views),
		cmocka_unit_test(test_store_record_namespace),
		cmocka_unit_test(test_store_format_bytes),
		cmocka_unit_test(test_store_format_age),
		cmocka_unit_test(test_store_job_create_and_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
