/* Unit tests of cli/merge_pnpm.c and cli/merge_npm.c: pnpm index.db files built with pnpm 12's real
 * schema (store/v11), and cacache buckets in the form npm appends them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "merge.h"
#include "unit.h"

/* As pnpm 12.21.0 creates them (sqlite3 .schema of a fresh store/v11/index.db). */
static const char pnpm_schema[] = "CREATE TABLE package_index (\n"
				  "              key TEXT PRIMARY KEY,\n"
				  "              data BLOB NOT NULL\n"
				  "            ) WITHOUT ROWID;\n"
				  "CREATE TABLE package_index_alias (\n"
				  "      key TEXT PRIMARY KEY,\n"
				  "      target TEXT NOT NULL\n"
				  "    ) WITHOUT ROWID;";

struct fixture {
	char dir[64];
	char err[512];
	struct merge_counts counts;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx || unit_mkdtemp(fx->dir, sizeof(fx->dir)) < 0) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	unit_rm_tree(fx->dir);
	free(fx);
	return 0;
}

/* Returns a path below the fixture's dir; valid until the next call with the same slot. */
static const char *path_of(struct fixture *fx, int slot, const char *name)
{
	static char paths[4][128];

	snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", fx->dir, name);
	return paths[slot];
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static bool has_side_files(const char *db)
{
	static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
	char path[256];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
		if (exists(path))
			return true;
	}
	return false;
}

static uint64_t hash_file(const char *path)
{
	char buf[65536];
	XXH3_state_t *st = XXH3_createState();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	uint64_t h;

	assert_non_null(st);
	assert_true(fd >= 0);
	XXH3_64bits_reset(st);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		XXH3_64bits_update(st, buf, (size_t)n);
	assert_int_equal(n, 0);
	close(fd);
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* Creates an index.db the way pnpm leaves one: its schema, WAL mode, closed (no side files).
 * rows is SQL inserting into it, or NULL. */
static void make_index(const char *path, const char *schema, const char *rows)
{
	sqlite3 *db;

	/* through the same lazily loaded library as the code under test (cli/sqlite_lazy.c) */
	assert_int_equal(
		sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
		SQLITE_OK);
	exec_sql(db, "PRAGMA journal_mode = WAL");
	exec_sql(db, schema);
	if (rows)
		exec_sql(db, rows);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_false(has_side_files(path));
}

/* Runs a query returning one text value on a merged index, opened without side files. */
static char *query_text(const char *path, const char *sql)
{
	char uri[256];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	char *text = NULL;

	snprintf(uri, sizeof(uri), "file:%s?immutable=1", path);
	assert_int_equal(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
		text = strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return text;
}

static void assert_query(const char *path, const char *sql, const char *want)
{
	char *got = query_text(path, sql);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s: got '%s', want '%s'", sql, got ? got : "(null)", want);
	free(got);
}

static void assert_counts(const struct merge_counts *c, uint64_t added, uint64_t identical,
			  uint64_t conflicts)
{
	assert_int_equal(c->added, added);
	assert_int_equal(c->identical, identical);
	assert_int_equal(c->conflicts, conflicts);
}

#define ALL_ROWS                                                                                   \
	"SELECT group_concat(key || '=' || hex(data), ',') FROM "                                  \
	"(SELECT key, data FROM package_index ORDER BY key)"
#define ALL_ALIASES                                                                                \
	"SELECT group_concat(key || '=' || target, ',') FROM "                                     \
	"(SELECT key, target FROM package_index_alias ORDER BY key)"

static void test_merge_pnpm_without_base_takes_job(void **state)
{
	struct fixture *fx = *state;
	const char *job = path_of(fx, 0, "job.db"), *out = path_of(fx, 1, "out.db");
	unsigned char header[100];
	int fd;

	make_index(job, pnpm_schema,
		   "INSERT INTO package_index VALUES ('k1', x'01'), ('k2', x'02');"
		   "INSERT INTO package_index_alias VALUES ('a1', 'k1');");
	assert_int_equal(merge_pnpm_index(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 3, 0, 0);
	assert_query(out, ALL_ROWS, "k1=01,k2=02");
	assert_query(out, ALL_ALIASES, "a1=k1");
	assert_query(out,
		     "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_master "
		     "ORDER BY name)",
		     "CREATE TABLE package_index (\n              key TEXT PRIMARY KEY,\n"
		     "              data BLOB NOT NULL\n            ) WITHOUT ROWID;"
		     "CREATE TABLE package_index_alias (\n      key TEXT PRIMARY KEY,\n"
		     "      target TEXT NOT NULL\n    ) WITHOUT ROWID");
	/* WAL in the header, as pnpm leaves it, yet no -wal/-shm beside it */
	fd = open(out, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, header, sizeof(header)), sizeof(header));
	close(fd);
	assert_int_equal(header[18], 2);
	assert_int_equal(header[19], 2);
	assert_false(has_side_files(out));
}

static void test_merge_pnpm_disjoint_takes_all(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");

	make_index(base, pnpm_schema,
		   "INSERT INTO package_index VALUES ('b1', x'b1'), ('b2', x'b2');"
		   "INSERT INTO package_index_alias VALUES ('ab', 'b1');");
	make_index(job, pnpm_schema,
		   "INSERT INTO package_index VALUES ('j1', x'a1');"
		   "INSERT INTO package_index_alias VALUES ('aj', 'j1');");
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 2, 0, 0);
	assert_query(out, ALL_ROWS, "b1=B1,b2=B2,j1=A1");
	assert_query(out, ALL_ALIASES, "ab=b1,aj=j1");
	assert_query(out, "PRAGMA integrity_check", "ok");
}

static void test_merge_pnpm_identical_rows_counted(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");
	const char *rows = "INSERT INTO package_index VALUES ('k1', x'0102'), ('k2', x'03');"
			   "INSERT INTO package_index_alias VALUES ('a1', 'k1');";

	make_index(base, pnpm_schema, rows);
	make_index(job, pnpm_schema, rows);
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 0, 3, 0);
	assert_query(out, ALL_ROWS, "k1=0102,k2=03");
	assert_query(out, "SELECT count(*) FROM package_index_alias", "1");
}

/* Same key, other data (pnpm's own case: the same package fetched twice differs in the
 * checkedAt times inside data), and a text value where the base has the same bytes as a blob:
 * byte-equal is not enough, the type must match too. */
static void test_merge_pnpm_conflict_keeps_base(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");

	make_index(base, pnpm_schema,
		   "INSERT INTO package_index VALUES ('k1', x'01'), ('k2', x'6869');"
		   "INSERT INTO package_index_alias VALUES ('a1', 'k1');");
	make_index(job, pnpm_schema,
		   "INSERT INTO package_index VALUES ('k1', x'02'), ('k2', 'hi'), ('k3', x'03');"
		   "INSERT INTO package_index_alias VALUES ('a1', 'k3');");
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 1, 0, 3);
	assert_query(out, ALL_ROWS, "k1=01,k2=6869,k3=03");
	assert_query(out, "SELECT typeof(data) FROM package_index WHERE key = 'k2'", "blob");
	assert_query(out, ALL_ALIASES, "a1=k1");
}

static void test_merge_pnpm_inputs_untouched(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");
	uint64_t base_hash, job_hash;
	struct stat base_st, st;

	make_index(base, pnpm_schema, "INSERT INTO package_index VALUES ('b1', x'01');");
	make_index(job, pnpm_schema, "INSERT INTO package_index VALUES ('j1', x'02');");
	base_hash = hash_file(base);
	job_hash = hash_file(job);
	assert_int_equal(stat(base, &base_st), 0);
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_int_equal(hash_file(base), base_hash);
	assert_int_equal(hash_file(job), job_hash);
	assert_int_equal(stat(base, &st), 0);
	assert_int_equal(st.st_mtim.tv_nsec, base_st.st_mtim.tv_nsec);
	assert_int_equal(st.st_mtim.tv_sec, base_st.st_mtim.tv_sec);
	assert_false(has_side_files(base));
	assert_false(has_side_files(job));
	assert_false(has_side_files(out));
}

/* A -wal with pages holds committed rows that immutable=1 would silently skip. */
static void test_merge_pnpm_refuses_wal_beside_input(void **state)
{
	struct fixture *fx = *state;
	const char *job = path_of(fx, 0, "job.db"), *out = path_of(fx, 1, "out.db");
	const char *wal = path_of(fx, 2, "job.db-wal");
	int dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	make_index(job, pnpm_schema, NULL);
	assert_int_equal(unit_write_file(dirfd, "job.db-wal", "pages"), 0);
	close(dirfd);
	assert_int_equal(merge_pnpm_index(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -EBUSY);
	assert_non_null(strstr(fx->err, wal));
	assert_false(exists(out));
}

static void test_merge_pnpm_not_a_database(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");
	int dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char text[8192];

	/* longer than a page, so SQLite reads a header that is not its own */
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(unit_write_file(dirfd, "base.db", text), 0);
	close(dirfd);
	make_index(job, pnpm_schema, NULL);
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -EINVAL);
	assert_non_null(strstr(fx->err, base));
	assert_non_null(strstr(fx->err, "not a database"));
	assert_null(strchr(fx->err, '\n'));
	assert_false(exists(out));
	assert_false(has_side_files(out));
	assert_false(has_side_files(base));
}

static void test_merge_pnpm_missing_table(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");
	char want[256];

	make_index(base, pnpm_schema, NULL);
	make_index(job, "CREATE TABLE package_index (key TEXT PRIMARY KEY, data BLOB NOT NULL)",
		   NULL);
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -EINVAL);
	snprintf(want, sizeof(want), "index '%s' has no table 'package_index_alias'", job);
	assert_string_equal(fx->err, want);
	assert_false(exists(out));
}

static void test_merge_pnpm_missing_input(void **state)
{
	struct fixture *fx = *state;
	const char *job = path_of(fx, 0, "nothing.db"), *out = path_of(fx, 1, "out.db");

	assert_int_equal(merge_pnpm_index(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -ENOENT);
	assert_non_null(strstr(fx->err, job));
	assert_false(exists(job));
	assert_false(exists(out));
}

static void test_merge_pnpm_other_columns(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base.db"), *job = path_of(fx, 1, "job.db");
	const char *out = path_of(fx, 2, "out.db");

	make_index(base, pnpm_schema, "INSERT INTO package_index VALUES ('k1', x'01');");
	make_index(job,
		   "CREATE TABLE package_index (key TEXT PRIMARY KEY, blob BLOB) WITHOUT ROWID;"
		   "CREATE TABLE package_index_alias (key TEXT PRIMARY KEY, target TEXT);",
		   "INSERT INTO package_index VALUES ('k2', x'02');");
	assert_int_equal(merge_pnpm_index(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -EINVAL);
	assert_non_null(strstr(fx->err, "'package_index'"));
	assert_false(exists(out));
}

static void test_merge_pnpm_refuses_existing_output(void **state)
{
	struct fixture *fx = *state;
	const char *job = path_of(fx, 0, "job.db"), *out = path_of(fx, 1, "out.db");
	int dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	make_index(job, pnpm_schema, NULL);
	assert_int_equal(unit_write_file(dirfd, "out.db", "left over"), 0);
	close(dirfd);
	assert_int_equal(merge_pnpm_index(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -EEXIST);
	assert_int_equal(hash_file(out), XXH3_64bits("left over", 9));
}

/* --- npm cacache buckets ------------------------------------------------------------------- */

static void write_bucket(struct fixture *fx, const char *name, const char *text)
{
	int dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(dirfd >= 0);
	assert_int_equal(unit_write_file(dirfd, name, text), 0);
	close(dirfd);
}

static void assert_file_text(const char *path, const char *want)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/* npm's own form: "\n" before each entry, no newline at the end. */
static void test_merge_npm_union_keeps_order(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base"), *job = path_of(fx, 1, "job");
	const char *out = path_of(fx, 2, "out");

	write_bucket(fx, "base", "\nh2\t{\"key\":\"b\"}\nh1\t{\"key\":\"a\"}");
	write_bucket(fx, "job", "\nh1\t{\"key\":\"a\"}\nh4\t{\"key\":\"d\"}\nh3\t{\"key\":\"c\"}");
	assert_int_equal(merge_npm_bucket(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 2, 1, 0);
	assert_file_text(out, "\nh2\t{\"key\":\"b\"}\nh1\t{\"key\":\"a\"}"
			      "\nh4\t{\"key\":\"d\"}\nh3\t{\"key\":\"c\"}");
}

/* The same entry twice in the job is taken once; a duplicate the base already had stays. */
static void test_merge_npm_duplicates_identical(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base"), *job = path_of(fx, 1, "job");
	const char *out = path_of(fx, 2, "out");

	write_bucket(fx, "base", "\nA\nA");
	write_bucket(fx, "job", "\nB\nA\nB\nB");
	assert_int_equal(merge_npm_bucket(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 1, 3, 0);
	assert_file_text(out, "\nA\nA\nB");
}

/* Lines ending with a newline, and a last one without: "B" must not run into "C", and "C" of
 * the base equals "C\n" of the job. */
static void test_merge_npm_trailing_newline(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base"), *job = path_of(fx, 1, "job");
	const char *out = path_of(fx, 2, "out");

	write_bucket(fx, "base", "A\nB");
	write_bucket(fx, "job", "B\nD\n");
	assert_int_equal(merge_npm_bucket(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 1, 1, 0);
	assert_file_text(out, "\nA\nB\nD");
}

static void test_merge_npm_empty_or_missing_base(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base"), *job = path_of(fx, 1, "job");
	const char *out = path_of(fx, 2, "out");

	write_bucket(fx, "job", "\nX\n\nY");
	assert_int_equal(merge_npm_bucket(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 2, 0, 0);
	assert_file_text(out, "\nX\nY");
	/* a path that does not exist reads as empty */
	assert_int_equal(merge_npm_bucket(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 2, 0, 0);
	assert_file_text(out, "\nX\nY");
	write_bucket(fx, "base", "");
	assert_int_equal(merge_npm_bucket(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 2, 0, 0);
	assert_file_text(out, "\nX\nY");
	/* and an empty job leaves the base as it was */
	write_bucket(fx, "base", "\nX");
	write_bucket(fx, "job", "");
	assert_int_equal(merge_npm_bucket(base, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 0);
	assert_counts(&fx->counts, 0, 0, 0);
	assert_file_text(out, "\nX");
}

static void test_merge_npm_unreadable_job(void **state)
{
	struct fixture *fx = *state;
	const char *job = path_of(fx, 0, "jobdir"), *out = path_of(fx, 1, "out");

	assert_int_equal(mkdir(job, 0755), 0);
	assert_int_equal(merge_npm_bucket(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)),
			 -EINVAL);
	assert_non_null(strstr(fx->err, job));
	assert_false(exists(out));
}

/* pnpm's lockfile-verified.jsonl: "LINE\n" per record, so pnpm's next append starts a new line
 * even after a base whose last record lacked its newline. */
static void test_merge_jsonl_union_newline_after(void **state)
{
	struct fixture *fx = *state;
	const char *base = path_of(fx, 0, "base"), *job = path_of(fx, 1, "job");
	const char *out = path_of(fx, 2, "out");

	write_bucket(fx, "base", "{\"a\":1}\n{\"b\":2}");
	write_bucket(fx, "job", "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n\n{\"c\":3}\n");
	assert_int_equal(merge_jsonl(base, job, out, &fx->counts, fx->err, sizeof(fx->err)), 0);
	assert_counts(&fx->counts, 1, 3, 0);
	assert_file_text(out, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	assert_int_equal(merge_jsonl(NULL, job, out, &fx->counts, fx->err, sizeof(fx->err)), 0);
	assert_counts(&fx->counts, 3, 1, 0);
	assert_file_text(out, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	assert_int_equal(mkdir(path_of(fx, 3, "dir"), 0755), 0);
	assert_int_equal(merge_jsonl(NULL, path_of(fx, 3, "dir"), out, &fx->counts, fx->err,
				     sizeof(fx->err)),
			 -EINVAL);
	assert_non_null(strstr(fx->err, "JSON-lines file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge_pnpm_without_base_takes_job, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_disjoint_takes_all, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_identical_rows_counted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_conflict_keeps_base, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_inputs_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_refuses_wal_beside_input, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_missing_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_missing_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_other_columns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_pnpm_refuses_existing_output, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_npm_union_keeps_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_npm_duplicates_identical, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_npm_trailing_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_npm_empty_or_missing_base, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_merge_npm_unreadable_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_jsonl_union_newline_after, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
