/* fsx: a random-operation data-integrity exerciser. It keeps an in-memory model of a file and of a
 * second file used as a copy source, applies a seeded random mix of I/O calls to them, and checks
 * every byte it reads, and every size it sees, against the model. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_SHOWN 20   /* ops printed on a failure */
#define LOG_KEPT 4096  /* ops remembered, to say which one wrote the bytes found */
#define SALT_FILE2 128 /* keeps the data written to the two files apart */

enum op_kind {
	OP_READ,
	OP_WRITE,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_TRUNCATE,
	OP_FALLOCATE,
	OP_PUNCH,
	OP_COPY,
	OP_COPY2,
	OP_WRITE2,
	OP_REOPEN,
	OP_FSYNC,
	N_OPS
};

static const struct {
	const char *name;
	unsigned weight;
} op_table[N_OPS] = {
	/* clang-format off */
	[OP_READ] = {"read", 14},
	[OP_WRITE] = {"write", 14},
	[OP_MAPREAD] = {"mapread", 8},
	[OP_MAPWRITE] = {"mapwrite", 8},
	[OP_TRUNCATE] = {"truncate", 6},
	[OP_FALLOCATE] = {"fallocate", 5},
	[OP_PUNCH] = {"punch", 5},
	[OP_COPY] = {"copy", 8},
	[OP_COPY2] = {"copy2", 6},
	[OP_WRITE2] = {"write2", 3},
	[OP_REOPEN] = {"reopen", 3},
	[OP_FSYNC] = {"fsync", 3},
	/* clang-format on */
};

/* One file and its model. The model holds limit bytes and is zero beyond size. */
struct mfile {
	const char *path;
	int ro_fd; /* always open */
	int rw_fd; /* -1 until a call needs it: on an overlay that open copies the file up */
	unsigned salt;
	off_t limit; /* largest size: -l, or the size found at start if larger */
	off_t size;
	unsigned char *model;
	off_t orig_size; /* the content found at start, to recognise stale data */
	unsigned char *orig;
};

/* What one op did, for the log printed on a failure. */
struct op_rec {
	unsigned long num;
	enum op_kind kind;
	long long off, len, arg; /* arg: source offset, new size or mode, by kind */
	long long size_before, size_after;
	bool skipped;
	char how[40];
};

struct fsx {
	uint64_t seed, rng;
	unsigned long nops, num;
	double seconds;	     /* -T: stop after this long, whichever of -N and -T comes first */
	struct timespec end; /* CLOCK_MONOTONIC deadline of -T */
	off_t maxlen, maxop;
	unsigned long verify_every;
	bool trace;
	bool disabled[N_OPS];
	bool unsupported[N_OPS];
	unsigned long done[N_OPS], skipped[N_OPS];
	long pagesize;
	struct mfile file, file2;
	bool has_file2;
	struct op_rec log[LOG_KEPT];
	struct op_rec *cur;
	unsigned char *buf; /* the larger limit + 1 bytes of scratch */
	int argc;
	char **argv;
};

static sigjmp_buf fault_env;
static volatile sig_atomic_t fault_armed;

static void on_fault(int sig)
{
	if (fault_armed)
		siglongjmp(fault_env, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* memcpy that survives a SIGBUS or SIGSEGV from a mapping; returns 0 or the signal */
static int guarded_copy(void *dst, const void *src, size_t len)
{
	int sig = sigsetjmp(fault_env, 1);

	if (sig != 0) {
		fault_armed = 0;
		return sig;
	}
	fault_armed = 1;
	memcpy(dst, src, len);
	fault_armed = 0;
	return 0;
}

/* splitmix64: small, and the same sequence everywhere for a seed */
static uint64_t rnd(struct fsx *x)
{
	uint64_t z = (x->rng += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static off_t min_off(off_t a, off_t b)
{
	return a < b ? a : b;
}

static off_t max_off(off_t a, off_t b)
{
	return a > b ? a : b;
}

/* The byte op NUM writes at OFF: the op number can be read back from data found where it should
 * not be (byte - OFF % 251 - salt is NUM mod 256). */
static unsigned char pattern(unsigned long num, unsigned salt, off_t off)
{
	return (unsigned char)(num + salt + (unsigned long)(off % 251));
}

static struct op_rec *log_at(struct fsx *x, unsigned long num)
{
	return &x->log[num % LOG_KEPT];
}

static void print_rec(const struct op_rec *r)
{
	printf("  #%-7lu %-9s", r->num, op_table[r->kind].name);
	if (r->skipped) {
		printf(" [skipped]\n");
		return;
	}
	switch (r->kind) {
	case OP_TRUNCATE:
		printf(" to 0x%llx", r->arg);
		break;
	case OP_COPY:
	case OP_COPY2:
		printf(" src 0x%llx dst 0x%llx len 0x%llx (dst end 0x%llx)", r->arg, r->off, r->len,
		       r->off + r->len);
		break;
	case OP_REOPEN:
	case OP_FSYNC:
		break;
	default:
		printf(" off 0x%llx len 0x%llx (end 0x%llx)", r->off, r->len, r->off + r->len);
		break;
	}
	printf(" size 0x%llx", r->size_before);
	if (r->size_after != r->size_before)
		printf(" -> 0x%llx", r->size_after);
	if (r->how[0])
		printf(" [%s]", r->how);
	printf("\n");
}

static void fail_begin(struct fsx *x, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	printf("fsx: FAIL at op %lu", x->num);
	if (x->seconds == 0)
		printf(" of %lu", x->nops);
	printf(", seed %" PRIu64 ": ", x->seed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void fail_end(struct fsx *x)
{
	unsigned long first = x->num > LOG_SHOWN ? x->num - LOG_SHOWN + 1 : 1, n;
	int i;

	if (x->num > 0) {
		printf("last %lu ops (offsets and sizes in hex; FILE2 ops: copy2 src, write2):\n",
		       x->num - first + 1);
		for (n = first; n <= x->num; n++)
			print_rec(log_at(x, n));
	}
	printf("command:");
	for (i = 0; i < x->argc; i++)
		printf(" %s", x->argv[i]);
	printf("\n");
	if (x->num > 0)
		printf("rerun: the same command%s with -S %" PRIu64 " -N %lu\n",
		       x->seconds > 0 ? " without -T" : "", x->seed, x->num);
	fflush(stdout);
	exit(1);
}

static void fail(struct fsx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_begin(x, "%s", msg);
	fail_end(x);
}

/* Says where LEN bytes found at OFF of F seem to come from. */
static void describe_bytes(struct fsx *x, struct mfile *f, off_t off, const unsigned char *p,
			   off_t len, const char *which)
{
	unsigned tag = (unsigned char)(p[0] - f->salt - (unsigned)(off % 251));
	unsigned long n, oldest;
	off_t i;
	bool zero = true, orig = off + len <= f->orig_size, tagged = true;

	for (i = 0; i < len; i++) {
		zero &= p[i] == 0;
		if (orig)
			orig &= p[i] == f->orig[off + i];
		tagged &= p[i] == pattern(tag, f->salt, off + i);
	}
	printf("  %s bytes: ", which);
	if (zero) {
		printf("zeros\n");
		return;
	}
	if (orig) {
		printf("the file's content at start (stale data?)\n");
		return;
	}
	if (!tagged) {
		printf("no recognisable pattern\n");
		return;
	}
	oldest = x->num > LOG_KEPT ? x->num - LOG_KEPT + 1 : 1;
	for (n = x->num; n >= oldest && n > 0; n--) {
		struct op_rec *r = log_at(x, n);
		bool writes = f == &x->file ? r->kind == OP_WRITE || r->kind == OP_MAPWRITE
					    : r->kind == OP_WRITE2;

		if ((n & 0xff) == tag && writes && r->off <= off && off < r->off + r->len) {
			printf("written here by op #%lu (%s)\n", n, op_table[r->kind].name);
			return;
		}
	}
	printf("data of an op numbered %u mod 256, not written at this offset (moved by a copy, "
	       "or older than the log)\n",
	       tag);
}

/* Lists the last ops (up to three, as far back as the log goes) that changed byte OFF of F. */
static void print_last_changes(struct fsx *x, struct mfile *f, off_t off)
{
	unsigned long n, oldest = x->num > LOG_KEPT ? x->num - LOG_KEPT + 1 : 1;
	int found = 0;

	printf("  last ops that changed offset 0x%llx:\n", (long long)off);
	for (n = x->num; n >= oldest && n > 0 && found < 3; n--) {
		struct op_rec *r = log_at(x, n);
		bool hit;

		if (r->skipped)
			continue;
		if (f != &x->file)
			hit = r->kind == OP_WRITE2 && r->off <= off && off < r->off + r->len;
		else if (r->kind == OP_TRUNCATE)
			hit = off >= min_off(r->size_before, r->arg);
		else if (r->kind == OP_WRITE || r->kind == OP_MAPWRITE || r->kind == OP_FALLOCATE ||
			 r->kind == OP_PUNCH || r->kind == OP_COPY || r->kind == OP_COPY2)
			/* its range, and what it added to the file */
			hit = (r->off <= off && off < r->off + r->len) ||
			      (r->size_before <= off && off < r->size_after);
		else
			hit = false;
		if (hit) {
			print_rec(r);
			found++;
		}
	}
	if (!found)
		printf("    none in the log: the byte is as found at start\n");
}

static void dump_row(const char *label, const unsigned char *p, off_t len)
{
	off_t i;

	printf("  %-9s", label);
	for (i = 0; i < len; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

/* Compares LEN bytes read at OFF of F with the model; reports the first difference and exits. */
static void check_bytes(struct fsx *x, struct mfile *f, const char *what, off_t off,
			const unsigned char *got, off_t len)
{
	const unsigned char *want = f->model + off;
	off_t first = -1, last = -1, ndiff = 0, i, show, run;

	if (memcmp(want, got, (size_t)len) == 0)
		return;
	for (i = 0; i < len; i++) {
		if (want[i] != got[i]) {
			if (first < 0)
				first = i;
			last = i;
			ndiff++;
		}
	}
	fail_begin(x, "%s of %s returned wrong data", what, f->path);
	printf("checked [0x%llx, 0x%llx) of a file of size 0x%llx\n", (long long)off,
	       (long long)(off + len), (long long)f->size);
	printf("first difference at offset %lld (0x%llx, page 0x%llx + 0x%llx); %lld bytes differ, "
	       "the last at 0x%llx\n",
	       (long long)(off + first), (long long)(off + first),
	       (long long)((off + first) & ~(off_t)(x->pagesize - 1)),
	       (long long)((off + first) & (x->pagesize - 1)), (long long)ndiff,
	       (long long)(off + last));
	show = min_off(16, len - first);
	for (run = 1; run < show && want[first + run] != got[first + run]; run++)
		;
	printf("  bytes from 0x%llx:\n", (long long)(off + first));
	dump_row("expected", want + first, show);
	dump_row("actual", got + first, show);
	/* where the first run of differing bytes (up to 16) came from */
	describe_bytes(x, f, off + first, want + first, run, "expected");
	describe_bytes(x, f, off + first, got + first, run, "actual");
	print_last_changes(x, f, off + first);
	fail_end(x);
}

static int open_file(struct mfile *f, int flags)
{
	int fd = open(f->path, flags | O_CLOEXEC, 0644);

	return fd < 0 ? -errno : fd;
}

static int rw_fd(struct fsx *x, struct mfile *f)
{
	if (f->rw_fd < 0) {
		f->rw_fd = open_file(f, O_RDWR);
		if (f->rw_fd < 0)
			fail(x, "cannot open '%s' read-write: %s", f->path, strerror(-f->rw_fd));
	}
	return f->rw_fd;
}

static void note(struct op_rec *rec, const char *s)
{
	size_t n = strlen(rec->how);

	snprintf(rec->how + n, sizeof(rec->how) - n, "%s%s", n ? ", " : "", s);
}

/* A descriptor to read through: the read-write one when R says so and it is open. */
static int read_fd(struct mfile *f, uint64_t r, struct op_rec *rec)
{
	bool rw = (r & 1) && f->rw_fd >= 0;

	note(rec, rw ? "fd rw" : "fd ro");
	return rw ? f->rw_fd : f->ro_fd;
}

static void close_files(struct fsx *x)
{
	struct mfile *files[2] = {&x->file, &x->file2};
	int i;

	for (i = 0; i < 2; i++) {
		if (files[i]->ro_fd >= 0 && close(files[i]->ro_fd) < 0)
			fail(x, "close of '%s': %s", files[i]->path, strerror(errno));
		if (files[i]->rw_fd >= 0 && close(files[i]->rw_fd) < 0)
			fail(x, "close of '%s': %s", files[i]->path, strerror(errno));
		files[i]->ro_fd = files[i]->rw_fd = -1;
	}
}

static void open_files(struct fsx *x)
{
	struct mfile *files[2] = {&x->file, &x->file2};
	int i;

	for (i = 0; i < (x->has_file2 ? 2 : 1); i++) {
		files[i]->ro_fd = open_file(files[i], O_RDONLY);
		if (files[i]->ro_fd < 0)
			fail(x, "cannot open '%s': %s", files[i]->path, strerror(-files[i]->ro_fd));
	}
}

/* pread until LEN bytes or end of file; returns the count or -errno */
static off_t read_all(int fd, unsigned char *buf, off_t off, off_t len)
{
	off_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, (size_t)(len - done), off + done);

		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static int write_all(int fd, const unsigned char *buf, off_t off, off_t len)
{
	off_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, (size_t)(len - done), off + done);

		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += n;
	}
	return 0;
}

/* copy_file_range until LEN bytes are copied; returns the count, short at the source's end, or
 * -errno */
static off_t copy_all(int in_fd, off_t in_off, int out_fd, off_t out_off, off_t len)
{
	loff_t in = in_off, out = out_off;
	off_t done = 0;

	while (done < len) {
		ssize_t n = copy_file_range(in_fd, &in, out_fd, &out, (size_t)(len - done), 0);

		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

/* Checks the size seen through every descriptor and by path, then reads F whole (and one byte
 * more, which must not come) and compares it with the model. */
static void verify_file(struct fsx *x, struct mfile *f, const char *when)
{
	int fds[2] = {f->ro_fd, f->rw_fd}, i, fd;
	char what[96];
	struct stat st;
	off_t n;

	for (i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		if (fstat(fds[i], &st) < 0)
			fail(x, "%s: fstat of '%s': %s", when, f->path, strerror(errno));
		if (st.st_size != f->size)
			fail(x, "%s: fstat (fd %s) of '%s' gives size 0x%llx, the model 0x%llx",
			     when, i ? "rw" : "ro", f->path, (long long)st.st_size,
			     (long long)f->size);
	}
	if (stat(f->path, &st) < 0)
		fail(x, "%s: stat of '%s': %s", when, f->path, strerror(errno));
	if (st.st_size != f->size)
		fail(x, "%s: stat of '%s' gives size 0x%llx, the model 0x%llx", when, f->path,
		     (long long)st.st_size, (long long)f->size);
	fd = (x->num & 1) && f->rw_fd >= 0 ? f->rw_fd : f->ro_fd;
	n = read_all(fd, x->buf, 0, f->size + 1);
	if (n < 0)
		fail(x, "%s: read of '%s': %s", when, f->path, strerror((int)-n));
	if (n != f->size)
		fail(x, "%s: reading '%s' whole gave 0x%llx bytes, the model has 0x%llx", when,
		     f->path, (long long)n, (long long)f->size);
	snprintf(what, sizeof(what), "%s: full read (fd %s)", when, fd == f->rw_fd ? "rw" : "ro");
	check_bytes(x, f, what, 0, x->buf, n);
}

static void verify_all(struct fsx *x, const char *when)
{
	verify_file(x, &x->file, when);
	if (x->has_file2)
		verify_file(x, &x->file2, when);
}

/* Picks [off, off + len) inside [0, limit), limit > 0: page-aligned, around END (the current end
 * of file), tiny, or anywhere, by R4. */
static void pick_range(struct fsx *x, uint64_t r1, uint64_t r2, uint64_t r4, off_t end, off_t limit,
		       off_t *ret_off, off_t *ret_len)
{
	off_t page = x->pagesize, off, len;

	switch (r4 % 8) {
	case 0:
		len = page * (off_t)(1 + r2 % (uint64_t)max_off(1, x->maxop / page));
		off = page * (off_t)(r1 % (uint64_t)(limit / page + 1));
		break;
	case 1:
		off = max_off(0, end - (off_t)(r1 % (uint64_t)(2 * page)));
		len = 1 + (off_t)(r2 % (uint64_t)min_off(x->maxop, 2 * page));
		break;
	case 2:
		off = (off_t)(r1 % (uint64_t)limit);
		len = 1 + (off_t)(r2 % 64);
		break;
	default:
		off = (off_t)(r1 % (uint64_t)limit);
		len = 1 + (off_t)(r2 % (uint64_t)x->maxop);
		break;
	}
	if (off >= limit)
		off = (off_t)(r1 % (uint64_t)limit);
	*ret_off = off;
	*ret_len = min_off(len, limit - off);
}

static void op_read(struct fsx *x, struct mfile *f, const uint64_t *r)
{
	struct op_rec *rec = x->cur;
	off_t off, len, want, n;
	int fd;

	if (f->size == 0) {
		note(rec, "empty");
		return;
	}
	pick_range(x, r[1], r[2], r[4], f->size, f->size, &off, &len);
	/* now and then read across the end of file */
	if ((r[3] >> 1) % 4 == 0)
		len += (off_t)((r[3] >> 3) % (uint64_t)x->pagesize);
	rec->off = off;
	rec->len = len;
	fd = read_fd(f, r[3], rec);
	n = read_all(fd, x->buf, off, len);
	if (n < 0)
		fail(x, "pread of '%s': %s", f->path, strerror((int)-n));
	want = min_off(len, f->size - off);
	if (n != want)
		fail(x,
		     "pread of 0x%llx bytes at 0x%llx of '%s' returned 0x%llx bytes, expected "
		     "0x%llx",
		     (long long)len, (long long)off, f->path, (long long)n, (long long)want);
	check_bytes(x, f, "pread", off, x->buf, n);
}

static void op_write(struct fsx *x, struct mfile *f, const uint64_t *r)
{
	struct op_rec *rec = x->cur;
	off_t off, len, i;
	int fd = rw_fd(x, f), e;

	pick_range(x, r[1], r[2], r[4], f->size, f->limit, &off, &len);
	rec->off = off;
	rec->len = len;
	for (i = 0; i < len; i++)
		x->buf[i] = pattern(x->num, f->salt, off + i);
	e = write_all(fd, x->buf, off, len);
	if (e < 0)
		fail(x, "pwrite to '%s': %s", f->path, strerror(-e));
	memcpy(f->model + off, x->buf, (size_t)len);
	f->size = max_off(f->size, off + len);
}

static void op_mapread(struct fsx *x, const uint64_t *r)
{
	struct mfile *f = &x->file;
	struct op_rec *rec = x->cur;
	off_t off, len, pg;
	void *p;
	int fd, sig;

	if (f->size == 0) {
		note(rec, "empty");
		return;
	}
	pick_range(x, r[1], r[2], r[4], f->size, f->size, &off, &len);
	rec->off = off;
	rec->len = len;
	fd = read_fd(f, r[3], rec);
	pg = off & ~(off_t)(x->pagesize - 1);
	p = mmap(NULL, (size_t)(off + len - pg), PROT_READ, MAP_SHARED, fd, pg);
	if (p == MAP_FAILED)
		fail(x, "mmap of '%s': %s", f->path, strerror(errno));
	sig = guarded_copy(x->buf, (char *)p + (off - pg), (size_t)len);
	if (munmap(p, (size_t)(off + len - pg)) < 0)
		fail(x, "munmap: %s", strerror(errno));
	if (sig)
		fail(x, "signal %d (%s) reading the mapping of '%s'", sig, strsignal(sig), f->path);
	check_bytes(x, f, "mmap read", off, x->buf, len);
}

static void op_mapwrite(struct fsx *x, const uint64_t *r)
{
	struct mfile *f = &x->file;
	struct op_rec *rec = x->cur;
	off_t off, len, pg, i;
	int fd = rw_fd(x, f), sig;
	void *p;

	pick_range(x, r[1], r[2], r[4], f->size, f->limit, &off, &len);
	rec->off = off;
	rec->len = len;
	/* a mapping cannot grow a file: extend it first, as a program would */
	if (off + len > f->size) {
		if (ftruncate(fd, off + len) < 0)
			fail(x, "ftruncate of '%s' to 0x%llx: %s", f->path, (long long)(off + len),
			     strerror(errno));
		f->size = off + len;
		note(rec, "extended");
	}
	pg = off & ~(off_t)(x->pagesize - 1);
	p = mmap(NULL, (size_t)(off + len - pg), PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg);
	if (p == MAP_FAILED)
		fail(x, "mmap of '%s' for writing: %s", f->path, strerror(errno));
	for (i = 0; i < len; i++)
		x->buf[i] = pattern(x->num, f->salt, off + i);
	sig = guarded_copy((char *)p + (off - pg), x->buf, (size_t)len);
	if (sig)
		fail(x, "signal %d (%s) writing the mapping of '%s'", sig, strsignal(sig), f->path);
	memcpy(f->model + off, x->buf, (size_t)len);
	switch (r[3] % 4) {
	case 0:
		note(rec, "msync");
		if (msync(p, (size_t)(off + len - pg), MS_SYNC) < 0)
			fail(x, "msync(MS_SYNC): %s", strerror(errno));
		break;
	case 1:
		note(rec, "msync async");
		if (msync(p, (size_t)(off + len - pg), MS_ASYNC) < 0)
			fail(x, "msync(MS_ASYNC): %s", strerror(errno));
		break;
	default:
		note(rec, "no msync");
		break;
	}
	if (munmap(p, (size_t)(off + len - pg)) < 0)
		fail(x, "munmap: %s", strerror(errno));
}

static void op_truncate(struct fsx *x, const uint64_t *r)
{
	struct mfile *f = &x->file;
	off_t size;

	if (r[3] % 4 == 0)
		size = (off_t)(r[1] % (uint64_t)(f->limit + 1));
	else
		size = f->size + (off_t)(r[1] % (uint64_t)(2 * x->maxop + 1)) - x->maxop;
	if (r[4] % 8 == 0)
		size &= ~(off_t)(x->pagesize - 1);
	size = min_off(max_off(size, 0), f->limit);
	x->cur->arg = size;
	if (ftruncate(rw_fd(x, f), size) < 0)
		fail(x, "ftruncate of '%s' to 0x%llx: %s", f->path, (long long)size,
		     strerror(errno));
	if (size < f->size)
		memset(f->model + size, 0, (size_t)(f->size - size));
	f->size = size;
}

/* Gives up on an op kind the file system does not offer, once, and says so. */
static bool unsupported(struct fsx *x, enum op_kind kind, int e)
{
	if (e != EOPNOTSUPP && e != ENOSYS && e != EXDEV)
		return false;
	fprintf(stderr, "fsx: warning: %s unsupported on '%s' (%s), disabled\n",
		op_table[kind].name, x->file.path, strerror(e));
	x->unsupported[kind] = true;
	note(x->cur, "unsupported");
	return true;
}

static void op_fallocate(struct fsx *x, const uint64_t *r)
{
	struct mfile *f = &x->file;
	int mode = r[3] & 1 ? FALLOC_FL_KEEP_SIZE : 0;
	off_t off, len;

	pick_range(x, r[1], r[2], r[4], f->size, f->limit, &off, &len);
	x->cur->off = off;
	x->cur->len = len;
	x->cur->arg = mode;
	if (mode)
		note(x->cur, "keep size");
	if (fallocate(rw_fd(x, f), mode, off, len) < 0) {
		if (unsupported(x, OP_FALLOCATE, errno))
			return;
		fail(x, "fallocate of '%s': %s", f->path, strerror(errno));
	}
	if (!mode)
		f->size = max_off(f->size, off + len);
}

static void op_punch(struct fsx *x, const uint64_t *r)
{
	struct mfile *f = &x->file;
	off_t off, len, end;

	if (f->size == 0) {
		note(x->cur, "empty");
		return;
	}
	/* mostly inside the file, sometimes past its end */
	pick_range(x, r[1], r[2], r[4], f->size, min_off(f->size + x->pagesize, f->limit), &off,
		   &len);
	x->cur->off = off;
	x->cur->len = len;
	if (fallocate(rw_fd(x, f), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0) {
		if (unsupported(x, OP_PUNCH, errno))
			return;
		fail(x, "punching a hole in '%s': %s", f->path, strerror(errno));
	}
	end = min_off(off + len, f->size);
	if (off < end)
		memset(f->model + off, 0, (size_t)(end - off));
}

/* copy_file_range from SRC (FILE itself or FILE2) into FILE; within FILE the ranges never overlap
 */
static void op_copy(struct fsx *x, struct mfile *src, const uint64_t *r)
{
	struct mfile *dst = &x->file;
	struct op_rec *rec = x->cur;
	enum op_kind kind = src == dst ? OP_COPY : OP_COPY2;
	off_t len, s, d, n, over = 0;
	int in_fd;

	if (src->size == 0) {
		note(rec, "empty");
		return;
	}
	len = 1 + (off_t)(r[2] % (uint64_t)min_off(x->maxop, src->size));
	if (r[4] % 8 == 0 && len >= x->pagesize)
		len &= ~(off_t)(x->pagesize - 1);
	s = (off_t)(r[1] % (uint64_t)(src->size - len + 1));
	d = (off_t)(r[3] % (uint64_t)(dst->limit - len + 1));
	if (r[4] % 8 == 0) {
		s &= ~(off_t)(x->pagesize - 1);
		d &= ~(off_t)(x->pagesize - 1);
	}
	/* now and then ask for more than FILE2 holds: the copy must stop at its end (not within
	 * FILE, where a copy that grows the file would find more to copy on its next call) */
	if (src != dst && (r[4] >> 6) % 8 == 0) {
		s = src->size - len;
		over = 1 + (off_t)((r[2] >> 32) % (uint64_t)x->pagesize);
		note(rec, "past EOF");
	}
	if (src == dst && d < s + len && s < d + len) {
		if (s + 2 * len <= dst->limit)
			d = s + len;
		else if (s >= len)
			d = s - len;
		else {
			note(rec, "no room");
			return;
		}
	}
	rec->arg = s;
	rec->off = d;
	rec->len = len;
	in_fd = read_fd(src, r[4] >> 3, rec);
	n = copy_all(in_fd, s, rw_fd(x, dst), d, len + over);
	if (n < 0) {
		if (unsupported(x, kind, (int)-n))
			return;
		fail(x, "copy_file_range from '%s' to '%s': %s", src->path, dst->path,
		     strerror((int)-n));
	}
	if (n != len)
		fail(x,
		     "copy_file_range of 0x%llx bytes from 0x%llx of '%s' (size 0x%llx) "
		     "copied 0x%llx, expected 0x%llx",
		     (long long)(len + over), (long long)s, src->path, (long long)src->size,
		     (long long)n, (long long)len);
	memmove(dst->model + d, src->model + s, (size_t)len);
	dst->size = max_off(dst->size, d + len);
}

static void op_reopen(struct fsx *x, const uint64_t *r)
{
	close_files(x);
	open_files(x);
	if (r[3] & 1) {
		note(x->cur, "rw now");
		rw_fd(x, &x->file);
	}
}

static void op_fsync(struct fsx *x, const uint64_t *r)
{
	struct mfile *f = &x->file;
	int fd = f->rw_fd >= 0 ? f->rw_fd : f->ro_fd;

	note(x->cur, r[3] & 1 ? "fdatasync" : "fsync");
	if ((r[3] & 1 ? fdatasync(fd) : fsync(fd)) < 0)
		fail(x, "fsync of '%s': %s", f->path, strerror(errno));
}

static enum op_kind pick_kind(uint64_t r)
{
	unsigned total = 0, k;

	for (k = 0; k < N_OPS; k++)
		total += op_table[k].weight;
	r %= total;
	for (k = 0; k < N_OPS; k++) {
		if (r < op_table[k].weight)
			break;
		r -= op_table[k].weight;
	}
	return (enum op_kind)k;
}

/* One op. Every op draws the same five numbers whether it runs or not, so disabling a kind of op
 * leaves the rest of the sequence as it was (though the data they meet may differ). */
static void step(struct fsx *x)
{
	uint64_t r[5];
	enum op_kind kind;
	struct op_rec *rec;
	int i;

	for (i = 0; i < 5; i++)
		r[i] = rnd(x);
	kind = pick_kind(r[0]);
	rec = log_at(x, x->num);
	memset(rec, 0, sizeof(*rec));
	rec->num = x->num;
	rec->kind = kind;
	rec->size_before = rec->size_after = x->file.size;
	x->cur = rec;
	if (x->disabled[kind] || x->unsupported[kind]) {
		rec->skipped = true;
		x->skipped[kind]++;
		return;
	}
	switch (kind) {
	case OP_READ:
		op_read(x, &x->file, r);
		break;
	case OP_WRITE:
		op_write(x, &x->file, r);
		break;
	case OP_MAPREAD:
		op_mapread(x, r);
		break;
	case OP_MAPWRITE:
		op_mapwrite(x, r);
		break;
	case OP_TRUNCATE:
		op_truncate(x, r);
		break;
	case OP_FALLOCATE:
		op_fallocate(x, r);
		break;
	case OP_PUNCH:
		op_punch(x, r);
		break;
	case OP_COPY:
		op_copy(x, &x->file, r);
		break;
	case OP_COPY2:
		op_copy(x, &x->file2, r);
		break;
	case OP_WRITE2:
		rec->size_before = x->file2.size;
		op_write(x, &x->file2, r);
		rec->size_after = x->file2.size;
		note(rec, "FILE2");
		x->done[kind]++;
		return;
	case OP_REOPEN:
		op_reopen(x, r);
		break;
	case OP_FSYNC:
		op_fsync(x, r);
		break;
	case N_OPS:
		break;
	}
	rec->size_after = x->file.size;
	x->done[kind]++;
}

/* Opens F (FILE is created when missing) and loads its content into a fresh model. */
static void load_file(struct fsx *x, struct mfile *f, bool create)
{
	struct stat st;

	f->rw_fd = -1;
	f->ro_fd = open_file(f, O_RDONLY);
	if (f->ro_fd == -ENOENT && create) {
		f->rw_fd = open_file(f, O_RDWR | O_CREAT);
		if (f->rw_fd < 0)
			fail(x, "cannot create '%s': %s", f->path, strerror(-f->rw_fd));
		f->ro_fd = open_file(f, O_RDONLY);
	}
	if (f->ro_fd < 0)
		fail(x, "cannot open '%s': %s", f->path, strerror(-f->ro_fd));
	if (fstat(f->ro_fd, &st) < 0)
		fail(x, "fstat of '%s': %s", f->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		fail(x, "'%s' is not a regular file", f->path);
	f->size = f->orig_size = st.st_size;
}

static void alloc_model(struct fsx *x, struct mfile *f)
{
	off_t n;

	f->model = calloc(1, (size_t)f->limit + 1);
	f->orig = calloc(1, (size_t)f->size + 1);
	if (!f->model || !f->orig)
		fail(x, "out of memory");
	n = read_all(f->ro_fd, f->model, 0, f->size);
	if (n != f->size)
		fail(x, "reading '%s' at start: %s", f->path,
		     n < 0 ? strerror((int)-n) : "short read");
	memcpy(f->orig, f->model, (size_t)f->size);
}

/* True once the CLOCK_MONOTONIC time END has passed. */
static bool past(const struct timespec *end)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > end->tv_sec ||
	       (now.tv_sec == end->tv_sec && now.tv_nsec >= end->tv_nsec);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fsx [-N ops] [-T seconds] [-S seed] [-l maxlen] [-o maxop] [-v every] [-d] "
		"[-W] [-R] [-M] [-C] FILE [FILE2]\n"
		"  -N ops    number of ops (default 10000; with -T, no limit)\n"
		"  -T secs   stop after this many seconds (or -N ops, whichever comes first)\n"
		"  -S seed   random seed (default: from the clock, printed)\n"
		"  -l len    largest file size (default 256 KiB, at least the size found)\n"
		"  -o len    largest op (default 64 KiB)\n"
		"  -v every  verify the whole file every this many ops (default 100, 0: at the "
		"end)\n"
		"  -d        print every op as it runs\n"
		"  -W        no mmap writes     -R  no mmap reads\n"
		"  -M        no mmap at all     -C  no copy_file_range\n"
		"FILE is changed in place (created when missing); FILE2 is a second file, read as "
		"a\n"
		"copy_file_range source and written now and then. Exit 0: all data verified, 1: a\n"
		"mismatch or a failed call, 2: usage.\n");
}

static bool parse_num(const char *s, unsigned long long *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	if (*end == 'k' || *end == 'K') {
		v <<= 10;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v <<= 20;
		end++;
	}
	if (*end)
		return false;
	*ret = v;
	return true;
}

int main(int argc, char **argv)
{
	static struct fsx fsx;
	struct fsx *x = &fsx;
	unsigned long long v;
	bool seeded = false, counted = false;
	struct sigaction sa;
	int c, k;

	x->argc = argc;
	x->argv = argv;
	x->nops = 10000;
	x->maxlen = 256 << 10;
	x->maxop = 64 << 10;
	x->verify_every = 100;
	while ((c = getopt(argc, argv, "N:T:S:l:o:v:dWRMCh")) != -1) {
		switch (c) {
		case 'N':
		case 'S':
		case 'l':
		case 'o':
		case 'v':
			if (!parse_num(optarg, &v)) {
				fprintf(stderr, "fsx: bad number '%s' for -%c\n", optarg, c);
				return 2;
			}
			if (c == 'N') {
				x->nops = (unsigned long)v;
				counted = true;
			} else if (c == 'S') {
				x->seed = v;
				seeded = true;
			} else if (c == 'l')
				x->maxlen = (off_t)v;
			else if (c == 'o')
				x->maxop = (off_t)v;
			else
				x->verify_every = (unsigned long)v;
			break;
		case 'T': {
			char *end;
			errno = 0;
			x->seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(x->seconds > 0)) {
				fprintf(stderr, "fsx: bad number of seconds '%s' for -T\n", optarg);
				return 2;
			}
			break;
		}
		case 'd':
			x->trace = true;
			break;
		case 'W':
			x->disabled[OP_MAPWRITE] = true;
			break;
		case 'R':
			x->disabled[OP_MAPREAD] = true;
			break;
		case 'M':
			x->disabled[OP_MAPWRITE] = x->disabled[OP_MAPREAD] = true;
			break;
		case 'C':
			x->disabled[OP_COPY] = x->disabled[OP_COPY2] = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	if (x->maxlen < 1 || x->maxop < 1 || x->maxlen > (off_t)1 << 30) {
		fprintf(stderr, "fsx: -l must be in [1, 1 GiB] and -o at least 1\n");
		return 2;
	}
	if (x->seconds > 0) {
		if (!counted)
			x->nops = ULONG_MAX;
		clock_gettime(CLOCK_MONOTONIC, &x->end);
		x->end.tv_sec += (time_t)x->seconds;
		x->end.tv_nsec += (long)((x->seconds - (double)(time_t)x->seconds) * 1e9);
		if (x->end.tv_nsec >= 1000000000L) {
			x->end.tv_sec++;
			x->end.tv_nsec -= 1000000000L;
		}
	}
	if (!seeded)
		x->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	x->rng = x->seed;
	x->pagesize = sysconf(_SC_PAGESIZE);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	x->file.path = argv[optind];
	x->file2.path = argv[optind + 1];
	x->file2.salt = SALT_FILE2;
	x->file2.ro_fd = x->file2.rw_fd = -1;
	x->has_file2 = x->file2.path != NULL;
	if (!x->has_file2)
		x->disabled[OP_COPY2] = x->disabled[OP_WRITE2] = true;
	load_file(x, &x->file, true);
	if (x->has_file2)
		load_file(x, &x->file2, false);
	x->file.limit = max_off(x->maxlen, x->file.size);
	x->file2.limit = max_off(x->maxlen, x->file2.size);
	x->maxop = min_off(x->maxop, x->file.limit);
	x->buf = malloc((size_t)max_off(x->file.limit, x->file2.limit) + 1);
	if (!x->buf)
		fail(x, "out of memory");
	alloc_model(x, &x->file);
	if (x->has_file2)
		alloc_model(x, &x->file2);
	printf("fsx: seed %" PRIu64 ", ", x->seed);
	if (x->nops != ULONG_MAX)
		printf("%lu ops, ", x->nops);
	if (x->seconds > 0)
		printf("%g s, ", x->seconds);
	printf("maxop 0x%llx, %s (0x%llx bytes, limit 0x%llx)", (long long)x->maxop, x->file.path,
	       (long long)x->file.size, (long long)x->file.limit);
	if (x->has_file2)
		printf(", %s (0x%llx bytes, limit 0x%llx)", x->file2.path, (long long)x->file2.size,
		       (long long)x->file2.limit);
	printf("\n");

	for (x->num = 1; x->num <= x->nops; x->num++) {
		step(x);
		if (x->trace)
			print_rec(x->cur);
		if (x->verify_every && x->num % x->verify_every == 0)
			verify_all(x, "periodic check");
		if (x->seconds > 0 && x->num % 16 == 0 && past(&x->end))
			x->nops = x->num; /* the ops done so far: what the rest of main reports */
	}
	x->num = x->nops;
	verify_all(x, "final check");
	close_files(x);
	open_files(x);
	verify_all(x, "check after reopening");
	close_files(x);

	printf("fsx: %lu ops verified:", x->nops);
	for (k = 0; k < N_OPS; k++) {
		printf(" %s %lu", op_table[k].name, x->done[k]);
		if (x->skipped[k])
			printf(" (%lu skipped)", x->skipped[k]);
	}
	printf("\n");
	free(x->buf);
	free(x->file.model);
	free(x->file.orig);
	free(x->file2.model);
	free(x->file2.orig);
	return 0;
}
