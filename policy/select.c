/* Job contexts and selectors: the context keys and the grammar of their values, matching a job's
 * context against a view's `when` or a promotion's `trust`, and choosing a job's views. */
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_private.h"

static const char *const context_names[POLICY_CONTEXT_COUNT] = {
	[POLICY_CONTEXT_REPOSITORY] = "repository", [POLICY_CONTEXT_REF] = "ref",
	[POLICY_CONTEXT_WORKFLOW] = "workflow",	    [POLICY_CONTEXT_JOB] = "job",
	[POLICY_CONTEXT_EVENT] = "event",
};

const char *policy_context_key_name(enum policy_context_key key)
{
	return (unsigned)key < POLICY_CONTEXT_COUNT ? context_names[key] : "?";
}

const char *policy_context_key_names(void)
{
	return "repository, ref, workflow, job or event";
}

int policy_context_key_from_name(const char *name, size_t length, enum policy_context_key *ret_key)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		if (strlen(context_names[k]) == length && !memcmp(name, context_names[k], length)) {
			*ret_key = (enum policy_context_key)k;
			return 0;
		}
	return -EINVAL;
}

/* Decodes one UTF-8 sequence at s; its length, or 0 when it is not valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF included). */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret_cp)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return len;
}

int policy_context_value_check(const char *value, const char **ret_reason)
{
	const unsigned char *p = (const unsigned char *)value;
	size_t length = strlen(value);

	if (length == 0) {
		*ret_reason = "empty value";
		return -EINVAL;
	}
	if (length > POLICY_CONTEXT_VALUE_MAX) {
		*ret_reason = "value longer than 1024 bytes";
		return -EINVAL;
	}
	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0) {
			*ret_reason = "not valid UTF-8";
			return -EINVAL;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			*ret_reason = "contains a control character";
			return -EINVAL;
		}
		/* line and paragraph separators, and the bidirectional overrides and isolates
		 * that make text display other than it reads */
		if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069)) {
			*ret_reason = "contains a Unicode line separator or direction control";
			return -EINVAL;
		}
		p += n;
	}
	return 0;
}

bool policy_selector_present(const struct policy_selector *selector)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		if (selector->n_patterns[k])
			return true;
	return false;
}

bool policy_selector_matches(const struct policy_selector *selector,
			     const struct policy_context *context,
			     enum policy_context_key *ret_failed)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		const char *value = context ? context->values[k] : NULL;
		bool matched = false;

		if (!selector->n_patterns[k])
			continue;
		for (size_t i = 0; value && !matched && i < selector->n_patterns[k]; i++)
			matched = fnmatch(selector->patterns[k][i], value, 0) == 0;
		if (!matched) {
			if (ret_failed)
				*ret_failed = (enum policy_context_key)k;
			return false;
		}
	}
	return true;
}

void policy_selector_free(struct policy_selector *selector)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		for (size_t i = 0; i < selector->n_patterns[k]; i++)
			free(selector->patterns[k][i]);
		free(selector->patterns[k]);
	}
	*selector = (struct policy_selector){0};
}

int policy_selector_copy(const struct policy_selector *from, struct policy_selector *to)
{
	*to = (struct policy_selector){.mark = from->mark};
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		if (!from->n_patterns[k])
			continue;
		to->patterns[k] = calloc(from->n_patterns[k], sizeof(char *));
		if (!to->patterns[k])
			return -ENOMEM;
		for (size_t i = 0; i < from->n_patterns[k]; i++) {
			to->patterns[k][i] = strdup(from->patterns[k][i]);
			if (!to->patterns[k][i])
				return -ENOMEM;
			to->n_patterns[k]++;
		}
	}
	return 0;
}

int policy_select_views(const struct policy *policy, policy_view_filter_fn *keep, void *userdata,
			struct policy **ret_policy)
{
	struct policy *copy;
	size_t kept = 0;
	int r;

	r = policy_copy(policy, &copy);
	if (r < 0)
		return r;
	/* the views kept keep their order; the others are freed */
	for (size_t i = 0; i < copy->n_views; i++) {
		struct policy_view *view = &copy->views[i];

		if (keep(view, userdata)) {
			if (kept != i)
				copy->views[kept] = *view;
			kept++;
			continue;
		}
		policy_view_free(view);
	}
	copy->n_views = kept;
	*ret_policy = copy;
	return 0;
}

static bool view_matches(const struct policy_view *view, void *userdata)
{
	return policy_selector_matches(&view->when, userdata, NULL);
}

int policy_select(const struct policy *policy, const struct policy_context *context,
		  struct policy **ret_policy)
{
	return policy_select_views(policy, view_matches, (void *)context, ret_policy);
}
