/* Variable expansion: ${VAR} and ${VAR:-default} from a job's environment, ${JOB_ID} always the
 * job's ID. Nothing else: no shell, no globbing, no nesting, no escapes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_private.h"

struct strbuf {
	char *data;
	size_t length;
	size_t capacity;
};

static int strbuf_append(struct strbuf *sb, const char *s, size_t length)
{
	if (sb->length + length + 1 > sb->capacity) {
		size_t capacity = sb->capacity ? sb->capacity : 64;
		char *data;

		while (capacity < sb->length + length + 1)
			capacity *= 2;
		data = realloc(sb->data, capacity);
		if (!data)
			return -ENOMEM;
		sb->data = data;
		sb->capacity = capacity;
	}
	memcpy(sb->data + sb->length, s, length);
	sb->length += length;
	sb->data[sb->length] = '\0';
	return 0;
}

static void set_reason(char *reason, size_t reason_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_reason(char *reason, size_t reason_size, const char *fmt, ...)
{
	va_list ap;

	if (!reason || reason_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, reason_size, fmt, ap);
	va_end(ap);
}

int policy_expand_string(const char *template, const char *job_id, policy_lookup_fn *lookup,
			 void *userdata, char **ret, char *reason, size_t reason_size)
{
	struct strbuf out = {0};
	const char *p = template;
	int r;

	r = strbuf_append(&out, "", 0);
	if (r < 0)
		return r;
	while (*p) {
		const char *dollar = strstr(p, "${"), *name, *end, *fallback = NULL, *value;
		size_t name_length, fallback_length = 0;
		char var[256];

		if (!dollar) {
			r = strbuf_append(&out, p, strlen(p));
			if (r < 0)
				goto out_free;
			break;
		}
		r = strbuf_append(&out, p, (size_t)(dollar - p));
		if (r < 0)
			goto out_free;

		name = dollar + 2;
		name_length = strcspn(name, ":}");
		end = name + name_length;
		if (*end == '\0') {
			set_reason(reason, reason_size, "'%.40s' has no closing '}'", dollar);
			r = -EINVAL;
			goto out_free;
		}
		if (!policy_var_name_valid(name, name_length) || name_length >= sizeof(var)) {
			set_reason(reason, reason_size,
				   "invalid variable name '%.*s' (expected [A-Za-z_][A-Za-z0-9_]*)",
				   (int)(name_length > 64 ? 64 : name_length), name);
			r = -EINVAL;
			goto out_free;
		}
		if (*end == ':') {
			if (end[1] != '-') {
				set_reason(reason, reason_size,
					   "expected ':-' or '}' after '${%.*s'", (int)name_length,
					   name);
				r = -EINVAL;
				goto out_free;
			}
			fallback = end + 2;
			fallback_length = strcspn(fallback, "}");
			end = fallback + fallback_length;
			if (*end == '\0') {
				set_reason(reason, reason_size, "'%.40s' has no closing '}'",
					   dollar);
				r = -EINVAL;
				goto out_free;
			}
			/* A default is literal text; "${" in it would look like nesting, which
			 * this grammar does not have. */
			if (memmem(fallback, fallback_length, "${", 2)) {
				set_reason(reason, reason_size,
					   "nested '${' in the default of '${%.*s'",
					   (int)name_length, name);
				r = -EINVAL;
				goto out_free;
			}
		}
		p = end + 1;

		memcpy(var, name, name_length);
		var[name_length] = '\0';
		if (!lookup)
			continue;
		if (strcmp(var, "JOB_ID") == 0 && job_id)
			value = job_id;
		else
			value = lookup(var, userdata);
		/* As in the shell, ":-" also replaces a variable that is set but empty. */
		if (fallback && (!value || !*value)) {
			r = strbuf_append(&out, fallback, fallback_length);
		} else if (value) {
			r = strbuf_append(&out, value, strlen(value));
		} else {
			set_reason(reason, reason_size, "undefined variable '%s'", var);
			r = -ENOENT;
		}
		if (r < 0)
			goto out_free;
	}

	if (ret)
		*ret = out.data;
	else
		free(out.data);
	return 0;

out_free:
	free(out.data);
	return r;
}

const char *policy_lookup_environ(const char *name, void *userdata)
{
	char **entry;
	size_t length = strlen(name);

	for (entry = userdata; entry && *entry; entry++)
		if (strncmp(*entry, name, length) == 0 && (*entry)[length] == '=')
			return *entry + length + 1;
	return NULL;
}

static int strdup_to(char **ret, const char *s)
{
	if (!s) {
		*ret = NULL;
		return 0;
	}
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int policy_copy(const struct policy *policy, struct policy **ret)
{
	struct policy *copy;
	size_t i, j;
	int r = -ENOMEM;

	copy = calloc(1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	copy->origin = policy->origin;
	copy->version = policy->version;
	copy->gc = policy->gc;
	copy->hooks = policy->hooks;
	if (strdup_to(&copy->source, policy->source) < 0 ||
	    strdup_to(&copy->state_dir, policy->state_dir) < 0 ||
	    strdup_to(&copy->job_id, policy->job_id) < 0)
		goto out_free;
	if (policy->n_views) {
		copy->views = calloc(policy->n_views, sizeof(*copy->views));
		if (!copy->views)
			goto out_free;
	}
	for (i = 0; i < policy->n_views; i++) {
		const struct policy_view *from = &policy->views[i];
		struct policy_view *to = &copy->views[i];

		copy->n_views++;
		to->quota = from->quota;
		to->promote.kind = from->promote.kind;
		to->mark = from->mark;
		to->target_mark = from->target_mark;
		if (strdup_to(&to->name, from->name) < 0 ||
		    strdup_to(&to->target, from->target) < 0)
			goto out_free;
		if (from->n_lower) {
			to->lower = calloc(from->n_lower, sizeof(*to->lower));
			if (!to->lower)
				goto out_free;
		}
		for (j = 0; j < from->n_lower; j++) {
			to->n_lower++;
			if (strdup_to(&to->lower[j], from->lower[j]) < 0)
				goto out_free;
		}
		if (from->n_pass_through) {
			to->pass_through = calloc(from->n_pass_through, sizeof(char *));
			to->pass_through_marks =
				calloc(from->n_pass_through, sizeof(*to->pass_through_marks));
			if (!to->pass_through || !to->pass_through_marks)
				goto out_free;
		}
		for (j = 0; j < from->n_pass_through; j++) {
			to->n_pass_through++;
			to->pass_through_marks[j] = from->pass_through_marks[j];
			if (strdup_to(&to->pass_through[j], from->pass_through[j]) < 0)
				goto out_free;
		}
		if (from->promote.n_ignore) {
			to->promote.ignore = calloc(from->promote.n_ignore, sizeof(char *));
			if (!to->promote.ignore)
				goto out_free;
		}
		for (j = 0; j < from->promote.n_ignore; j++) {
			to->promote.n_ignore++;
			if (strdup_to(&to->promote.ignore[j], from->promote.ignore[j]) < 0)
				goto out_free;
		}
		if (policy_selector_copy(&from->promote.trust, &to->promote.trust) < 0 ||
		    policy_selector_copy(&from->when, &to->when) < 0)
			goto out_free;
	}
	*ret = copy;
	return 0;

out_free:
	policy_free(copy);
	return r;
}

/* Expands the template *path of view in place to an absolute, normalised path. Returns 0, -ENOMEM
 * (err not set) or -EINVAL with err naming field. */
static int expand_path(const struct policy *copy, const struct policy_view *view, const char *field,
		       const struct policy_mark *mark, const char *job_id, policy_lookup_fn *lookup,
		       void *userdata, char **path, struct policy_error *err)
{
	char reason[256], quoted[POLICY_QUOTE_MAX], quoted_template[POLICY_QUOTE_MAX];
	char *expanded, *normal;
	const char *why;
	int r;

	r = policy_expand_string(*path, job_id, lookup, userdata, &expanded, reason,
				 sizeof(reason));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return policy_error_set(err, copy->source, mark, field, "%s in view '%s'", reason,
					view->name);
	r = policy_path_normalize(expanded, &normal, &why);
	if (r == -ENOMEM) {
		free(expanded);
		return r;
	}
	if (r < 0) {
		r = policy_error_set(err, copy->source, mark, field, "%s expands to %s: %s",
				     policy_quote(*path, quoted_template),
				     policy_quote(expanded, quoted), why);
		free(expanded);
		return r;
	}
	free(expanded);
	free(*path);
	*path = normal;
	return 0;
}

int policy_expand(const struct policy *policy, const char *job_id, policy_lookup_fn *lookup,
		  void *userdata, struct policy **ret_policy, struct policy_error *err)
{
	struct policy *copy = NULL;
	size_t i;
	int r;

	if (!policy_job_id_valid(job_id)) {
		char quoted[POLICY_QUOTE_MAX];

		policy_error_set(err, policy->source, NULL, "job",
				 "invalid job ID %s (expected [A-Za-z0-9][A-Za-z0-9._-]{0,127})",
				 policy_quote(job_id ? job_id : "", quoted));
		return -EINVAL;
	}

	r = policy_copy(policy, &copy);
	if (r < 0)
		goto out_nomem;
	free(copy->job_id);
	copy->job_id = strdup(job_id);
	if (!copy->job_id) {
		r = -ENOMEM;
		goto out_nomem;
	}

	for (i = 0; i < copy->n_views; i++) {
		struct policy_view *view = &copy->views[i];
		char field[64];

		snprintf(field, sizeof(field), "views[%zu].target", i);
		r = expand_path(copy, view, field, &view->target_mark, job_id, lookup, userdata,
				&view->target, err);
		if (r == -ENOMEM)
			goto out_nomem;
		if (r < 0)
			goto out_free;
		for (size_t j = 0; j < view->n_pass_through; j++) {
			snprintf(field, sizeof(field), "views[%zu].pass_through[%zu]", i, j);
			r = expand_path(copy, view, field, &view->pass_through_marks[j], job_id,
					lookup, userdata, &view->pass_through[j], err);
			if (r == -ENOMEM)
				goto out_nomem;
			if (r < 0)
				goto out_free;
		}
	}

	r = policy_check_targets(copy, false, err);
	if (r < 0)
		goto out_free;

	*ret_policy = copy;
	return 0;

out_nomem:
	policy_error_set(err, policy->source, NULL, "", "out of memory");
out_free:
	policy_free(copy);
	return r;
}
