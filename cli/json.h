/* A small streaming JSON writer for --json output: indented, keys in the order written, strings
 * escaped and kept valid UTF-8. Write errors are found by the caller's ferror/fflush. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 32

struct json_writer {
	FILE *out;
	unsigned depth;
	bool empty[JSON_DEPTH_MAX]; /* nothing written yet in the container at this depth */
	bool after_key;		    /* the next value completes a "key": pair */
};

void json_init(struct json_writer *w, FILE *out);
void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s); /* NULL writes null */
void json_uint(struct json_writer *w, uint64_t value);
void json_int(struct json_writer *w, int64_t value);
void json_bool(struct json_writer *w, bool value);
void json_null(struct json_writer *w);
/* Ends the document with a newline. */
void json_finish(struct json_writer *w);

/* Escape s as the contents of a JSON string (no quotes) to out; invalid UTF-8 becomes U+FFFD. */
void json_write_escaped(FILE *out, const char *s);
