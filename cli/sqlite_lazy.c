/* libsqlite3, loaded on first use. Only promote reads pnpm's index.db, but every verb would pay
 * for a linked library at start: 1.4 MiB of libsqlite3 plus libm, about 5 ms of a cold `jobfs
 * mount` on a runner host (the price each job pays). So the program is not linked against it:
 * the functions merge_pnpm.c calls are defined here with sqlite3.h's prototypes and forward to
 * the library, opened with dlopen the first time one is called.
 *
 * Nothing outside this file knows: merge_pnpm.c is written against the ordinary API. If the
 * library cannot be loaded, sqlite3_open_v2 fails with SQLITE_CANTOPEN and sqlite3_errmsg says
 * why; every other function is only reached with a handle an open returned. A function
 * merge_pnpm.c starts to use needs a line here (the link fails until it has one). */
#include <dlfcn.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>

#define SQLITE_LIBRARY "libsqlite3.so.0"

static struct {
	bool loaded;
	char error[256];
	int (*open_v2)(const char *, sqlite3 **, int, const char *);
	int (*close)(sqlite3 *);
	const char *(*errmsg)(sqlite3 *);
	int (*extended_errcode)(sqlite3 *);
	int (*extended_result_codes)(sqlite3 *, int);
	int (*exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
		    char **);
	sqlite3_int64 (*changes64)(sqlite3 *);
	int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
	int (*step)(sqlite3_stmt *);
	int (*finalize)(sqlite3_stmt *);
	int (*column_int)(sqlite3_stmt *, int);
	sqlite3_int64 (*column_int64)(sqlite3_stmt *, int);
	const unsigned char *(*column_text)(sqlite3_stmt *, int);
	char *(*vmprintf)(const char *, va_list);
	void (*free)(void *);
	sqlite3_str *(*str_new)(sqlite3 *);
	void (*str_vappendf)(sqlite3_str *, const char *, va_list);
	int (*str_errcode)(sqlite3_str *);
	char *(*str_value)(sqlite3_str *);
	char *(*str_finish)(sqlite3_str *);
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* dlsym returns void *; POSIX guarantees it converts to a function pointer */
#define RESOLVE(field, name)                                                                       \
	do {                                                                                       \
		*(void **)&lib.field = dlsym(handle, name);                                        \
		if (!lib.field) {                                                                  \
			snprintf(lib.error, sizeof(lib.error), "%s has no %s", SQLITE_LIBRARY,     \
				 name);                                                            \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void lib_load(void)
{
	void *handle = dlopen(SQLITE_LIBRARY, RTLD_NOW | RTLD_LOCAL);

	if (!handle) {
		snprintf(lib.error, sizeof(lib.error), "cannot load %s: %s", SQLITE_LIBRARY,
			 dlerror());
		return;
	}
	RESOLVE(open_v2, "sqlite3_open_v2");
	RESOLVE(close, "sqlite3_close");
	RESOLVE(errmsg, "sqlite3_errmsg");
	RESOLVE(extended_errcode, "sqlite3_extended_errcode");
	RESOLVE(extended_result_codes, "sqlite3_extended_result_codes");
	RESOLVE(exec, "sqlite3_exec");
	RESOLVE(changes64, "sqlite3_changes64");
	RESOLVE(prepare_v2, "sqlite3_prepare_v2");
	RESOLVE(step, "sqlite3_step");
	RESOLVE(finalize, "sqlite3_finalize");
	RESOLVE(column_int, "sqlite3_column_int");
	RESOLVE(column_int64, "sqlite3_column_int64");
	RESOLVE(column_text, "sqlite3_column_text");
	RESOLVE(vmprintf, "sqlite3_vmprintf");
	RESOLVE(free, "sqlite3_free");
	RESOLVE(str_new, "sqlite3_str_new");
	RESOLVE(str_vappendf, "sqlite3_str_vappendf");
	RESOLVE(str_errcode, "sqlite3_str_errcode");
	RESOLVE(str_value, "sqlite3_str_value");
	RESOLVE(str_finish, "sqlite3_str_finish");
	lib.loaded = true; /* the handle stays open for the life of the process */
}

static bool lib_ready(void)
{
	pthread_once(&lib_once, lib_load);
	return lib.loaded;
}

int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags, const char *zVfs)
{
	if (!lib_ready()) {
		*ppDb = NULL;
		return SQLITE_CANTOPEN;
	}
	return lib.open_v2(filename, ppDb, flags, zVfs);
}

const char *sqlite3_errmsg(sqlite3 *db)
{
	/* also reached after a failed open, with no handle */
	return lib_ready() ? lib.errmsg(db) : lib.error;
}

int sqlite3_close(sqlite3 *db)
{
	/* closing the NULL of a failed open is harmless, loaded or not */
	return lib_ready() ? lib.close(db) : SQLITE_OK;
}

void sqlite3_free(void *p)
{
	if (lib_ready())
		lib.free(p);
}

char *sqlite3_mprintf(const char *format, ...)
{
	va_list ap;
	char *s;

	if (!lib_ready())
		return NULL;
	va_start(ap, format);
	s = lib.vmprintf(format, ap);
	va_end(ap);
	return s;
}

sqlite3_str *sqlite3_str_new(sqlite3 *db)
{
	return lib_ready() ? lib.str_new(db) : NULL;
}

int sqlite3_extended_errcode(sqlite3 *db)
{
	/* asked after a failed open too */
	return lib_ready() ? lib.extended_errcode(db) : SQLITE_CANTOPEN;
}

/* The rest take a handle that only a loaded library could have given out. */

int sqlite3_extended_result_codes(sqlite3 *db, int onoff)
{
	return lib.extended_result_codes(db, onoff);
}

int sqlite3_exec(sqlite3 *db, const char *sql, int (*callback)(void *, int, char **, char **),
		 void *arg, char **errmsg)
{
	return lib.exec(db, sql, callback, arg, errmsg);
}

sqlite3_int64 sqlite3_changes64(sqlite3 *db)
{
	return lib.changes64(db);
}

int sqlite3_prepare_v2(sqlite3 *db, const char *zSql, int nByte, sqlite3_stmt **ppStmt,
		       const char **pzTail)
{
	return lib.prepare_v2(db, zSql, nByte, ppStmt, pzTail);
}

int sqlite3_step(sqlite3_stmt *stmt)
{
	return lib.step(stmt);
}

int sqlite3_finalize(sqlite3_stmt *stmt)
{
	/* finalizing NULL is a no-op in SQLite, and the library may never have loaded */
	return stmt ? lib.finalize(stmt) : SQLITE_OK;
}

int sqlite3_column_int(sqlite3_stmt *stmt, int i)
{
	return lib.column_int(stmt, i);
}

sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *stmt, int i)
{
	return lib.column_int64(stmt, i);
}

const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int i)
{
	return lib.column_text(stmt, i);
}

void sqlite3_str_appendf(sqlite3_str *str, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	lib.str_vappendf(str, format, ap);
	va_end(ap);
}

int sqlite3_str_errcode(sqlite3_str *str)
{
	/* a NULL from str_new when the library is missing reads as out of memory */
	return str ? lib.str_errcode(str) : SQLITE_NOMEM;
}

char *sqlite3_str_value(sqlite3_str *str)
{
	return lib.str_value(str);
}

char *sqlite3_str_finish(sqlite3_str *str)
{
	return str ? lib.str_finish(str) : NULL;
}
