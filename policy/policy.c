/* The policy parser: libyaml events into a small tree (refusing aliases, anchors, tags and second
 * documents), then a strict walk of that tree into struct policy. Also where a policy comes from
 * (policy_load) and how it is freed. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "policy.h"
#include "policy_private.h"

/* The schema is four levels deep; anything much deeper is a mistake, and a bound keeps the tree
 * walks' recursion bounded whatever the input. */
#define TREE_DEPTH_MAX 16

enum ynode_kind {
	YNODE_SCALAR,
	YNODE_SEQUENCE,
	YNODE_MAPPING,
};

struct ynode {
	enum ynode_kind kind;
	struct policy_mark mark;
	char *value; /* scalar: its text, NUL-terminated */
	size_t length;
	bool plain;	      /* scalar: unquoted, so "~", "null" and "" mean null */
	struct ynode **items; /* sequence: elements; mapping: key, value, key, value... */
	size_t n_items;
	size_t capacity;
};

struct parse {
	const char *source;
	struct policy_error *err;
};

int policy_error_set(struct policy_error *err, const char *file, const struct policy_mark *mark,
		     const char *field, const char *fmt, ...)
{
	size_t used = 0;
	va_list ap;

	if (!err)
		return -EINVAL;
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->line = mark ? mark->line : 0;
	err->column = mark ? mark->column : 0;
	snprintf(err->field, sizeof(err->field), "%s", field);
	err->message[0] = '\0';
	if (err->field[0])
		used = (size_t)snprintf(err->message, sizeof(err->message), "%s: ", err->field);
	/* A message cut at the buffer's end is still one line. */
	va_start(ap, fmt);
	vsnprintf(err->message + used, sizeof(err->message) - used, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *policy_quote(const char *s, char buf[static POLICY_QUOTE_MAX])
{
	const size_t keep = POLICY_QUOTE_MAX - 6; /* quotes, "...", NUL */
	size_t i, o = 0;

	buf[o++] = '\'';
	for (i = 0; s[i] && o < keep; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (s[i]) {
		/* Do not cut a UTF-8 sequence in half. */
		while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 1 && (unsigned char)buf[o - 1] >= 0xc0)
			o--;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

static int fail(struct parse *p, const struct policy_mark *mark, const char *field, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static int fail(struct parse *p, const struct policy_mark *mark, const char *field, const char *fmt,
		...)
{
	char text[sizeof(p->err->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return policy_error_set(p->err, p->source, mark, field, "%s", text);
}

static int fail_nomem(struct parse *p)
{
	policy_error_set(p->err, p->source, NULL, "", "out of memory");
	return -ENOMEM;
}

/* --- the tree ----------------------------------------------------------------------------------
 */

static void ynode_free(struct ynode *node)
{
	size_t i;

	if (!node)
		return;
	for (i = 0; i < node->n_items; i++)
		ynode_free(node->items[i]);
	free(node->items);
	free(node->value);
	free(node);
}

static int ynode_append(struct ynode *parent, struct ynode *child)
{
	if (parent->n_items == parent->capacity) {
		size_t capacity = parent->capacity ? parent->capacity * 2 : 8;
		struct ynode **items = realloc(parent->items, capacity * sizeof(*items));

		if (!items)
			return -ENOMEM;
		parent->items = items;
		parent->capacity = capacity;
	}
	parent->items[parent->n_items++] = child;
	return 0;
}

static void mark_from_yaml(struct policy_mark *mark, yaml_mark_t ymark)
{
	mark->line = (unsigned)ymark.line + 1;
	mark->column = (unsigned)ymark.column + 1;
}

static int parser_error(struct parse *p, const yaml_parser_t *parser, const char *data, size_t size)
{
	struct policy_mark mark = {1, 1};
	const char *problem = parser->problem ? parser->problem : "syntax error";
	size_t i;

	if (parser->error == YAML_MEMORY_ERROR)
		return fail_nomem(p);
	if (parser->error == YAML_READER_ERROR) {
		/* Reader errors (bad encoding) carry a byte offset, not a mark. */
		for (i = 0; i < parser->problem_offset && i < size; i++) {
			if (data[i] == '\n') {
				mark.line++;
				mark.column = 1;
			} else if (((unsigned char)data[i] & 0xc0) != 0x80) {
				mark.column++;
			}
		}
		return fail(p, &mark, "", "invalid YAML: %s", problem);
	}
	mark_from_yaml(&mark, parser->problem_mark);
	if (parser->context)
		return fail(p, &mark, "", "invalid YAML: %s (%s at line %u)", problem,
			    parser->context, (unsigned)parser->context_mark.line + 1);
	return fail(p, &mark, "", "invalid YAML: %s", problem);
}

static int check_properties(struct parse *p, const struct policy_mark *mark,
			    const yaml_char_t *anchor, const yaml_char_t *tag)
{
	if (anchor)
		return fail(p, mark, "", "YAML anchors and aliases are not supported");
	if (tag)
		return fail(p, mark, "", "YAML tags are not supported");
	return 0;
}

static int ynode_new(enum ynode_kind kind, const struct policy_mark *mark, struct ynode **ret)
{
	struct ynode *node = calloc(1, sizeof(*node));

	if (!node)
		return -ENOMEM;
	node->kind = kind;
	node->mark = *mark;
	*ret = node;
	return 0;
}

/* Reads the event stream into a tree. An empty stream gives a NULL root. */
static int tree_load(struct parse *p, const char *data, size_t size, struct ynode **ret_root)
{
	yaml_parser_t parser;
	yaml_event_t event;
	struct ynode *stack[TREE_DEPTH_MAX];
	struct ynode *root = NULL;
	size_t depth = 0;
	unsigned documents = 0;
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return fail_nomem(p);
	/* libyaml asserts on a NULL input, even an empty one. */
	yaml_parser_set_input_string(&parser, (const unsigned char *)(data ? data : ""),
				     data ? size : 0);

	while (!done) {
		struct policy_mark mark;
		struct ynode *node = NULL;

		if (!yaml_parser_parse(&parser, &event)) {
			r = parser_error(p, &parser, data, size);
			goto out_free;
		}
		mark_from_yaml(&mark, event.start_mark);
		switch (event.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1)
				r = fail(p, &mark, "", "only one YAML document is allowed");
			break;
		case YAML_ALIAS_EVENT:
			r = fail(p, &mark, "", "YAML anchors and aliases are not supported");
			break;
		case YAML_SCALAR_EVENT:
			r = check_properties(p, &mark, event.data.scalar.anchor,
					     event.data.scalar.tag);
			if (r < 0)
				break;
			r = ynode_new(YNODE_SCALAR, &mark, &node);
			if (r < 0)
				break;
			node->value = malloc(event.data.scalar.length + 1);
			if (!node->value) {
				r = -ENOMEM;
				break;
			}
			memcpy(node->value, event.data.scalar.value, event.data.scalar.length);
			node->value[event.data.scalar.length] = '\0';
			node->length = event.data.scalar.length;
			node->plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (event.type == YAML_SEQUENCE_START_EVENT)
				r = check_properties(p, &mark, event.data.sequence_start.anchor,
						     event.data.sequence_start.tag);
			else
				r = check_properties(p, &mark, event.data.mapping_start.anchor,
						     event.data.mapping_start.tag);
			if (r < 0)
				break;
			if (depth == TREE_DEPTH_MAX) {
				r = fail(p, &mark, "", "nested deeper than %d levels",
					 TREE_DEPTH_MAX);
				break;
			}
			r = ynode_new(event.type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQUENCE
									      : YNODE_MAPPING,
				      &mark, &node);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
		if (r == -ENOMEM) {
			ynode_free(node);
			r = fail_nomem(p);
			goto out_free;
		}
		if (r < 0)
			goto out_free;
		if (!node)
			continue;

		if (depth == 0) {
			root = node;
		} else {
			r = ynode_append(stack[depth - 1], node);
			if (r < 0) {
				ynode_free(node);
				r = fail_nomem(p);
				goto out_free;
			}
		}
		if (node->kind != YNODE_SCALAR)
			stack[depth++] = node;
	}

	yaml_parser_delete(&parser);
	*ret_root = root;
	return 0;

out_free:
	ynode_free(root);
	yaml_parser_delete(&parser);
	return r;
}

/* --- typed access ------------------------------------------------------------------------------
 */

static bool scalar_is_null(const struct ynode *node)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	size_t i;

	if (node->kind != YNODE_SCALAR || !node->plain)
		return false;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(node->value, nulls[i]) == 0)
			return true;
	return false;
}

static bool scalar_is_bool(const struct ynode *node)
{
	/* YAML 1.1, which libyaml implements. */
	static const char *const bools[] = {
		"y",	"Y",	"yes",	 "Yes",	  "YES",   "n",	 "N",  "no", "No",  "NO",  "true",
		"True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
	};
	size_t i;

	if (node->kind != YNODE_SCALAR || !node->plain)
		return false;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (strcmp(node->value, bools[i]) == 0)
			return true;
	return false;
}

static bool scalar_is_integer(const struct ynode *node)
{
	const char *s = node->value;

	if (node->kind != YNODE_SCALAR || !node->plain)
		return false;
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static const char *ynode_type_name(const struct ynode *node)
{
	if (node->kind == YNODE_SEQUENCE)
		return "a sequence";
	if (node->kind == YNODE_MAPPING)
		return "a mapping";
	if (scalar_is_null(node))
		return "null";
	if (scalar_is_bool(node))
		return "a boolean";
	if (scalar_is_integer(node))
		return "an integer";
	return "a string";
}

/* Any scalar but null is a string; a value with a NUL inside is not a C string, so refuse it. */
static int get_string(struct parse *p, const struct ynode *node, const char *field,
		      const char **ret)
{
	if (node->kind != YNODE_SCALAR || scalar_is_null(node))
		return fail(p, &node->mark, field, "expected a string, found %s",
			    ynode_type_name(node));
	if (strlen(node->value) != node->length)
		return fail(p, &node->mark, field, "contains a NUL character");
	*ret = node->value;
	return 0;
}

static int dup_string(struct parse *p, const char *s, char **ret)
{
	*ret = strdup(s);
	if (!*ret)
		return fail_nomem(p);
	return 0;
}

/* "path.key" or "key", cut at size: field names are short, a cut one is still a message. */
static void field_join(char *buf, size_t size, const char *path, const char *key)
{
	size_t used = 0;

	for (const char *parts[] = {path, *path ? "." : "", key}, **part = parts; part < parts + 3;
	     part++)
		for (const char *c = *part; *c && used + 1 < size; c++)
			buf[used++] = *c;
	buf[used] = '\0';
}

/* Sorts a mapping's values by key into values[] (same order as names[]), refusing non-string,
 * unknown and repeated keys. */
static int map_index(struct parse *p, const struct ynode *map, const char *path,
		     const char *const names[], size_t n_names, const struct ynode *values[])
{
	const struct ynode *keys[16] = {0};
	size_t i, k;

	for (k = 0; k < n_names; k++)
		values[k] = NULL;
	for (i = 0; i + 1 < map->n_items; i += 2) {
		const struct ynode *key = map->items[i];
		char field[sizeof(p->err->field)], quoted[POLICY_QUOTE_MAX];
		char expected[256] = "";

		if (key->kind != YNODE_SCALAR || scalar_is_null(key) ||
		    strlen(key->value) != key->length)
			return fail(p, &key->mark, path, "keys must be strings, found %s",
				    ynode_type_name(key));
		field_join(field, sizeof(field), path, key->value);
		for (k = 0; k < n_names; k++)
			if (strcmp(key->value, names[k]) == 0)
				break;
		if (k == n_names) {
			for (k = 0; k < n_names; k++) {
				strcat(expected, k ? ", " : "");
				strcat(expected, names[k]);
			}
			return fail(p, &key->mark, field, "unknown key %s (expected one of %s)",
				    policy_quote(key->value, quoted), expected);
		}
		if (values[k])
			return fail(p, &key->mark, field, "duplicate key (first at line %u)",
				    keys[k]->mark.line);
		keys[k] = key;
		values[k] = map->items[i + 1];
	}
	return 0;
}

static int require(struct parse *p, const struct ynode *map, const char *path, const char *name,
		   const struct ynode *value)
{
	char field[sizeof(p->err->field)];

	if (value)
		return 0;
	field_join(field, sizeof(field), path, name);
	return fail(p, &map->mark, field, "required key is missing");
}

static int expect_kind(struct parse *p, const struct ynode *node, const char *field,
		       enum ynode_kind kind)
{
	if (node->kind == kind)
		return 0;
	return fail(p, &node->mark, field, "expected %s, found %s",
		    kind == YNODE_MAPPING ? "a mapping" : "a sequence", ynode_type_name(node));
}

/* An absolute path the admin wrote literally: normalised, no variables. */
static int parse_literal_path(struct parse *p, const struct ynode *node, const char *field,
			      char **ret)
{
	char quoted[POLICY_QUOTE_MAX];
	const char *s = NULL, *why;
	int r;

	r = get_string(p, node, field, &s);
	if (r < 0)
		return r;
	if (strstr(s, "${"))
		return fail(p, &node->mark, field,
			    "variables are expanded only in views[].target, not here");
	r = policy_path_normalize(s, ret, &why);
	if (r == -ENOMEM)
		return fail_nomem(p);
	if (r < 0)
		return fail(p, &node->mark, field, "%s: %s", policy_quote(s, quoted), why);
	return 0;
}

static int parse_size_value(struct parse *p, const struct ynode *node, const char *field,
			    uint64_t *ret)
{
	char quoted[POLICY_QUOTE_MAX];
	const char *s = NULL;
	int r;

	r = get_string(p, node, field, &s);
	if (r < 0)
		return r;
	r = policy_parse_size(s, ret);
	if (r == -ERANGE)
		return fail(p, &node->mark, field, "size %s is too large", policy_quote(s, quoted));
	if (r < 0)
		return fail(p, &node->mark, field,
			    "invalid size %s (expected a whole number and a unit: B, KiB, MiB, "
			    "GiB or TiB, as in 20GiB)",
			    policy_quote(s, quoted));
	if (*ret == 0)
		return fail(p, &node->mark, field, "size must be greater than zero");
	return 0;
}

static int parse_duration_value(struct parse *p, const struct ynode *node, const char *field,
				uint64_t *ret)
{
	char quoted[POLICY_QUOTE_MAX];
	const char *s = NULL;
	int r;

	r = get_string(p, node, field, &s);
	if (r < 0)
		return r;
	r = policy_parse_duration(s, ret);
	if (r == -ERANGE)
		return fail(p, &node->mark, field, "duration %s is too large",
			    policy_quote(s, quoted));
	if (r < 0)
		return fail(p, &node->mark, field,
			    "invalid duration %s (expected a whole number and a unit: s, m, h "
			    "or d, as in 24h)",
			    policy_quote(s, quoted));
	return 0;
}

/* --- the schema --------------------------------------------------------------------------------
 */

static int parse_version(struct parse *p, const struct ynode *node, unsigned *ret)
{
	char quoted[POLICY_QUOTE_MAX];

	if (!scalar_is_integer(node))
		return fail(p, &node->mark, "version", "expected an integer, found %s",
			    ynode_type_name(node));
	if (strcmp(node->value, "1") != 0)
		return fail(p, &node->mark, "version",
			    "unsupported version %s (this jobfs reads version 1)",
			    policy_quote(node->value, quoted));
	*ret = POLICY_VERSION;
	return 0;
}

static int parse_lower(struct parse *p, const struct ynode *node, const char *path,
		       struct policy_view *view)
{
	char field[sizeof(p->err->field)];
	size_t i, j;
	int r;

	field_join(field, sizeof(field), path, "lower");
	r = expect_kind(p, node, field, YNODE_SEQUENCE);
	if (r < 0)
		return r;
	if (node->n_items > POLICY_LOWERS_MAX)
		return fail(p, &node->mark, field, "more than %d lower layers", POLICY_LOWERS_MAX);
	if (node->n_items) {
		view->lower = calloc(node->n_items, sizeof(*view->lower));
		if (!view->lower)
			return fail_nomem(p);
	}
	for (i = 0; i < node->n_items; i++) {
		char item[sizeof(field) + 24], quoted[POLICY_QUOTE_MAX];

		snprintf(item, sizeof(item), "%s[%zu]", field, i);
		r = parse_literal_path(p, node->items[i], item, &view->lower[i]);
		if (r < 0)
			return r;
		view->n_lower++;
		for (j = 0; j < i; j++)
			if (strcmp(view->lower[j], view->lower[i]) == 0)
				return fail(p, &node->items[i]->mark, item,
					    "%s is listed twice (also lower[%zu])",
					    policy_quote(view->lower[i], quoted), j);
	}
	return 0;
}

/* A path that may hold ${VAR} (a target, a pass_through path): a literal one is normalised now, a
 * template checked for syntax and in full once expanded. */
static int parse_template_path(struct parse *p, const struct ynode *node, const char *field,
			       char **ret)
{
	char quoted[POLICY_QUOTE_MAX], reason[256];
	const char *s = NULL, *why;
	int r;

	r = get_string(p, node, field, &s);
	if (r < 0)
		return r;
	r = policy_expand_string(s, NULL, NULL, NULL, NULL, reason, sizeof(reason));
	if (r == -ENOMEM)
		return fail_nomem(p);
	if (r < 0)
		return fail(p, &node->mark, field, "%s", reason);
	if (!strstr(s, "${")) {
		r = policy_path_normalize(s, ret, &why);
		if (r == -ENOMEM)
			return fail_nomem(p);
		if (r < 0)
			return fail(p, &node->mark, field, "%s: %s", policy_quote(s, quoted), why);
		return 0;
	}
	/* A template is checked in full once expanded; here it must at least start like an
	 * absolute path could. */
	if (s[0] != '/' && strncmp(s, "${", 2) != 0)
		return fail(p, &node->mark, field, "%s: not an absolute path",
			    policy_quote(s, quoted));
	return dup_string(p, s, ret);
}

static int parse_target(struct parse *p, const struct ynode *node, const char *path,
			struct policy_view *view)
{
	char field[sizeof(p->err->field)];

	field_join(field, sizeof(field), path, "target");
	view->target_mark = node->mark;
	return parse_template_path(p, node, field, &view->target);
}

static int parse_pass_through(struct parse *p, const struct ynode *node, const char *path,
			      struct policy_view *view)
{
	char field[sizeof(p->err->field)];
	int r;

	field_join(field, sizeof(field), path, "pass_through");
	r = expect_kind(p, node, field, YNODE_SEQUENCE);
	if (r < 0)
		return r;
	if (node->n_items > POLICY_PASS_THROUGH_MAX)
		return fail(p, &node->mark, field, "more than %d paths", POLICY_PASS_THROUGH_MAX);
	if (node->n_items) {
		view->pass_through = calloc(node->n_items, sizeof(*view->pass_through));
		view->pass_through_marks = calloc(node->n_items, sizeof(*view->pass_through_marks));
		if (!view->pass_through || !view->pass_through_marks)
			return fail_nomem(p);
	}
	for (size_t i = 0; i < node->n_items; i++) {
		char item[sizeof(p->err->field) + 24];

		snprintf(item, sizeof(item), "%s[%zu]", field, i);
		view->pass_through_marks[i] = node->items[i]->mark;
		r = parse_template_path(p, node->items[i], item, &view->pass_through[i]);
		if (r < 0)
			return r;
		view->n_pass_through++;
	}
	return 0;
}

static int parse_promote_kind(struct parse *p, const struct ynode *node, const char *field,
			      enum policy_promote_kind *ret)
{
	char quoted[POLICY_QUOTE_MAX];
	const char *s = NULL;
	int r;

	r = get_string(p, node, field, &s);
	if (r < 0)
		return r;
	if (policy_promote_from_name(s, ret) < 0)
		return fail(p, &node->mark, field, "unknown kind %s (expected %s)",
			    policy_quote(s, quoted), policy_promote_names());
	return 0;
}

/* A glob over paths relative to the view's root: not empty, not absolute, one printable line. */
static int parse_pattern(struct parse *p, const struct ynode *node, const char *field, char **ret)
{
	const char *s = NULL;
	int r;

	r = get_string(p, node, field, &s);
	if (r < 0)
		return r;
	if (!*s)
		return fail(p, &node->mark, field, "empty pattern");
	if (s[0] == '/')
		return fail(p, &node->mark, field,
			    "patterns are relative to the view's root and must not start with '/'");
	if (strlen(s) > POLICY_PATTERN_MAX)
		return fail(p, &node->mark, field, "pattern longer than %d bytes",
			    POLICY_PATTERN_MAX);
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return fail(p, &node->mark, field, "contains a control character");
	return dup_string(p, s, ret);
}

static int parse_ignore(struct parse *p, const struct ynode *node, const char *field,
			struct policy_promote *ret)
{
	int r;

	r = expect_kind(p, node, field, YNODE_SEQUENCE);
	if (r < 0)
		return r;
	if (node->n_items > POLICY_IGNORES_MAX)
		return fail(p, &node->mark, field, "more than %d patterns", POLICY_IGNORES_MAX);
	if (node->n_items) {
		ret->ignore = calloc(node->n_items, sizeof(*ret->ignore));
		if (!ret->ignore)
			return fail_nomem(p);
	}
	for (size_t i = 0; i < node->n_items; i++) {
		char item[sizeof(p->err->field) * 2 + 24];

		snprintf(item, sizeof(item), "%s[%zu]", field, i);
		r = parse_pattern(p, node->items[i], item, &ret->ignore[i]);
		if (r < 0)
			return r;
		ret->n_ignore++;
	}
	return 0;
}

/* `when:` or `trust:`: a mapping from context keys to non-empty lists of globs. */
static int parse_selector(struct parse *p, const struct ynode *node, const char *field,
			  struct policy_selector *ret)
{
	const char *names[POLICY_CONTEXT_COUNT];
	const struct ynode *values[POLICY_CONTEXT_COUNT];
	int r;

	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		names[k] = policy_context_key_name((enum policy_context_key)k);
	r = expect_kind(p, node, field, YNODE_MAPPING);
	if (r < 0)
		return r;
	if (node->n_items == 0)
		return fail(p, &node->mark, field,
			    "empty selector (leave it out to match every job, or name one of %s)",
			    policy_context_key_names());
	r = map_index(p, node, field, names, POLICY_CONTEXT_COUNT, values);
	if (r < 0)
		return r;
	ret->mark = node->mark;
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		const struct ynode *list = values[k];
		char sub[sizeof(p->err->field) * 2];

		if (!list)
			continue;
		field_join(sub, sizeof(sub), field, names[k]);
		r = expect_kind(p, list, sub, YNODE_SEQUENCE);
		if (r < 0)
			return r;
		if (list->n_items == 0)
			return fail(p, &list->mark, sub,
				    "empty list matches no job (leave the key out to match any)");
		if (list->n_items > POLICY_SELECTOR_PATTERNS_MAX)
			return fail(p, &list->mark, sub, "more than %d patterns",
				    POLICY_SELECTOR_PATTERNS_MAX);
		ret->patterns[k] = calloc(list->n_items, sizeof(char *));
		if (!ret->patterns[k])
			return fail_nomem(p);
		for (size_t i = 0; i < list->n_items; i++) {
			char item[sizeof(sub) + 24];
			const char *s = NULL;

			snprintf(item, sizeof(item), "%s[%zu]", sub, i);
			r = get_string(p, list->items[i], item, &s);
			if (r < 0)
				return r;
			if (!*s)
				return fail(p, &list->items[i]->mark, item, "empty pattern");
			if (strlen(s) > POLICY_PATTERN_MAX)
				return fail(p, &list->items[i]->mark, item,
					    "pattern longer than %d bytes", POLICY_PATTERN_MAX);
			for (const char *c = s; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					return fail(p, &list->items[i]->mark, item,
						    "contains a control character");
			r = dup_string(p, s, &ret->patterns[k][i]);
			if (r < 0)
				return r;
			ret->n_patterns[k]++;
		}
	}
	return 0;
}

/* true or false (any YAML case: true, True, TRUE); not yes/no/on/off, which read as strings to
 * most people. */
static int parse_bool(struct parse *p, const struct ynode *node, const char *field, bool *ret)
{
	char quoted[POLICY_QUOTE_MAX];

	if (node->kind == YNODE_SCALAR && node->plain) {
		if (!strcmp(node->value, "true") || !strcmp(node->value, "True") ||
		    !strcmp(node->value, "TRUE")) {
			*ret = true;
			return 0;
		}
		if (!strcmp(node->value, "false") || !strcmp(node->value, "False") ||
		    !strcmp(node->value, "FALSE")) {
			*ret = false;
			return 0;
		}
	}
	if (node->kind == YNODE_SCALAR && !scalar_is_null(node))
		return fail(p, &node->mark, field, "expected true or false, found %s%s",
			    node->plain ? "" : "the quoted string ",
			    policy_quote(node->value, quoted));
	return fail(p, &node->mark, field, "expected true or false, found %s",
		    ynode_type_name(node));
}

/* `promote: KIND`, or `promote: {kind: KIND, ignore: [PATTERN...], trust: SELECTOR}`. */
static int parse_promote(struct parse *p, const struct ynode *node, const char *path,
			 struct policy_promote *ret)
{
	enum { KIND, IGNORE, TRUST, N_KEYS };
	static const char *const names[N_KEYS] = {"kind", "ignore", "trust"};
	const struct ynode *values[N_KEYS];
	char field[sizeof(p->err->field)], sub[sizeof(p->err->field) * 2];
	int r;

	field_join(field, sizeof(field), path, "promote");
	if (node->kind != YNODE_MAPPING)
		return parse_promote_kind(p, node, field, &ret->kind);
	r = map_index(p, node, field, names, N_KEYS, values);
	if (r < 0)
		return r;
	r = require(p, node, field, "kind", values[KIND]);
	if (r < 0)
		return r;
	field_join(sub, sizeof(sub), field, "kind");
	r = parse_promote_kind(p, values[KIND], sub, &ret->kind);
	if (r < 0)
		return r;
	if (values[IGNORE]) {
		field_join(sub, sizeof(sub), field, "ignore");
		r = parse_ignore(p, values[IGNORE], sub, ret);
		if (r < 0)
			return r;
	}
	if (values[TRUST]) {
		field_join(sub, sizeof(sub), field, "trust");
		r = parse_selector(p, values[TRUST], sub, &ret->trust);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_view(struct parse *p, const struct ynode *node, size_t index,
		      struct policy *policy)
{
	enum { NAME, LOWER, TARGET, QUOTA, PROMOTE, PASS_THROUGH, WHEN, VOLATILE, N_KEYS };
	static const char *const names[N_KEYS] = {"name",    "lower",	     "target", "quota",
						  "promote", "pass_through", "when",   "volatile"};
	struct policy_view *view = &policy->views[index];
	const struct ynode *values[N_KEYS];
	char path[32], field[sizeof(p->err->field)], quoted[POLICY_QUOTE_MAX];
	const char *name;
	size_t j;
	int r;

	snprintf(path, sizeof(path), "views[%zu]", index);
	r = expect_kind(p, node, path, YNODE_MAPPING);
	if (r < 0)
		return r;
	view->mark = node->mark;
	r = map_index(p, node, path, names, N_KEYS, values);
	if (r < 0)
		return r;
	if ((r = require(p, node, path, "name", values[NAME])) < 0 ||
	    (r = require(p, node, path, "lower", values[LOWER])) < 0 ||
	    (r = require(p, node, path, "target", values[TARGET])) < 0)
		return r;

	field_join(field, sizeof(field), path, "name");
	r = get_string(p, values[NAME], field, &name);
	if (r < 0)
		return r;
	if (!policy_view_name_valid(name))
		return fail(p, &values[NAME]->mark, field,
			    "invalid view name %s (expected 1 to %d of A-Z a-z 0-9 . _ -, "
			    "starting with a letter or digit)",
			    policy_quote(name, quoted), POLICY_NAME_MAX);
	for (j = 0; j < index; j++)
		if (strcmp(policy->views[j].name, name) == 0)
			return fail(p, &values[NAME]->mark, field,
				    "duplicate view name %s (also views[%zu])",
				    policy_quote(name, quoted), j);
	r = dup_string(p, name, &view->name);
	if (r < 0)
		return r;

	r = parse_lower(p, values[LOWER], path, view);
	if (r < 0)
		return r;
	r = parse_target(p, values[TARGET], path, view);
	if (r < 0)
		return r;
	if (values[QUOTA]) {
		field_join(field, sizeof(field), path, "quota");
		r = parse_size_value(p, values[QUOTA], field, &view->quota);
		if (r < 0)
			return r;
	}
	if (values[PROMOTE]) {
		r = parse_promote(p, values[PROMOTE], path, &view->promote);
		if (r < 0)
			return r;
	}
	if (values[PASS_THROUGH]) {
		r = parse_pass_through(p, values[PASS_THROUGH], path, view);
		if (r < 0)
			return r;
	}
	if (values[WHEN]) {
		field_join(field, sizeof(field), path, "when");
		r = parse_selector(p, values[WHEN], field, &view->when);
		if (r < 0)
			return r;
	}
	if (values[VOLATILE]) {
		field_join(field, sizeof(field), path, "volatile");
		r = parse_bool(p, values[VOLATILE], field, &view->volatile_upper);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_views(struct parse *p, const struct ynode *node, struct policy *policy)
{
	size_t i;
	int r;

	r = expect_kind(p, node, "views", YNODE_SEQUENCE);
	if (r < 0)
		return r;
	if (node->n_items > POLICY_VIEWS_MAX)
		return fail(p, &node->mark, "views", "more than %d views", POLICY_VIEWS_MAX);
	if (node->n_items) {
		policy->views = calloc(node->n_items, sizeof(*policy->views));
		if (!policy->views)
			return fail_nomem(p);
	}
	for (i = 0; i < node->n_items; i++) {
		/* Count it first, so policy_free() sees what a failed parse_view() left. */
		policy->n_views++;
		r = parse_view(p, node->items[i], i, policy);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_gc(struct parse *p, const struct ynode *node, struct policy_gc *gc)
{
	enum { KEEP_UNMOUNTED, MAX_TOTAL, MAX_GENERATIONS, N_KEYS };
	static const char *const names[N_KEYS] = {"keep_unmounted", "max_total", "max_generations"};
	const struct ynode *values[N_KEYS];
	int r;

	r = expect_kind(p, node, "gc", YNODE_MAPPING);
	if (r < 0)
		return r;
	r = map_index(p, node, "gc", names, N_KEYS, values);
	if (r < 0)
		return r;
	if (values[KEEP_UNMOUNTED]) {
		r = parse_duration_value(p, values[KEEP_UNMOUNTED], "gc.keep_unmounted",
					 &gc->keep_unmounted);
		if (r < 0)
			return r;
	}
	if (values[MAX_TOTAL]) {
		r = parse_size_value(p, values[MAX_TOTAL], "gc.max_total", &gc->max_total);
		if (r < 0)
			return r;
	}
	if (values[MAX_GENERATIONS]) {
		const struct ynode *v = values[MAX_GENERATIONS];

		if (v->kind != YNODE_SCALAR || !scalar_is_integer(v) || v->value[0] == '-' ||
		    v->value[0] == '+' || strlen(v->value) > 4 || atoi(v->value) < 1 ||
		    atoi(v->value) > POLICY_GENERATIONS_MAX)
			return fail(p, &v->mark, "gc.max_generations",
				    "expected a whole number from 1 to %d, found %s",
				    POLICY_GENERATIONS_MAX,
				    v->kind == YNODE_SCALAR && scalar_is_integer(v)
					    ? v->value
					    : ynode_type_name(v));
		gc->max_generations = (uint64_t)atoi(v->value);
	}
	return 0;
}

static int parse_hooks(struct parse *p, const struct ynode *node, struct policy_hooks *hooks)
{
	enum { FAIL_OPEN, KILL_ON_UMOUNT, N_KEYS };
	static const char *const names[N_KEYS] = {"fail_open", "kill_on_umount"};
	const struct ynode *values[N_KEYS];
	int r;

	r = expect_kind(p, node, "hooks", YNODE_MAPPING);
	if (r < 0)
		return r;
	r = map_index(p, node, "hooks", names, N_KEYS, values);
	if (r < 0)
		return r;
	if (values[FAIL_OPEN]) {
		r = parse_bool(p, values[FAIL_OPEN], "hooks.fail_open", &hooks->fail_open);
		if (r < 0)
			return r;
	}
	if (values[KILL_ON_UMOUNT]) {
		r = parse_bool(p, values[KILL_ON_UMOUNT], "hooks.kill_on_umount",
			       &hooks->kill_on_umount);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_root(struct parse *p, const struct ynode *root, struct policy *policy)
{
	enum { VERSION, STATE_DIR, VIEWS, GC, HOOKS, N_KEYS };
	static const char *const names[N_KEYS] = {"version", "state_dir", "views", "gc", "hooks"};
	const struct ynode *values[N_KEYS];
	struct policy_mark start = {1, 1};
	int r;

	if (!root)
		return fail(p, &start, "",
			    "the policy is empty (expected a mapping with version "
			    "and views)");
	if (root->kind != YNODE_MAPPING)
		return fail(p, &root->mark, "", "expected a mapping at the top level, found %s",
			    ynode_type_name(root));
	r = map_index(p, root, "", names, N_KEYS, values);
	if (r < 0)
		return r;
	if ((r = require(p, root, "", "version", values[VERSION])) < 0 ||
	    (r = require(p, root, "", "views", values[VIEWS])) < 0)
		return r;

	r = parse_version(p, values[VERSION], &policy->version);
	if (r < 0)
		return r;
	if (values[STATE_DIR]) {
		r = parse_literal_path(p, values[STATE_DIR], "state_dir", &policy->state_dir);
		if (r < 0)
			return r;
		if (strcmp(policy->state_dir, "/") == 0)
			return fail(p, &values[STATE_DIR]->mark, "state_dir", "must not be '/'");
	} else {
		r = dup_string(p, POLICY_DEFAULT_STATE_DIR, &policy->state_dir);
		if (r < 0)
			return r;
	}
	r = parse_views(p, values[VIEWS], policy);
	if (r < 0)
		return r;
	policy->gc.keep_unmounted = POLICY_DEFAULT_KEEP_UNMOUNTED;
	policy->gc.max_generations = POLICY_DEFAULT_MAX_GENERATIONS;
	if (values[GC]) {
		r = parse_gc(p, values[GC], &policy->gc);
		if (r < 0)
			return r;
	}
	policy->hooks.fail_open = true;
	policy->hooks.kill_on_umount = true;
	if (values[HOOKS]) {
		r = parse_hooks(p, values[HOOKS], &policy->hooks);
		if (r < 0)
			return r;
	}
	return policy_check_targets(policy, true, p->err);
}

/* True when inner lies strictly below outer (both normalised, outer not "/"). */
static bool path_inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	return strncmp(inner, outer, n) == 0 && inner[n] == '/';
}

/* Each pass_through path of view i strictly inside its target and apart from the others. (It
 * cannot overlap the state dir: its target does not.) */
static int check_pass_through(const struct policy *policy, size_t i, bool literal_only,
			      struct policy_error *err)
{
	const struct policy_view *view = &policy->views[i];
	char quoted[POLICY_QUOTE_MAX], other[POLICY_QUOTE_MAX];

	for (size_t j = 0; j < view->n_pass_through; j++) {
		const char *path = view->pass_through[j];
		const struct policy_mark *mark = &view->pass_through_marks[j];
		char field[64];

		if (literal_only && strstr(path, "${"))
			continue;
		snprintf(field, sizeof(field), "views[%zu].pass_through[%zu]", i, j);
		if (!path_inside(path, view->target))
			return policy_error_set(err, policy->source, mark, field,
						"%s does not lie strictly inside the target %s",
						policy_quote(path, quoted),
						policy_quote(view->target, other));
		for (size_t k = 0; k < j; k++) {
			if (literal_only && strstr(view->pass_through[k], "${"))
				continue;
			if (policy_path_overlaps(path, view->pass_through[k]))
				return policy_error_set(err, policy->source, mark, field,
							"%s overlaps %s, pass_through[%zu]",
							policy_quote(path, quoted),
							policy_quote(view->pass_through[k], other),
							k);
		}
	}
	return 0;
}

/* View i nested in the earlier view j (its target strictly inside j's): the daemon mounts it
 * once j is served and it is unmounted first. Not in or around one of j's pass-throughs (the real
 * directory bound back there would hide it, or it them), and none of its lowers inside j's target,
 * which it would read through j. */
static int check_nested(const struct policy *policy, size_t i, size_t j, struct policy_error *err)
{
	const struct policy_view *view = &policy->views[i], *outer = &policy->views[j];
	char field[64], quoted[POLICY_QUOTE_MAX], other[POLICY_QUOTE_MAX];

	snprintf(field, sizeof(field), "views[%zu].target", i);
	for (size_t k = 0; k < outer->n_pass_through; k++)
		if (policy_path_overlaps(view->target, outer->pass_through[k]))
			return policy_error_set(err, policy->source, &view->target_mark, field,
						"%s overlaps %s, a pass_through of view '%s'",
						policy_quote(view->target, quoted),
						policy_quote(outer->pass_through[k], other),
						outer->name);
	for (size_t k = 0; k < view->n_lower; k++)
		if (policy_path_overlaps(view->lower[k], outer->target)) {
			snprintf(field, sizeof(field), "views[%zu].lower[%zu]", i, k);
			return policy_error_set(err, policy->source, &view->target_mark, field,
						"%s overlaps %s, the target of view '%s' this "
						"view is nested in",
						policy_quote(view->lower[k], quoted),
						policy_quote(outer->target, other), outer->name);
		}
	return 0;
}

int policy_check_targets(const struct policy *policy, bool literal_only, struct policy_error *err)
{
	size_t i, j;
	int r;

	for (i = 0; i < policy->n_views; i++) {
		const struct policy_view *view = &policy->views[i];
		char field[48], quoted[POLICY_QUOTE_MAX], other[POLICY_QUOTE_MAX];

		if (literal_only && strstr(view->target, "${"))
			continue;
		snprintf(field, sizeof(field), "views[%zu].target", i);
		if (strcmp(view->target, "/") == 0)
			return policy_error_set(err, policy->source, &view->target_mark, field,
						"must not be '/'");
		if (policy_path_overlaps(view->target, policy->state_dir))
			return policy_error_set(err, policy->source, &view->target_mark, field,
						"%s overlaps state_dir %s",
						policy_quote(view->target, quoted),
						policy_quote(policy->state_dir, other));
		for (j = 0; j < i; j++) {
			const struct policy_view *earlier = &policy->views[j];

			if (literal_only && strstr(earlier->target, "${"))
				continue;
			if (strcmp(view->target, earlier->target) == 0)
				return policy_error_set(err, policy->source, &view->target_mark,
							field, "%s is also the target of view '%s'",
							policy_quote(view->target, quoted),
							earlier->name);
			if (path_inside(view->target, earlier->target)) {
				r = check_nested(policy, i, j, err);
				if (r < 0)
					return r;
				continue;
			}
			if (policy_path_overlaps(view->target, earlier->target))
				return policy_error_set(
					err, policy->source, &view->target_mark, field,
					"%s contains %s, the target of view '%s' listed before it "
					"(list the outer view first)",
					policy_quote(view->target, quoted),
					policy_quote(earlier->target, other), earlier->name);
		}
		r = check_pass_through(policy, i, literal_only, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- entry points ------------------------------------------------------------------------------
 */

int policy_parse_buffer(const char *data, size_t size, const char *source,
			struct policy **ret_policy, struct policy_error *err)
{
	struct parse p = {.source = source ? source : "<buffer>", .err = err};
	struct ynode *root = NULL;
	struct policy *policy;
	int r;

	policy = calloc(1, sizeof(*policy));
	if (!policy)
		return fail_nomem(&p);
	policy->origin = POLICY_ORIGIN_BUFFER;
	r = dup_string(&p, p.source, &policy->source);
	if (r < 0)
		goto out_free;
	r = tree_load(&p, data, size, &root);
	if (r < 0)
		goto out_free;
	r = parse_root(&p, root, policy);
	if (r < 0)
		goto out_free_tree;

	ynode_free(root);
	*ret_policy = policy;
	return 0;

out_free_tree:
	ynode_free(root);
out_free:
	policy_free(policy);
	return r;
}

int policy_parse_file(const char *path, struct policy **ret_policy, struct policy_error *err)
{
	struct parse p = {.source = path, .err = err};
	struct policy *policy;
	struct stat st;
	size_t size = 0;
	char *data;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		policy_error_set(err, path, NULL, "", "cannot open policy '%s': %s", path,
				 strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		policy_error_set(err, path, NULL, "", "cannot stat policy '%s': %s", path,
				 strerror(-r));
		goto out_close;
	}
	/* Regular files, and pipes for `--policy <(...)`. */
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		r = policy_error_set(err, path, NULL, "", "policy '%s' is not a regular file",
				     path);
		goto out_close;
	}
	data = malloc(POLICY_FILE_MAX + 1);
	if (!data) {
		r = fail_nomem(&p);
		goto out_close;
	}
	for (;;) {
		ssize_t n = read(fd, data + size, POLICY_FILE_MAX + 1 - size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			policy_error_set(err, path, NULL, "", "cannot read policy '%s': %s", path,
					 strerror(-r));
			goto out_free;
		}
		if (n == 0)
			break;
		size += (size_t)n;
		if (size > POLICY_FILE_MAX) {
			policy_error_set(err, path, NULL, "", "policy '%s' is larger than %d bytes",
					 path, POLICY_FILE_MAX);
			r = -EFBIG;
			goto out_free;
		}
	}
	r = policy_parse_buffer(data, size, path, &policy, err);
	if (r < 0)
		goto out_free;
	policy->origin = POLICY_ORIGIN_FILE;
	*ret_policy = policy;

out_free:
	free(data);
out_close:
	close(fd);
	return r;
}

int policy_load(const char *option_path, const char *env_path, const char *system_path,
		struct policy **ret_policy, struct policy_error *err)
{
	struct policy *policy;
	enum policy_origin origin;
	int r;

	if (option_path) {
		origin = POLICY_ORIGIN_OPTION;
		r = policy_parse_file(option_path, &policy, err);
	} else if (env_path && *env_path) {
		origin = POLICY_ORIGIN_ENV;
		r = policy_parse_file(env_path, &policy, err);
	} else {
		origin = POLICY_ORIGIN_SYSTEM;
		r = system_path ? policy_parse_file(system_path, &policy, err) : -ENOENT;
		/* Only an absent system file falls back; an unreadable one is an error. */
		if (r == -ENOENT) {
			origin = POLICY_ORIGIN_BUILTIN;
			r = policy_parse_buffer(policy_builtin_yaml, strlen(policy_builtin_yaml),
						POLICY_BUILTIN_SOURCE, &policy, err);
		}
	}
	if (r < 0)
		return r;
	policy->origin = origin;
	*ret_policy = policy;
	return 0;
}

void policy_view_free(struct policy_view *view)
{
	size_t j;

	free(view->name);
	for (j = 0; j < view->n_lower; j++)
		free(view->lower[j]);
	free(view->lower);
	free(view->target);
	for (j = 0; j < view->promote.n_ignore; j++)
		free(view->promote.ignore[j]);
	free(view->promote.ignore);
	for (j = 0; j < view->n_pass_through; j++)
		free(view->pass_through[j]);
	free(view->pass_through);
	free(view->pass_through_marks);
	policy_selector_free(&view->promote.trust);
	policy_selector_free(&view->when);
	*view = (struct policy_view){0};
}

void policy_free(struct policy *policy)
{
	size_t i;

	if (!policy)
		return;
	for (i = 0; i < policy->n_views; i++)
		policy_view_free(&policy->views[i]);
	free(policy->views);
	free(policy->state_dir);
	free(policy->source);
	free(policy->job_id);
	free(policy);
}
