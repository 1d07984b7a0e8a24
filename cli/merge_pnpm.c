/* Promotion's merge of pnpm's store index (store/v11/index.db, pnpm 11+): the base's rows plus the
 * job's rows under new keys, compared by primary key and byte-equal columns. Tables and columns are
 * discovered from the schema; package_index and package_index_alias must be there. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "merge.h"

static const char *const required_tables[] = {"package_index", "package_index_alias"};

struct merge_db {
	sqlite3 *out;
	const char *base_path, *job_path, *out_path;
	const char *schema_from; /* "base", or "job" when there is no base */
	bool has_base;
	char *err;
	size_t errsize;
};

static int fail(struct merge_db *m, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->err, m->errsize, fmt, ap);
	va_end(ap);
	return r;
}

static int errno_of_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_IOERR:
		return -EIO;
	case SQLITE_PERM:
	case SQLITE_READONLY:
		return -EACCES;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default: /* not a database, corrupt, schema errors */
		return -EINVAL;
	}
}

static int fail_sqlite(struct merge_db *m, const char *what)
{
	int rc = sqlite3_extended_errcode(m->out);

	return fail(m, errno_of_sqlite(rc), "cannot %s for '%s': %s", what, m->out_path,
		    sqlite3_errmsg(m->out));
}

/* A file: URI for path, percent-encoding every byte a URI could misread ('?', '#', '%', ...). */
static char *uri_of(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char prefix[] = "file:";
	static const char suffix[] = "?mode=ro&immutable=1";
	char *uri = malloc(sizeof(prefix) + 3 * strlen(path) + sizeof(suffix));
	char *p = uri;

	if (!uri)
		return NULL;
	p = stpcpy(p, prefix);
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("/-._~", *c)) {
			*p++ = *c;
		} else {
			*p++ = '%';
			*p++ = hex[*c >> 4];
			*p++ = hex[*c & 15];
		}
	}
	strcpy(p, suffix);
	return uri;
}

/* Checks an input before it is attached read-only. immutable=1 keeps SQLite from creating
 * -wal/-shm beside it but also makes it ignore an existing -wal: refuse one that holds pages
 * rather than silently dropping the rows in it. */
static int check_input(struct merge_db *m, const char *path)
{
	char wal[PATH_MAX];
	struct stat st;

	if (stat(path, &st) < 0)
		return fail(m, -errno, "cannot open index '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(m, -EINVAL, "index '%s' is not a regular file", path);
	if (snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal))
		return fail(m, -ENAMETOOLONG, "index path '%s' is too long", path);
	if (stat(wal, &st) == 0 && st.st_size > 0)
		return fail(m, -EBUSY, "index '%s' has an uncheckpointed write-ahead log '%s'",
			    path, wal);
	return 0;
}

static int attach(struct merge_db *m, const char *path, const char *schema)
{
	char *uri, *sql;
	int r;

	r = check_input(m, path);
	if (r < 0)
		return r;
	uri = uri_of(path);
	if (!uri)
		return fail(m, -ENOMEM, "cannot attach index '%s': out of memory", path);
	sql = sqlite3_mprintf("ATTACH %Q AS %s", uri, schema);
	free(uri);
	if (!sql)
		return fail(m, -ENOMEM, "cannot attach index '%s': out of memory", path);
	if (sqlite3_exec(m->out, sql, NULL, NULL, NULL) != SQLITE_OK) {
		r = sqlite3_extended_errcode(m->out);
		sqlite3_free(sql);
		return fail(m, errno_of_sqlite(r), "cannot open index '%s': %s", path,
			    sqlite3_errmsg(m->out));
	}
	sqlite3_free(sql);
	/* ATTACH is lazy: reading the schema is what finds a file that is not a database */
	sql = sqlite3_mprintf("SELECT count(*) FROM %s.sqlite_master", schema);
	if (!sql)
		return fail(m, -ENOMEM, "cannot read index '%s': out of memory", path);
	r = sqlite3_exec(m->out, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (r != SQLITE_OK)
		return fail(m, errno_of_sqlite(sqlite3_extended_errcode(m->out)),
			    "cannot read index '%s': %s", path, sqlite3_errmsg(m->out));
	return 0;
}

/* Runs a query returning one integer into ret_value; takes sql (from sqlite3_mprintf, NULL when
 * it ran out of memory) and frees it. */
static int query_int(struct merge_db *m, char *sql, int64_t *ret_value)
{
	sqlite3_stmt *stmt;
	int rc;

	if (!sql)
		return fail(m, -ENOMEM, "cannot build a query for '%s': out of memory",
			    m->out_path);
	rc = sqlite3_prepare_v2(m->out, sql, -1, &stmt, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return fail_sqlite(m, "prepare a query");
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		return fail_sqlite(m, "run a query");
	}
	*ret_value = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return 0;
}

/* Runs a statement; takes sql like query_int. */
static int exec(struct merge_db *m, char *sql, const char *what)
{
	int rc;

	if (!sql)
		return fail(m, -ENOMEM, "cannot %s for '%s': out of memory", what, m->out_path);
	rc = sqlite3_exec(m->out, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return fail_sqlite(m, what);
	return 0;
}

static bool has_table(struct merge_db *m, const char *schema, const char *table)
{
	char *sql = sqlite3_mprintf("SELECT count(*) FROM %s.sqlite_master "
				    "WHERE type = 'table' AND name = %Q",
				    schema, table);
	int64_t n = 0;

	if (query_int(m, sql, &n) < 0)
		n = 0;
	return n > 0;
}

/* A table's columns as SQL lists built from PRAGMA table_info: the column list, the key match
 * (primary key columns equal, under their own collation, as the primary key compares them) and
 * the content match (every column of the same type and the same bytes). */
struct table_sql {
	sqlite3_str *columns, *key_match, *same_content;
	int ncolumns, nkey;
};

static void table_sql_free(struct table_sql *t)
{
	sqlite3_free(sqlite3_str_finish(t->columns));
	sqlite3_free(sqlite3_str_finish(t->key_match));
	sqlite3_free(sqlite3_str_finish(t->same_content));
}

static int table_sql_build(struct merge_db *m, const char *table, struct table_sql *t)
{
	char *sql = sqlite3_mprintf(
		"SELECT name, pk FROM pragma_table_info(%Q, 'main') ORDER BY cid", table);
	sqlite3_stmt *stmt;
	int rc;

	memset(t, 0, sizeof(*t));
	t->columns = sqlite3_str_new(m->out);
	t->key_match = sqlite3_str_new(m->out);
	t->same_content = sqlite3_str_new(m->out);
	if (!sql)
		return fail(m, -ENOMEM, "cannot read columns of '%s': out of memory", table);
	rc = sqlite3_prepare_v2(m->out, sql, -1, &stmt, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return fail_sqlite(m, "read columns");
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		const char *sep = t->ncolumns ? " AND " : "";

		sqlite3_str_appendf(t->columns, "%s\"%w\"", t->ncolumns ? ", " : "", name);
		sqlite3_str_appendf(t->same_content,
				    "%stypeof(b.\"%w\") = typeof(j.\"%w\") AND "
				    "CAST(b.\"%w\" AS BLOB) IS CAST(j.\"%w\" AS BLOB)",
				    sep, name, name, name, name);
		if (sqlite3_column_int(stmt, 1) > 0) {
			sqlite3_str_appendf(t->key_match, "%sb.\"%w\" = j.\"%w\"",
					    t->nkey ? " AND " : "", name, name);
			t->nkey++;
		}
		t->ncolumns++;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return fail_sqlite(m, "read columns");
	if (sqlite3_str_errcode(t->columns) || sqlite3_str_errcode(t->key_match) ||
	    sqlite3_str_errcode(t->same_content))
		return fail(m, -ENOMEM, "cannot read columns of '%s': out of memory", table);
	if (t->nkey == 0)
		return fail(m, -EINVAL, "table '%s' of index '%s' has no primary key", table,
			    m->has_base ? m->base_path : m->job_path);
	return 0;
}

/* The job's table must have the output's columns, by name and order, or rows cannot be
 * compared. */
static int check_job_columns(struct merge_db *m, const char *table)
{
	/* counts, not a FULL JOIN: SQLite 3.40 returns a spurious row for a FULL JOIN of two
	 * pragma_table_info() calls */
	char *sql = sqlite3_mprintf(
		"SELECT (SELECT count(*) FROM pragma_table_info(%Q, 'main')) + "
		"(SELECT count(*) FROM pragma_table_info(%Q, 'job')) - 2 * "
		"(SELECT count(*) FROM pragma_table_info(%Q, 'main') o "
		"JOIN pragma_table_info(%Q, 'job') j ON o.cid = j.cid AND o.name = j.name)",
		table, table, table, table);
	int64_t mismatched;
	int r = query_int(m, sql, &mismatched);

	if (r < 0)
		return r;
	if (mismatched)
		return fail(m, -EINVAL, "table '%s' of index '%s' has other columns than in '%s'",
			    table, m->job_path, m->has_base ? m->base_path : m->job_path);
	return 0;
}

static int merge_table(struct merge_db *m, const char *table, struct merge_counts *counts)
{
	struct table_sql t;
	int64_t present, identical;
	char *sql;
	int r;

	r = table_sql_build(m, table, &t);
	if (r < 0)
		goto out_free;
	if (m->has_base) {
		sql = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s) SELECT %s FROM base.\"%w\"",
				      table, sqlite3_str_value(t.columns),
				      sqlite3_str_value(t.columns), table);
		r = exec(m, sql, "copy the base's rows");
		if (r < 0)
			goto out_free;
	}
	r = check_job_columns(m, table);
	if (r < 0)
		goto out_free;
	/* count before inserting: afterwards the job's new rows would match themselves */
	sql = sqlite3_mprintf("SELECT count(*) FROM job.\"%w\" j WHERE EXISTS "
			      "(SELECT 1 FROM main.\"%w\" b WHERE %s)",
			      table, table, sqlite3_str_value(t.key_match));
	r = query_int(m, sql, &present);
	if (r < 0)
		goto out_free;
	sql = sqlite3_mprintf("SELECT count(*) FROM job.\"%w\" j WHERE EXISTS "
			      "(SELECT 1 FROM main.\"%w\" b WHERE %s AND %s)",
			      table, table, sqlite3_str_value(t.key_match),
			      sqlite3_str_value(t.same_content));
	r = query_int(m, sql, &identical);
	if (r < 0)
		goto out_free;
	sql = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s) SELECT %s FROM job.\"%w\" j "
			      "WHERE NOT EXISTS (SELECT 1 FROM main.\"%w\" b WHERE %s)",
			      table, sqlite3_str_value(t.columns), sqlite3_str_value(t.columns),
			      table, table, sqlite3_str_value(t.key_match));
	r = exec(m, sql, "add the job's rows");
	if (r < 0)
		goto out_free;
	counts->added += (uint64_t)sqlite3_changes64(m->out);
	counts->identical += (uint64_t)identical;
	counts->conflicts += (uint64_t)(present - identical);

out_free:
	table_sql_free(&t);
	return r;
}

/* Creates the schema source's tables, indexes, triggers and views in the output, in creation
 * order, and carries its user_version (a schema version pnpm may use for migrations). */
static int copy_schema(struct merge_db *m)
{
	char *sql = sqlite3_mprintf("SELECT sql FROM %s.sqlite_master "
				    "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%%' "
				    "ORDER BY type <> 'table', rowid",
				    m->schema_from);
	sqlite3_stmt *stmt;
	int64_t user_version;
	int rc, r = 0;

	if (!sql)
		return fail(m, -ENOMEM, "cannot read the schema: out of memory");
	rc = sqlite3_prepare_v2(m->out, sql, -1, &stmt, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return fail_sqlite(m, "read the schema");
	while (r == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		r = exec(m, sqlite3_mprintf("%s", sqlite3_column_text(stmt, 0)),
			 "create the schema");
	sqlite3_finalize(stmt);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return fail_sqlite(m, "read the schema");
	sql = sqlite3_mprintf("PRAGMA %s.user_version", m->schema_from);
	r = query_int(m, sql, &user_version);
	if (r < 0)
		return r;
	return exec(m, sqlite3_mprintf("PRAGMA main.user_version = %lld", (long long)user_version),
		    "set user_version");
}

/* Every table of the schema source is merged; the job may not bring tables it lacks. */
static int check_tables(struct merge_db *m, const char *base_db, const char *job_db)
{
	int64_t extra;
	char *sql;
	int r;

	for (size_t i = 0; i < sizeof(required_tables) / sizeof(required_tables[0]); i++) {
		if (m->has_base && !has_table(m, "base", required_tables[i]))
			return fail(m, -EINVAL, "index '%s' has no table '%s'", base_db,
				    required_tables[i]);
		if (!has_table(m, "job", required_tables[i]))
			return fail(m, -EINVAL, "index '%s' has no table '%s'", job_db,
				    required_tables[i]);
	}
	if (!m->has_base)
		return 0;
	sql = sqlite3_mprintf("SELECT count(*) FROM job.sqlite_master j WHERE j.type = 'table' AND "
			      "NOT EXISTS (SELECT 1 FROM base.sqlite_master b "
			      "WHERE b.type = 'table' AND b.name = j.name)");
	r = query_int(m, sql, &extra);
	if (r < 0)
		return r;
	if (extra)
		return fail(m, -EINVAL, "index '%s' has tables the base '%s' lacks", job_db,
			    base_db);
	return 0;
}

static int merge_tables(struct merge_db *m, struct merge_counts *counts)
{
	char *sql = sqlite3_mprintf("SELECT name FROM main.sqlite_master WHERE type = 'table' "
				    "AND name NOT LIKE 'sqlite_%%' ORDER BY rowid");
	sqlite3_stmt *stmt;
	int rc, r = 0;

	if (!sql)
		return fail(m, -ENOMEM, "cannot list tables: out of memory");
	rc = sqlite3_prepare_v2(m->out, sql, -1, &stmt, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return fail_sqlite(m, "list tables");
	while (r == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		char *table = sqlite3_mprintf("%s", sqlite3_column_text(stmt, 0));

		r = table ? merge_table(m, table, counts) : -ENOMEM;
		sqlite3_free(table);
	}
	sqlite3_finalize(stmt);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return fail_sqlite(m, "list tables");
	return 0;
}

static void remove_output(const char *out_db)
{
	static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (snprintf(path, sizeof(path), "%s%s", out_db, suffixes[i]) < (int)sizeof(path))
			unlink(path);
}

int merge_pnpm_index(const char *base_db, const char *job_db, const char *out_db,
		     struct merge_counts *counts, char *err, size_t errsize)
{
	struct merge_db m = {.base_path = base_db,
			     .job_path = job_db,
			     .out_path = out_db,
			     .err = err,
			     .errsize = errsize};
	struct merge_counts merged = {0};
	struct stat st;
	int r;

	if (errsize)
		err[0] = '\0';
	if (!job_db || !out_db)
		return fail(&m, -EINVAL, "merge of pnpm indexes needs a job index and an output");
	m.has_base = base_db != NULL;
	m.schema_from = m.has_base ? "base" : "job";
	/* "fresh": never merge into whatever a previous attempt left at the path */
	if (stat(out_db, &st) == 0 && st.st_size > 0)
		return fail(&m, -EEXIST, "output index '%s' already exists", out_db);
	if (sqlite3_open_v2(out_db, &m.out,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK) {
		r = fail(&m, errno_of_sqlite(sqlite3_extended_errcode(m.out)),
			 "cannot create output index '%s': %s", out_db, sqlite3_errmsg(m.out));
		goto out_remove;
	}
	sqlite3_extended_result_codes(m.out, 1);
	/* built in rollback mode, one transaction; WAL is switched on at the end */
	r = exec(&m, sqlite3_mprintf("PRAGMA main.journal_mode = DELETE"), "set the journal mode");
	if (r == 0 && m.has_base)
		r = attach(&m, base_db, "base");
	if (r == 0)
		r = attach(&m, job_db, "job");
	if (r == 0)
		r = check_tables(&m, base_db, job_db);
	if (r == 0)
		r = exec(&m, sqlite3_mprintf("BEGIN"), "begin");
	if (r == 0)
		r = copy_schema(&m);
	if (r == 0)
		r = merge_tables(&m, &merged);
	if (r == 0)
		r = exec(&m, sqlite3_mprintf("COMMIT"), "commit");
	if (r == 0)
		r = exec(&m, sqlite3_mprintf("DETACH job"), "detach the job's index");
	if (r == 0 && m.has_base)
		r = exec(&m, sqlite3_mprintf("DETACH base"), "detach the base's index");
	/* pnpm leaves index.db in WAL mode (header bytes 18-19 = 2) and switches a rollback-mode
	 * file to WAL on open, a write that would copy the whole index up into every job's layer.
	 * So the generation is WAL in its header; closing the last connection checkpoints and
	 * deletes the -wal and -shm files. */
	if (r == 0)
		r = exec(&m, sqlite3_mprintf("PRAGMA main.journal_mode = WAL"),
			 "set the journal mode");
	if (r < 0)
		goto out_close;
	if (sqlite3_close(m.out) != SQLITE_OK) {
		r = fail_sqlite(&m, "close");
		goto out_close;
	}
	m.out = NULL;
	*counts = merged;
	return 0;

out_close:
	sqlite3_close(m.out);
out_remove:
	remove_output(out_db);
	return r;
}
