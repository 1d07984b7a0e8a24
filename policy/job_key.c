/* Job keys: a valid job ID derived from a CI system's own identifiers (a runner name, a run ID, an
 * attempt, a job name), deterministically, so every tool that derives it gets the same ID. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "policy.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Bytes a part may keep as they are. '.' is not one of them: it separates the parts. */
static bool is_plain(char c)
{
	return is_alnum(c) || c == '_' || c == '-';
}

/* The hash names the parts exactly: each one's length (8 bytes, little-endian) then its bytes, so
 * ("a.b", "c") and ("a", "b.c") differ, and so do parts that sanitise to the same text. */
static int parts_hash(const char *const *parts, size_t n_parts, uint64_t *ret_hash)
{
	XXH3_state_t *state = XXH3_createState();
	size_t i;

	if (!state)
		return -ENOMEM;
	XXH3_64bits_reset(state);
	for (i = 0; i < n_parts; i++) {
		uint64_t len = strlen(parts[i]);
		unsigned char len_le[8];

		for (unsigned b = 0; b < 8; b++)
			len_le[b] = (unsigned char)(len >> (8 * b));
		XXH3_64bits_update(state, len_le, sizeof(len_le));
		XXH3_64bits_update(state, parts[i], (size_t)len);
	}
	*ret_hash = XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return 0;
}

int policy_job_key(const char *const *parts, size_t n_parts, char ret[static POLICY_JOB_ID_MAX + 1])
{
	char text[POLICY_JOB_ID_MAX + 1];
	size_t len = 0, start, i;
	bool lossy = false;
	uint64_t hash;
	int r;

	if (n_parts == 0)
		return -EINVAL;
	for (i = 0; i < n_parts; i++)
		if (!parts[i] || !*parts[i])
			return -EINVAL;

	/* The parts joined with '.', each run of other bytes (spaces, '/', '.', controls, every
	 * byte of a UTF-8 sequence) as one '_', kept only up to the longest an ID may be. */
	for (i = 0; i < n_parts; i++) {
		bool in_run = false;

		if (i > 0) {
			if (len < POLICY_JOB_ID_MAX)
				text[len] = '.';
			len++;
		}
		for (const char *p = parts[i]; *p; p++) {
			char c = *p;

			if (!is_plain(c)) {
				lossy = true;
				if (in_run)
					continue;
				in_run = true;
				c = '_';
			} else {
				in_run = false;
			}
			if (len < POLICY_JOB_ID_MAX)
				text[len] = c;
			len++;
		}
	}
	if (!is_alnum(parts[0][0]))
		lossy = true;

	if (!lossy && len <= POLICY_JOB_ID_MAX) {
		/* Every part was plain and the first starts the ID well: the join is the ID, and
		 * it is one-to-one (a part holds no '.'). */
		memcpy(ret, text, len);
		ret[len] = '\0';
		return 0;
	}

	/* Otherwise what is readable of it, then '.' and 16 hex digits of the exact parts' hash:
	 * two different inputs give the same ID only if their 64-bit hashes collide. */
	r = parts_hash(parts, n_parts, &hash);
	if (r < 0)
		return r;
	len = len < POLICY_JOB_ID_MAX - 17 ? len : POLICY_JOB_ID_MAX - 17;
	while (len > 0 && !is_alnum(text[len - 1]))
		len--;
	for (start = 0; start < len && !is_alnum(text[start]); start++)
		;
	snprintf(ret, POLICY_JOB_ID_MAX + 1, "%.*s%s%016llx", (int)(len - start), text + start,
		 len > start ? "." : "", (unsigned long long)hash);
	return 0;
}
