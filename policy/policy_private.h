/* Shared inside policy/ only: error reporting, quoting of values in messages, target checks. */
#pragma once

#include "policy.h"

#define POLICY_QUOTE_MAX 80

/* Fill *err and return -EINVAL. mark may be NULL (no position); field may be "" (no field). The
 * message becomes "FIELD: TEXT". */
int policy_error_set(struct policy_error *err, const char *file, const struct policy_mark *mark,
		     const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* s in single quotes, shortened and with control characters replaced, so a message stays one
 * readable line whatever the value holds. */
const char *policy_quote(const char *s, char buf[static POLICY_QUOTE_MAX]);

/* Every target absolute, none overlapping another or the state dir. With literal_only, targets
 * that still hold "${" are skipped (their turn comes at expansion). */
int policy_check_targets(const struct policy *policy, bool literal_only, struct policy_error *err);

/* A deep copy; the copy's strings are its own (expand.c). */
int policy_copy(const struct policy *policy, struct policy **ret);

/* select.c: selectors' own memory. Copy returns 0 or -ENOMEM (then *to holds what was copied,
 * for policy_selector_free); free accepts an empty selector and leaves one. */
int policy_selector_copy(const struct policy_selector *from, struct policy_selector *to);
void policy_selector_free(struct policy_selector *selector);
/* Frees what a view holds (not the view itself) and leaves it empty (policy.c). */
void policy_view_free(struct policy_view *view);
