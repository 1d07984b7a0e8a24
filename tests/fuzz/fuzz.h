/* What every libFuzzer target here shares: the entry point's prototype and the check that stops
 * the run, so a broken invariant is a crash with a reproducer, not a silent pass. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant: says which one broke, then aborts (libFuzzer saves the input). */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input up to its first NUL (or all of it) as a malloc'ed C string; NULL when out of memory. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	size_t len = 0;
	char *s;

	while (len < size && data[len])
		len++;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++)
		s[i] = (char)data[i];
	s[len] = '\0';
	return s;
}
