/* Finds mounts and the processes holding them through /proc. Nothing here stats a path on a view
 * the plain way: a dead daemon would make that hang or fail, so mounts are found in mountinfo and
 * files are compared by mount id with statx(AT_STATX_DONT_SYNC). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "procs.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. -EINVAL when the unescaped text
 * does not fit: the limit is on the path, not on its escaped spelling, which is up to 4x longer. */
static int unescape(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o + 1 >= size)
			return -EINVAL;
		if (in[i] == '\\' && i + 3 < len && in[i + 1] >= '0' && in[i + 1] <= '7' &&
		    in[i + 2] >= '0' && in[i + 2] <= '7' && in[i + 3] >= '0' && in[i + 3] <= '7') {
			out[o++] = (char)((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 +
					  (in[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	return 0;
}

int procs_mountinfo_parse(const char *line, struct procs_mount *ret_mount)
{
	struct procs_mount m;
	const char *fields[6], *p = line, *sep, *fstype;
	size_t lens[6];
	int n = 0;

	memset(&m, 0, sizeof(m));
	/* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
	while (n < 6) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		fields[n] = p;
		while (*p && *p != ' ')
			p++;
		lens[n] = (size_t)(p - fields[n]);
		n++;
	}
	if (sscanf(fields[0], "%" SCNu64, &m.mnt_id) != 1 ||
	    sscanf(fields[1], "%" SCNu64, &m.parent_id) != 1 ||
	    sscanf(fields[2], "%u:%u", &m.dev_major, &m.dev_minor) != 2)
		return -EINVAL;
	if (unescape(fields[4], lens[4], m.mountpoint, sizeof(m.mountpoint)) < 0)
		return -EINVAL;
	sep = strstr(p, " - ");
	if (!sep)
		return -EINVAL;
	fstype = sep + 3;
	lens[0] = strcspn(fstype, " ");
	if (lens[0] == 0 || lens[0] >= sizeof(m.fstype))
		return -EINVAL;
	memcpy(m.fstype, fstype, lens[0]);
	m.fstype[lens[0]] = '\0';
	m.user_id = -1;
	p = fstype + lens[0];
	if (*p == ' ') {
		const char *src = p + 1, *opts, *uid;
		size_t n = strcspn(src, " ");

		if (unescape(src, n, m.source, sizeof(m.source)) < 0)
			return -EINVAL;
		opts = src + n;
		/* super options: "rw,user_id=0,group_id=0,..." */
		uid = strstr(opts, "user_id=");
		if (uid && (uid[-1] == ' ' || uid[-1] == ','))
			m.user_id = strtol(uid + 8, NULL, 10);
	}
	*ret_mount = m;
	return 0;
}

/* The state dir this process works on (procs_set_state_dir): two state dirs may hold jobs with
 * the same ID (two runner users, or two test runs), and each must find only its own views. */
static char state_tag[9];

void procs_set_state_dir(dev_t dev, ino_t ino)
{
	uint64_t key[2] = {(uint64_t)dev, (uint64_t)ino};

	snprintf(state_tag, sizeof(state_tag), "%08x", (unsigned)XXH32(key, sizeof(key), 0));
}

void procs_view_source(const char *job_id, const char *view, char *buf, size_t size)
{
	snprintf(buf, size, "jobfs:%s/%s%s%s", job_id, view, state_tag[0] ? "@" : "", state_tag);
}

void procs_pass_through_source(const char *job_id, const char *view, size_t index, char *buf,
			       size_t size)
{
	snprintf(buf, size, "jobfs:%s/%s/pass_through/%zu%s%s", job_id, view, index,
		 state_tag[0] ? "@" : "", state_tag);
}

int procs_view_mount(const char *job_id, const char *view, struct procs_mount *ret_mount)
{
	char source[PROCS_SOURCE_MAX];

	procs_view_source(job_id, view, source, sizeof(source));
	return procs_mount_by_source(source, ret_mount);
}

int procs_mounts_below(uint64_t mnt_id, struct procs_mount **ret_mounts, size_t *ret_n)
{
	struct procs_mount m, *found = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while ((len = getline(&line, &linecap, f)) > 0) {
		bool below = false;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (procs_mountinfo_parse(line, &m) < 0)
			continue;
		below = m.parent_id == mnt_id;
		for (size_t i = 0; i < n && !below; i++)
			below = m.parent_id == found[i].mnt_id;
		if (!below)
			continue;
		if (n == cap) {
			struct procs_mount *grown =
				realloc(found, sizeof(*found) * (cap = cap ? cap * 2 : 4));
			if (!grown) {
				free(found);
				free(line);
				fclose(f);
				return -ENOMEM;
			}
			found = grown;
		}
		found[n++] = m;
	}
	free(line);
	fclose(f);
	*ret_mounts = found;
	*ret_n = n;
	return 0;
}

/* The topmost jobfs mount with that source in the mount table at mountinfo_path. */
/* The fuse.jobfs mount named source that user uid made (the kernel's user_id= option). */
static int mount_by_source_in(const char *mountinfo_path, const char *source, uid_t uid,
			      struct procs_mount *ret_mount)
{
	struct procs_mount m, found;
	bool any = false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	f = fopen(mountinfo_path, "re");
	if (!f)
		return -errno;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		/* a user's own FUSE mount may copy the name, not the user_id the kernel sets */
		if (procs_mountinfo_parse(line, &m) == 0 && strcmp(m.fstype, "fuse.jobfs") == 0 &&
		    strcmp(m.source, source) == 0 && m.user_id == (long)uid) {
			found = m;
			any = true;
		}
	}
	free(line);
	fclose(f);
	if (!any)
		return -ENOENT;
	*ret_mount = found;
	return 0;
}

int procs_mount_by_source(const char *source, struct procs_mount *ret_mount)
{
	return mount_by_source_in("/proc/self/mountinfo", source, geteuid(), ret_mount);
}

int procs_mount_at(const char *path, struct procs_mount *ret_mount)
{
	struct procs_mount m, found;
	bool any = false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		/* later lines are mounted on top of earlier ones */
		if (procs_mountinfo_parse(line, &m) == 0 && strcmp(m.mountpoint, path) == 0) {
			found = m;
			any = true;
		}
	}
	free(line);
	fclose(f);
	if (!any)
		return -ENOENT;
	*ret_mount = found;
	return 0;
}

bool procs_view_mount_connected(pid_t pid, const char *job_id, const char *view)
{
	char mountinfo[64], proc_dir[32], path[4096 + 64], source[PROCS_SOURCE_MAX];
	struct procs_mount m;
	struct stat proc_st;
	struct statx stx;
	uid_t owner;

	/* The views live in the mount namespace of the daemon that serves them (a runner's private
	 * namespace, say), which need not be ours: look there, through /proc/PID, when we may. */
	snprintf(mountinfo, sizeof(mountinfo), "/proc/%d/mountinfo", (int)pid);
	if (pid <= 0 || access(mountinfo, R_OK) < 0)
		snprintf(mountinfo, sizeof(mountinfo), "/proc/self/mountinfo");
	/* the daemon's user made the mount: root's gc looks at the runner user's jobs */
	snprintf(proc_dir, sizeof(proc_dir), "/proc/%d", (int)pid);
	owner = pid > 0 && stat(proc_dir, &proc_st) == 0 ? proc_st.st_uid : geteuid();
	procs_view_source(job_id, view, source, sizeof(source));
	if (mount_by_source_in(mountinfo, source, owner, &m) < 0)
		return false;
	if (strcmp(mountinfo, "/proc/self/mountinfo") == 0)
		snprintf(path, sizeof(path), "%s", m.mountpoint);
	else
		snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, m.mountpoint);
	/* cached attributes only: a dead daemon answers ENOTCONN, never hangs us. A view another
	 * user mounted (the runner user's, looked at by root's gc) refuses every attribute to us
	 * without allow_other (EACCES), yet a statx that asks for none still resolves the path, and
	 * the kernel reports the mount ID it reached */
	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) <
		    0 &&
	    (errno != EACCES ||
	     statx(AT_FDCWD, path, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW, 0, &stx) < 0))
		return false;
	return !(stx.stx_mask & STATX_MNT_ID) || stx.stx_mnt_id == m.mnt_id;
}

int procs_mount_ns_other(pid_t pid)
{
	char path[64];
	struct stat self, other;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	if (stat("/proc/self/ns/mnt", &self) < 0)
		return -errno;
	if (stat(path, &other) < 0)
		return -errno;
	return self.st_dev != other.st_dev || self.st_ino != other.st_ino;
}

int procs_mount_by_id(uint64_t mnt_id, struct procs_mount *ret_mount)
{
	struct procs_mount m;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int r = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (r == -ENOENT && (len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (procs_mountinfo_parse(line, &m) == 0 && m.mnt_id == mnt_id) {
			*ret_mount = m;
			r = 0;
		}
	}
	free(line);
	fclose(f);
	return r;
}

bool procs_view_connected(const char *path)
{
	struct procs_mount m;
	struct statx stx;

	if (procs_mount_at(path, &m) < 0 || strcmp(m.fstype, "fuse.jobfs") != 0)
		return false;
	/* cached attributes only: a dead daemon answers ENOTCONN, never hangs us. A view another
	 * user mounted (the runner user's, looked at by root's gc) refuses every attribute to us
	 * without allow_other (EACCES), yet a statx that asks for none still resolves the path, and
	 * the kernel reports the mount ID it reached */
	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) <
		    0 &&
	    (errno != EACCES ||
	     statx(AT_FDCWD, path, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW, 0, &stx) < 0))
		return false;
	return !(stx.stx_mask & STATX_MNT_ID) || stx.stx_mnt_id == m.mnt_id;
}

int procs_maps_line_dev(const char *line, unsigned *ret_major, unsigned *ret_minor)
{
	unsigned major, minor;
	int n = 0;

	/* address perms offset dev inode [path] */
	if (sscanf(line, "%*x-%*x %*4s %*x %x:%x %*u%n", &major, &minor, &n) != 2 || n == 0)
		return -EINVAL;
	*ret_major = major;
	*ret_minor = minor;
	return 0;
}

int procs_stat_parse_start(const char *text, uint64_t *ret_ticks)
{
	const char *p = strrchr(text, ')');
	uint64_t ticks;
	int field;

	if (!p)
		return -EINVAL;
	p++;
	/* p is before field 3 (state); field 22 is starttime */
	for (field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		if (field == 22)
			break;
		while (*p && *p != ' ')
			p++;
	}
	if (sscanf(p, "%" SCNu64, &ticks) != 1)
		return -EINVAL;
	*ret_ticks = ticks;
	return 0;
}

static int read_small(const char *path, char *buf, size_t size, size_t *ret_len)
{
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return 0;
}

int procs_start_time(pid_t pid, uint64_t *ret_ticks)
{
	char path[64], buf[1024];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_small(path, buf, sizeof(buf), NULL);
	if (r < 0)
		return r;
	return procs_stat_parse_start(buf, ret_ticks);
}

bool procs_alive(pid_t pid, uint64_t start_ticks)
{
	char path[64], buf[1024];
	const char *state;
	uint64_t ticks;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf), NULL) < 0)
		return false;
	state = strrchr(buf, ')');
	if (!state || state[1] != ' ' || state[2] == 'Z' || state[2] == 'X')
		return false;
	if (procs_stat_parse_start(buf, &ticks) < 0)
		return false;
	return start_ticks == 0 || ticks == start_ticks;
}

void procs_cmdline_format(const char *raw, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	while (len > 0 && raw[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned char c = (unsigned char)raw[i];

		buf[o++] = c == '\0' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	buf[o] = '\0';
}

void procs_cmdline(pid_t pid, char *buf, size_t size)
{
	char path[64], raw[4096];
	size_t len = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_small(path, raw, sizeof(raw), &len) < 0 || len == 0) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		if (read_small(path, raw, sizeof(raw), &len) < 0)
			len = 0;
		while (len > 0 && raw[len - 1] == '\n')
			len--;
		raw[len] = '\0';
		snprintf(buf, size, "[%s]", raw);
		return;
	}
	procs_cmdline_format(raw, len, buf, size);
}

/* True when the file the magic link names is on the mount. Never a plain stat: that could wait on
 * a dead daemon. */
static bool link_on_mount(const char *path, const struct procs_mount *mount)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0)
		return false;
	return (stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id == mount->mnt_id;
}

static bool maps_on_mount(pid_t pid, const struct procs_mount *mount)
{
	char path[64], *line = NULL;
	unsigned major, minor;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0)
		found = procs_maps_line_dev(line, &major, &minor) == 0 &&
			major == mount->dev_major && minor == mount->dev_minor;
	free(line);
	fclose(f);
	return found;
}

static bool pid_holds(pid_t pid, const struct procs_mount *mount)
{
	static const char *const links[] = {"cwd", "root", "exe"};
	char path[320];
	struct dirent *de;
	bool found = false;
	DIR *dir;

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, links[i]);
		if (link_on_mount(path, mount))
			return true;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (dir) {
		while (!found && (de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, de->d_name);
			found = link_on_mount(path, mount);
		}
		closedir(dir);
	}
	return found || maps_on_mount(pid, mount);
}

static int compare_pids(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Every process of /proc that match accepts, sorted ascending in a malloc'ed array. */
static int scan_procs(bool (*match)(pid_t pid, const void *arg), const void *arg, pid_t **ret_pids,
		      size_t *ret_n)
{
	pid_t *pids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *proc;

	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || !match((pid_t)pid, arg))
			continue;
		if (n == cap) {
			pid_t *grown = realloc(pids, sizeof(*pids) * (cap = cap ? cap * 2 : 16));
			if (!grown) {
				free(pids);
				closedir(proc);
				return -ENOMEM;
			}
			pids = grown;
		}
		pids[n++] = (pid_t)pid;
	}
	closedir(proc);
	if (n)
		qsort(pids, n, sizeof(*pids), compare_pids);
	*ret_pids = pids;
	*ret_n = n;
	return 0;
}

static bool match_holder(pid_t pid, const void *arg)
{
	return pid != getpid() && pid_holds(pid, arg);
}

int procs_holders(const struct procs_mount *mount, pid_t **ret_pids, size_t *ret_n)
{
	return scan_procs(match_holder, mount, ret_pids, ret_n);
}

/* --- the job marker ------------------------------------------------------------------------ */

bool procs_environ_has(const char *env, size_t len, const char *entry)
{
	size_t entry_len = strlen(entry);

	for (size_t at = 0; at < len;) {
		const char *s = env + at;
		const char *nul = memchr(s, '\0', len - at);
		size_t slen = nul ? (size_t)(nul - s) : len - at;

		if (slen == entry_len && memcmp(s, entry, entry_len) == 0)
			return true;
		at += slen + 1;
	}
	return false;
}

/* The environment pid was exec'ed with; -EACCES for another user's (unless root), -E2BIG past
 * PROCS_ENVIRON_MAX. */
static int read_environ(pid_t pid, char **ret_env, size_t *ret_len)
{
	char path[64], *env = NULL;
	size_t len = 0, cap = 0;
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown;

			if (cap >= PROCS_ENVIRON_MAX) {
				r = -E2BIG;
				break;
			}
			grown = realloc(env, cap = cap ? cap * 2 : 16384);
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			env = grown;
		}
		n = read(fd, env + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(env);
		return r;
	}
	*ret_env = env;
	*ret_len = len;
	return 0;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf), NULL) < 0)
		return 0;
	p = strrchr(buf, ')'); /* the command name may hold anything, ')' too */
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

struct marked_match {
	const char *entry;
	pid_t ancestors[64];
	size_t n_ancestors;
};

static bool match_marked(pid_t pid, const void *arg)
{
	const struct marked_match *m = arg;
	char *env = NULL;
	size_t len = 0;
	bool has;

	for (size_t i = 0; i < m->n_ancestors; i++)
		if (m->ancestors[i] == pid)
			return false;
	/* another user's (unreadable), a kernel thread's (empty) or a gone process's environment is
	 * not the job's */
	if (read_environ(pid, &env, &len) < 0)
		return false;
	has = procs_environ_has(env, len, m->entry);
	free(env);
	return has;
}

int procs_marked(const char *entry, pid_t **ret_pids, size_t *ret_n)
{
	struct marked_match m = {.entry = entry};

	/* this process and its ancestors carry the marker when a hook of the job runs us: never
	 * them */
	for (pid_t p = getpid(); p > 0 && m.n_ancestors < 64; p = parent_of(p))
		m.ancestors[m.n_ancestors++] = p;
	return scan_procs(match_marked, &m, ret_pids, ret_n);
}
