/* libFuzzer target for sizes, durations and paths: the parsers agree with an independent reading
 * of "DIGITS UNIT" (value, overflow), every 64-bit value formats to text that parses back to it,
 * and normalising a path is idempotent and leaves no empty, "." or ".." component. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

struct unit {
	const char *suffix;
	uint64_t factor;
};

static const struct unit sizes[] = {
	{"B", 1},
	{"KiB", UINT64_C(1) << 10},
	{"MiB", UINT64_C(1) << 20},
	{"GiB", UINT64_C(1) << 30},
	{"TiB", UINT64_C(1) << 40},
	{NULL, 0},
};

static const struct unit durations[] = {
	{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {NULL, 0},
};

/* 0 and the value, -ERANGE, or -EINVAL; overflow found with 128-bit arithmetic. */
static int reference_parse(const char *s, const struct unit *units, uint64_t *ret)
{
	unsigned __int128 number = 0;
	bool big = false;
	size_t digits = strspn(s, "0123456789");

	if (digits == 0)
		return -EINVAL;
	for (size_t i = 0; i < digits; i++) {
		number = number * 10 + (unsigned)(s[i] - '0');
		if (number > UINT64_MAX)
			big = true, number = 0;
	}
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcmp(s + digits, u->suffix) != 0)
			continue;
		if (big || number * u->factor > UINT64_MAX)
			return -ERANGE;
		*ret = (uint64_t)(number * u->factor);
		return 0;
	}
	return -EINVAL;
}

static void check_unit(const char *s, const struct unit *units,
		       int (*parse)(const char *, uint64_t *),
		       const char *(*format)(uint64_t, char *), uint64_t any)
{
	char buf[POLICY_FORMAT_MAX];
	uint64_t value = 0, expected = 0, back = 0;
	int r = parse(s, &value), want = reference_parse(s, units, &expected);

	FUZZ_CHECK(r == want);
	if (r == 0) {
		FUZZ_CHECK(value == expected);
		FUZZ_CHECK(parse(format(value, buf), &back) == 0 && back == value);
	}
	/* whatever the value, its text is short and parses back to it */
	format(any, buf);
	FUZZ_CHECK(strlen(buf) < POLICY_FORMAT_MAX);
	FUZZ_CHECK(parse(buf, &back) == 0);
	FUZZ_CHECK(back == any);
}

static void check_normal_form(const char *n)
{
	FUZZ_CHECK(n[0] == '/');
	FUZZ_CHECK(!strstr(n, "//"));
	FUZZ_CHECK(strcmp(n, "/") == 0 || n[strlen(n) - 1] != '/');
	FUZZ_CHECK(!strstr(n, "/./") && !strstr(n, "/../"));
	FUZZ_CHECK(strcmp(n, "/.") != 0 && strcmp(n, "/..") != 0);
	FUZZ_CHECK(strlen(n) < 2 || (strcmp(n + strlen(n) - 2, "/.") != 0 &&
				     (strlen(n) < 3 || strcmp(n + strlen(n) - 3, "/..") != 0)));
}

static void check_path(const char *a, const char *b)
{
	char *na = NULL, *nb = NULL, *again = NULL;
	const char *reason = NULL;
	int r = policy_path_normalize(a, &na, &reason);

	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		FUZZ_CHECK(reason && *reason);
		return;
	}
	check_normal_form(na);
	FUZZ_CHECK(strlen(na) <= strlen(a));
	FUZZ_CHECK(policy_path_normalize(na, &again, &reason) == 0);
	FUZZ_CHECK(strcmp(again, na) == 0);
	FUZZ_CHECK(policy_path_overlaps(na, na));
	FUZZ_CHECK(policy_path_overlaps("/", na));
	if (policy_path_normalize(b, &nb, &reason) == 0) {
		bool ab = policy_path_overlaps(na, nb);
		size_t la = strlen(na), lb = strlen(nb);
		const char *s = la <= lb ? na : nb, *l = la <= lb ? nb : na;
		size_t ls = la <= lb ? la : lb;
		bool prefix = strcmp(s, "/") == 0 ||
			      (strncmp(s, l, ls) == 0 && (l[ls] == '\0' || l[ls] == '/'));

		FUZZ_CHECK(ab == policy_path_overlaps(nb, na));
		FUZZ_CHECK(ab == prefix);
	}
	free(nb);
	free(again);
	free(na);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t any = 0;
	char *a, *b;
	size_t alen;

	for (size_t i = 0; i < 8 && i < size; i++)
		any = any << 8 | data[i];
	a = fuzz_cstring(data, size);
	if (!a)
		return 0;
	alen = strlen(a);
	b = fuzz_cstring(data + (alen < size ? alen + 1 : size), alen < size ? size - alen - 1 : 0);
	if (b) {
		check_unit(a, sizes, policy_parse_size, policy_format_size, any);
		check_unit(a, durations, policy_parse_duration, policy_format_duration, any);
		check_path(a, b);
	}
	free(b);
	free(a);
	return 0;
}
