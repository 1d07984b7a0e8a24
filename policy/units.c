/* The grammars of user input: job IDs, view and variable names, sizes, durations and paths, with
 * the formatting that turns sizes and durations back into text. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

struct unit {
	const char *suffix;
	uint64_t factor;
};

/* Largest first, so formatting picks the largest exact unit. */
static const struct unit size_units[] = {
	{"TiB", UINT64_C(1) << 40},
	{"GiB", UINT64_C(1) << 30},
	{"MiB", UINT64_C(1) << 20},
	{"KiB", UINT64_C(1) << 10},
	{"B", 1},
};

static const struct unit duration_units[] = {
	{"d", 86400},
	{"h", 3600},
	{"m", 60},
	{"s", 1},
};

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* [A-Za-z0-9][A-Za-z0-9._-]{0,max-1}: safe as a file name, never hidden, never "." or "..". */
static bool name_valid(const char *name, size_t max)
{
	size_t i;

	if (!name || !is_alnum(name[0]))
		return false;
	for (i = 1; name[i]; i++) {
		if (i >= max)
			return false;
		if (!is_alnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return false;
	}
	return true;
}

bool policy_job_id_valid(const char *id)
{
	return name_valid(id, POLICY_JOB_ID_MAX);
}

bool policy_view_name_valid(const char *name)
{
	return name_valid(name, POLICY_NAME_MAX);
}

bool policy_var_name_valid(const char *name, size_t length)
{
	size_t i;

	if (length == 0 || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (i = 0; i < length; i++)
		if (!is_alnum(name[i]) && name[i] != '_')
			return false;
	return true;
}

static int parse_unit(const char *text, const struct unit *units, size_t n_units, uint64_t *ret)
{
	uint64_t number = 0;
	bool overflow = false;
	const char *p = text;
	size_t i;

	if (!text || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		/* Keep reading past an overflow so "99999999999999999999x" is a syntax error. A
		 * flag, not UINT64_MAX as a marker: "18446744073709551615B" is what formatting that
		 * value gives, and must parse back. */
		if (overflow || number > (UINT64_MAX - digit) / 10)
			overflow = true;
		else
			number = number * 10 + digit;
	}
	for (i = 0; i < n_units; i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (overflow || number > UINT64_MAX / units[i].factor)
			return -ERANGE;
		*ret = number * units[i].factor;
		return 0;
	}
	return -EINVAL;
}

int policy_parse_size(const char *text, uint64_t *ret_bytes)
{
	return parse_unit(text, size_units, sizeof(size_units) / sizeof(size_units[0]), ret_bytes);
}

int policy_parse_duration(const char *text, uint64_t *ret_seconds)
{
	return parse_unit(text, duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
			  ret_seconds);
}

static const char *format_unit(uint64_t value, const struct unit *units, size_t n_units,
			       char buf[static POLICY_FORMAT_MAX])
{
	size_t i;

	/* The last unit has factor 1, so the loop always ends in a match. */
	for (i = 0; i + 1 < n_units; i++)
		if (value != 0 && value % units[i].factor == 0)
			break;
	snprintf(buf, POLICY_FORMAT_MAX, "%llu%s", (unsigned long long)(value / units[i].factor),
		 units[i].suffix);
	return buf;
}

const char *policy_format_size(uint64_t bytes, char buf[static POLICY_FORMAT_MAX])
{
	return format_unit(bytes, size_units, sizeof(size_units) / sizeof(size_units[0]), buf);
}

const char *policy_format_duration(uint64_t seconds, char buf[static POLICY_FORMAT_MAX])
{
	return format_unit(seconds, duration_units,
			   sizeof(duration_units) / sizeof(duration_units[0]), buf);
}

int policy_path_normalize(const char *path, char **ret, const char **ret_reason)
{
	const char *p;
	char *out, *o;

	if (path[0] != '/') {
		*ret_reason = "not an absolute path";
		return -EINVAL;
	}
	for (p = path; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*ret_reason = "contains a control character";
			return -EINVAL;
		}
	}
	if (p - path >= PATH_MAX) {
		*ret_reason = "longer than PATH_MAX";
		return -EINVAL;
	}

	out = malloc(strlen(path) + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	p = path;
	while (*p) {
		size_t length;

		while (*p == '/')
			p++;
		length = strcspn(p, "/");
		if (length == 0)
			break;
		if ((length == 1 && p[0] == '.') || (length == 2 && p[0] == '.' && p[1] == '.')) {
			free(out);
			*ret_reason = "contains a '.' or '..' component";
			return -EINVAL;
		}
		*o++ = '/';
		memcpy(o, p, length);
		o += length;
		p += length;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	*ret = out;
	return 0;
}

bool policy_path_overlaps(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	const char *shorter = la <= lb ? a : b, *longer = la <= lb ? b : a;
	size_t ls = la <= lb ? la : lb;

	if (strncmp(shorter, longer, ls) != 0)
		return false;
	/* "/" contains everything; otherwise the longer must continue with a new component. */
	return longer[ls] == '\0' || longer[ls] == '/' || (ls == 1 && shorter[0] == '/');
}

const char *policy_origin_name(enum policy_origin origin)
{
	static const char *const names[] = {
		[POLICY_ORIGIN_BUFFER] = "buffer", [POLICY_ORIGIN_FILE] = "file",
		[POLICY_ORIGIN_OPTION] = "option", [POLICY_ORIGIN_ENV] = "env",
		[POLICY_ORIGIN_SYSTEM] = "system", [POLICY_ORIGIN_BUILTIN] = "builtin",
	};

	if ((unsigned)origin >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[origin];
}

static const char *const promote_names[POLICY_PROMOTE_KIND_COUNT] = {
	[POLICY_PROMOTE_NONE] = "none",
	[POLICY_PROMOTE_ADD_ONLY] = "add-only",
	[POLICY_PROMOTE_PNPM_STORE] = "pnpm-store",
	[POLICY_PROMOTE_NPM_CACHE] = "npm-cache",
	[POLICY_PROMOTE_PNPM_CACHE] = "pnpm-cache",
};

const char *policy_promote_names(void)
{
	return "none, add-only, pnpm-store, npm-cache or pnpm-cache";
}

const char *policy_promote_name(enum policy_promote_kind kind)
{
	if ((unsigned)kind >= POLICY_PROMOTE_KIND_COUNT)
		return "unknown";
	return promote_names[kind];
}

int policy_promote_from_name(const char *name, enum policy_promote_kind *ret_kind)
{
	unsigned i;

	for (i = 0; i < POLICY_PROMOTE_KIND_COUNT; i++) {
		if (strcmp(name, promote_names[i]) == 0) {
			*ret_kind = (enum policy_promote_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}
