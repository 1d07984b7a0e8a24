/* The job daemon. `jobfs mount` forks it; the child opens every view (mounting it), starts one
 * serving thread per view, then reports "ready" (or the error naming the view) over a pipe. It
 * serves until every view is unmounted, or until SIGTERM/SIGINT/SIGHUP, which it handles itself
 * (libfuse's handlers serve one session only): it stops every view and unmounts what is left.
 * A view's pass-through directories are taken before any view is mounted and bound back once the
 * view is served (pass_through.c); on a stop they are detached first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "fs.h"
#include "ns.h"
#include "pass_through.h"
#include "procs.h"

struct served_view {
	const struct daemon_view *spec;
	struct pass_through *pts; /* spec->n_pass_through of them */
	struct jfs_view *view;
	pthread_t thread;
	bool started;
	int done; /* set by the serving thread when jfs_view_serve returned; read atomically */
	int result;
	struct jfs_error err;
	char fsname[PROCS_SOURCE_MAX]; /* the mount's source: jobfs:JOB/VIEW */
};

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* YYYY-MM-DDTHH:MM:SSZ of a time, computed here: glibc's gmtime_r and strftime first load the
 * local time zone (tzset reads /etc/localtime), a disk read before the daemon reports ready on a
 * cold mount. Days to a civil date as in Howard Hinnant's days_from_civil notes. */
static void utc_stamp(time_t now, char *buf, size_t size)
{
	long long days = now / 86400, secs = now % 86400, era, doe, yoe, doy, mp, y;
	unsigned m, d;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	y = yoe + era * 400 + (m <= 2);
	snprintf(buf, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", y, m, d, secs / 3600,
		 secs / 60 % 60, secs % 60);
}

static void log_line(const char *fmt, ...)
{
	char stamp[48];
	va_list ap;

	utc_stamp(time(NULL), stamp, sizeof(stamp));
	fprintf(stderr, "%s jobfs-daemon[%d]: ", stamp, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void on_wake(int sig)
{
	(void)sig; /* only interrupts the serving thread's wait */
}

static void *serve_thread(void *arg)
{
	struct served_view *sv = arg;

	sv->result = jfs_view_serve(sv->view, &sv->err);
	__atomic_store_n(&sv->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void report(int fd, const char *text)
{
	size_t len = strlen(text);

	while (len > 0) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* libfuse and fusermount3 say why a mount failed on stderr only ("fuse: mountpoint is not
 * empty", "fusermount3: failed to access mountpoint ..."). While a view is opened, stderr goes to
 * a memfd; afterwards its text is copied where stderr went (the log or the terminal) and its last
 * line kept as the cause. Other threads' lines written meanwhile are copied the same way. */
static int capture_begin(int *ret_saved)
{
	int memfd, saved;

	fflush(stderr);
	memfd = memfd_create("jobfs-mount-stderr", MFD_CLOEXEC);
	if (memfd < 0)
		return -errno;
	saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (saved < 0 || dup2(memfd, STDERR_FILENO) < 0) {
		int r = -errno;

		if (saved >= 0)
			close(saved);
		close(memfd);
		return r;
	}
	*ret_saved = saved;
	return memfd;
}

static void capture_end(int memfd, int saved, char *last, size_t size)
{
	char buf[4096], *line, *end;
	ssize_t n;
	off_t off = 0;

	last[0] = '\0';
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	while ((n = pread(memfd, buf, sizeof(buf) - 1, off)) > 0) {
		buf[n] = '\0';
		report(STDERR_FILENO, buf);
		off += n;
		/* the last non-empty line of this chunk (a cause is far shorter than a chunk) */
		end = buf + n;
		while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
			*--end = '\0';
		if (end == buf)
			continue;
		line = memrchr(buf, '\n', (size_t)(end - buf));
		line = line ? line + 1 : buf;
		n = end - line < (ssize_t)size ? end - line : (ssize_t)size - 1;
		memcpy(last, line, (size_t)n);
		last[n] = '\0';
	}
	close(memfd);
}

/* True when inner lies strictly below outer (normalised absolute paths). */
static bool target_inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	return strncmp(inner, outer, n) == 0 && inner[n] == '/';
}

/* The index of a later view nested in view i, or spec->n_views when none is. */
static size_t nested_in(const struct daemon_spec *spec, size_t i)
{
	size_t j;

	for (j = i + 1; j < spec->n_views; j++)
		if (target_inside(spec->views[j].target, spec->views[i].target))
			break;
	return j;
}

/* A nested view's target is made through the view it is nested in, which serves by now (the
 * policy lists the outer first): where the job sees it, in the outer's upper when the outer's
 * base lacks it. */
static int make_nested_target(const struct daemon_spec *spec, size_t i, char *why, size_t size)
{
	const char *target = spec->views[i].target;
	char path[PATH_MAX];
	size_t outer_len = 0;

	for (size_t j = 0; j < i; j++)
		if (target_inside(target, spec->views[j].target) &&
		    strlen(spec->views[j].target) > outer_len)
			outer_len = strlen(spec->views[j].target);
	if (!outer_len)
		return 0;
	if (strlen(target) >= sizeof(path)) {
		snprintf(why, size, "target '%s' is too long", target);
		return -ENAMETOOLONG;
	}
	strcpy(path, target);
	for (char *p = path + outer_len + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int r = -errno;

			snprintf(why, size,
				 "cannot make its target '%s' in the view it is nested in: %s",
				 path, strerror(errno));
			return r;
		}
		*p = saved;
		if (!saved)
			break;
	}
	return 0;
}

/* Releases every view's pass-throughs; a server that was never told to mount exits. Those still
 * serving a detached mount go on by themselves. */
static void close_pass_throughs(const struct daemon_spec *spec, struct served_view *views)
{
	for (size_t i = 0; i < spec->n_views; i++) {
		for (size_t j = 0; views[i].pts && j < spec->views[i].n_pass_through; j++)
			if (views[i].pts[j].path)
				pass_through_close(&views[i].pts[j]);
		free(views[i].pts);
	}
}

/* The daemon's life after fork; returns its exit status. */
static int daemon_main(const struct daemon_spec *spec, int report_fd)
{
	struct served_view *views;
	struct sigaction sa;
	sigset_t stop_set;
	char msg[1200];
	bool stopping = false;
	int status = 0;
	size_t i, opened = 0;

	views = calloc(spec->n_views ? spec->n_views : 1, sizeof(*views));
	if (!views) {
		report(report_fd, "out of memory\n");
		return 1;
	}
	/* TERM, INT and HUP are taken with sigtimedwait below; every thread inherits the mask */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake; /* no SA_RESTART: the serving loop's wait must see EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* every real directory is taken before any view covers it */
	for (i = 0; i < spec->n_views; i++) {
		const struct daemon_view *dv = &spec->views[i];

		views[i].spec = dv;
		if (nested_in(spec, i) < spec->n_views && geteuid() != 0 &&
		    !pass_through_user_allow_other(NULL)) {
			snprintf(msg, sizeof(msg),
				 "view '%s': view '%s' nested in it needs 'user_allow_other' in "
				 "/etc/fuse.conf (fusermount3 mounts inside a view only if it is "
				 "allow_other)\n",
				 dv->name, spec->views[nested_in(spec, i)].name);
			goto out_fail;
		}
		if (!dv->n_pass_through)
			continue;
		if (geteuid() != 0 && !pass_through_user_allow_other(NULL)) {
			snprintf(msg, sizeof(msg),
				 "view '%s': pass_through needs 'user_allow_other' in "
				 "/etc/fuse.conf (fusermount3 mounts inside a view only if it is "
				 "allow_other)\n",
				 dv->name);
			goto out_fail;
		}
		views[i].pts = calloc(dv->n_pass_through, sizeof(*views[i].pts));
		if (!views[i].pts) {
			snprintf(msg, sizeof(msg), "out of memory\n");
			goto out_fail;
		}
		for (size_t j = 0; j < dv->n_pass_through; j++) {
			char source[PROCS_SOURCE_MAX], why[1100];

			procs_pass_through_source(spec->job_id, dv->name, j, source,
						  sizeof(source));
			if (pass_through_open(&views[i].pts[j], dv->pass_through[j], source,
					      &report_fd, 1, why, sizeof(why)) < 0) {
				views[i].pts[j].path = NULL; /* nothing taken */
				snprintf(msg, sizeof(msg), "view '%s': %s\n", dv->name, why);
				goto out_fail;
			}
		}
	}
	for (i = 0; i < spec->n_views; i++) {
		const struct daemon_view *dv = &spec->views[i];
		struct jfs_config cfg;
		struct jfs_error err = {{0}};
		char cause[512] = "";
		int r;

		jfs_config_defaults(&cfg);
		cfg.lowers = dv->lowers;
		cfg.nlowers = dv->n_lowers;
		cfg.upper = dv->upper;
		cfg.work = dv->work;
		cfg.mountpoint = dv->target;
		cfg.foreground = true;
		cfg.opts.quota = dv->quota;
		if (dv->volatile_upper) {
			cfg.opts.volatile_upper = true;
			cfg.opts.fsync_copy_up = false;
		}
		/* fusermount3 (set-uid root, uid the user's) mounts a pass-through inside the view
		 * only if the kernel lets it in: that takes allow_other (user_allow_other) */
		if (dv->n_pass_through || nested_in(spec, i) < spec->n_views)
			cfg.opts.allow_other = true;
		{
			char why[PATH_MAX + 200];

			if (make_nested_target(spec, i, why, sizeof(why)) < 0) {
				snprintf(msg, sizeof(msg), "view '%s': %.1100s\n", dv->name, why);
				goto out_fail;
			}
		}
		/* how umount and gc find this mount wherever it was moved (procs_view_mount) */
		procs_view_source(spec->job_id, dv->name, views[i].fsname, sizeof(views[i].fsname));
		cfg.fsname = views[i].fsname;
		views[i].spec = dv;
		{
			int saved = -1, memfd = capture_begin(&saved);

			r = jfs_view_open(&cfg, &views[i].view, &err);
			if (memfd >= 0)
				capture_end(memfd, saved, cause, sizeof(cause));
		}
		if (r < 0) {
			static const char see[] = " (see the message above)";
			size_t len = strlen(err.msg), see_len = sizeof(see) - 1;

			/* one line: the message above is the cause, said here instead */
			if (cause[0] && len > see_len && !strcmp(err.msg + len - see_len, see))
				snprintf(msg, sizeof(msg), "view '%s': %.*s: %s\n", dv->name,
					 (int)(len - see_len), err.msg, cause);
			else
				snprintf(msg, sizeof(msg), "view '%s': %s\n", dv->name, err.msg);
			goto out_fail;
		}
		opened++;
		r = pthread_create(&views[i].thread, NULL, serve_thread, &views[i]);
		if (r != 0) {
			snprintf(msg, sizeof(msg), "view '%s': cannot start a thread: %s\n",
				 dv->name, strerror(r));
			goto out_fail;
		}
		views[i].started = true;
		log_line("view '%s' mounted at '%s'", dv->name, dv->target);
		for (size_t j = 0; j < dv->n_pass_through; j++) {
			char why[1100];

			if (pass_through_attach(&views[i].pts[j], why, sizeof(why)) < 0) {
				snprintf(msg, sizeof(msg), "view '%s': %s\n", dv->name, why);
				goto out_fail;
			}
			log_line("view '%s': '%s' passes through to the real directory", dv->name,
				 dv->pass_through[j]);
		}
	}
	report(report_fd, "ready\n");
	close(report_fd);
	report_fd = -1;
	log_line("job '%s': serving %zu view(s)", spec->job_id, spec->n_views);

	for (;;) {
		struct timespec tick = {0, 100 * 1000 * 1000};
		bool all_done = true;
		int sig;

		sig = sigtimedwait(&stop_set, NULL, &tick);
		if (sig > 0 && !stopping) {
			log_line("signal %d: stopping every view", sig);
			stopping = true;
			/* a view cannot go while a pass-through is mounted inside it */
			for (i = 0; i < spec->n_views; i++)
				for (size_t j = 0; j < spec->views[i].n_pass_through; j++)
					pass_through_detach(&views[i].pts[j]);
		}
		for (i = 0; i < spec->n_views; i++)
			for (size_t j = 0; j < spec->views[i].n_pass_through; j++)
				pass_through_reap(&views[i].pts[j]);
		for (i = 0; i < spec->n_views; i++) {
			if (__atomic_load_n(&views[i].done, __ATOMIC_ACQUIRE))
				continue;
			all_done = false;
			if (stopping) {
				/* repeated every tick: the loop may not have been waiting yet */
				jfs_view_stop(views[i].view);
				pthread_kill(views[i].thread, SIGUSR1);
			}
		}
		if (all_done)
			break;
	}
	for (i = spec->n_views; i-- > 0;) { /* a nested view goes before the one it is in */
		pthread_join(views[i].thread, NULL);
		if (views[i].result < 0) {
			log_line("view '%s': %s", views[i].spec->name, views[i].err.msg);
			status = 1;
		}
		jfs_view_close(views[i].view); /* unmounts it (lazily) if it is still mounted */
		log_line("view '%s' closed", views[i].spec->name);
	}
	log_line("job '%s': exiting with status %d", spec->job_id, status);
	close_pass_throughs(spec, views);
	free(views);
	return status;

out_fail:
	log_line("%.*s", (int)strcspn(msg, "\n"), msg);
	report(report_fd, msg);
	close(report_fd);
	for (i = 0; i < spec->n_views; i++)
		for (size_t j = 0; views[i].pts && j < spec->views[i].n_pass_through; j++)
			if (views[i].pts[j].path)
				pass_through_detach(&views[i].pts[j]);
	for (i = opened; i-- > 0;) {
		if (views[i].started) {
			while (!__atomic_load_n(&views[i].done, __ATOMIC_ACQUIRE)) {
				struct timespec nap = {0, 10 * 1000 * 1000};

				jfs_view_stop(views[i].view);
				pthread_kill(views[i].thread, SIGUSR1);
				nanosleep(&nap, NULL);
			}
			pthread_join(views[i].thread, NULL);
		}
		jfs_view_close(views[i].view);
	}
	close_pass_throughs(spec, views);
	free(views);
	return 1;
}

int daemon_start(const struct daemon_spec *spec, pid_t *ret_pid, char *errbuf, size_t errsize)
{
	char line[1200];
	size_t len = 0;
	int pipefd[2], status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(errbuf, errsize, "cannot create a pipe: %s", strerror(errno));
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		snprintf(errbuf, errsize, "cannot start the daemon: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	if (pid == 0) {
		int devnull;

		close(pipefd[0]);
		for (size_t i = 0; i < spec->n_close_fds; i++)
			if (spec->close_fds[i] >= 0)
				close(spec->close_fds[i]);
		if (spec->log_fd >= 0) {
			setsid(); /* no terminal's signals reach it */
			devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (devnull >= 0) {
				dup2(devnull, STDIN_FILENO);
				dup2(devnull, STDOUT_FILENO);
			}
			dup2(spec->log_fd, STDERR_FILENO);
			dup2(spec->log_fd, STDOUT_FILENO);
			close(spec->log_fd);
			if (devnull > STDERR_FILENO)
				close(devnull);
		}
		/* keep nothing else of the caller's: an inherited pipe would keep whoever reads its
		 * other end (a test harness, a CI runner) waiting for as long as the job runs */
		if (dup2(pipefd[1], 3) < 0)
			_exit(1);
		close_range(4, ~0U, 0);
		if (chdir("/") < 0)
			_exit(1);
		if (spec->private_ns) {
			int r = ns_create_private();

			if (r < 0) {
				char msg[256];

				snprintf(msg, sizeof(msg),
					 "cannot create a private mount namespace: %s%s\n",
					 strerror(-r), r == -EPERM ? " (it needs root)" : "");
				report(3, msg);
				_exit(1);
			}
		}
		_exit(daemon_main(spec, 3));
	}
	close(pipefd[1]);
	while (len + 1 < sizeof(line)) {
		ssize_t n = read(pipefd[0], line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	close(pipefd[0]);
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, "ready") == 0) {
		*ret_pid = pid;
		return 0;
	}
	/* it failed: it closed what it opened and exits; reap it */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (line[0])
		snprintf(errbuf, errsize, "%s", line);
	else
		snprintf(errbuf, errsize, "the daemon exited before its views were ready");
	return -EIO;
}
