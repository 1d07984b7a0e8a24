/* libFuzzer target for the policy parser: parse any bytes, and expand what parses for a job, so
 * the tree, the schema walk, expansion and every error path run under ASan and UBSan. Leaks fail
 * the run too (LeakSanitizer is on with ASan). What parses is also matched against a few job
 * contexts: the views chosen are exactly those whose `when` matches, in order. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

static char *fuzz_env[] = {
	"HOME=/home/runner",
	"RUNNER_WORKSPACE=/home/runner/work/app",
	"EMPTY=",
	"REL=relative",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct policy_context contexts[] = {
	{.values = {NULL}},
	{.values = {"acme/web", "refs/heads/main", "ci", "build", "push"}},
	{.values = {"other/x", "refs/pull/1/merge", NULL, "lint", "pull_request"}},
	{.values = {"a", "", "*", "[", "\\"}},
};

static void check_select(const struct policy *policy)
{
	for (size_t c = 0; c < sizeof(contexts) / sizeof(contexts[0]); c++) {
		struct policy *selected = NULL;
		size_t j = 0;

		if (policy_select(policy, &contexts[c], &selected) < 0)
			__builtin_trap();
		for (size_t i = 0; i < policy->n_views; i++) {
			const struct policy_view *view = &policy->views[i];
			bool match = policy_selector_matches(&view->when, &contexts[c], NULL);

			policy_selector_matches(&view->promote.trust, &contexts[c], NULL);
			if (!match)
				continue;
			if (j >= selected->n_views || strcmp(selected->views[j].name, view->name))
				__builtin_trap();
			j++;
		}
		if (j != selected->n_views)
			__builtin_trap();
		policy_free(selected);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *policy = NULL, *expanded = NULL;
	struct policy_error err;
	char buf[POLICY_FORMAT_MAX];
	size_t i;

	if (policy_parse_buffer((const char *)data, size, "fuzz.yaml", &policy, &err) < 0) {
		/* Every error has a message, and a position inside the input when it has one. */
		if (!err.message[0])
			__builtin_trap();
		return 0;
	}
	if (policy_expand(policy, "job-42", policy_lookup_environ, fuzz_env, &expanded, &err) ==
	    0) {
		for (i = 0; i < expanded->n_views; i++) {
			if (expanded->views[i].target[0] != '/')
				__builtin_trap();
			policy_format_size(expanded->views[i].quota, buf);
		}
		policy_free(expanded);
	} else if (!err.message[0]) {
		__builtin_trap();
	}
	policy_format_duration(policy->gc.keep_unmounted, buf);
	check_select(policy);
	policy_free(policy);
	return 0;
}
