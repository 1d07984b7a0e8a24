/* libFuzzer target for the job-ID and view-name grammars: the validator agrees with an independent
 * reading of [A-Za-z0-9][A-Za-z0-9._-]{0,127}, and an accepted ID is safe everywhere jobfs puts it:
 * one path component (never "." or "..", no '/'), ${JOB_ID} in a target, a record, JSON. The input
 * split at NULs is also the parts of a job key (job-key --github), which must always be valid. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "policy.h"
#include "store.h"

static bool reference_valid(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       len;
}

/* The ID as the one component between two fixed ones, the way a policy target uses it. */
static void check_target(const char *id)
{
	static char *no_env[] = {NULL};
	char *target = NULL, *normal = NULL, expected[POLICY_JOB_ID_MAX + 16];
	const char *reason;
	char why[128];

	FUZZ_CHECK(policy_expand_string("/jobs/${JOB_ID}/ws", id, policy_lookup_environ, no_env,
					&target, why, sizeof(why)) == 0);
	snprintf(expected, sizeof(expected), "/jobs/%s/ws", id);
	FUZZ_CHECK(strcmp(target, expected) == 0);
	FUZZ_CHECK(policy_path_normalize(target, &normal, &reason) == 0);
	FUZZ_CHECK(strcmp(normal, target) == 0); /* no '/', "." or ".." changed the path */
	FUZZ_CHECK(normal[5] == '/' && strchr(normal + 6, '/') == normal + 6 + strlen(id));
	free(normal);
	free(target);
}

/* Written into a record and read back, the ID comes back unchanged. */
static void check_record(const char *id)
{
	struct store_record rec = {
		.id = (char *)id,
		.state = STORE_UNMOUNTED,
		.policy_digest = "0123456789abcdef",
		.policy_source = "fuzz",
	};
	struct store_record *back = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	FUZZ_CHECK(mem);
	FUZZ_CHECK(store_record_format(&rec, mem) == 0);
	FUZZ_CHECK(fclose(mem) == 0);
	FUZZ_CHECK(store_record_parse(text, len, &back) == 0);
	FUZZ_CHECK(strcmp(back->id, id) == 0);
	store_record_free(back);
	free(text);
}

/* JSON needs no escape for an ID: `ls --json` shows it as it is. */
static void check_json(const char *id)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	FUZZ_CHECK(mem);
	json_write_escaped(mem, id);
	FUZZ_CHECK(fclose(mem) == 0);
	FUZZ_CHECK(strcmp(text, id) == 0);
	free(text);
}

/* The input cut at its first NULs into up to four parts: a job key made of them is a valid ID, the
 * same each time, and exactly the '.'-join when every part is plain and it fits. */
static void check_job_key(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *parts[4];
	char id[POLICY_JOB_ID_MAX + 1], again[POLICY_JOB_ID_MAX + 1], join[POLICY_JOB_ID_MAX + 1];
	size_t n = 0, start = 0, join_len = 0;
	bool plain = true, empty = false;

	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (size_t i = 0; i <= size && n < 4; i++) {
		if (i < size && copy[i] != '\0')
			continue;
		copy[i] = '\0';
		parts[n++] = copy + start;
		start = i + 1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(parts[i]);

		empty |= len == 0;
		plain &= strspn(parts[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789_-") == len;
		if (join_len + len + (i > 0) <= POLICY_JOB_ID_MAX)
			join_len += (size_t)snprintf(join + join_len, sizeof(join) - join_len,
						     "%s%s", i > 0 ? "." : "", parts[i]);
		else
			plain = false;
	}
	if (empty) {
		FUZZ_CHECK(policy_job_key((const char *const *)parts, n, id) == -EINVAL);
		free(copy);
		return;
	}
	FUZZ_CHECK(policy_job_key((const char *const *)parts, n, id) == 0);
	FUZZ_CHECK(policy_job_id_valid(id));
	FUZZ_CHECK(policy_job_key((const char *const *)parts, n, again) == 0);
	FUZZ_CHECK(strcmp(id, again) == 0);
	if (plain &&
	    strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", parts[0][0]))
		FUZZ_CHECK(strcmp(id, join) == 0);
	else
		FUZZ_CHECK(strlen(id) >= 16 &&
			   strspn(id + strlen(id) - 16, "0123456789abcdef") == 16);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	bool id_ok, name_ok;

	if (!s)
		return 0;
	if (size > 0)
		check_job_key(data, size);
	id_ok = policy_job_id_valid(s);
	name_ok = policy_view_name_valid(s);
	FUZZ_CHECK(id_ok == reference_valid(s, POLICY_JOB_ID_MAX));
	FUZZ_CHECK(name_ok == reference_valid(s, POLICY_NAME_MAX));
	FUZZ_CHECK(!name_ok || id_ok);
	if (id_ok) {
		size_t len = strlen(s);

		FUZZ_CHECK(len >= 1 && len <= POLICY_JOB_ID_MAX);
		FUZZ_CHECK(!strchr(s, '/'));
		FUZZ_CHECK(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
		FUZZ_CHECK(s[0] != '.' && s[0] != '-'); /* never hidden, never an option */
		check_target(s);
		check_record(s);
		check_json(s);
	}
	free(s);
	return 0;
}
