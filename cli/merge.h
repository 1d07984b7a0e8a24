/* Cache-aware merges for promotion: the new generation gets the base's index plus the job's
 * additions. Paths are trusted (the caller copies anything from a job's layer into its own
 * temporary dir first). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct merge_counts {
	uint64_t added;	    /* rows or lines taken from the job */
	uint64_t identical; /* already in the base, same content */
	uint64_t conflicts; /* same key, different content: not taken */
};

/* pnpm's store index (store/v11/index.db, SQLite, tables package_index and
 * package_index_alias): writes out_db = every row of base_db (NULL: none) plus each row of job_db
 * whose key is absent from the base. A key present with different data is a conflict. Neither
 * input is modified, and no -wal/-shm file is left beside them. 0, or -errno / -EINVAL with a
 * one-line message in err. */
int merge_pnpm_index(const char *base_db, const char *job_db, const char *out_db,
		     struct merge_counts *counts, char *err, size_t errsize);

/* An npm cacache index bucket (_cacache/index-v5/xx/yy/HASH, append-only text, one entry per
 * line): writes out = the base's lines (NULL: none) in order, then the job's lines not already
 * present, in order. Duplicate lines count as identical. */
int merge_npm_bucket(const char *base, const char *job, const char *out,
		     struct merge_counts *counts, char *err, size_t errsize);

/* A JSON-lines file (pnpm's cache/lockfile-verified.jsonl, appended to one record at a time): the
 * same union as merge_npm_bucket, written as "LINE\n" per line, so the next append starts a new
 * line. */
int merge_jsonl(const char *base, const char *job, const char *out, struct merge_counts *counts,
		char *err, size_t errsize);
