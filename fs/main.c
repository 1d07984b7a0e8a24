/* jobfs-fs: the daemon that serves one overlay view. The job CLI drives it; it can also be run by
 * hand. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

enum { EXIT_USAGE = 1, EXIT_FAILED = 2 };

static void usage(FILE *out)
{
	fputs("usage: jobfs-fs [--lower DIR[:DIR...]] --upper DIR --work DIR [options] MOUNTPOINT\n"
	      "\n"
	      "Serves a copy-on-write view of the lower directories (top first, never written)\n"
	      "with every change landing in the upper directory, in kernel overlayfs format.\n"
	      "\n"
	      "options:\n"
	      "  -l, --lower DIRS      read-only layers, top first, separated by ':' (none: a\n"
	      "                        scratch view)\n"
	      "  -u, --upper DIR       the writable layer\n"
	      "  -w, --work DIR        scratch dir on the upper's filesystem (for atomic copy-up)\n"
	      "  -f, --foreground      stay in the foreground (default: detach once mounted)\n"
	      "  -d, --debug           log every FUSE request (implies --foreground)\n"
	      "  -o OPT[,OPT...]       jobfs options: userxattr (user.overlay.* xattrs),\n"
	      "                        trustedxattr, timeout=SECONDS, nofsync, threads=N,\n"
	      "                        volatile (sync nothing, not even on fsync; after a\n"
	      "                        restart of the machine the layer is refused),\n"
	      "                        max_fds=N (descriptors cached for inodes),\n"
	      "                        nometacopy (metadata changes copy data up too),\n"
	      "                        open_files (a request per open and close; the default\n"
	      "                        for non-root daemons),\n"
	      "                        quota=BYTES (the most the upper may hold: ENOSPC past\n"
	      "                        it, and df shows it; 0: no limit),\n"
	      "                        plain (no --lower and no --work: the upper is an\n"
	      "                        ordinary directory served as it is, nothing of the\n"
	      "                        layer format read or written, cached at most 1 s),\n"
	      "                        noallow_other; anything else goes to the FUSE mount\n"
	      "  -h, --help            show this help\n"
	      "  -V, --version         show the version\n"
	      "\n"
	      "exit status: 0 unmounted cleanly, 1 usage error, 2 the view could not be served\n",
	      out);
}

/* Splits -o into our options and the mount's. */
static int parse_opts(char *list, struct jfs_config *cfg, char *fuse_opts, size_t size)
{
	char *save = NULL;

	for (char *opt = strtok_r(list, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (!strcmp(opt, "userxattr")) {
			cfg->opts.user_xattr = true;
		} else if (!strcmp(opt, "trustedxattr")) {
			cfg->opts.user_xattr = false;
		} else if (!strcmp(opt, "nometacopy")) {
			cfg->opts.metacopy = false;
		} else if (!strcmp(opt, "metacopy")) {
			cfg->opts.metacopy = true;
		} else if (!strcmp(opt, "nofsync")) {
			cfg->opts.fsync_copy_up = false;
		} else if (!strcmp(opt, "volatile")) {
			cfg->opts.volatile_upper = true;
			cfg->opts.fsync_copy_up = false;
		} else if (!strcmp(opt, "open_files")) {
			cfg->opts.open_files = true;
		} else if (!strcmp(opt, "noopen_files")) {
			cfg->opts.open_files = false;
		} else if (!strcmp(opt, "plain")) {
			cfg->opts.plain = true;
		} else if (!strcmp(opt, "noallow_other")) {
			cfg->opts.allow_other = false;
		} else if (!strcmp(opt, "allow_other")) {
			cfg->opts.allow_other = true;
		} else if (!strncmp(opt, "timeout=", 8)) {
			char *end;
			double t = strtod(opt + 8, &end);
			if (*end || t < 0) {
				fprintf(stderr, "jobfs-fs: bad value in '-o %s'\n", opt);
				return -1;
			}
			cfg->opts.entry_timeout = t;
		} else if (!strncmp(opt, "max_fds=", 8)) {
			char *end;
			unsigned long n = strtoul(opt + 8, &end, 10);
			if (*end || n < 1) {
				fprintf(stderr, "jobfs-fs: bad value in '-o %s'\n", opt);
				return -1;
			}
			cfg->opts.max_cached_fds = n;
		} else if (!strncmp(opt, "quota=", 6)) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(opt + 6, &end, 10);
			if (*end || end == opt + 6 || errno || opt[6] == '-') {
				fprintf(stderr, "jobfs-fs: bad value in '-o %s'\n", opt);
				return -1;
			}
			cfg->opts.quota = n;
		} else if (!strncmp(opt, "threads=", 8)) {
			char *end;
			long n = strtol(opt + 8, &end, 10);
			if (*end || n < 1 || n > 1024) {
				fprintf(stderr, "jobfs-fs: bad value in '-o %s'\n", opt);
				return -1;
			}
			cfg->opts.max_threads = (unsigned int)n;
		} else {
			size_t used = strlen(fuse_opts);
			if (used + strlen(opt) + 2 > size) {
				fprintf(stderr, "jobfs-fs: too many mount options\n");
				return -1;
			}
			if (used)
				strcat(fuse_opts, ",");
			strcat(fuse_opts, opt);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"lower", required_argument, NULL, 'l'}, {"upper", required_argument, NULL, 'u'},
		{"work", required_argument, NULL, 'w'},	 {"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},	 {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	 {NULL, 0, NULL, 0},
	};
	static char fuse_opts[1024];
	struct jfs_config cfg;
	struct jfs_error err = {{0}};
	char *lowers_arg = NULL, *save = NULL;
	const char **lowers = NULL;
	int c, r;

	jfs_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "l:u:w:fdo:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			free(lowers_arg);
			lowers_arg = strdup(optarg);
			break;
		case 'u':
			cfg.upper = optarg;
			break;
		case 'w':
			cfg.work = optarg;
			break;
		case 'f':
			cfg.foreground = true;
			break;
		case 'd':
			cfg.debug = cfg.foreground = true;
			break;
		case 'o':
			if (parse_opts(optarg, &cfg, fuse_opts, sizeof(fuse_opts)) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 && !ferror(stdout) ? 0 : EXIT_FAILED;
		case 'V':
			printf("jobfs-fs %s\n", JOBFS_VERSION);
			return 0;
		default:
			fputs("try 'jobfs-fs --help'\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !cfg.upper || (!cfg.work && !cfg.opts.plain)) {
		fprintf(stderr, "jobfs-fs: %s\ntry 'jobfs-fs --help'\n",
			optind < argc - 1 ? "one mount point expected"
					  : "--upper, --work and a mount point are required");
		free(lowers_arg);
		return EXIT_USAGE;
	}
	cfg.mountpoint = argv[optind];
	cfg.fuse_opts = fuse_opts[0] ? fuse_opts : NULL;
	/* no --lower: an empty scratch view */
	for (char *dir = lowers_arg ? strtok_r(lowers_arg, ":", &save) : NULL; dir;
	     dir = strtok_r(NULL, ":", &save)) {
		const char **grown = realloc(lowers, sizeof(*lowers) * (size_t)(cfg.nlowers + 1));
		if (!grown) {
			fputs("jobfs-fs: out of memory\n", stderr);
			return EXIT_FAILED;
		}
		lowers = grown;
		lowers[cfg.nlowers++] = dir;
	}
	cfg.lowers = lowers;

	r = jfs_serve(&cfg, &err);
	if (r < 0)
		fprintf(stderr, "jobfs-fs: %s\n", err.msg);
	free(lowers);
	free(lowers_arg);
	return r < 0 ? EXIT_FAILED : 0;
}
