/* Scanning a base into a manifest. One thread walks the merged tree relative to directory
 * descriptors and queues each regular file as an open descriptor; a pool of threads hashes them
 * with large reads (XXH3-128, streaming, so memory stays at one buffer per thread); an optional
 * thread prints progress. The queue is bounded, so descriptors and memory are too: what grows
 * is the list of entries, one small struct per path. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs.h"
#include "scan.h"
#include "store.h"

#define QUEUE_CAP 256 /* open files waiting for a hashing thread */

struct hash_job {
	int fd;
	struct manifest_entry *entry;
};

struct scan {
	const struct scan_options *opts;
	const char *const *dirs;
	struct manifest *m;
	struct scan_error *err;
	struct timespec start;

	/* the walking thread's own */
	char *path; /* the current path, relative to the base */
	size_t path_len, path_cap;
	dev_t *root_dev; /* st_dev of each dir in dirs: the walk stays on it */

	/* lock protects everything down to progress_wake */
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full, progress_wake;
	struct hash_job queue[QUEUE_CAP];
	size_t head, count;
	bool walk_done;
	bool finished; /* the hashing threads are done: the progress thread prints and leaves */
	int error;     /* the first -errno; err->msg says where */

	atomic_uint_fast64_t files_found, files_hashed, bytes_hashed;
};

static double elapsed(const struct scan *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - s->start.tv_sec) + (now.tv_nsec - s->start.tv_nsec) / 1e9;
}

/* Records the first error (the one the user sees) and stops everyone. Returns r. */
__attribute__((format(printf, 3, 4))) static int scan_fail(struct scan *s, int r, const char *fmt,
							   ...)
{
	va_list ap;

	if (r >= 0)
		r = -EIO; /* a libc call that failed without setting errno */
	pthread_mutex_lock(&s->lock);
	if (!s->error) {
		s->error = r;
		va_start(ap, fmt);
		vsnprintf(s->err->msg, sizeof(s->err->msg), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&s->not_empty);
	pthread_cond_broadcast(&s->not_full);
	pthread_mutex_unlock(&s->lock);
	return r;
}

unsigned scan_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

int scan_hash_fd(int fd, void *buf, size_t buf_size, uint8_t ret_hash[16], uint64_t *ret_bytes)
{
	XXH3_state_t *state = XXH3_createState();
	XXH128_canonical_t canonical;
	uint64_t bytes = 0;
	int r = 0;

	if (!state)
		return -ENOMEM;
	XXH3_128bits_reset(state);
	for (;;) {
		ssize_t n = read(fd, buf, buf_size);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(state, buf, (size_t)n);
		bytes += (uint64_t)n;
	}
	XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state));
	memcpy(ret_hash, canonical.digest, 16);
	*ret_bytes = bytes;
out_free:
	XXH3_freeState(state);
	return r;
}

/* --- the hashing threads ------------------------------------------------------------------ */

static void *hash_thread(void *arg)
{
	struct scan *s = arg;
	void *buf = malloc(SCAN_READ_SIZE);

	if (!buf) {
		scan_fail(s, -ENOMEM, "out of memory");
		return NULL;
	}
	for (;;) {
		struct hash_job job;
		uint64_t bytes;
		int r;

		pthread_mutex_lock(&s->lock);
		while (s->count == 0 && !s->walk_done && !s->error)
			pthread_cond_wait(&s->not_empty, &s->lock);
		if (s->error || s->count == 0) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		job = s->queue[s->head];
		s->head = (s->head + 1) % QUEUE_CAP;
		s->count--;
		pthread_cond_signal(&s->not_full);
		pthread_mutex_unlock(&s->lock);

		/* a hint for the kernel's readahead: the whole file, front to back */
		posix_fadvise(job.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		r = scan_hash_fd(job.fd, buf, SCAN_READ_SIZE, job.entry->hash, &bytes);
		close(job.fd);
		if (r < 0) {
			scan_fail(s, r, "cannot read '%s': %s", job.entry->path, strerror(-r));
			break;
		}
		if (bytes != job.entry->size) {
			scan_fail(s, -EAGAIN, "'%s' changed while it was hashed", job.entry->path);
			break;
		}
		atomic_fetch_add(&s->files_hashed, 1);
		atomic_fetch_add(&s->bytes_hashed, bytes);
	}
	free(buf);
	return NULL;
}

/* Hands an open file to the hashing threads; waits while the queue is full. Consumes fd. */
static int queue_push(struct scan *s, int fd, struct manifest_entry *entry)
{
	int r;

	pthread_mutex_lock(&s->lock);
	while (s->count == QUEUE_CAP && !s->error)
		pthread_cond_wait(&s->not_full, &s->lock);
	r = s->error;
	if (!r) {
		s->queue[(s->head + s->count) % QUEUE_CAP] = (struct hash_job){fd, entry};
		s->count++;
		pthread_cond_signal(&s->not_empty);
	}
	pthread_mutex_unlock(&s->lock);
	if (r)
		close(fd);
	else
		atomic_fetch_add(&s->files_found, 1);
	return r;
}

/* --- progress ----------------------------------------------------------------------------- */

static void print_progress(struct scan *s, bool last)
{
	uint64_t found = atomic_load(&s->files_found), hashed = atomic_load(&s->files_hashed);
	uint64_t bytes = atomic_load(&s->bytes_hashed);
	double secs = elapsed(s);
	char b[32], rate[32];
	bool walking;

	pthread_mutex_lock(&s->lock);
	walking = !s->walk_done;
	pthread_mutex_unlock(&s->lock);
	store_format_bytes(bytes, b);
	store_format_bytes(secs > 0 ? (uint64_t)(bytes / secs) : 0, rate);
	fprintf(s->opts->progress_out, "%sjobfs: hashed %llu of %llu%s files, %s, %s/s, %.1fs%s",
		s->opts->progress == SCAN_PROGRESS_TTY ? "\r\033[K" : "",
		(unsigned long long)hashed, (unsigned long long)found, walking ? "+" : "", b, rate,
		secs, s->opts->progress == SCAN_PROGRESS_LINES || last ? "\n" : "");
	fflush(s->opts->progress_out);
}

static void *progress_thread(void *arg)
{
	struct scan *s = arg;
	long interval_ns = s->opts->progress == SCAN_PROGRESS_TTY ? 200000000 : 1000000000;
	struct timespec deadline;
	bool finished = false;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	while (!finished) {
		deadline.tv_nsec += interval_ns;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->lock);
		while (!s->finished &&
		       pthread_cond_timedwait(&s->progress_wake, &s->lock, &deadline) != ETIMEDOUT)
			;
		finished = s->finished;
		pthread_mutex_unlock(&s->lock);
		print_progress(s, finished);
	}
	return NULL;
}

/* --- the walk ----------------------------------------------------------------------------- */

struct name_at {
	char *name;
	size_t level; /* index into the directory's fds: which of its layers holds it */
};

static int name_at_cmp(const void *a, const void *b)
{
	const struct name_at *na = a, *nb = b;
	int c = strcmp(na->name, nb->name);

	return c ? c : (na->level > nb->level) - (na->level < nb->level);
}

/* trusted.overlay.opaque (the kernel's and root jobfs's) or user.overlay.opaque is "y". */
static bool dir_opaque(int dirfd)
{
	static const char *const names[] = {"trusted.overlay.opaque", "user.overlay.opaque"};
	char val[2];

	for (size_t i = 0; i < 2; i++)
		if (fgetxattr(dirfd, names[i], val, sizeof(val)) == 1 && val[0] == 'y')
			return true;
	return false;
}

static int path_push(struct scan *s, const char *name, size_t *ret_saved)
{
	size_t len = strlen(name), need = s->path_len + 1 + len + 1;

	if (need > s->path_cap) {
		size_t cap = need * 2;
		char *grown = realloc(s->path, cap);

		if (!grown)
			return scan_fail(s, -ENOMEM, "out of memory");
		s->path = grown;
		s->path_cap = cap;
	}
	*ret_saved = s->path_len;
	if (s->path_len)
		s->path[s->path_len++] = '/';
	memcpy(s->path + s->path_len, name, len + 1);
	s->path_len += len;
	return 0;
}

static void path_pop(struct scan *s, size_t saved)
{
	s->path_len = saved;
	s->path[saved] = '\0';
}

/* Every name in every layer of this directory, sorted by name, then top layer first. */
static int read_names(struct scan *s, const int *fds, const size_t *layers, size_t n,
		      struct name_at **ret_names, size_t *ret_count)
{
	struct name_at *names = NULL;
	size_t count = 0, cap = 0;
	int r = 0;

	for (size_t level = 0; level < n && r == 0; level++) {
		int fd = dup(fds[level]);
		struct dirent *d;
		DIR *dir;

		/* the dup shares the offset; fds[level] is only ever used for *at() calls */
		if (fd < 0 || !(dir = fdopendir(fd))) {
			r = scan_fail(s, -errno, "cannot read '%s/%s': %s", s->dirs[layers[level]],
				      s->path, strerror(errno));
			if (fd >= 0)
				close(fd);
			break;
		}
		errno = 0;
		while ((d = readdir(dir))) {
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			if (count == cap) {
				struct name_at *grown;

				cap = cap ? cap * 2 : 64;
				grown = realloc(names, cap * sizeof(*grown));
				if (!grown) {
					r = scan_fail(s, -ENOMEM, "out of memory");
					break;
				}
				names = grown;
			}
			names[count].name = strdup(d->d_name);
			if (!names[count].name) {
				r = scan_fail(s, -ENOMEM, "out of memory");
				break;
			}
			names[count++].level = level;
			errno = 0;
		}
		if (r == 0 && errno)
			r = scan_fail(s, -errno, "cannot read '%s/%s': %s", s->dirs[layers[level]],
				      s->path, strerror(errno));
		closedir(dir);
	}
	if (count > 1)
		qsort(names, count, sizeof(*names), name_at_cmp);
	*ret_names = names;
	*ret_count = count;
	return r;
}

static int entry_from_stat(struct scan *s, const struct stat *st, struct manifest_entry **ret)
{
	struct manifest_entry *e = calloc(1, sizeof(*e));

	if (!e || !(e->path = strdup(s->path))) {
		free(e);
		return scan_fail(s, -ENOMEM, "out of memory");
	}
	e->mode = st->st_mode & 07777;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		e->type = MANIFEST_FILE;
		break;
	case S_IFDIR:
		e->type = MANIFEST_DIR;
		break;
	case S_IFLNK:
		e->type = MANIFEST_SYMLINK;
		break;
	case S_IFIFO:
		e->type = MANIFEST_FIFO;
		break;
	case S_IFSOCK:
		e->type = MANIFEST_SOCKET;
		break;
	case S_IFCHR:
		e->type = MANIFEST_CHAR;
		break;
	default:
		e->type = MANIFEST_BLOCK;
	}
	if (e->type != MANIFEST_DIR)
		e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (e->type == MANIFEST_FILE)
		e->size = (uint64_t)st->st_size;
	if (e->type == MANIFEST_CHAR || e->type == MANIFEST_BLOCK) {
		e->rdev_major = major(st->st_rdev);
		e->rdev_minor = minor(st->st_rdev);
	}
	*ret = e;
	return 0;
}

static int read_target(struct scan *s, int dirfd, const char *name, const struct stat *st,
		       struct manifest_entry *e)
{
	/* st_size is the target's length on most filesystems, 0 on a few: grow until it fits */
	size_t size = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;

	for (;;) {
		char *buf = malloc(size);
		ssize_t n;

		if (!buf)
			return scan_fail(s, -ENOMEM, "out of memory");
		n = readlinkat(dirfd, name, buf, size);
		if (n < 0) {
			int r = -errno;

			free(buf);
			return scan_fail(s, r, "cannot read symlink '%s': %s", s->path,
					 strerror(-r));
		}
		if ((size_t)n < size) {
			buf[n] = '\0';
			e->target = buf;
			e->size = (uint64_t)n;
			return 0;
		}
		free(buf);
		size *= 2;
	}
}

/* A regular file: open it here, where the walk holds its directory, and queue the descriptor. */
static int queue_file(struct scan *s, int dirfd, const char *name, const struct stat *st,
		      struct manifest_entry *e)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	struct stat fst;
	int fd, r;

	/* O_NOATIME keeps a scan from dirtying every inode; only the owner (or root) may ask */
	fd = openat(dirfd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, flags);
	if (fd < 0)
		return scan_fail(s, -errno, "cannot open '%s': %s", s->path, strerror(errno));
	if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st->st_ino ||
	    fst.st_dev != st->st_dev) {
		close(fd);
		return scan_fail(s, -EAGAIN, "'%s' changed during the walk", s->path);
	}
	e->size = (uint64_t)fst.st_size;
	e->mode = fst.st_mode & 07777;
	e->mtime_ns = (int64_t)fst.st_mtim.tv_sec * 1000000000 + fst.st_mtim.tv_nsec;
	r = queue_push(s, fd, e);
	return r;
}

/* Opens name below fds[level] as a directory on its layer's filesystem; -EXDEV otherwise. */
static int open_dir(struct scan *s, int parent_fd, size_t layer, const char *name, int *ret_fd)
{
	struct stat st;
	int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return scan_fail(s, -errno, "cannot open '%s/%s': %s", s->dirs[layer], s->path,
				 strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_dev != s->root_dev[layer]) {
		close(fd);
		return scan_fail(s, -EXDEV,
				 "'%s/%s' is on another filesystem: a base must be one filesystem "
				 "per directory",
				 s->dirs[layer], s->path);
	}
	*ret_fd = fd;
	return 0;
}

static int walk(struct scan *s, const int *fds, const size_t *layers, size_t n);

/* The names[first..end) all spell one name, top layer first: list the top one, and for a dir
 * descend into it and the dirs of the same name below it, down to the first whiteout, non-dir
 * or opaque dir. */
static int walk_name(struct scan *s, const int *fds, const size_t *layers,
		     const struct name_at *names, size_t first, size_t end)
{
	const char *name = names[first].name;
	size_t top = names[first].level, saved = 0, n_child = 0;
	struct manifest_entry *e = NULL;
	int *child_fds = NULL, r;
	size_t *child_layers = NULL;
	struct stat st;

	r = path_push(s, name, &saved);
	if (r < 0)
		return r;
	if (fstatat(fds[top], name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = scan_fail(s, -errno, "cannot stat '%s/%s': %s", s->dirs[layers[top]], s->path,
			      strerror(errno));
		goto out_pop;
	}
	if (jfs_is_whiteout(&st))
		goto out_pop;
	if (st.st_dev != s->root_dev[layers[top]]) {
		r = scan_fail(s, -EXDEV, "'%s/%s' is on another filesystem", s->dirs[layers[top]],
			      s->path);
		goto out_pop;
	}
	r = entry_from_stat(s, &st, &e);
	if (r < 0)
		goto out_pop;
	r = manifest_add(s->m, e);
	if (r < 0) {
		r = scan_fail(s, r, "out of memory");
		goto out_pop;
	}
	if (e->type == MANIFEST_SYMLINK)
		r = read_target(s, fds[top], name, &st, e);
	else if (e->type == MANIFEST_FILE)
		r = queue_file(s, fds[top], name, &st, e);
	if (e->type != MANIFEST_DIR || r < 0)
		goto out_pop;

	child_fds = malloc((end - first) * sizeof(*child_fds));
	child_layers = malloc((end - first) * sizeof(*child_layers));
	if (!child_fds || !child_layers) {
		r = scan_fail(s, -ENOMEM, "out of memory");
		goto out_free;
	}
	for (size_t i = first; i < end; i++) {
		size_t level = names[i].level;
		struct stat lst;
		int fd = -1;

		if (i > first) {
			if (fstatat(fds[level], name, &lst, AT_SYMLINK_NOFOLLOW) < 0) {
				r = scan_fail(s, -errno, "cannot stat '%s/%s': %s",
					      s->dirs[layers[level]], s->path, strerror(errno));
				goto out_close;
			}
			/* a whiteout or a non-dir ends the merge: nothing below shows through */
			if (!S_ISDIR(lst.st_mode))
				break;
		}
		r = open_dir(s, fds[level], layers[level], name, &fd);
		if (r < 0)
			goto out_close;
		child_fds[n_child] = fd;
		child_layers[n_child++] = layers[level];
		if (dir_opaque(fd))
			break;
	}
	r = walk(s, child_fds, child_layers, n_child);
out_close:
	for (size_t i = 0; i < n_child; i++)
		close(child_fds[i]);
out_free:
	free(child_fds);
	free(child_layers);
out_pop:
	path_pop(s, saved);
	return r;
}

/* One directory of the merged tree: fds[0..n) are its copies, top first, layers[] their index in
 * s->dirs. */
static int walk(struct scan *s, const int *fds, const size_t *layers, size_t n)
{
	struct name_at *names;
	size_t count, i, end;
	int r;

	r = read_names(s, fds, layers, n, &names, &count);
	for (i = 0; i < count && r == 0; i = end) {
		for (end = i + 1; end < count && !strcmp(names[end].name, names[i].name); end++)
			;
		r = walk_name(s, fds, layers, names, i, end);
	}
	for (i = 0; i < count; i++)
		free(names[i].name);
	free(names);
	return r;
}

int scan_base(const char *const *dirs, size_t n_dirs, const struct scan_options *opts,
	      struct manifest **ret_manifest, struct scan_stats *ret_stats, struct scan_error *err)
{
	struct scan s = {.opts = opts, .dirs = dirs, .err = err};
	unsigned n_threads = opts->threads ? opts->threads : 1, started = 0;
	pthread_t threads[SCAN_THREADS_MAX], progress;
	bool progress_started = false;
	size_t *layers = calloc(n_dirs + 1, sizeof(*layers)), n_roots = 0;
	int *root_fds = calloc(n_dirs + 1, sizeof(*root_fds));
	pthread_condattr_t attr;
	int r = 0;

	err->msg[0] = '\0';
	if (n_threads > SCAN_THREADS_MAX)
		n_threads = SCAN_THREADS_MAX;
	clock_gettime(CLOCK_MONOTONIC, &s.start);
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.not_empty, NULL);
	pthread_cond_init(&s.not_full, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s.progress_wake, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&s.files_found, 0);
	atomic_init(&s.files_hashed, 0);
	atomic_init(&s.bytes_hashed, 0);
	s.m = manifest_new();
	s.root_dev = calloc(n_dirs + 1, sizeof(*s.root_dev));
	s.path = calloc(1, 256);
	s.path_cap = 256;
	if (!layers || !root_fds || !s.m || !s.root_dev || !s.path) {
		r = scan_fail(&s, -ENOMEM, "out of memory");
		goto out_free;
	}

	for (size_t i = 0; i < n_dirs; i++) {
		struct stat st;
		int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0) {
			r = scan_fail(&s, -errno, "cannot open base dir '%s': %s", dirs[i],
				      strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out_close;
		}
		s.root_dev[i] = st.st_dev;
		root_fds[n_roots] = fd;
		layers[n_roots++] = i;
		if (dir_opaque(fd))
			break;
	}

	for (; started < n_threads; started++) {
		r = -pthread_create(&threads[started], NULL, hash_thread, &s);
		if (r < 0) {
			scan_fail(&s, r, "cannot start a hashing thread: %s", strerror(-r));
			break;
		}
	}
	if (r == 0 && opts->progress != SCAN_PROGRESS_OFF)
		progress_started = pthread_create(&progress, NULL, progress_thread, &s) == 0;
	if (r == 0)
		r = walk(&s, root_fds, layers, n_roots);

	pthread_mutex_lock(&s.lock);
	s.walk_done = true;
	pthread_cond_broadcast(&s.not_empty);
	pthread_mutex_unlock(&s.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_lock(&s.lock);
	s.finished = true;
	pthread_cond_signal(&s.progress_wake);
	pthread_mutex_unlock(&s.lock);
	if (progress_started)
		pthread_join(progress, NULL);
	/* after an error, files may still wait in the queue */
	for (; s.count > 0; s.count--, s.head = (s.head + 1) % QUEUE_CAP)
		close(s.queue[s.head].fd);
	r = s.error;
	if (r == 0) {
		manifest_sort(s.m);
		if (ret_stats)
			*ret_stats = (struct scan_stats){
				.entries = s.m->n,
				.files = atomic_load(&s.files_hashed),
				.bytes = atomic_load(&s.bytes_hashed),
				.seconds = elapsed(&s),
			};
		*ret_manifest = s.m;
		s.m = NULL;
	}
out_close:
	for (size_t i = 0; i < n_roots; i++)
		close(root_fds[i]);
out_free:
	manifest_free(s.m);
	free(s.path);
	free(s.root_dev);
	free(root_fds);
	free(layers);
	pthread_cond_destroy(&s.progress_wake);
	pthread_cond_destroy(&s.not_full);
	pthread_cond_destroy(&s.not_empty);
	pthread_mutex_destroy(&s.lock);
	return r;
}
