/* Promotion's line-union merges: the base's lines, then the job's new ones. An npm cacache index
 * bucket: cacache appends each entry as "\n<sha1>\t<json>" and its reader skips empty lines and
 * lines whose hash does not match. pnpm's lockfile-verified.jsonl: one JSON record per line, each
 * ended by "\n". Lines are compared and copied verbatim, never parsed. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "merge.h"

struct line {
	const char *text;
	size_t len;
	uint64_t hash;
};

/* An open-addressing set of the lines already written; sized to stay at most half full. */
struct line_set {
	struct line *slots; /* text == NULL: empty */
	size_t mask;
};

struct bucket_text {
	char *data;
	size_t size;
};

static int fail(char *err, size_t errsize, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return r;
}

/* Reads a whole bucket; NULL path or a missing file reads as empty. */
static int bucket_read(const char *path, const char *what, struct bucket_text *ret_text, char *err,
		       size_t errsize)
{
	struct bucket_text text = {0};
	struct stat st;
	size_t done = 0;
	int fd, r = 0;

	if (!path) {
		*ret_text = text;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret_text = text;
			return 0;
		}
		return fail(err, errsize, -errno, "cannot open %s '%s': %s", what, path,
			    strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		r = fail(err, errsize, -errno, "cannot stat %s '%s': %s", what, path,
			 strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = fail(err, errsize, -EINVAL, "%s '%s' is not a regular file", what, path);
		goto out_close;
	}
	text.data = malloc((size_t)st.st_size + 1);
	if (!text.data) {
		r = fail(err, errsize, -ENOMEM, "cannot read %s '%s': out of memory", what, path);
		goto out_close;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, text.data + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(err, errsize, -errno, "cannot read %s '%s': %s", what, path,
				 strerror(errno));
			free(text.data);
			goto out_close;
		}
		if (n == 0)
			break; /* shrank under us: take what is there */
		done += (size_t)n;
	}
	text.size = done;
	*ret_text = text;
out_close:
	close(fd);
	return r;
}

static size_t count_lines(const struct bucket_text *text)
{
	size_t n = 1;

	for (size_t i = 0; i < text->size; i++)
		n += text->data[i] == '\n';
	return n;
}

static int line_set_init(struct line_set *set, size_t max_lines)
{
	size_t slots = 16;

	while (slots < 2 * max_lines)
		slots *= 2;
	set->slots = calloc(slots, sizeof(*set->slots));
	set->mask = slots - 1;
	return set->slots ? 0 : -ENOMEM;
}

/* Adds line unless an equal one is there; returns true when it was added. */
static bool line_set_add(struct line_set *set, const struct line *line)
{
	for (size_t i = line->hash & set->mask;; i = (i + 1) & set->mask) {
		struct line *slot = &set->slots[i];

		if (!slot->text) {
			*slot = *line;
			return true;
		}
		if (slot->hash == line->hash && slot->len == line->len &&
		    memcmp(slot->text, line->text, line->len) == 0)
			return false;
	}
}

/* Calls visit for every non-empty line of text (the last one may lack its newline). */
static int for_each_line(const struct bucket_text *text, int (*visit)(const struct line *, void *),
			 void *userdata)
{
	const char *p = text->data, *end = text->data + text->size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct line line = {.text = p, .len = (size_t)((nl ? nl : end) - p)};
		int r;

		p = nl ? nl + 1 : end;
		if (line.len == 0)
			continue;
		line.hash = XXH3_64bits(line.text, line.len);
		r = visit(&line, userdata);
		if (r < 0)
			return r;
	}
	return 0;
}

struct bucket_merge {
	struct line_set seen;
	FILE *out;
	bool from_job;
	bool newline_first; /* cacache's "\nENTRY" rather than "LINE\n" */
	struct merge_counts counts;
};

/* Writes in the file's own append form, so a later append continues the file exactly as it would
 * have continued the base's: cacache's "\n" before each entry, a JSON-lines "\n" after each. */
static int write_line(const struct bucket_merge *bm, const struct line *line)
{
	if ((bm->newline_first && putc('\n', bm->out) == EOF) ||
	    fwrite(line->text, 1, line->len, bm->out) != line->len ||
	    (!bm->newline_first && putc('\n', bm->out) == EOF))
		return -EIO;
	return 0;
}

static int visit_line(const struct line *line, void *userdata)
{
	struct bucket_merge *bm = userdata;

	if (!line_set_add(&bm->seen, line)) {
		if (bm->from_job)
			bm->counts.identical++;
		else
			return write_line(bm, line); /* the base is copied as it is */
		return 0;
	}
	if (bm->from_job)
		bm->counts.added++;
	return write_line(bm, line);
}

static int merge_lines(const char *base, const char *job, const char *out, bool newline_first,
		       const char *what, struct merge_counts *counts, char *err, size_t errsize)
{
	struct bucket_text base_text = {0}, job_text = {0};
	struct bucket_merge bm = {.newline_first = newline_first};
	int fd, r;

	if (errsize)
		err[0] = '\0';
	if (!job || !out)
		return fail(err, errsize, -EINVAL, "merge of a %s needs the job's and an output",
			    what);
	r = bucket_read(base, what, &base_text, err, errsize);
	if (r < 0)
		return r;
	r = bucket_read(job, what, &job_text, err, errsize);
	if (r < 0)
		goto out_free;
	if (line_set_init(&bm.seen, count_lines(&base_text) + count_lines(&job_text)) < 0) {
		r = fail(err, errsize, -ENOMEM, "cannot merge into '%s': out of memory", out);
		goto out_free;
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = fail(err, errsize, -errno, "cannot create %s '%s': %s", what, out,
			 strerror(errno));
		goto out_free;
	}
	bm.out = fdopen(fd, "w");
	if (!bm.out) {
		r = fail(err, errsize, -errno, "cannot create %s '%s': %s", what, out,
			 strerror(errno));
		close(fd);
		goto out_unlink;
	}
	r = for_each_line(&base_text, visit_line, &bm);
	bm.from_job = true;
	if (r == 0)
		r = for_each_line(&job_text, visit_line, &bm);
	if (r == 0 && fflush(bm.out) != 0)
		r = errno ? -errno : -EIO;
	if (fclose(bm.out) != 0 && r == 0)
		r = errno ? -errno : -EIO;
	if (r < 0) {
		r = fail(err, errsize, r, "cannot write %s '%s': %s", what, out, strerror(-r));
		goto out_unlink;
	}
	*counts = bm.counts;
	goto out_free;

out_unlink:
	unlink(out);
out_free:
	free(bm.seen.slots);
	free(base_text.data);
	free(job_text.data);
	return r;
}

int merge_npm_bucket(const char *base, const char *job, const char *out,
		     struct merge_counts *counts, char *err, size_t errsize)
{
	return merge_lines(base, job, out, true, "bucket", counts, err, errsize);
}

int merge_jsonl(const char *base, const char *job, const char *out, struct merge_counts *counts,
		char *err, size_t errsize)
{
	return merge_lines(base, job, out, false, "JSON-lines file", counts, err, errsize);
}
