/* The job store. Layout of the state dir (all 0700, owned by whoever runs jobfs):
 *
 *   STATE/lock                      state-dir lock (shared: mount creating a job; exclusive: gc)
 *   STATE/jobs/ID/lock              the job's lock: mount holds it while it sets up, umount and gc
 *                                   while they work on the job; nobody holds it while it is mounted
 *   STATE/jobs/ID/record            the job record (below), replaced atomically
 *   STATE/jobs/ID/daemon.log        the job daemon's stdout and stderr
 *   STATE/jobs/ID/views/NAME/upper  the view's upper layer
 *   STATE/jobs/ID/views/NAME/work   its work dir
 *   STATE/trash/                    gc moves a job dir here with one rename, then deletes it
 *   STATE/logs/ID.daemon.log        the daemon log of a mount that failed (its job dir is rolled
 *                                   back); gc removes it after the retention
 *
 * Lock order: STATE/lock before a job's lock. A record is text, one "key=value" per line, in a
 * fixed order, parsed strictly (anything unexpected makes the job an orphan):
 *
 *   jobfs-record 1
 *   id=ID  state=mounting|mounted|unmounted  pid=N  pid_start=TICKS  created=UNIX
 *   unmounted=UNIX  policy_digest=HEX16  policy_source=TEXT  [namespace=private
 *   [namespace_ino=N]]  [outcome=success|failure]
 *   [context_repository=V] [context_ref=V] [context_workflow=V] [context_job=V]
 *   [context_event=V]  (V escaped: '\\' and \xHH for every byte outside 0x20-0x7e)
 *   then per view: view=NAME  target=PATH  target_created=N  lower=PATH (zero or more)
 *   pass_through=PATH (zero or more)
 *   (N: how many trailing components of the target jobfs created; umount removes them if empty)
 *   A job none of whose views matched its context has no views: state=mounted with pid=0 until
 *   umount.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "ns.h"
#include "procs.h"
#include "store.h"

const char *store_state_name(enum store_state state)
{
	switch (state) {
	case STORE_MOUNTING:
		return "mounting";
	case STORE_MOUNTED:
		return "mounted";
	case STORE_UNMOUNTED:
		return "unmounted";
	case STORE_STALE:
		return "stale";
	case STORE_ORPHAN:
		return "orphan";
	}
	return "unknown";
}

const char *store_outcome_name(enum store_outcome outcome)
{
	switch (outcome) {
	case STORE_OUTCOME_UNKNOWN:
		return "unknown";
	case STORE_OUTCOME_SUCCESS:
		return "success";
	case STORE_OUTCOME_FAILURE:
		return "failure";
	}
	return "unknown";
}

int store_outcome_from_name(const char *name, enum store_outcome *ret_outcome)
{
	if (!strcmp(name, "success"))
		*ret_outcome = STORE_OUTCOME_SUCCESS;
	else if (!strcmp(name, "failure"))
		*ret_outcome = STORE_OUTCOME_FAILURE;
	else
		return -EINVAL;
	return 0;
}

/* Root working in a state dir it does not own (the hourly jobfs-gc.service over a runner user's,
 * a root promote) gives what it creates there to the state dir's owner: a lock, tmp dir or stack
 * file left owned by root would make the owner's next mount, promote or gc fail with EACCES. Set
 * by store_open(); a process works in one state dir. */
static struct {
	bool adopt;
	uid_t uid;
	gid_t gid;
} state_owner;

int store_adopt(int fd)
{
	if (!state_owner.adopt)
		return 0;
	if (fchown(fd, state_owner.uid, state_owner.gid) < 0)
		return -errno;
	return 0;
}

int store_adopt_at(int dirfd, const char *name)
{
	if (!state_owner.adopt)
		return 0;
	if (fchownat(dirfd, name, state_owner.uid, state_owner.gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int store_mkdirat(int dirfd, const char *name, mode_t mode)
{
	int r;

	if (mkdirat(dirfd, name, mode) < 0)
		return -errno;
	r = store_adopt_at(dirfd, name);
	if (r < 0) {
		unlinkat(dirfd, name, AT_REMOVEDIR);
		errno = -r; /* callers may read errno, as after mkdirat */
	}
	return r;
}

int store_openat_new(int dirfd, const char *name, int flags, mode_t mode)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, name, flags | O_CREAT, mode);
	if (fd < 0)
		return -errno;
	/* only what is root's: an existing file keeps its owner */
	if (state_owner.adopt && fstat(fd, &st) == 0 && st.st_uid == 0) {
		int r = store_adopt(fd);

		if (r < 0) {
			close(fd);
			errno = -r;
			return r;
		}
	}
	return fd;
}

static int open_subdir(int dirfd, const char *name, bool create, int *ret_fd)
{
	int fd, r;

	if (create && (r = store_mkdirat(dirfd, name, 0700)) < 0 && r != -EEXIST)
		return r;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

/* mkdir -p for the state dir itself (its parents get 0755, like /var/lib). */
static int make_path(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int store_open(const char *state_dir, bool create, struct store **ret_store)
{
	struct store *store;
	int r;

	store = calloc(1, sizeof(*store));
	if (!store)
		return -ENOMEM;
	store->dir_fd = store->jobs_fd = store->trash_fd = store->lock_fd = -1;
	store->path = strdup(state_dir);
	if (!store->path) {
		r = -ENOMEM;
		goto out_free;
	}
	if (create && (r = make_path(state_dir)) < 0)
		goto out_free;
	store->dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->dir_fd < 0) {
		r = -errno;
		goto out_free;
	}
	{
		struct stat st;
		if (fstat(store->dir_fd, &st) < 0) {
			r = -errno;
			goto out_free;
		}
		procs_set_state_dir(st.st_dev, st.st_ino);
		state_owner.adopt = geteuid() == 0 && st.st_uid != 0;
		state_owner.uid = st.st_uid;
		state_owner.gid = st.st_gid;
	}
	r = open_subdir(store->dir_fd, "jobs", create, &store->jobs_fd);
	if (r < 0)
		goto out_free;
	r = open_subdir(store->dir_fd, "trash", create, &store->trash_fd);
	if (r == -ENOENT && !create) {
		store->trash_fd = -1;
		r = 0;
	}
	if (r < 0)
		goto out_free;
	*ret_store = store;
	return 0;

out_free:
	store_close(store);
	return r;
}

void store_close(struct store *store)
{
	if (!store)
		return;
	if (store->lock_fd >= 0)
		close(store->lock_fd);
	if (store->trash_fd >= 0)
		close(store->trash_fd);
	if (store->jobs_fd >= 0)
		close(store->jobs_fd);
	if (store->dir_fd >= 0)
		close(store->dir_fd);
	free(store->path);
	free(store);
}

int store_lock_state(struct store *store, bool exclusive)
{
	if (store->lock_fd < 0) {
		store->lock_fd = store_openat_new(store->dir_fd, "lock",
						  O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (store->lock_fd < 0)
			return store->lock_fd;
	}
	while (flock(store->lock_fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

void store_unlock_state(struct store *store)
{
	if (store->lock_fd >= 0)
		flock(store->lock_fd, LOCK_UN);
}

int store_job_lock(int job_fd, bool wait, int *ret_lock_fd)
{
	int fd, r;

	fd = store_openat_new(job_fd, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		r = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
		close(fd);
		return r;
	}
	*ret_lock_fd = fd;
	return 0;
}

int store_job_open(struct store *store, const char *id, int *ret_job_fd)
{
	int fd;

	if (!policy_job_id_valid(id))
		return -EINVAL;
	fd = openat(store->jobs_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	*ret_job_fd = fd;
	return 0;
}

int store_job_create(struct store *store, const char *id, int *ret_job_fd, int *ret_lock_fd)
{
	int job_fd = -1, lock_fd = -1, r; /* initialised for gcc -O3 (Release) */

	if (!policy_job_id_valid(id))
		return -EINVAL;
	r = store_lock_state(store, false);
	if (r < 0)
		return r;
	r = store_mkdirat(store->jobs_fd, id, 0700);
	if (r < 0)
		goto out_unlock;
	r = store_job_open(store, id, &job_fd);
	if (r < 0)
		goto out_unlock;
	/* a new dir: only a passing `jobfs ls` can hold its lock, and only for a moment */
	r = store_job_lock(job_fd, true, &lock_fd);
	if (r < 0) {
		close(job_fd);
		goto out_unlock;
	}
	*ret_job_fd = job_fd;
	*ret_lock_fd = lock_fd;
out_unlock:
	store_unlock_state(store);
	return r;
}

int store_keep_daemon_log(struct store *store, int job_fd, const char *id, char *ret_path,
			  size_t size)
{
	char name[POLICY_JOB_ID_MAX + 16];
	int logs_fd, r;

	r = store_mkdirat(store->dir_fd, "logs", 0700);
	if (r < 0 && r != -EEXIST)
		return r;
	logs_fd = openat(store->dir_fd, "logs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (logs_fd < 0)
		return -errno;
	snprintf(name, sizeof(name), "%s.daemon.log", id);
	r = renameat(job_fd, "daemon.log", logs_fd, name) < 0 ? -errno : 0;
	close(logs_fd);
	if (r == 0)
		snprintf(ret_path, size, "%s/logs/%s", store->path, name);
	return r;
}

int store_expire_logs(struct store *store, int64_t now, uint64_t keep, bool dry_run)
{
	struct dirent *de;
	DIR *dir;
	int fd, removed = 0;

	fd = openat(store->dir_fd, "logs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		struct stat st;

		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (now < st.st_mtim.tv_sec || (uint64_t)(now - st.st_mtim.tv_sec) < keep)
			continue;
		if (dry_run || unlinkat(fd, de->d_name, 0) == 0)
			removed++;
	}
	closedir(dir);
	return removed;
}

/* --- records ------------------------------------------------------------------------------- */

void store_record_free(struct store_record *record)
{
	if (!record)
		return;
	for (size_t i = 0; i < record->n_views; i++) {
		struct store_view *view = &record->views[i];

		free(view->name);
		free(view->target);
		for (size_t j = 0; j < view->n_lowers; j++)
			free(view->lowers[j]);
		free(view->lowers);
		for (size_t j = 0; j < view->n_pass_through; j++)
			free(view->pass_through[j]);
		free(view->pass_through);
	}
	free(record->views);
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		free(record->context[k]);
	free(record->id);
	free(record->policy_digest);
	free(record->policy_source);
	free(record);
}

static bool text_clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool path_valid(const char *s)
{
	char *normal = NULL;
	const char *reason;
	bool ok;

	ok = policy_path_normalize(s, &normal, &reason) == 0 && strcmp(normal, s) == 0;
	free(normal);
	return ok;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

/* Splits the next line off *p (up to end) as key and value; -EINVAL if it is not "key=value\n". */
static int next_line(const char **p, const char *end, char *key, size_t key_size, char **ret_value)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p)), *eq;
	size_t klen;
	char *value;

	if (!nl)
		return -EINVAL;
	eq = memchr(*p, '=', (size_t)(nl - *p));
	if (!eq || (klen = (size_t)(eq - *p)) == 0 || klen >= key_size)
		return -EINVAL;
	/* keys are [a-z_]: a NUL in "pid\0junk=1" would otherwise compare equal to "pid" */
	for (size_t i = 0; i < klen; i++)
		if (((*p)[i] < 'a' || (*p)[i] > 'z') && (*p)[i] != '_')
			return -EINVAL;
	memcpy(key, *p, klen);
	key[klen] = '\0';
	/* not strndup: the record need not hold a NUL anywhere */
	value = malloc((size_t)(nl - eq));
	if (!value)
		return -ENOMEM;
	memcpy(value, eq + 1, (size_t)(nl - eq - 1));
	value[nl - eq - 1] = '\0';
	if (strlen(value) != (size_t)(nl - eq - 1) || !text_clean(value)) {
		free(value);
		return -EINVAL;
	}
	*p = nl + 1;
	*ret_value = value;
	return 0;
}

/* Takes the next line, which must have this key; *ret_value is malloc'ed. */
static int expect_key(const char **p, const char *end, const char *key, char **ret_value)
{
	char got[32];
	char *value;
	int r;

	r = next_line(p, end, got, sizeof(got), &value);
	if (r < 0)
		return r;
	if (strcmp(got, key) != 0) {
		free(value);
		return -EINVAL;
	}
	*ret_value = value;
	return 0;
}

static int expect_u64(const char **p, const char *end, const char *key, uint64_t max, uint64_t *ret)
{
	char *value;
	int r;

	r = expect_key(p, end, key, &value);
	if (r < 0)
		return r;
	r = parse_u64(value, ret);
	free(value);
	if (r == 0 && *ret > max)
		r = -EINVAL;
	return r;
}

static int parse_state(const char *s, enum store_state *ret)
{
	if (!strcmp(s, "mounting"))
		*ret = STORE_MOUNTING;
	else if (!strcmp(s, "mounted"))
		*ret = STORE_MOUNTED;
	else if (!strcmp(s, "unmounted"))
		*ret = STORE_UNMOUNTED;
	else
		return -EINVAL;
	return 0;
}

static int parse_view(const char **p, const char *end, struct store_view *view)
{
	char key[32], *value;
	uint64_t created;
	int r;

	r = expect_key(p, end, "target", &view->target);
	if (r < 0)
		return r;
	if (!path_valid(view->target))
		return -EINVAL;
	r = expect_u64(p, end, "target_created", PATH_MAX, &created);
	if (r < 0)
		return r;
	view->target_created = (unsigned)created;
	/* the text need not end in a NUL: never compare past end */
	while (end - *p >= 6 && memcmp(*p, "lower=", 6) == 0) {
		char **grown;

		r = next_line(p, end, key, sizeof(key), &value);
		if (r < 0)
			return r;
		grown = realloc(view->lowers, sizeof(*grown) * (view->n_lowers + 1));
		if (!grown) {
			free(value);
			return -ENOMEM;
		}
		view->lowers = grown;
		view->lowers[view->n_lowers++] = value;
		if (!path_valid(value) || view->n_lowers > STORE_LOWERS_MAX)
			return -EINVAL;
	}
	while (end - *p >= 13 && memcmp(*p, "pass_through=", 13) == 0) {
		char **grown;

		r = next_line(p, end, key, sizeof(key), &value);
		if (r < 0)
			return r;
		grown = realloc(view->pass_through, sizeof(*grown) * (view->n_pass_through + 1));
		if (!grown) {
			free(value);
			return -ENOMEM;
		}
		view->pass_through = grown;
		view->pass_through[view->n_pass_through++] = value;
		if (!path_valid(value) || view->n_pass_through > POLICY_PASS_THROUGH_MAX)
			return -EINVAL;
	}
	return 0;
}

void store_record_context(const struct store_record *record, struct policy_context *ret)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++)
		ret->values[k] = record->context[k];
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A context value as written (escaped) back to its bytes, in place; -EINVAL unless every escape
 * is one format_context_value writes and the result is a valid context value. */
static int unescape_context_value(char *value)
{
	const char *reason;
	char *in = value, *out = value;

	while (*in) {
		if ((unsigned char)*in >= 0x80)
			return -EINVAL; /* written escaped */
		if (*in != '\\') {
			*out++ = *in++;
			continue;
		}
		if (in[1] == '\\') {
			*out++ = '\\';
			in += 2;
			continue;
		}
		if (in[1] != 'x' || hex_digit(in[2]) < 0 || hex_digit(in[3]) < 0)
			return -EINVAL;
		*out = (char)(hex_digit(in[2]) << 4 | hex_digit(in[3]));
		/* only bytes that must be escaped are: one spelling per value; and no NUL */
		if (*out == '\0' || ((unsigned char)*out >= 0x20 && (unsigned char)*out < 0x7f))
			return -EINVAL;
		out++;
		in += 4;
	}
	*out = '\0';
	return policy_context_value_check(value, &reason);
}

static void format_context_value(FILE *out, const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", out);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
}

int store_record_parse(const char *text, size_t size, struct store_record **ret_record)
{
	static const char magic[] = "jobfs-record 1\n";
	const char *p = text, *end = text + size;
	struct store_record *rec;
	char *value = NULL;
	uint64_t n;
	int r;

	if (size < sizeof(magic) - 1 || memcmp(text, magic, sizeof(magic) - 1) != 0)
		return -EINVAL;
	p += sizeof(magic) - 1;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	if ((r = expect_key(&p, end, "id", &rec->id)) < 0)
		goto out_free;
	r = -EINVAL;
	if (!policy_job_id_valid(rec->id))
		goto out_free;
	if ((r = expect_key(&p, end, "state", &value)) < 0 ||
	    (r = parse_state(value, &rec->state)) < 0)
		goto out_free;
	if ((r = expect_u64(&p, end, "pid", INT32_MAX, &n)) < 0)
		goto out_free;
	rec->pid = (pid_t)n;
	if ((r = expect_u64(&p, end, "pid_start", UINT64_MAX, &rec->pid_start)) < 0)
		goto out_free;
	if ((r = expect_u64(&p, end, "created", INT64_MAX, &n)) < 0)
		goto out_free;
	rec->created = (int64_t)n;
	if ((r = expect_u64(&p, end, "unmounted", INT64_MAX, &n)) < 0)
		goto out_free;
	rec->unmounted = (int64_t)n;
	if ((r = expect_key(&p, end, "policy_digest", &rec->policy_digest)) < 0)
		goto out_free;
	r = -EINVAL;
	if (strlen(rec->policy_digest) != 16 ||
	    strspn(rec->policy_digest, "0123456789abcdef") != 16)
		goto out_free;
	if ((r = expect_key(&p, end, "policy_source", &rec->policy_source)) < 0)
		goto out_free;
	/* optional: only a job mounted in a private mount namespace has it */
	if (p < end && (size_t)(end - p) >= 10 && memcmp(p, "namespace=", 10) == 0) {
		free(value);
		value = NULL;
		if ((r = expect_key(&p, end, "namespace", &value)) < 0)
			goto out_free;
		r = -EINVAL;
		if (strcmp(value, "private") != 0)
			goto out_free;
		rec->private_ns = true;
		free(value);
		value = NULL;
		if ((size_t)(end - p) >= 14 && memcmp(p, "namespace_ino=", 14) == 0 &&
		    ((r = expect_u64(&p, end, "namespace_ino", UINT64_MAX, &rec->ns_ino)) < 0 ||
		     (r = rec->ns_ino ? 0 : -EINVAL) < 0))
			goto out_free;
	}
	/* optional: records written before outcomes existed, or before anyone said */
	if (end - p >= 8 && memcmp(p, "outcome=", 8) == 0) {
		free(value);
		value = NULL;
		if ((r = expect_key(&p, end, "outcome", &value)) < 0 ||
		    (r = store_outcome_from_name(value, &rec->outcome)) < 0)
			goto out_free;
	}
	/* optional, in key order: what `mount --context` said */
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		char key[32];
		size_t len = (size_t)snprintf(key, sizeof(key), "context_%s=",
					      policy_context_key_name((enum policy_context_key)k));

		if ((size_t)(end - p) < len || memcmp(p, key, len) != 0)
			continue;
		key[len - 1] = '\0';
		if ((r = expect_key(&p, end, key, &rec->context[k])) < 0)
			goto out_free;
		if ((r = unescape_context_value(rec->context[k])) < 0)
			goto out_free;
	}
	while (p < end) {
		struct store_view *grown;

		r = -EINVAL;
		if (rec->n_views >= POLICY_VIEWS_MAX)
			goto out_free;
		grown = realloc(rec->views, sizeof(*grown) * (rec->n_views + 1));
		if (!grown) {
			r = -ENOMEM;
			goto out_free;
		}
		rec->views = grown;
		memset(&rec->views[rec->n_views], 0, sizeof(*grown));
		rec->n_views++;
		if ((r = expect_key(&p, end, "view", &rec->views[rec->n_views - 1].name)) < 0)
			goto out_free;
		r = -EINVAL;
		if (!policy_view_name_valid(rec->views[rec->n_views - 1].name))
			goto out_free;
		for (size_t i = 0; i + 1 < rec->n_views; i++)
			if (!strcmp(rec->views[i].name, rec->views[rec->n_views - 1].name))
				goto out_free;
		if ((r = parse_view(&p, end, &rec->views[rec->n_views - 1])) < 0)
			goto out_free;
	}
	/* a mounted job has a daemon, unless it has no views; a mounting one may not yet */
	r = -EINVAL;
	if (rec->state == STORE_MOUNTED && rec->pid <= 0 && rec->n_views > 0)
		goto out_free;
	free(value);
	*ret_record = rec;
	return 0;

out_free:
	free(value);
	store_record_free(rec);
	return r;
}

int store_record_format(const struct store_record *rec, FILE *out)
{
	fprintf(out,
		"jobfs-record %d\nid=%s\nstate=%s\npid=%d\npid_start=%" PRIu64 "\ncreated=%" PRId64
		"\nunmounted=%" PRId64 "\npolicy_digest=%s\npolicy_source=%s\n",
		STORE_RECORD_VERSION, rec->id, store_state_name(rec->state), (int)rec->pid,
		rec->pid_start, rec->created, rec->unmounted, rec->policy_digest,
		rec->policy_source);
	if (rec->private_ns)
		fputs("namespace=private\n", out);
	if (rec->private_ns && rec->ns_ino)
		fprintf(out, "namespace_ino=%" PRIu64 "\n", rec->ns_ino);
	if (rec->outcome != STORE_OUTCOME_UNKNOWN)
		fprintf(out, "outcome=%s\n", store_outcome_name(rec->outcome));
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		if (!rec->context[k])
			continue;
		fprintf(out, "context_%s=", policy_context_key_name((enum policy_context_key)k));
		format_context_value(out, rec->context[k]);
		fputc('\n', out);
	}
	for (size_t i = 0; i < rec->n_views; i++) {
		const struct store_view *view = &rec->views[i];

		fprintf(out, "view=%s\ntarget=%s\ntarget_created=%u\n", view->name, view->target,
			view->target_created);
		for (size_t j = 0; j < view->n_lowers; j++)
			fprintf(out, "lower=%s\n", view->lowers[j]);
		for (size_t j = 0; j < view->n_pass_through; j++)
			fprintf(out, "pass_through=%s\n", view->pass_through[j]);
	}
	return ferror(out) ? -EIO : 0;
}

int store_record_write(int job_fd, const struct store_record *record)
{
	char *text = NULL;
	size_t len = 0, done = 0;
	struct stat job_st;
	FILE *mem;
	int fd, r;

	mem = open_memstream(&text, &len);
	if (!mem)
		return -ENOMEM;
	r = store_record_format(record, mem);
	if (fclose(mem) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0)
		goto out_free;
	fd = openat(job_fd, "record.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	/* root's gc rewriting a job of the runner user: the record stays the job owner's, who must
	 * read it (a record the owner cannot read makes the job an orphan to it). In a state dir
	 * root does not own that must succeed, as for all it creates there (store_adopt); elsewhere
	 * it is best effort. */
	if (geteuid() == 0 && fstat(job_fd, &job_st) == 0 && job_st.st_uid != 0 &&
	    fchown(fd, job_st.st_uid, job_st.st_gid) < 0 && state_owner.adopt)
		r = -errno;
	while (r == 0 && done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		done += (size_t)n;
	}
	/* no fsync: a record only has to outlive the job's views, which a power cut ends too; a
	 * record lost with them leaves an orphan layer, which gc removes */
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(job_fd, "record.tmp", job_fd, "record") < 0)
		r = -errno;
	if (r < 0)
		unlinkat(job_fd, "record.tmp", 0);
out_free:
	free(text);
	return r;
}

int store_record_read(int job_fd, struct store_record **ret_record)
{
	char *buf;
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = openat(job_fd, "record", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STORE_RECORD_MAX) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size && (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	r = store_record_parse(buf, len, ret_record);
	free(buf);
	return r;
}

/* Whether a job other than self_id, not unmounted, has a target at dir or below it. Such a job
 * may be mounted there in another mount namespace (another runner's, at the same canonical path),
 * where removing the dir would detach its view. Unreadable records count as in use. */
static bool target_in_use(struct store *store, const char *self_id, const char *dir)
{
	size_t dir_len = strlen(dir);
	struct dirent *de;
	bool in_use = false;
	DIR *jobs;
	int fd;

	fd = openat(store->jobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return true;
	jobs = fdopendir(fd);
	if (!jobs) {
		close(fd);
		return true;
	}
	while (!in_use && (de = readdir(jobs))) {
		struct store_record *rec;
		int job_fd = -1;

		if (!policy_job_id_valid(de->d_name) || strcmp(de->d_name, self_id) == 0)
			continue;
		if (store_job_open(store, de->d_name, &job_fd) < 0)
			continue; /* gone meanwhile */
		if (store_record_read(job_fd, &rec) < 0) {
			close(job_fd);
			continue; /* an orphan has no mounts */
		}
		close(job_fd);
		if (rec->state == STORE_UNMOUNTED) {
			store_record_free(rec);
			continue;
		}
		for (size_t i = 0; i < rec->n_views && !in_use; i++) {
			const char *t = rec->views[i].target;

			in_use = strncmp(t, dir, dir_len) == 0 &&
				 (t[dir_len] == '\0' || t[dir_len] == '/');
		}
		store_record_free(rec);
	}
	closedir(jobs);
	return in_use;
}

void store_remove_target(struct store *store, const char *job_id, const struct store_view *view)
{
	char buf[PATH_MAX];
	char *slash;

	if (strlen(view->target) >= sizeof(buf))
		return;
	strcpy(buf, view->target);
	for (unsigned i = 0; i < view->target_created; i++) {
		if (store && target_in_use(store, job_id, buf))
			return;
		/* rmdir only removes an empty dir, and never follows a symlink */
		if (rmdir(buf) < 0)
			return;
		slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return;
		*slash = '\0';
	}
}

static void digest_str(XXH64_state_t *state, const char *s)
{
	/* with the NUL, so "ab","c" and "a","bc" differ */
	XXH64_update(state, s ? s : "", s ? strlen(s) + 1 : 1);
}

static void digest_selector(XXH64_state_t *state, const char *name,
			    const struct policy_selector *selector)
{
	for (size_t k = 0; k < POLICY_CONTEXT_COUNT; k++) {
		if (!selector->n_patterns[k])
			continue;
		digest_str(state, name);
		digest_str(state, policy_context_key_name((enum policy_context_key)k));
		for (size_t i = 0; i < selector->n_patterns[k]; i++)
			digest_str(state, selector->patterns[k][i]);
	}
}

void store_policy_digest(const struct policy *policy, char ret_hex[static 17])
{
	XXH64_state_t *state = XXH64_createState();
	char num[64];

	if (!state) {
		snprintf(ret_hex, 17, "%016x", 0);
		return;
	}
	XXH64_reset(state, 0);
	digest_str(state, policy->state_dir);
	for (size_t i = 0; i < policy->n_views; i++) {
		const struct policy_view *view = &policy->views[i];

		digest_str(state, view->name);
		for (size_t j = 0; j < view->n_lower; j++)
			digest_str(state, view->lower[j]);
		digest_str(state, view->target);
		for (size_t j = 0; j < view->n_pass_through; j++)
			digest_str(state, view->pass_through[j]);
		snprintf(num, sizeof(num), "%" PRIu64 ":%d:%d", view->quota,
			 (int)view->promote.kind, (int)view->volatile_upper);
		digest_str(state, num);
		for (size_t j = 0; j < view->promote.n_ignore; j++)
			digest_str(state, view->promote.ignore[j]);
		/* selectors only when present: a policy without them keeps its digest */
		digest_selector(state, "when", &view->when);
		digest_selector(state, "trust", &view->promote.trust);
	}
	snprintf(num, sizeof(num), "%" PRIu64 ":%" PRIu64 ":%" PRIu64, policy->gc.keep_unmounted,
		 policy->gc.max_total, policy->gc.max_generations);
	digest_str(state, num);
	snprintf(ret_hex, 17, "%016llx", (unsigned long long)XXH64_digest(state));
	XXH64_freeState(state);
}

enum store_state store_live_state(const struct store_record *record)
{
	if (record->state == STORE_UNMOUNTED)
		return STORE_UNMOUNTED;
	if (record->state == STORE_MOUNTING)
		return STORE_STALE; /* the lock is free, so the mount that wrote it is gone */
	if (record->n_views == 0 && record->pid == 0)
		return STORE_MOUNTED; /* no views, no daemon: mounted until umount says not */
	struct ns_saved saved = NS_SAVED_INIT;
	enum store_state state = STORE_MOUNTED;

	if (!procs_alive(record->pid, record->pid_start))
		return STORE_STALE;
	/* a private namespace's views are only seen from inside it; a job in another namespace
	 * (another runner's) is looked at through its daemon's /proc */
	if (ns_enter_job(record, &saved) < 0)
		return STORE_STALE;
	for (size_t i = 0; i < record->n_views && state == STORE_MOUNTED; i++)
		if (!procs_view_mount_connected(record->pid, record->id, record->views[i].name))
			state = STORE_STALE;
	ns_leave(&saved);
	return state;
}

/* --- sizes --------------------------------------------------------------------------------- */

static int usage_walk(int dirfd, uint64_t *bytes, uint64_t *files, dev_t dev)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int r = 0;

	dir = fdopendir(dirfd);
	if (!dir) {
		r = -errno;
		close(dirfd);
		return r;
	}
	while ((de = readdir(dir))) {
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		*bytes += (uint64_t)st.st_blocks * 512;
		*files += 1;
		if (!S_ISDIR(st.st_mode) || st.st_dev != dev)
			continue;
		fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			usage_walk(fd, bytes, files, dev);
	}
	closedir(dir);
	return r;
}

int store_tree_usage(int dirfd, const char *name, uint64_t *ret_bytes, uint64_t *ret_files)
{
	uint64_t bytes = 0, files = 0;
	struct stat st;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		*ret_bytes = *ret_files = 0;
		return 0;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = usage_walk(fd, &bytes, &files, st.st_dev);
	if (r < 0)
		return r;
	*ret_bytes = bytes;
	*ret_files = files;
	return 0;
}

int store_job_usage(int job_fd, uint64_t *ret_bytes, uint64_t *ret_files)
{
	uint64_t bytes = 0, files = 0;
	struct dirent *de;
	DIR *dir;
	int fd;

	fd = openat(job_fd, "views", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		*ret_bytes = *ret_files = 0;
		return 0;
	}
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(dir))) {
		uint64_t b, f;
		int view_fd;

		if (de->d_name[0] == '.')
			continue;
		view_fd = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (view_fd < 0)
			continue;
		if (store_tree_usage(view_fd, "upper", &b, &f) == 0) {
			bytes += b;
			files += f;
		}
		close(view_fd);
	}
	closedir(dir);
	*ret_bytes = bytes;
	*ret_files = files;
	return 0;
}

const char *store_format_bytes(uint64_t bytes, char buf[static 32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned unit = 0;

	if (bytes < 1024) {
		snprintf(buf, 32, "%" PRIu64 " B", bytes);
		return buf;
	}
	while (unit + 1 < sizeof(units) / sizeof(units[0]) && bytes >> (10 * (unit + 1)) != 0)
		unit++;
	/* whole units and tenths, rounded down in integers: 1023.99 KiB never shows as 1024.0 */
	snprintf(buf, 32, "%" PRIu64 ".%" PRIu64 " %s", bytes >> (10 * unit),
		 ((bytes >> (10 * unit - 10)) & 1023) * 10 / 1024, units[unit]);
	return buf;
}

const char *store_format_age(int64_t seconds, char buf[static 32])
{
	if (seconds < 0)
		seconds = 0;
	if (seconds < 120)
		snprintf(buf, 32, "%" PRId64 "s", seconds);
	else if (seconds < 7200)
		snprintf(buf, 32, "%" PRId64 "m", seconds / 60);
	else if (seconds < 2 * 86400)
		snprintf(buf, 32, "%" PRId64 "h", seconds / 3600);
	else
		snprintf(buf, 32, "%" PRId64 "d", seconds / 86400);
	return buf;
}
