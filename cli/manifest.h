/* The manifest of a base: its text format (escaped fields, one line per entry, sorted by path
 * bytes, parsed strictly) and the comparison of two entries. scan.c builds manifests from a
 * base's directories; the format is specified at the top of manifest.c and in jobfs(1). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MANIFEST_MAGIC "jobfs-manifest 1"

enum manifest_type {
	MANIFEST_FILE,
	MANIFEST_DIR,
	MANIFEST_SYMLINK,
	MANIFEST_FIFO,
	MANIFEST_SOCKET,
	MANIFEST_CHAR,
	MANIFEST_BLOCK,
	MANIFEST_TYPE_COUNT, /* not a type */
};

struct manifest_entry {
	char *path;   /* raw bytes, relative to the base: "a/b", never "", "/a", "a/./b" */
	char *target; /* symlinks: the raw target; NULL otherwise */
	enum manifest_type type;
	uint32_t mode;	  /* permission bits (07777) */
	uint64_t size;	  /* files and symlinks; 0 for the rest; not recorded for dirs */
	int64_t mtime_ns; /* not recorded for dirs: 0 */
	uint32_t rdev_major, rdev_minor; /* char and block devices */
	uint8_t hash[16];		 /* files: XXH3-128, canonical (big-endian) bytes */
};

/* Entries are allocated one by one, so a pointer stays valid while the array grows (scan.c's
 * hashing threads fill in entry->hash while the walk still adds entries). */
struct manifest {
	char *view; /* from the "view NAME" header line; NULL when absent */
	struct manifest_entry **entries;
	size_t n, cap;
};

/* One error, one line: "LINE: MESSAGE"; line 0 for errors about the file as a whole. */
struct manifest_error {
	unsigned line;
	char message[256];
};

/* Bits of manifest_entry_diff(), in the order of manifest_diff_names. */
enum {
	MANIFEST_DIFF_TYPE = 1 << 0,
	MANIFEST_DIFF_MODE = 1 << 1,
	MANIFEST_DIFF_SIZE = 1 << 2,
	MANIFEST_DIFF_MTIME = 1 << 3,
	MANIFEST_DIFF_CONTENT = 1 << 4,
	MANIFEST_DIFF_TARGET = 1 << 5,
	MANIFEST_DIFF_RDEV = 1 << 6,
	MANIFEST_DIFF_COUNT = 7,
};
extern const char *const manifest_diff_names[MANIFEST_DIFF_COUNT];

const char *manifest_type_name(enum manifest_type type);

/* Writes s escaped: bytes 0x21-0x7e stand for themselves except '\', written "\\"; every other
 * byte is "\xHH" (lowercase). One spelling per byte string, so equal trees give equal files. */
void manifest_escape(FILE *out, const char *s);
/* The inverse, over text[0..len): returns 0 and sets *ret (malloc'd, NUL-terminated), -EINVAL for
 * anything manifest_escape() would not have written (including an escaped NUL), or -ENOMEM. */
int manifest_unescape(const char *text, size_t len, char **ret);

/* Order of entries: path bytes, unsigned, as strcmp. */
int manifest_path_cmp(const char *a, const char *b);

struct manifest *manifest_new(void);
/* Takes ownership of entry (freed on failure too). */
int manifest_add(struct manifest *m, struct manifest_entry *entry);
void manifest_sort(struct manifest *m);
void manifest_entry_free(struct manifest_entry *entry);
void manifest_free(struct manifest *m);

/* The text format (what verify reads) and the same as JSON. Write errors are found by the
 * caller's ferror/fflush. */
void manifest_write(FILE *out, const struct manifest *m);
void manifest_write_json(FILE *out, const struct manifest *m);
/* s escaped as a JSON string: keeps every byte, where json_string() replaces invalid UTF-8. */
struct json_writer;
void manifest_json_escaped(struct json_writer *w, const char *s);
/* One entry's line, without the newline. */
void manifest_write_entry(FILE *out, const struct manifest_entry *e);

/* Parses a whole manifest. Returns 0, -EINVAL with *err filled for a malformed one, -ENOMEM, or
 * -errno from reading. */
int manifest_parse(FILE *in, struct manifest **ret_manifest, struct manifest_error *err);

/* The MANIFEST_DIFF_* bits in which two entries for the same path differ; 0 when equal. A type
 * change is reported alone. */
unsigned manifest_entry_diff(const struct manifest_entry *expected,
			     const struct manifest_entry *actual);
