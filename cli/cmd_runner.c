/* `jobfs runner install --github DIR`: the systemd drop-in that runs a GitHub Actions runner's
 * service in a private mount namespace (PrivateMounts=yes, canonical mode) and hands its jobs to
 * the jobfs hooks (ACTIONS_RUNNER_HOOK_JOB_STARTED/COMPLETED). Idempotent; --uninstall removes
 * exactly what install added: the drop-in file it wrote, and its dir if install made it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "json.h"

/* Where the hooks are installed relative to the prefix jobfs itself was installed under, so a
 * package or `cmake --install --prefix` finds them whatever prefix the build was configured for. */
#ifndef JOBFS_INSTALL_BINDIR
#define JOBFS_INSTALL_BINDIR "bin"
#endif
#ifndef JOBFS_INSTALL_LIBEXECDIR
#define JOBFS_INSTALL_LIBEXECDIR "libexec"
#endif
#define HOOKS_SUBDIR "jobfs/runner/github"
/* the fallback when jobfs does not run from PREFIX/BINDIR (a build tree) */
#ifndef JOBFS_GITHUB_HOOKS_DIR
#define JOBFS_GITHUB_HOOKS_DIR "/usr/local/" JOBFS_INSTALL_LIBEXECDIR "/" HOOKS_SUBDIR
#endif

#define DROPIN_NAME "jobfs.conf"
#define MARKER "# Written by `jobfs runner install`"
#define MADE_DIR_LINE "# jobfs made this dir: yes"

struct runner_install {
	const char *runner_dir;
	const char *service; /* unit name, "actions.runner.ORG-REPO.NAME.service" */
	const char *mode;    /* "canonical" or "host" */
	const char *hooks_dir;
	const char *root; /* "" or a prefix for /etc, for tests */
	bool uninstall, dry_run, json;
	char unit_dir[PATH_MAX]; /* ROOT/etc/systemd/system/SERVICE.d */
	char dropin[PATH_MAX];
};

/* A systemd unit name: [A-Za-z0-9:_.\-@]+ ending in ".service", at most 255 bytes. */
static bool service_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len <= strlen(".service") || len > 255 ||
	    strcmp(name + len - strlen(".service"), ".service") != 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(":_.-@\\", *p)))
			return false;
	return true;
}

/* The hooks beside the running program: /proc/self/exe is PREFIX/BINDIR/jobfs, the hooks are in
 * PREFIX/LIBEXECDIR/jobfs/runner/github. The compiled-in dir when jobfs runs from elsewhere or
 * that dir is missing. */
static const char *default_hooks_dir(char *buf, size_t size)
{
	static const char bindir[] = "/" JOBFS_INSTALL_BINDIR;
	char exe[PATH_MAX];
	struct stat st;
	ssize_t len;
	char *slash;
	size_t prefix_len;

	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return JOBFS_GITHUB_HOOKS_DIR;
	exe[len] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return JOBFS_GITHUB_HOOKS_DIR;
	*slash = '\0'; /* exe is now the program's dir */
	prefix_len = strlen(exe);
	if (prefix_len < strlen(bindir) || strcmp(exe + prefix_len - strlen(bindir), bindir) != 0)
		return JOBFS_GITHUB_HOOKS_DIR;
	prefix_len -= strlen(bindir);
	if (snprintf(buf, size, "%.*s/" JOBFS_INSTALL_LIBEXECDIR "/" HOOKS_SUBDIR, (int)prefix_len,
		     exe) >= (int)size)
		return JOBFS_GITHUB_HOOKS_DIR;
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
		return JOBFS_GITHUB_HOOKS_DIR;
	return buf;
}

/* The runner's own record of its service: DIR/.service, one line, written by svc.sh install. */
static int read_service_file(const struct cli_verb *verb, const char *runner_dir, char *buf,
			     size_t size)
{
	char path[PATH_MAX];
	FILE *f;
	size_t len;

	if (snprintf(path, sizeof(path), "%s/.service", runner_dir) >= (int)sizeof(path)) {
		cli_error(verb, "runner dir '%s': %s", runner_dir, strerror(ENAMETOOLONG));
		return JOBFS_EXIT_USAGE;
	}
	f = fopen(path, "re");
	if (!f) {
		cli_error(verb,
			  "cannot read '%s': %s (the runner's service is not installed: run "
			  "'./svc.sh install' in the runner dir, or name it with --service)",
			  path, strerror(errno));
		return JOBFS_EXIT_USAGE;
	}
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (!service_name_valid(buf)) {
		cli_error(verb, "'%s' does not name a service unit: '%s'", path, buf);
		return JOBFS_EXIT_USAGE;
	}
	return JOBFS_EXIT_OK;
}

/* systemd's Environment= takes "NAME=VALUE" words; a path with a space, quote, backslash, '%' or
 * '$' would need quoting or escaping, so such a hooks dir is refused instead. */
static bool unit_safe(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if (*p <= ' ' || *p == 0x7f || strchr("\"'\\%$;", *p))
			return false;
	return true;
}

static char *dropin_text(const struct runner_install *ri, bool made_dir)
{
	char *text = NULL;
	int n;

	n = asprintf(
		&text,
		MARKER " for the GitHub Actions runner in\n"
		       "# %s; `jobfs runner install --github DIR --uninstall` removes it.\n"
		       "%s"
		       "[Service]\n"
		       "%s"
		       "Environment=ACTIONS_RUNNER_HOOK_JOB_STARTED=%s/job-started.sh\n"
		       "Environment=ACTIONS_RUNNER_HOOK_JOB_COMPLETED=%s/job-completed.sh\n"
		       "Environment=JOBFS_RUNNER_MODE=%s\n",
		ri->runner_dir, made_dir ? MADE_DIR_LINE "\n" : "",
		strcmp(ri->mode, "canonical") == 0
			? "# each job's views at the ordinary paths, seen only by this runner\n"
			  "PrivateMounts=yes\n"
			: "",
		ri->hooks_dir, ri->hooks_dir, ri->mode);
	return n < 0 ? NULL : text;
}

/* The whole file at path, or NULL with errno set (ENOENT when there is none). */
static char *read_small_file(const char *path)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *grown = realloc(buf, cap + 8192);

			if (!grown)
				break;
			buf = grown;
			cap += 8192;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0) {
			if (n == 0) {
				buf[len] = '\0';
				close(fd);
				return buf;
			}
			break;
		}
		len += (size_t)n;
		if (len > 1 << 20) {
			errno = EFBIG;
			break;
		}
	}
	n = errno;
	close(fd);
	free(buf);
	errno = (int)n;
	return NULL;
}

/* Writes text to path through a temp file and a rename, so the unit never reads half of it. */
static int write_atomically(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	size_t len = strlen(text);
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* The runner reads DIR/.env after systemd starts it: a hook variable there wins over the
 * drop-in's, so jobfs's hooks would silently not run. */
static void warn_env_file(const struct cli_verb *verb, const char *runner_dir)
{
	char path[PATH_MAX];
	char *text, *line, *save = NULL;

	if (snprintf(path, sizeof(path), "%s/.env", runner_dir) >= (int)sizeof(path))
		return;
	text = read_small_file(path);
	if (!text)
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "ACTIONS_RUNNER_HOOK_JOB_", 24) == 0)
			cli_error(
				verb,
				"warning: '%s' sets %.*s, which overrides the drop-in's: remove it "
				"there for jobfs's hooks to run",
				path, (int)strcspn(line, "="), line);
	free(text);
}

/* action: "write", "update", "remove" (done, or with --dry-run to be done), "unchanged", "absent".
 */
static void report(const struct runner_install *ri, const char *action)
{
	static const char *const done[][2] = {
		{"write", "wrote"}, {"update", "updated"}, {"remove", "removed"}};
	const char *text = action;
	bool change = false;

	for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++)
		if (strcmp(action, done[i][0]) == 0) {
			change = true;
			text = ri->dry_run ? done[i][0] : done[i][1];
		}
	if (ri->json) {
		struct json_writer w;

		json_init(&w, stdout);
		json_object_begin(&w);
		json_key(&w, "service");
		json_string(&w, ri->service);
		json_key(&w, "dropin");
		json_string(&w, ri->dropin);
		json_key(&w, "mode");
		json_string(&w, ri->mode);
		json_key(&w, "hooks_dir");
		json_string(&w, ri->hooks_dir);
		json_key(&w, "action");
		json_string(&w, action);
		json_key(&w, "dry_run");
		json_bool(&w, ri->dry_run);
		json_object_end(&w);
		json_finish(&w);
		return;
	}
	printf("%s%s %s\n", ri->dry_run && change ? "would " : "", text, ri->dropin);
	if (!ri->dry_run && change)
		printf("then run: systemctl daemon-reload && systemctl restart %s\n", ri->service);
}

static int do_install(const struct cli_verb *verb, struct runner_install *ri)
{
	char *want = NULL, *have;
	bool made_dir = false;
	struct stat st;
	int r, rc = JOBFS_EXIT_SYSTEM;

	have = read_small_file(ri->dropin);
	if (!have && errno != ENOENT) {
		cli_error(verb, "cannot read '%s': %s", ri->dropin, strerror(errno));
		return JOBFS_EXIT_SYSTEM;
	}
	if (have && strncmp(have, MARKER, strlen(MARKER)) != 0) {
		cli_error(verb, "'%s' exists and was not written by jobfs: not replacing it",
			  ri->dropin);
		free(have);
		return JOBFS_EXIT_SYSTEM;
	}
	if (have)
		made_dir = strstr(have, "\n" MADE_DIR_LINE "\n") != NULL;
	else
		made_dir = stat(ri->unit_dir, &st) < 0;
	want = dropin_text(ri, made_dir);
	if (!want) {
		cli_error(verb, "out of memory");
		goto out;
	}
	if (have && strcmp(have, want) == 0) {
		report(ri, "unchanged");
		rc = JOBFS_EXIT_OK;
		goto out;
	}
	if (!ri->dry_run) {
		if (made_dir && mkdir(ri->unit_dir, 0755) < 0 && errno != EEXIST) {
			cli_error(verb, "cannot make '%s': %s", ri->unit_dir, strerror(errno));
			goto out;
		}
		r = write_atomically(ri->dropin, want);
		if (r < 0) {
			cli_error(verb, "cannot write '%s': %s", ri->dropin, strerror(-r));
			goto out;
		}
	}
	report(ri, have ? "update" : "write");
	rc = JOBFS_EXIT_OK;
out:
	free(want);
	free(have);
	return rc;
}

static int do_uninstall(const struct cli_verb *verb, struct runner_install *ri)
{
	char *have;
	bool made_dir;

	have = read_small_file(ri->dropin);
	if (!have) {
		if (errno != ENOENT) {
			cli_error(verb, "cannot read '%s': %s", ri->dropin, strerror(errno));
			return JOBFS_EXIT_SYSTEM;
		}
		report(ri, "absent");
		return JOBFS_EXIT_OK;
	}
	if (strncmp(have, MARKER, strlen(MARKER)) != 0) {
		cli_error(verb, "'%s' was not written by jobfs: not removing it", ri->dropin);
		free(have);
		return JOBFS_EXIT_SYSTEM;
	}
	made_dir = strstr(have, "\n" MADE_DIR_LINE "\n") != NULL;
	free(have);
	if (!ri->dry_run) {
		if (unlink(ri->dropin) < 0) {
			cli_error(verb, "cannot remove '%s': %s", ri->dropin, strerror(errno));
			return JOBFS_EXIT_SYSTEM;
		}
		/* only a dir install made, and only when nothing else was put in it meanwhile */
		if (made_dir && rmdir(ri->unit_dir) < 0 && errno != ENOTEMPTY && errno != EEXIST)
			cli_error(verb, "warning: cannot remove '%s': %s", ri->unit_dir,
				  strerror(errno));
	}
	report(ri, "remove");
	return JOBFS_EXIT_OK;
}

int cmd_runner_install(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"github", required_argument, NULL, 'g'},
		{"service", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"hooks-dir", required_argument, NULL, 'H'},
		{"root", required_argument, NULL, 'r'},
		{"uninstall", no_argument, NULL, 'u'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct runner_install ri = {
		.mode = "canonical",
		.root = "",
	};
	char service_buf[512], runner_dir[PATH_MAX], hooks_buf[PATH_MAX];
	struct stat st;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":g:s:m:H:r:unJh", options, NULL)) != -1) {
		switch (c) {
		case 'g':
			ri.runner_dir = optarg;
			break;
		case 's':
			ri.service = optarg;
			break;
		case 'm':
			ri.mode = optarg;
			break;
		case 'H':
			ri.hooks_dir = optarg;
			break;
		case 'r':
			ri.root = optarg;
			break;
		case 'u':
			ri.uninstall = true;
			break;
		case 'n':
			ri.dry_run = true;
			break;
		case 'J':
			ri.json = true;
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
	if (!ri.hooks_dir)
		ri.hooks_dir = default_hooks_dir(hooks_buf, sizeof(hooks_buf));
	if (!ri.runner_dir)
		return cli_usage_error(verb, "missing --github DIR (the runner's directory)");
	if (strcmp(ri.mode, "canonical") != 0 && strcmp(ri.mode, "host") != 0)
		return cli_usage_error(verb, "invalid mode '%s' (expected canonical or host)",
				       ri.mode);
	if (ri.hooks_dir[0] != '/' || !unit_safe(ri.hooks_dir))
		return cli_usage_error(verb,
				       "invalid hooks dir '%s' (expected an absolute path without "
				       "spaces, quotes, '\\', '%%', '$' or ';')",
				       ri.hooks_dir);
	if (*ri.root && ri.root[0] != '/')
		return cli_usage_error(verb, "invalid root '%s' (expected an absolute path)",
				       ri.root);
	if (ri.service && !service_name_valid(ri.service))
		return cli_usage_error(verb,
				       "invalid service '%s' (expected a unit name ending in "
				       "'.service')",
				       ri.service);
	if (stat(ri.runner_dir, &st) < 0) {
		cli_error(verb, "runner dir '%s': %s", ri.runner_dir, strerror(errno));
		return JOBFS_EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error(verb, "runner dir '%s': not a directory", ri.runner_dir);
		return JOBFS_EXIT_USAGE;
	}
	if (!realpath(ri.runner_dir, runner_dir)) {
		cli_error(verb, "runner dir '%s': %s", ri.runner_dir, strerror(errno));
		return JOBFS_EXIT_USAGE;
	}
	ri.runner_dir = runner_dir;
	if (!ri.service) {
		rc = read_service_file(verb, runner_dir, service_buf, sizeof(service_buf));
		if (rc)
			return rc;
		ri.service = service_buf;
	}
	if (snprintf(ri.unit_dir, sizeof(ri.unit_dir), "%s/etc/systemd/system/%s.d",
		     strcmp(ri.root, "/") == 0 ? "" : ri.root,
		     ri.service) >= (int)sizeof(ri.unit_dir) ||
	    snprintf(ri.dropin, sizeof(ri.dropin), "%s/" DROPIN_NAME, ri.unit_dir) >=
		    (int)sizeof(ri.dropin))
		return cli_usage_error(verb, "invalid root '%s': %s", ri.root,
				       strerror(ENAMETOOLONG));
	if (!ri.uninstall)
		warn_env_file(verb, runner_dir);
	return ri.uninstall ? do_uninstall(verb, &ri) : do_install(verb, &ri);
}
