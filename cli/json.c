/* A small streaming JSON writer: structure, indentation, and escaping of strings into valid
 * UTF-8 JSON whatever bytes they hold. */
#include <inttypes.h>
#include <stdlib.h>

#include "json.h"

void json_init(struct json_writer *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	w->after_key = false;
}

static void json_newline(struct json_writer *w)
{
	unsigned i;

	fputc('\n', w->out);
	for (i = 0; i < w->depth; i++)
		fputs("  ", w->out);
}

/* Separators and indentation before a key or a value. */
static void json_prefix(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	if (!w->empty[w->depth - 1])
		fputc(',', w->out);
	w->empty[w->depth - 1] = false;
	json_newline(w);
}

static void json_begin(struct json_writer *w, char open)
{
	json_prefix(w);
	/* The shapes are fixed by our own code, so running out of depth is a bug. */
	if (w->depth == JSON_DEPTH_MAX)
		abort();
	fputc(open, w->out);
	w->empty[w->depth++] = true;
}

static void json_end(struct json_writer *w, char close)
{
	if (w->depth == 0 || w->after_key)
		abort();
	w->depth--;
	if (!w->empty[w->depth])
		json_newline(w);
	fputc(close, w->out);
}

void json_object_begin(struct json_writer *w)
{
	json_begin(w, '{');
}

void json_object_end(struct json_writer *w)
{
	json_end(w, '}');
}

void json_array_begin(struct json_writer *w)
{
	json_begin(w, '[');
}

void json_array_end(struct json_writer *w)
{
	json_end(w, ']');
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one (RFC 3629 ranges). */
static size_t utf8_sequence(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t length, i;

	if (c >= 0xc2 && c <= 0xdf)
		length = 2;
	else if (c >= 0xe0 && c <= 0xef)
		length = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		length = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < length; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return length;
}

void json_write_escaped(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t length;

		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\b':
			fputs("\\b", out);
			break;
		case '\f':
			fputs("\\f", out);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fprintf(out, "\\u%04x", *p);
			} else if (*p < 0x80) {
				fputc(*p, out);
			} else if ((length = utf8_sequence(p)) > 0) {
				fwrite(p, 1, length, out);
				p += length;
				continue;
			} else {
				fputs("\\ufffd", out);
			}
		}
		p++;
	}
}

void json_key(struct json_writer *w, const char *key)
{
	if (w->after_key || w->depth == 0)
		abort();
	json_prefix(w);
	fputc('"', w->out);
	json_write_escaped(w->out, key);
	fputs("\": ", w->out);
	w->after_key = true;
}

void json_string(struct json_writer *w, const char *s)
{
	if (!s) {
		json_null(w);
		return;
	}
	json_prefix(w);
	fputc('"', w->out);
	json_write_escaped(w->out, s);
	fputc('"', w->out);
}

void json_uint(struct json_writer *w, uint64_t value)
{
	json_prefix(w);
	fprintf(w->out, "%" PRIu64, value);
}

void json_int(struct json_writer *w, int64_t value)
{
	json_prefix(w);
	fprintf(w->out, "%" PRId64, value);
}

void json_bool(struct json_writer *w, bool value)
{
	json_prefix(w);
	fputs(value ? "true" : "false", w->out);
}

void json_null(struct json_writer *w)
{
	json_prefix(w);
	fputs("null", w->out);
}

void json_finish(struct json_writer *w)
{
	if (w->depth != 0)
		abort();
	fputc('\n', w->out);
}
