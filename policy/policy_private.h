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
