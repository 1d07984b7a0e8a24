/* The manifest text format: writing it, parsing it strictly, comparing entries.
 *
 *   jobfs-manifest 1
 *   view NAME                                   (optional)
 *   TYPE MODE SIZE MTIME DATA PATH              (one per entry, sorted by raw path bytes)
 *
 * TYPE is file, dir, symlink, fifo, socket, char or block; MODE four octal digits; SIZE bytes and
 * MTIME nanoseconds since the epoch, both "-" for a dir (its size is the filesystem's business and
 * its mtime moves whenever an entry is added or removed, which is reported as such); DATA is the
 * XXH3-128 of a file (32 hex digits), the escaped target of a symlink, MAJOR:MINOR of a device,
 * "-" otherwise; PATH is escaped (see manifest_escape). Fields are separated by one space and no
 * field holds a raw space, so every line splits the same way; every line ends with '\n', so a
 * truncated file is an error rather than a shorter manifest. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "manifest.h"

const char *const manifest_diff_names[MANIFEST_DIFF_COUNT] = {
	"type", "mode", "size", "mtime", "content", "target", "rdev",
};

static const char *const type_names[MANIFEST_TYPE_COUNT] = {
	"file", "dir", "symlink", "fifo", "socket", "char", "block",
};

const char *manifest_type_name(enum manifest_type type)
{
	return type < MANIFEST_TYPE_COUNT ? type_names[type] : "?";
}

static bool byte_literal(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '\\';
}

void manifest_escape(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (byte_literal(*p))
			fputc(*p, out);
		else if (*p == '\\')
			fputs("\\\\", out);
		else
			fprintf(out, "\\x%02x", *p);
	}
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase too: it is not the one spelling */
}

int manifest_unescape(const char *text, size_t len, char **ret)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = text[i];
		int hi, lo;

		if (byte_literal(c)) {
			*o++ = c;
			continue;
		}
		if (c != '\\' || i + 1 >= len)
			goto out_invalid;
		if (text[i + 1] == '\\') {
			*o++ = '\\';
			i++;
			continue;
		}
		if (text[i + 1] != 'x' || i + 3 >= len)
			goto out_invalid;
		hi = hex_digit(text[i + 2]);
		lo = hex_digit(text[i + 3]);
		if (hi < 0 || lo < 0)
			goto out_invalid;
		c = (unsigned char)(hi << 4 | lo);
		if (c == 0 || byte_literal(c) || c == '\\')
			goto out_invalid;
		*o++ = c;
		i += 3;
	}
	*o = '\0';
	*ret = out;
	return 0;

out_invalid:
	free(out);
	return -EINVAL;
}

int manifest_path_cmp(const char *a, const char *b)
{
	return strcmp(a, b); /* C compares as unsigned char: raw byte order */
}

struct manifest *manifest_new(void)
{
	return calloc(1, sizeof(struct manifest));
}

int manifest_add(struct manifest *m, struct manifest_entry *entry)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct manifest_entry **grown = realloc(m->entries, cap * sizeof(*grown));

		if (!grown) {
			manifest_entry_free(entry);
			return -ENOMEM;
		}
		m->entries = grown;
		m->cap = cap;
	}
	m->entries[m->n++] = entry;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct manifest_entry *const *ea = a, *const *eb = b;

	return manifest_path_cmp((*ea)->path, (*eb)->path);
}

void manifest_sort(struct manifest *m)
{
	if (m->n > 1)
		qsort(m->entries, m->n, sizeof(*m->entries), entry_cmp);
}

void manifest_entry_free(struct manifest_entry *entry)
{
	if (!entry)
		return;
	free(entry->path);
	free(entry->target);
	free(entry);
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		manifest_entry_free(m->entries[i]);
	free(m->entries);
	free(m->view);
	free(m);
}

static void write_hash(FILE *out, const uint8_t hash[16])
{
	for (int i = 0; i < 16; i++)
		fprintf(out, "%02x", hash[i]);
}

void manifest_write_entry(FILE *out, const struct manifest_entry *e)
{
	fprintf(out, "%s %04" PRIo32 " ", manifest_type_name(e->type), e->mode);
	if (e->type == MANIFEST_DIR)
		fputs("- - ", out);
	else
		fprintf(out, "%" PRIu64 " %" PRId64 " ", e->size, e->mtime_ns);
	switch (e->type) {
	case MANIFEST_FILE:
		write_hash(out, e->hash);
		break;
	case MANIFEST_SYMLINK:
		manifest_escape(out, e->target);
		break;
	case MANIFEST_CHAR:
	case MANIFEST_BLOCK:
		fprintf(out, "%" PRIu32 ":%" PRIu32, e->rdev_major, e->rdev_minor);
		break;
	default:
		fputc('-', out);
	}
	fputc(' ', out);
	manifest_escape(out, e->path);
}

void manifest_write(FILE *out, const struct manifest *m)
{
	fputs(MANIFEST_MAGIC "\n", out);
	if (m->view)
		fprintf(out, "view %s\n", m->view);
	for (size_t i = 0; i < m->n; i++) {
		manifest_write_entry(out, m->entries[i]);
		fputc('\n', out);
	}
}

void manifest_json_escaped(struct json_writer *w, const char *s)
{
	char *text = NULL;
	size_t size = 0;
	FILE *mem = open_memstream(&text, &size);

	if (!mem) {
		json_null(w);
		return;
	}
	manifest_escape(mem, s);
	if (fclose(mem) != 0) {
		free(text);
		json_null(w);
		return;
	}
	json_string(w, text);
	free(text);
}

void manifest_write_json(FILE *out, const struct manifest *m)
{
	struct json_writer w;
	char buf[40];

	json_init(&w, out);
	json_object_begin(&w);
	json_key(&w, "version");
	json_uint(&w, 1);
	json_key(&w, "view");
	json_string(&w, m->view);
	json_key(&w, "entries");
	json_array_begin(&w);
	for (size_t i = 0; i < m->n; i++) {
		const struct manifest_entry *e = m->entries[i];

		json_object_begin(&w);
		json_key(&w, "path");
		json_string(&w, e->path);
		json_key(&w, "path_escaped");
		manifest_json_escaped(&w, e->path);
		json_key(&w, "type");
		json_string(&w, manifest_type_name(e->type));
		json_key(&w, "mode");
		snprintf(buf, sizeof(buf), "%04" PRIo32, e->mode);
		json_string(&w, buf);
		if (e->type != MANIFEST_DIR) {
			json_key(&w, "size");
			json_uint(&w, e->size);
			json_key(&w, "mtime_ns");
			json_int(&w, e->mtime_ns);
		}
		if (e->type == MANIFEST_FILE) {
			for (int b = 0; b < 16; b++)
				snprintf(buf + 2 * b, 3, "%02x", e->hash[b]);
			json_key(&w, "xxh3_128");
			json_string(&w, buf);
		} else if (e->type == MANIFEST_SYMLINK) {
			json_key(&w, "target");
			json_string(&w, e->target);
			json_key(&w, "target_escaped");
			manifest_json_escaped(&w, e->target);
		} else if (e->type == MANIFEST_CHAR || e->type == MANIFEST_BLOCK) {
			json_key(&w, "rdev");
			snprintf(buf, sizeof(buf), "%" PRIu32 ":%" PRIu32, e->rdev_major,
				 e->rdev_minor);
			json_string(&w, buf);
		}
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	json_finish(&w);
}

/* --- parsing ------------------------------------------------------------------------------ */

static int fail(struct manifest_error *err, unsigned line, const char *fmt, const char *arg)
{
	err->line = line;
	snprintf(err->message, sizeof(err->message), fmt, arg);
	return -EINVAL;
}

/* A whole number in canonical decimal (no sign, no leading zero) that fits 64 bits. */
static bool parse_u64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return true;
}

static bool parse_i64(const char *s, size_t len, int64_t *ret)
{
	bool negative = len > 0 && s[0] == '-';
	uint64_t v;

	if (!parse_u64(s + negative, len - negative, &v))
		return false;
	if (negative ? v > (uint64_t)INT64_MAX + 1 || v == 0 : v > (uint64_t)INT64_MAX)
		return false;
	*ret = negative ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* A relative path without empty, "." or ".." components. */
static bool path_valid(const char *p)
{
	const char *c = p;

	if (!*p)
		return false;
	for (;;) {
		size_t len = strcspn(c, "/");

		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!c[len])
			return true;
		c += len + 1;
	}
}

static bool field_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* One entry line (without its newline). */
static int parse_entry(const char *line, size_t len, unsigned lineno, struct manifest_entry **ret,
		       struct manifest_error *err)
{
	const char *field[6];
	size_t flen[6], nfields = 0, start = 0;
	struct manifest_entry *e;
	unsigned t;
	int r;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (nfields == 6)
			return fail(err, lineno, "%s", "more than 6 fields");
		field[nfields] = line + start;
		flen[nfields++] = i - start;
		if (i == start)
			return fail(err, lineno, "%s",
				    "empty field (two spaces, or a space at an end)");
		start = i + 1;
	}
	if (nfields != 6)
		return fail(err, lineno, "%s", "expected 6 fields: TYPE MODE SIZE MTIME DATA PATH");
	for (t = 0; t < MANIFEST_TYPE_COUNT; t++)
		if (field_is(field[0], flen[0], type_names[t]))
			break;
	if (t == MANIFEST_TYPE_COUNT)
		return fail(err, lineno, "%s",
			    "unknown type (expected file, dir, symlink, fifo, "
			    "socket, char or block)");
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->type = t;
	r = -EINVAL;
	if (flen[1] != 4 || strspn(field[1], "01234567") < 4) {
		fail(err, lineno, "%s", "mode: expected 4 octal digits");
		goto out_free;
	}
	e->mode = (uint32_t)strtoul(field[1], NULL, 8);
	if (t == MANIFEST_DIR) {
		if (!field_is(field[2], flen[2], "-") || !field_is(field[3], flen[3], "-")) {
			fail(err, lineno, "%s", "a dir has \"-\" for size and mtime");
			goto out_free;
		}
	} else {
		if (!parse_u64(field[2], flen[2], &e->size)) {
			fail(err, lineno, "%s", "size: expected a whole number");
			goto out_free;
		}
		if (!parse_i64(field[3], flen[3], &e->mtime_ns)) {
			fail(err, lineno, "%s", "mtime: expected nanoseconds");
			goto out_free;
		}
	}
	switch (t) {
	case MANIFEST_FILE:
		if (flen[4] != 32) {
			fail(err, lineno, "%s", "hash: expected 32 lowercase hex digits");
			goto out_free;
		}
		for (int b = 0; b < 16; b++) {
			int hi = hex_digit(field[4][2 * b]), lo = hex_digit(field[4][2 * b + 1]);

			if (hi < 0 || lo < 0) {
				fail(err, lineno, "%s", "hash: expected 32 lowercase hex digits");
				goto out_free;
			}
			e->hash[b] = (uint8_t)(hi << 4 | lo);
		}
		break;
	case MANIFEST_SYMLINK:
		r = manifest_unescape(field[4], flen[4], &e->target);
		if (r == -EINVAL)
			fail(err, lineno, "%s", "symlink target: invalid escape");
		if (r < 0)
			goto out_free;
		r = -EINVAL;
		break;
	case MANIFEST_CHAR:
	case MANIFEST_BLOCK: {
		const char *colon = memchr(field[4], ':', flen[4]);
		uint64_t major, minor;

		if (!colon || !parse_u64(field[4], colon - field[4], &major) ||
		    !parse_u64(colon + 1, flen[4] - (colon + 1 - field[4]), &minor) ||
		    major > UINT32_MAX || minor > UINT32_MAX) {
			fail(err, lineno, "%s", "device: expected MAJOR:MINOR");
			goto out_free;
		}
		e->rdev_major = (uint32_t)major;
		e->rdev_minor = (uint32_t)minor;
		break;
	}
	default:
		if (!field_is(field[4], flen[4], "-")) {
			fail(err, lineno, "%s", "data: expected \"-\" for this type");
			goto out_free;
		}
	}
	r = manifest_unescape(field[5], flen[5], &e->path);
	if (r == -EINVAL)
		fail(err, lineno, "%s", "path: invalid escape");
	if (r < 0)
		goto out_free;
	r = -EINVAL;
	if (!path_valid(e->path)) {
		fail(err, lineno, "%s",
		     "path: empty, absolute, or with an empty, . or .. component");
		goto out_free;
	}
	*ret = e;
	return 0;

out_free:
	manifest_entry_free(e);
	return r;
}

int manifest_parse(FILE *in, struct manifest **ret_manifest, struct manifest_error *err)
{
	struct manifest *m = manifest_new();
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t got;
	int r = 0;

	err->line = 0;
	err->message[0] = '\0';
	if (!m)
		return -ENOMEM;
	while ((got = getline(&line, &cap, in)) >= 0) {
		struct manifest_entry *e;
		size_t len = (size_t)got;

		lineno++;
		if (memchr(line, '\0', len)) {
			r = fail(err, lineno, "%s", "NUL byte");
			goto out_free;
		}
		if (line[len - 1] != '\n') {
			r = fail(err, lineno, "%s", "no newline at the end (a truncated file?)");
			goto out_free;
		}
		line[--len] = '\0';
		if (lineno == 1) {
			if (strcmp(line, MANIFEST_MAGIC) != 0) {
				r = fail(err, lineno, "%s",
					 "not a jobfs manifest (expected \"" MANIFEST_MAGIC "\")");
				goto out_free;
			}
			continue;
		}
		if (lineno == 2 && strncmp(line, "view ", 5) == 0) {
			m->view = strdup(line + 5);
			if (!m->view) {
				r = -ENOMEM;
				goto out_free;
			}
			continue;
		}
		r = parse_entry(line, len, lineno, &e, err);
		if (r < 0)
			goto out_free;
		if (m->n > 0 && manifest_path_cmp(m->entries[m->n - 1]->path, e->path) >= 0) {
			bool same = strcmp(m->entries[m->n - 1]->path, e->path) == 0;

			manifest_entry_free(e);
			r = fail(err, lineno, "%s",
				 same ? "path listed twice"
				      : "path out of order (sorted by bytes)");
			goto out_free;
		}
		r = manifest_add(m, e);
		if (r < 0)
			goto out_free;
	}
	if (ferror(in)) {
		r = errno ? -errno : -EIO;
		goto out_free;
	}
	if (lineno == 0) {
		r = fail(err, 0, "%s", "empty file");
		goto out_free;
	}
	free(line);
	*ret_manifest = m;
	return 0;

out_free:
	free(line);
	manifest_free(m);
	return r;
}

unsigned manifest_entry_diff(const struct manifest_entry *expected,
			     const struct manifest_entry *actual)
{
	unsigned diff = 0;

	if (expected->type != actual->type)
		return MANIFEST_DIFF_TYPE;
	if (expected->mode != actual->mode)
		diff |= MANIFEST_DIFF_MODE;
	if (expected->type == MANIFEST_DIR)
		return diff;
	if (expected->size != actual->size)
		diff |= MANIFEST_DIFF_SIZE;
	if (expected->mtime_ns != actual->mtime_ns)
		diff |= MANIFEST_DIFF_MTIME;
	if (expected->type == MANIFEST_FILE && memcmp(expected->hash, actual->hash, 16) != 0)
		diff |= MANIFEST_DIFF_CONTENT;
	if (expected->type == MANIFEST_SYMLINK && strcmp(expected->target, actual->target) != 0)
		diff |= MANIFEST_DIFF_TARGET;
	if ((expected->type == MANIFEST_CHAR || expected->type == MANIFEST_BLOCK) &&
	    (expected->rdev_major != actual->rdev_major ||
	     expected->rdev_minor != actual->rdev_minor))
		diff |= MANIFEST_DIFF_RDEV;
	return diff;
}
