/* Shared by the files of the jobfs program: the verb table's row, the verbs' handlers, and the
 * helpers that report usage errors the same way for every verb. */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "store.h"

struct cli_verb {
	const char *name;    /* "policy" */
	const char *subverb; /* "check", or NULL for a verb without subverbs */
	const char *usage;   /* options and arguments, for help: "[--job ID] [FILE]" */
	int min_args;	     /* positional arguments, after options */
	int max_args;
	unsigned flags; /* none yet; mount and gc will mark the verbs that need root */
	int (*run)(const struct cli_verb *verb, int argc, char **argv);
	const char *help; /* one line */
};

/* Print "jobfs: VERB: MESSAGE" (escaped, see cli_error) and the "try 'jobfs --help'" line to
 * stderr; return JOBFS_EXIT_USAGE. */
int cli_usage_error(const struct cli_verb *verb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The usage error for getopt_long's '?' or ':' (optstring must start with ':'). */
int cli_option_error(const struct cli_verb *verb, int c, char **argv);

/* After the verb's options (argv[optind] is the first positional argument): check the number of
 * positional arguments against the table. Returns 0 or JOBFS_EXIT_USAGE (reported, naming the
 * first unexpected argument). */
int cli_check_args(const struct cli_verb *verb, int argc, char **argv);

/* The verb's own --help, to stdout. Returns JOBFS_EXIT_OK. */
int cli_verb_help(const struct cli_verb *verb);

struct policy;
struct store;
struct store_record;

/* The job a verb works on (job.c): its state dir, its dir, its lock and its record. */
struct cli_job {
	struct store *store;
	int job_fd;
	int lock_fd;
	struct store_record *rec;
};
/* Opens and locks job ID (waiting up to a second for a passing `jobfs ls`) and reads its record.
 * JOBFS_EXIT_OK, or reported: JOBFS_EXIT_NO_JOB (no state dir, no such job, or an orphan
 * without a valid record), JOBFS_EXIT_BUSY or JOBFS_EXIT_SYSTEM, with nothing left open. */
int cli_job_open(const struct cli_verb *verb, const struct policy *policy, const char *job_id,
		 struct cli_job *ret);
void cli_job_close(struct cli_job *job);
/* What a verb on one job does once its options are parsed: no stray arguments, a valid --job,
 * the policy, the job opened (cli_job_open). Reports errors; on any, nothing is left open or
 * allocated and the exit code is returned. */
int cli_job_verb_open(const struct cli_verb *verb, int argc, char **argv, const char *job_id,
		      const char *policy_path, struct policy **ret_policy, struct cli_job *ret_job);
/* Records the job's outcome in its record. A success is what promote trusts, so its layers are
 * flushed to disk first and the record after them: after a power cut a job is either not marked
 * ok or marked ok with its data whole. Reports errors; JOBFS_EXIT_OK or JOBFS_EXIT_SYSTEM. */
int cli_job_set_outcome(const struct cli_verb *verb, struct cli_job *job,
			enum store_outcome outcome);
struct json_writer;
/* The record's context as a JSON object: every key, null when the job did not say (job.c). */
void cli_json_context(struct json_writer *w, const struct store_record *rec);
/* "  context KEY: VALUE" to stdout for each key the job said. */
void cli_print_context(const struct store_record *rec);

/* The policy from --policy FILE or the usual places, expanded for job_id unless it is NULL.
 * Reports errors; returns JOBFS_EXIT_OK or the exit code. (cmd_policy.c) */
int cli_load_policy(const char *path, const char *job_id, struct policy **ret_policy);
/* Replaces *policy with its expansion for job_id; on failure reports it, returns the exit code
 * and leaves *policy as it was. */
int cli_expand_policy(struct policy **policy, const char *job_id);
/* A usage error unless job_id is NULL or valid. */
int cli_check_job_id(const struct cli_verb *verb, const char *job_id);
int cli_require_job_id(const struct cli_verb *verb, const char *job_id);
/* Print "jobfs: VERB: MESSAGE" to stderr (main.c). Like every line below, one line whatever the
 * arguments hold: control characters in the message are escaped (\n, \t, \xNN). */
void cli_error(const struct cli_verb *verb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print MESSAGE as one line to stderr, escaped the same way, without a prefix. */
void cli_print_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses SECONDS, a whole number up to 1 day; -1 when invalid. */
long cli_parse_seconds(const char *text);

/* cmd_policy.c */
int cmd_policy_check(const struct cli_verb *verb, int argc, char **argv);
int cmd_policy_show(const struct cli_verb *verb, int argc, char **argv);
int cmd_policy_get(const struct cli_verb *verb, int argc, char **argv);
/* cmd_mount.c, cmd_umount.c, cmd_ls.c, cmd_inspect.c, cmd_gc.c */
int cmd_mount(const struct cli_verb *verb, int argc, char **argv);
int cmd_umount(const struct cli_verb *verb, int argc, char **argv);
int cmd_ls(const struct cli_verb *verb, int argc, char **argv);
int cmd_inspect(const struct cli_verb *verb, int argc, char **argv);
int cmd_gc(const struct cli_verb *verb, int argc, char **argv);

/* cmd_manifest.c, cmd_verify.c; the helpers both use live in cmd_manifest.c */
int cmd_manifest(const struct cli_verb *verb, int argc, char **argv);
int cmd_verify(const struct cli_verb *verb, int argc, char **argv);
struct policy_view;
struct manifest;
/* The view called name, or without a name the policy's only view with lower dirs. Reports
 * errors; returns JOBFS_EXIT_OK or JOBFS_EXIT_USAGE. */
int cli_find_view(const struct cli_verb *verb, const struct policy *policy, const char *name,
		  const struct policy_view **ret_view);
/* --threads N, 1 to SCAN_THREADS_MAX. */
int cli_parse_threads(const struct cli_verb *verb, const char *text, unsigned *ret_threads);
/* The manifest of the view's base (its generations, then its lower dirs); threads 0 is the default;
 * progress on stderr when it is a tty, or when progress is true. Reports errors. */
int cli_scan_view(const struct cli_verb *verb, const struct policy *policy,
		  const struct policy_view *view, unsigned threads, bool progress,
		  struct manifest **ret_manifest);
/* cmd_mark_ok.c, cmd_promote.c */
int cmd_mark_ok(const struct cli_verb *verb, int argc, char **argv);
int cmd_promote(const struct cli_verb *verb, int argc, char **argv);
/* cmd_runner.c */
int cmd_runner_install(const struct cli_verb *verb, int argc, char **argv);
/* cmd_exec.c */
int cmd_exec(const struct cli_verb *verb, int argc, char **argv);
/* cmd_job_key.c */
int cmd_job_key(const struct cli_verb *verb, int argc, char **argv);
