/* The jobfs program: the table of verbs, the one dispatcher, and the help made from the table. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exit_codes.h"
#include "policy.h"

static const struct cli_verb verbs[] = {
	{"policy", "check", "[--job ID] [FILE]", 0, 1, 0, cmd_policy_check,
	 "validate a policy: FILE, or the one jobfs would use"},
	{"policy", "show", "[--job ID] [--json] [--policy FILE]", 0, 0, 0, cmd_policy_show,
	 "print the policy in effect, for job ID if given"},
	{"policy", "get", "[--job ID] [--policy FILE] KEY", 1, 1, 0, cmd_policy_get,
	 "print one value of the policy in effect: state_dir, hooks.fail_open, views.NAME.target"},
	{"mount", NULL,
	 "--job ID [--context KEY=VALUE]... [--namespace host|private] [--policy FILE] "
	 "[--foreground]",
	 0, 0, 0, cmd_mount,
	 "mount the policy's views for job ID whose 'when' matches its context, served by one "
	 "daemon (private: in a mount namespace of the job's own)"},
	{"exec", NULL, "--job ID [--cwd DIR] [--policy FILE] [--] CMD [ARGS...]", 1, INT_MAX, 0,
	 cmd_exec,
	 "run CMD where job ID's views are (inside its namespace); exits with CMD's status"},
	{"umount", NULL,
	 "--job ID [--kill] [--timeout SECONDS] [--collect] [--outcome success|failure] "
	 "[--policy FILE]",
	 0, 0, 0, cmd_umount, "unmount every view of job ID and wait for its daemon to exit"},
	{"mark-ok", NULL, "--job ID [--policy FILE]", 0, 0, 0, cmd_mark_ok,
	 "record that job ID succeeded, so that it may be promoted"},
	{"promote", NULL,
	 "--job ID [--view NAME] [--dry-run] [--json] [--progress] [--policy FILE]", 0, 0, 0,
	 cmd_promote,
	 "add what successful, unmounted job ID added to the base of each promoting view"},
	{"ls", NULL, "[--json] [--policy FILE]", 0, 0, 0, cmd_ls,
	 "list jobs: state, age, upper size, files, views"},
	{"inspect", NULL, "[--view NAME] [--json] [--policy FILE] ID", 1, 1, 0, cmd_inspect,
	 "show what job ID changed: added, modified, deleted and opaque paths"},
	{"gc", NULL,
	 "[--older-than DURATION] [--max-total SIZE] [--dry-run] [--json] [--policy FILE]", 0, 0, 0,
	 cmd_gc, "detach stale mounts, remove old unmounted layers and orphans"},
	{"runner", "install",
	 "--github DIR [--service NAME] [--mode canonical|host] [--hooks-dir DIR] [--root DIR] "
	 "[--uninstall] [--dry-run] [--json]",
	 0, 0, 0, cmd_runner_install,
	 "install (or --uninstall) the systemd drop-in that runs a GitHub Actions runner's jobs "
	 "through jobfs's hooks"},
	{"manifest", NULL,
	 "[--view NAME] [--output FILE] [--json] [--threads N] [--progress] [--policy FILE]", 0, 0,
	 0, cmd_manifest, "write the XXH3-128 manifest of a view's base (stdout by default)"},
	{"verify", NULL,
	 "--manifest FILE [--view NAME] [--json] [--threads N] [--progress] [--policy FILE]", 0, 0,
	 0, cmd_verify, "check a view's base against a manifest: changed, missing, extra paths"},
	{"job-key", NULL, "--github [--json]", 0, 0, 0, cmd_job_key,
	 "print the job ID of the current CI job, derived from its environment"},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static void verb_title(const struct cli_verb *verb, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", verb->name, verb->subverb ? " " : "",
		 verb->subverb ? verb->subverb : "");
}

/* One message line to stderr, after "jobfs: VERB: " when prefixed: control characters escaped
 * (\n, \t, \xNN), so an argument holding a newline or a terminal escape still makes one line,
 * and shows what was given. */
static void vprint_line(bool prefixed, const struct cli_verb *verb, const char *fmt, va_list ap)
{
	char title[64], *text = NULL;

	if (prefixed)
		fputs("jobfs: ", stderr);
	if (prefixed && verb) {
		verb_title(verb, title, sizeof(title));
		fprintf(stderr, "%s: ", title);
	}
	if (vasprintf(&text, fmt, ap) < 0) {
		fputs("(out of memory)\n", stderr);
		return;
	}
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '\n')
			fputs("\\n", stderr);
		else if (*p == '\t')
			fputs("\\t", stderr);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(stderr, "\\x%02x", *p);
		else
			fputc(*p, stderr);
	}
	fputc('\n', stderr);
	free(text);
}

void cli_print_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line(false, NULL, fmt, ap);
	va_end(ap);
}

int cli_usage_error(const struct cli_verb *verb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line(true, verb, fmt, ap);
	va_end(ap);
	fputs("try 'jobfs --help'\n", stderr);
	return JOBFS_EXIT_USAGE;
}

void cli_error(const struct cli_verb *verb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_line(true, verb, fmt, ap);
	va_end(ap);
}

long cli_parse_seconds(const char *text)
{
	char *end;
	long v;

	if (!*text || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v > 86400)
		return -1;
	return v;
}

int cli_option_error(const struct cli_verb *verb, int c, char **argv)
{
	const char *option = argv[optind - 1];
	bool is_long = strncmp(option, "--", 2) == 0;

	/* optopt names a short option even inside a cluster ("-kx"), where argv[optind - 1] may
	 * not be the argument that holds it; for a long option it is the option's value, or 0 when
	 * the name is unknown or ambiguous. */
	if (c == ':') {
		if (is_long)
			return cli_usage_error(verb, "option '%s' needs an argument", option);
		return cli_usage_error(verb, "option '-%c' needs an argument", optopt);
	}
	if (is_long && optopt && strchr(option, '='))
		return cli_usage_error(verb, "option '%.*s' takes no argument",
				       (int)(strchr(option, '=') - option), option);
	if (optopt && !is_long)
		return cli_usage_error(verb, "unknown option '-%c'", optopt);
	return cli_usage_error(verb, "unknown option '%s'", option);
}

int cli_check_args(const struct cli_verb *verb, int argc, char **argv)
{
	int nargs = argc - optind;
	char title[64];

	verb_title(verb, title, sizeof(title));
	if (nargs < verb->min_args)
		return cli_usage_error(verb, "missing argument (usage: jobfs %s %s)", title,
				       verb->usage);
	if (nargs > verb->max_args)
		return cli_usage_error(verb, "unexpected argument '%s' (usage: jobfs %s %s)",
				       argv[optind + verb->max_args], title, verb->usage);
	return 0;
}

int cli_verb_help(const struct cli_verb *verb)
{
	char title[64];

	verb_title(verb, title, sizeof(title));
	printf("usage: jobfs %s %s\n\n%s\n", title, verb->usage, verb->help);
	return JOBFS_EXIT_OK;
}

static void print_help(void)
{
	size_t i;

	printf("usage: jobfs [--help] [--version] VERB [ARGS...]\n"
	       "\n"
	       "Private copy-on-write views of shared caches for CI jobs.\n"
	       "\n"
	       "verbs:\n");
	for (i = 0; i < N_VERBS; i++) {
		char title[64];

		verb_title(&verbs[i], title, sizeof(title));
		printf("  %s %s\n      %s\n", title, verbs[i].usage, verbs[i].help);
	}
	printf("\n"
	       "The policy is the first found of: --policy FILE, $JOBFS_POLICY,\n"
	       "%s, the built-in default.\n"
	       "\n"
	       "exit codes:\n",
	       POLICY_SYSTEM_PATH);
#define PRINT_EXIT_CODE(name, code, help) printf("  %d  %s\n", code, help);
	JOBFS_EXIT_CODES(PRINT_EXIT_CODE)
#undef PRINT_EXIT_CODE
	printf("\nSee jobfs(1) and docs/policy.md.\n");
}

/* Make sure what we printed reached stdout: a full disk or a closed pipe is a failure too. */
static int finish_stdout(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int saved = errno;

		fprintf(stderr, "jobfs: cannot write output: %s\n",
			saved ? strerror(saved) : "I/O error");
		return rc == JOBFS_EXIT_OK ? JOBFS_EXIT_SYSTEM : rc;
	}
	return rc;
}

/* "jobfs policy", "jobfs policy --help" and "jobfs policy bogus". */
static int subverb_missing(int argc, char **argv)
{
	bool help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
	char expected[128] = "";
	size_t i;

	for (i = 0; i < N_VERBS; i++) {
		if (strcmp(verbs[i].name, argv[1]) != 0)
			continue;
		if (help)
			printf("usage: jobfs %s %s %s\n", verbs[i].name, verbs[i].subverb,
			       verbs[i].usage);
		if (*expected)
			strncat(expected, ", ", sizeof(expected) - strlen(expected) - 1);
		strncat(expected, verbs[i].subverb, sizeof(expected) - strlen(expected) - 1);
	}
	if (help)
		return JOBFS_EXIT_OK;
	if (argc < 3)
		return cli_usage_error(NULL, "%s: missing subverb (one of %s)", argv[1], expected);
	return cli_usage_error(NULL, "%s: unknown subverb '%s' (one of %s)", argv[1], argv[2],
			       expected);
}

static int dispatch(int argc, char **argv)
{
	const struct cli_verb *verb = NULL;
	bool known_name = false;
	size_t i;

	if (argc < 2)
		return cli_usage_error(NULL, "missing verb");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_help();
		return JOBFS_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("jobfs %s\n", JOBFS_VERSION);
		return JOBFS_EXIT_OK;
	}
	if (argv[1][0] == '-')
		return cli_usage_error(NULL, "unknown option '%s'", argv[1]);

	for (i = 0; i < N_VERBS; i++) {
		if (strcmp(verbs[i].name, argv[1]) != 0)
			continue;
		known_name = true;
		if (!verbs[i].subverb || (argc > 2 && strcmp(verbs[i].subverb, argv[2]) == 0)) {
			verb = &verbs[i];
			break;
		}
	}
	if (!known_name)
		return cli_usage_error(NULL, "unknown verb '%s'", argv[1]);
	if (!verb)
		return subverb_missing(argc, argv);

	/* The handler sees its own name as argv[0], then its options and arguments. */
	argc -= verb->subverb ? 2 : 1;
	argv += verb->subverb ? 2 : 1;
	optind = 1;
	opterr = 0;
	return verb->run(verb, argc, argv);
}

int main(int argc, char **argv)
{
	return finish_stdout(dispatch(argc, argv));
}
