/* The runner policy: which views every job gets, parsed from YAML into a plain struct, and the
 * grammars of user input (job IDs, view names, sizes, durations, paths). Errors are returned with
 * their position, never printed. No global state: every call works on what it is given. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_VERSION 1
#define POLICY_SYSTEM_PATH "/etc/jobfs/policy.yaml"
#define POLICY_BUILTIN_SOURCE "<built-in>"
#define POLICY_DEFAULT_STATE_DIR "/var/lib/jobfs"
#define POLICY_DEFAULT_KEEP_UNMOUNTED (24 * 3600)
#define POLICY_DEFAULT_MAX_GENERATIONS 8
#define POLICY_GENERATIONS_MAX 63 /* a stack this deep and 64 lowers fit a view (127 layers) */
#define POLICY_IGNORES_MAX 64	  /* patterns in one view's promote.ignore */
#define POLICY_PATTERN_MAX 1024	  /* bytes of one ignore pattern */

#define POLICY_FILE_MAX (1024 * 1024) /* bytes a policy file may have */
#define POLICY_VIEWS_MAX 256
#define POLICY_LOWERS_MAX 64
#define POLICY_PASS_THROUGH_MAX 16 /* pass_through paths of one view */
#define POLICY_JOB_ID_MAX 128	   /* characters, see policy_job_id_valid() */
#define POLICY_NAME_MAX 64	   /* characters of a view name */
#define POLICY_FORMAT_MAX 32 /* buffer for policy_format_size() and policy_format_duration() */

/* Where a parsed policy came from; policy_load() searches them in this order. */
enum policy_origin {
	POLICY_ORIGIN_BUFFER, /* policy_parse_buffer() */
	POLICY_ORIGIN_FILE,   /* policy_parse_file() */
	POLICY_ORIGIN_OPTION, /* --policy FILE */
	POLICY_ORIGIN_ENV,    /* $JOBFS_POLICY */
	POLICY_ORIGIN_SYSTEM, /* POLICY_SYSTEM_PATH */
	POLICY_ORIGIN_BUILTIN,
};

/* What `jobfs promote` takes from a job's upper layer into the view's base (cli/promote.c has each
 * kind's table of path rules). New kinds are appended. YAML: `promote: KIND` or the mapping form
 * `promote: {kind: KIND, ignore: [PATTERN...]}`. */
enum policy_promote_kind {
	POLICY_PROMOTE_NONE,
	POLICY_PROMOTE_ADD_ONLY,
	POLICY_PROMOTE_PNPM_STORE, /* files add-only, index.db merged, projects and tmp ignored */
	POLICY_PROMOTE_NPM_CACHE,  /* content-v2 add-only, index-v5 merged, tmp ignored */
	POLICY_PROMOTE_PNPM_CACHE, /* metadata add-only, lockfile-verified.jsonl merged */
	POLICY_PROMOTE_KIND_COUNT, /* not a kind: how many there are */
};

/* A position in the policy source, 1-based; line 0 means "no position". */
struct policy_mark {
	unsigned line;
	unsigned column;
};

/* What a job says about itself (`jobfs mount --context KEY=VALUE`), kept in its record; the keys
 * view selectors (`when:`) and promotion trust (`promote.trust:`) match on. New keys are
 * appended. */
enum policy_context_key {
	POLICY_CONTEXT_REPOSITORY, /* "owner/repo" */
	POLICY_CONTEXT_REF,	   /* "refs/heads/main" */
	POLICY_CONTEXT_WORKFLOW,   /* the workflow's name or file */
	POLICY_CONTEXT_JOB,	   /* the job's name in the workflow */
	POLICY_CONTEXT_EVENT,	   /* "push", "pull_request", ... */
	POLICY_CONTEXT_COUNT,	   /* not a key: how many there are */
};

#define POLICY_CONTEXT_VALUE_MAX 1024	/* bytes of one context value */
#define POLICY_SELECTOR_PATTERNS_MAX 64 /* patterns for one key of a selector */

/* A job's context: values[KEY] is NULL when the job did not say. */
struct policy_context {
	const char *values[POLICY_CONTEXT_COUNT];
};

/* `when:` of a view, `trust:` of its promotion: per context key, a list of fnmatch(3) globs
 * (no flags: '*' also matches '/'). A key with n_patterns 0 is absent and matches any job; a
 * present key matches when the job's value matches one of its patterns, and never when the job
 * has no value for it. Every present key must match. */
struct policy_selector {
	char **patterns[POLICY_CONTEXT_COUNT];
	size_t n_patterns[POLICY_CONTEXT_COUNT];
	struct policy_mark mark; /* the selector's mapping in the source; line 0 when absent */
};

struct policy_promote {
	enum policy_promote_kind kind;
	/* globs over paths relative to the view's root, where '*' also matches '/': what matches
	 * is never promoted, whatever the kind says */
	char **ignore;
	size_t n_ignore;
	struct policy_selector trust; /* which jobs may promote into this view */
};

struct policy_view {
	char *name;
	/* n_lower absolute, normalised paths, top first; none makes an empty scratch view */
	char **lower;
	size_t n_lower;
	char *target;	/* a template that may hold ${VAR} until expanded, then absolute */
	uint64_t quota; /* bytes the job's upper layer may hold; 0: no limit */
	struct policy_promote promote;
	/* directories strictly inside target that stay the real directory at the same path: after
	 * the view is mounted each is bound back through it, so reads and writes there go straight
	 * to the real directory, never to the job's layer. Templates like target until expanded,
	 * then absolute and normalised. */
	char **pass_through;
	size_t n_pass_through;
	struct policy_mark *pass_through_marks; /* each one's position, for errors at expansion */
	struct policy_selector when;		/* which jobs get this view */
	struct policy_mark mark;		/* the view's entry in the source */
	struct policy_mark target_mark;		/* its target, for errors found at expansion */
};

struct policy_gc {
	uint64_t keep_unmounted;  /* seconds after unmount before a layer may be collected */
	uint64_t max_total;	  /* bytes all unmounted layers may hold; 0: no limit */
	uint64_t max_generations; /* a deeper base stack is flattened into one generation */
};

/* Settings for the runner hooks (scripts read them with `jobfs policy get hooks.KEY`). */
struct policy_hooks {
	bool fail_open;	     /* a job whose mount fails runs un-isolated, with a warning */
	bool kill_on_umount; /* the completed hook unmounts with --kill */
};

struct policy {
	char *source; /* the file it was read from, or POLICY_BUILTIN_SOURCE */
	enum policy_origin origin;
	unsigned version;
	char *state_dir;
	struct policy_view *views;
	size_t n_views;
	struct policy_gc gc;
	struct policy_hooks hooks;
	char *job_id; /* NULL until policy_expand(); then every target is an absolute path */
};

/* One error, one line: "FILE:LINE:COLUMN: MESSAGE" (or "MESSAGE" alone when line is 0, for errors
 * about the file as a whole). MESSAGE starts with "FIELD: " whenever field is not empty. */
struct policy_error {
	char file[4096];
	unsigned line;
	unsigned column;
	char field[128]; /* e.g. "views[1].quota"; "" for YAML syntax and file errors */
	char message[512];
};

/* Parse and validate. On success return 0 and set *ret_policy (targets still templates); on failure
 * return -EINVAL (invalid policy), -ENOMEM, or -errno from reading the file, and fill *err. */
int policy_parse_buffer(const char *data, size_t size, const char *source,
			struct policy **ret_policy, struct policy_error *err);
int policy_parse_file(const char *path, struct policy **ret_policy, struct policy_error *err);

/* The first found wins: option_path, env_path (if not empty), system_path (skipped when it does not
 * exist; pass POLICY_SYSTEM_PATH, or NULL to skip), then the built-in default. A path that is
 * given but cannot be read is an error, not a reason to fall back. */
int policy_load(const char *option_path, const char *env_path, const char *system_path,
		struct policy **ret_policy, struct policy_error *err);

/* The built-in default policy, as YAML source. */
extern const char policy_builtin_yaml[];

/* Looks up a job's environment variable; returns NULL when it is not set. */
typedef const char *policy_lookup_fn(const char *name, void *userdata);

/* policy_lookup_fn over an environ-style array: userdata is a NULL-terminated char **. */
const char *policy_lookup_environ(const char *name, void *userdata);

/* Expand every target and pass_through path for one job: ${VAR} and ${VAR:-default} from lookup,
 * ${JOB_ID} always job_id. Then every target must be absolute, and no two may overlap; every
 * pass_through path must lie strictly inside its view's target and overlap no other. On success set
 * *ret_policy to a new policy (free it with policy_free); the input is not changed. */
int policy_expand(const struct policy *policy, const char *job_id, policy_lookup_fn *lookup,
		  void *userdata, struct policy **ret_policy, struct policy_error *err);

/* Expand one template. Returns 0 and sets *ret; -EINVAL for a syntax error, -ENOENT for an
 * undefined variable, -ENOMEM; on -EINVAL/-ENOENT, reason (if not NULL) says why. lookup may be
 * NULL to check the syntax only (then ret may be NULL too). */
int policy_expand_string(const char *template, const char *job_id, policy_lookup_fn *lookup,
			 void *userdata, char **ret, char *reason, size_t reason_size);

void policy_free(struct policy *policy);

/* Grammars of user input. */
bool policy_job_id_valid(const char *id);		     /* [A-Za-z0-9][A-Za-z0-9._-]{0,127} */
bool policy_view_name_valid(const char *name);		     /* [A-Za-z0-9][A-Za-z0-9._-]{0,63} */
bool policy_var_name_valid(const char *name, size_t length); /* [A-Za-z_][A-Za-z0-9_]* */

/* A job ID made from a CI system's identifiers (job_key.c), e.g. a runner name, run ID, attempt
 * and job name. Each part must be non-empty. Parts of [A-Za-z0-9_-] only, the first starting with
 * a letter or digit, joined with '.' and no longer than POLICY_JOB_ID_MAX, are the ID as they are
 * ("runner-1.123.1.build"). Otherwise each run of other bytes becomes one '_', the join is cut to
 * leave room, and '.' and 16 hex digits of a 64-bit hash of the exact parts follow
 * ("my_runner.123.1.build.0123456789abcdef"): deterministic, and two different inputs share an ID
 * only if their hashes collide. Returns 0 and fills ret, -EINVAL (no parts, or an empty one) or
 * -ENOMEM. */
int policy_job_key(const char *const *parts, size_t n_parts,
		   char ret[static POLICY_JOB_ID_MAX + 1]);

/* Sizes: a whole number and a unit, B KiB MiB GiB TiB ("20GiB"). Durations: a whole number and a
 * unit, s m h d ("24h"). Return 0, -EINVAL (syntax) or -ERANGE (does not fit 64 bits). */
int policy_parse_size(const char *text, uint64_t *ret_bytes);
int policy_parse_duration(const char *text, uint64_t *ret_seconds);

/* The largest unit that represents the value exactly: 21474836480 -> "20GiB", 90 -> "90s". */
const char *policy_format_size(uint64_t bytes, char buf[static POLICY_FORMAT_MAX]);
const char *policy_format_duration(uint64_t seconds, char buf[static POLICY_FORMAT_MAX]);

/* An absolute path without ".", ".." or empty components and without control characters, to its
 * canonical spelling (no repeated or trailing slashes). Returns 0, -EINVAL with *ret_reason set, or
 * -ENOMEM. */
int policy_path_normalize(const char *path, char **ret, const char **ret_reason);

/* True when a equals b or one contains the other; both normalised. */
bool policy_path_overlaps(const char *a, const char *b);

/* Job contexts and selectors (select.c). */
const char *policy_context_key_name(enum policy_context_key key);
/* "repository, ref, workflow, job or event", for messages. */
const char *policy_context_key_names(void);
/* name is length bytes, not NUL-terminated; -EINVAL for an unknown key. */
int policy_context_key_from_name(const char *name, size_t length, enum policy_context_key *ret_key);
/* A context value: 1 to POLICY_CONTEXT_VALUE_MAX bytes of UTF-8 without control characters
 * (C0, DEL, C1), so one line wherever it is shown. -EINVAL with *ret_reason set. */
int policy_context_value_check(const char *value, const char **ret_reason);
/* Whether the context matches every present key of the selector; when not, *ret_failed (if not
 * NULL) is the first key that did not match. */
bool policy_selector_matches(const struct policy_selector *selector,
			     const struct policy_context *context,
			     enum policy_context_key *ret_failed);
bool policy_selector_present(const struct policy_selector *selector);
/* A copy of the policy with only the views keep() says yes to, in their order (maybe none).
 * Returns 0 or -ENOMEM. */
typedef bool policy_view_filter_fn(const struct policy_view *view, void *userdata);
int policy_select_views(const struct policy *policy, policy_view_filter_fn *keep, void *userdata,
			struct policy **ret_policy);
/* The same with the views whose `when` matches the context. */
int policy_select(const struct policy *policy, const struct policy_context *context,
		  struct policy **ret_policy);

const char *policy_origin_name(enum policy_origin origin);
const char *policy_promote_name(enum policy_promote_kind kind);
/* "none, add-only, pnpm-store, npm-cache or pnpm-cache", for messages. */
const char *policy_promote_names(void);
int policy_promote_from_name(const char *name, enum policy_promote_kind *ret_kind);
