/* libFuzzer target for job records, which a tampered state dir can make anything: parse any bytes
 * (in a buffer of exactly their size, so reading past the end is caught); what parses holds only
 * valid names, normalised paths and valid context values, and writes back byte for byte, since
 * the format is strict (context values escaped one way only). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"
#include "store.h"

static bool path_normal(const char *path)
{
	char *normal = NULL;
	const char *reason;
	bool ok = policy_path_normalize(path, &normal, &reason) == 0 && strcmp(normal, path) == 0;

	free(normal);
	return ok;
}

static void check_record(const struct store_record *rec)
{
	FUZZ_CHECK(policy_job_id_valid(rec->id));
	FUZZ_CHECK(rec->state == STORE_MOUNTING || rec->state == STORE_MOUNTED ||
		   rec->state == STORE_UNMOUNTED);
	/* mounted means a daemon, except for a job none of whose views matched its context */
	FUZZ_CHECK(rec->state != STORE_MOUNTED || rec->pid > 0 || rec->n_views == 0);
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		const char *reason;

		FUZZ_CHECK(!rec->context[k] ||
			   policy_context_value_check(rec->context[k], &reason) == 0);
	}
	FUZZ_CHECK(rec->pid >= 0 && rec->created >= 0 && rec->unmounted >= 0);
	FUZZ_CHECK(strlen(rec->policy_digest) == 16 &&
		   strspn(rec->policy_digest, "0123456789abcdef") == 16);
	FUZZ_CHECK(!strchr(rec->policy_source, '\n'));
	FUZZ_CHECK(rec->n_views <= POLICY_VIEWS_MAX);
	for (size_t i = 0; i < rec->n_views; i++) {
		const struct store_view *view = &rec->views[i];

		FUZZ_CHECK(policy_view_name_valid(view->name));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(rec->views[j].name, view->name) != 0);
		FUZZ_CHECK(path_normal(view->target));
		/* its generations, then the policy's lowers */
		FUZZ_CHECK(view->n_lowers <= STORE_LOWERS_MAX);
		for (size_t j = 0; j < view->n_lowers; j++)
			FUZZ_CHECK(path_normal(view->lowers[j]));
	}
}

static char *format(const struct store_record *rec, size_t *ret_len)
{
	char *text = NULL;
	FILE *mem = open_memstream(&text, ret_len);

	FUZZ_CHECK(mem);
	FUZZ_CHECK(store_record_format(rec, mem) == 0);
	FUZZ_CHECK(fclose(mem) == 0);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_record *rec = NULL, *again = NULL;
	char *copy, *text;
	size_t len;
	int r;

	if (size > STORE_RECORD_MAX)
		return 0;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	r = store_record_parse(copy, size, &rec);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == 0) {
		check_record(rec);
		text = format(rec, &len);
		/* strict: one spelling per record, so the text is exactly what was read */
		FUZZ_CHECK(len == size && memcmp(text, data, size) == 0);
		FUZZ_CHECK(store_record_parse(text, len, &again) == 0);
		check_record(again);
		free(text);
		store_record_free(again);
		store_record_free(rec);
	}
	free(copy);
	return 0;
}
