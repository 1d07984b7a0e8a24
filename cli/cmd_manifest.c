/* `jobfs manifest`: the XXH3-128 manifest of a view's base (its lower dirs, merged), to stdout or
 * written atomically to a file. Also the two steps verify shares: choosing the view, scanning. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bases.h"
#include "cli.h"
#include "exit_codes.h"
#include "manifest.h"
#include "policy.h"
#include "scan.h"
#include "store.h"

int cli_find_view(const struct cli_verb *verb, const struct policy *policy, const char *name,
		  const struct policy_view **ret_view)
{
	const struct policy_view *found = NULL;
	size_t with_lowers = 0;

	for (size_t i = 0; i < policy->n_views; i++) {
		const struct policy_view *v = &policy->views[i];

		if (name ? strcmp(v->name, name) == 0 : v->n_lower > 0) {
			found = v;
			with_lowers++;
		}
	}
	if (name && !found) {
		cli_error(verb, "no view '%s' in policy '%s'", name, policy->source);
		return JOBFS_EXIT_USAGE;
	}
	if (!name && with_lowers != 1) {
		cli_error(verb, "policy '%s' has %zu views with lower dirs: name one with --view",
			  policy->source, with_lowers);
		return JOBFS_EXIT_USAGE;
	}
	*ret_view = found;
	return JOBFS_EXIT_OK;
}

int cli_parse_threads(const struct cli_verb *verb, const char *text, unsigned *ret_threads)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno || *end || n < 1 || n > SCAN_THREADS_MAX)
		return cli_usage_error(verb, "invalid --threads '%s' (expected 1 to %d)", text,
				       SCAN_THREADS_MAX);
	*ret_threads = (unsigned)n;
	return JOBFS_EXIT_OK;
}

int cli_scan_view(const struct cli_verb *verb, const struct policy *policy,
		  const struct policy_view *view, unsigned threads, bool progress,
		  struct manifest **ret_manifest)
{
	struct scan_options opts = {
		.threads = threads ? threads : scan_default_threads(),
		.progress = isatty(STDERR_FILENO) ? SCAN_PROGRESS_TTY
			    : progress		  ? SCAN_PROGRESS_LINES
						  : SCAN_PROGRESS_OFF,
		.progress_out = stderr,
	};
	struct scan_error err;
	struct scan_stats stats;
	struct manifest *m;
	struct store *store;
	char **lowers = NULL;
	size_t n_lowers = 0;
	int r;

	/* the base a job mounting now would get: the view's generations, then its lower dirs */
	r = store_open(policy->state_dir, false, &store);
	if (r == 0) {
		r = bases_view_lowers(store, view, &lowers, &n_lowers);
		store_close(store);
		if (r < 0) {
			cli_error(verb, "view '%s': cannot read its generations: %s", view->name,
				  strerror(-r));
			return JOBFS_EXIT_SYSTEM;
		}
	} else if (r != -ENOENT) {
		cli_error(verb, "cannot open the state dir '%s': %s", policy->state_dir,
			  strerror(-r));
		return JOBFS_EXIT_SYSTEM;
	}
	if (lowers)
		r = scan_base((const char *const *)lowers, n_lowers, &opts, &m, &stats, &err);
	else
		r = scan_base((const char *const *)view->lower, view->n_lower, &opts, &m, &stats,
			      &err);
	bases_lowers_free(lowers, n_lowers);
	if (r < 0) {
		cli_error(verb, "view '%s': %s", view->name, err.msg);
		return JOBFS_EXIT_SYSTEM;
	}
	m->view = strdup(view->name);
	if (!m->view) {
		manifest_free(m);
		cli_error(verb, "out of memory");
		return JOBFS_EXIT_SYSTEM;
	}
	*ret_manifest = m;
	return JOBFS_EXIT_OK;
}

/* Straight into FILE when it exists and is not a regular file (/dev/stdout, a FIFO, /dev/null):
 * renaming over it would replace the device with a file. */
static int write_special(const char *path, const struct manifest *m, bool json)
{
	FILE *out = fopen(path, "we");
	int r = 0;

	if (!out)
		return -errno;
	if (json)
		manifest_write_json(out, m);
	else
		manifest_write(out, m);
	if (fflush(out) != 0 || ferror(out))
		r = errno ? -errno : -EIO;
	if (fclose(out) != 0 && r == 0)
		r = -errno;
	return r;
}

/* FILE.XXXXXX next to FILE, fsynced, renamed over FILE: a reader sees the old manifest or the
 * whole new one, never half of one. */
static int write_file(const char *path, const struct manifest *m, bool json)
{
	size_t len = strlen(path);
	struct stat st;
	char *tmp;
	FILE *out = NULL;
	int fd, r = 0;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : write_special(path, m, json);
	tmp = malloc(len + 8);
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".XXXXXX", 8);
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	if (fchmod(fd, 0644) < 0 || !(out = fdopen(fd, "w"))) {
		r = -errno;
		close(fd);
		goto out_unlink;
	}
	if (json)
		manifest_write_json(out, m);
	else
		manifest_write(out, m);
	if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) < 0)
		r = errno ? -errno : -EIO;
	if (fclose(out) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
out_unlink:
	if (r < 0)
		unlink(tmp);
out_free:
	free(tmp);
	return r;
}

int cmd_manifest(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"view", required_argument, NULL, 'v'},	   {"output", required_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'J'},	   {"policy", required_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 't'}, {"progress", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},	   {0},
	};
	const char *policy_path = NULL, *view_name = NULL, *output = NULL;
	const struct policy_view *view;
	struct policy *policy = NULL;
	struct manifest *m = NULL;
	bool json = false, progress = false;
	unsigned threads = 0;
	int c, r, rc;

	while ((c = getopt_long(argc, argv, ":v:o:p:t:h", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			view_name = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'p':
			policy_path = optarg;
			break;
		case 't':
			rc = cli_parse_threads(verb, optarg, &threads);
			if (rc)
				return rc;
			break;
		case 'P':
			progress = true;
			break;
		case 'h':
			return cli_verb_help(verb);
		default:
			return cli_option_error(verb, c, argv);
		}
	}
	rc = cli_check_args(verb, argc, argv);
	if (rc)
		return rc;
	rc = cli_load_policy(policy_path, NULL, &policy);
	if (rc)
		return rc;
	rc = cli_find_view(verb, policy, view_name, &view);
	if (rc)
		goto out;
	rc = cli_scan_view(verb, policy, view, threads, progress, &m);
	if (rc)
		goto out;
	if (output) {
		r = write_file(output, m, json);
		if (r < 0) {
			cli_error(verb, "cannot write '%s': %s", output, strerror(-r));
			rc = JOBFS_EXIT_SYSTEM;
		}
	} else if (json) {
		manifest_write_json(stdout, m);
	} else {
		manifest_write(stdout, m);
	}
out:
	manifest_free(m);
	policy_free(policy);
	return rc;
}
