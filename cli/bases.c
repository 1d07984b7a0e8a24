/* Base generations. Layout (all 0700 but the generations, which jobs' daemons read):
 *
 *   STATE/bases/VIEW/lock          promote and gc hold it while they build on the stack
 *   STATE/bases/VIEW/stack         "jobfs-stack 1" then one generation name a line, newest first
 *   STATE/bases/VIEW/gens/GNNNNNN  a published generation: never changed, removed only by gc
 *   STATE/bases/VIEW/tmp/          generations being built; emptied by the next promote
 *
 * A generation is built in tmp/, synced, renamed into gens/ and only then named in a new stack,
 * itself written to stack.tmp, fsynced and renamed over the old one. A crash before the last rename
 * leaves the old stack, a leftover in tmp/ (cleaned by the next promote) or an unnamed generation
 * in gens/ (removed by gc); no mount ever sees a generation the stack does not name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bases.h"
#include "gc.h"
#include "fs.h"

#define STACK_MAGIC "jobfs-stack 1\n"
#define STACK_FILE_MAX 4096

static int open_dir(int dirfd, const char *name, bool create, mode_t mode, int *ret_fd)
{
	int fd, r;

	if (create && (r = store_mkdirat(dirfd, name, mode)) < 0 && r != -EEXIST)
		return r;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -ENOTDIR : -errno;
	*ret_fd = fd;
	return 0;
}

int bases_open(struct store *store, const char *view, bool create, struct bases_view **ret_bases)
{
	struct bases_view *bases;
	int bases_fd = -1, r;

	if (!policy_view_name_valid(view))
		return -EINVAL;
	bases = calloc(1, sizeof(*bases));
	if (!bases)
		return -ENOMEM;
	bases->dir_fd = bases->gens_fd = bases->tmp_fd = bases->lock_fd = -1;
	if (asprintf(&bases->path, "%s/bases/%s", store->path, view) < 0) {
		bases->path = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	r = open_dir(store->dir_fd, "bases", create, 0700, &bases_fd);
	if (r < 0)
		goto out_free;
	/* daemons run as root and read generations through their own descriptors; 0755 below the
	 * 0700 state dir lets a tool inspect them without exposing them to anyone else */
	r = open_dir(bases_fd, view, create, 0755, &bases->dir_fd);
	if (r < 0)
		goto out_free;
	r = open_dir(bases->dir_fd, "gens", create, 0755, &bases->gens_fd);
	if (r < 0)
		goto out_free;
	r = open_dir(bases->dir_fd, "tmp", create, 0700, &bases->tmp_fd);
	if (r < 0)
		goto out_free;
	close(bases_fd);
	*ret_bases = bases;
	return 0;

out_free:
	if (bases_fd >= 0)
		close(bases_fd);
	bases_close(bases);
	return r;
}

void bases_close(struct bases_view *bases)
{
	if (!bases)
		return;
	if (bases->lock_fd >= 0)
		close(bases->lock_fd);
	if (bases->tmp_fd >= 0)
		close(bases->tmp_fd);
	if (bases->gens_fd >= 0)
		close(bases->gens_fd);
	if (bases->dir_fd >= 0)
		close(bases->dir_fd);
	free(bases->path);
	free(bases);
}

int bases_lock(struct bases_view *bases, bool wait)
{
	if (bases->lock_fd < 0) {
		bases->lock_fd = store_openat_new(bases->dir_fd, "lock",
						  O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (bases->lock_fd < 0)
			return bases->lock_fd;
	}
	while (flock(bases->lock_fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
	}
	return 0;
}

bool bases_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len < 7 || len >= BASES_NAME_MAX || name[0] != 'G')
		return false;
	return strspn(name + 1, "0123456789") == len - 1;
}

void bases_stack_free(struct bases_stack *stack)
{
	free(stack->names);
	stack->names = NULL;
	stack->n = 0;
}

bool bases_stack_has(const struct bases_stack *stack, const char *name)
{
	for (size_t i = 0; i < stack->n; i++)
		if (!strcmp(stack->names[i], name))
			return true;
	return false;
}

int bases_stack_push(struct bases_stack *stack, const char *name)
{
	char(*grown)[BASES_NAME_MAX];

	if (!bases_name_valid(name))
		return -EINVAL;
	grown = realloc(stack->names, sizeof(*grown) * (stack->n + 1));
	if (!grown)
		return -ENOMEM;
	memmove(grown + 1, grown, sizeof(*grown) * stack->n);
	snprintf(grown[0], BASES_NAME_MAX, "%s", name);
	stack->names = grown;
	stack->n++;
	return 0;
}

/* Parses "jobfs-stack 1\n" and one valid, distinct name a line; stack is empty on entry. */
static int stack_parse(const char *text, size_t size, struct bases_stack *stack)
{
	const char *p = text + strlen(STACK_MAGIC), *end = text + size;
	char(*grown)[BASES_NAME_MAX];

	if (size < strlen(STACK_MAGIC) || memcmp(text, STACK_MAGIC, strlen(STACK_MAGIC)) != 0)
		return -EINVAL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char name[BASES_NAME_MAX];
		size_t len;

		/* a NUL would end the name early and pass a line with anything after it */
		if (!nl || (len = (size_t)(nl - p)) >= sizeof(name) || memchr(p, '\0', len))
			return -EINVAL;
		memcpy(name, p, len);
		name[len] = '\0';
		if (!bases_name_valid(name) || bases_stack_has(stack, name) ||
		    stack->n >= BASES_STACK_MAX)
			return -EINVAL;
		/* in file order, which is newest first */
		grown = realloc(stack->names, sizeof(*grown) * (stack->n + 1));
		if (!grown)
			return -ENOMEM;
		stack->names = grown;
		snprintf(stack->names[stack->n++], BASES_NAME_MAX, "%s", name);
		p = nl + 1;
	}
	return 0;
}

static int stack_read_at(int dir_fd, struct bases_stack *ret_stack)
{
	struct bases_stack stack = {0};
	char buf[STACK_FILE_MAX + 1];
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, r;

	/* O_NONBLOCK: a FIFO in its place must not hang every mount */
	fd = openat(dir_fd, "stack", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return errno == ELOOP ? -EINVAL : -errno;
		*ret_stack = stack;
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			close(fd);
			return r;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > STACK_FILE_MAX)
		return -EINVAL;
	r = stack_parse(buf, len, &stack);
	if (r < 0) {
		bases_stack_free(&stack);
		return r;
	}
	*ret_stack = stack;
	return 0;
}

int bases_stack_read(struct bases_view *bases, struct bases_stack *ret_stack)
{
	return stack_read_at(bases->dir_fd, ret_stack);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int bases_stack_write(struct bases_view *bases, const struct bases_stack *stack)
{
	char buf[STACK_FILE_MAX];
	size_t len;
	int fd, r;

	if (stack->n > BASES_STACK_MAX)
		return -E2BIG;
	/* never write what stack_parse() would refuse: every mount would fail on it */
	for (size_t i = 0; i < stack->n; i++) {
		if (!bases_name_valid(stack->names[i]))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(stack->names[i], stack->names[j]))
				return -EINVAL;
	}
	len = (size_t)snprintf(buf, sizeof(buf), "%s", STACK_MAGIC);
	for (size_t i = 0; i < stack->n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\n", stack->names[i]);
	if (len >= sizeof(buf))
		return -E2BIG;
	fd = store_openat_new(bases->dir_fd, "stack.tmp",
			      O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return fd;
	r = write_all(fd, buf, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(bases->dir_fd, "stack.tmp", bases->dir_fd, "stack") < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(bases->dir_fd, "stack.tmp", 0);
		return r;
	}
	/* the rename itself must survive a power cut before anyone is told it happened */
	if (fsync(bases->dir_fd) < 0)
		return -errno;
	return 0;
}

int bases_next_name(struct bases_view *bases, const struct bases_stack *stack,
		    char ret_name[static BASES_NAME_MAX])
{
	unsigned long highest = 0;
	struct dirent *de;
	DIR *dir;
	int fd;

	for (size_t i = 0; i < stack->n; i++)
		if (strtoul(stack->names[i] + 1, NULL, 10) > highest)
			highest = strtoul(stack->names[i] + 1, NULL, 10);
	fd = openat(bases->gens_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(dir)))
		if (bases_name_valid(de->d_name) && strtoul(de->d_name + 1, NULL, 10) > highest)
			highest = strtoul(de->d_name + 1, NULL, 10);
	closedir(dir);
	if (highest >= 999999999UL)
		return -EOVERFLOW;
	snprintf(ret_name, BASES_NAME_MAX, "G%06lu", highest + 1);
	return 0;
}

int bases_clean_tmp(struct bases_view *bases)
{
	/* a stack.tmp is left by a crash between its write and its rename: never read, but
	 * nothing else would ever remove it */
	if (unlinkat(bases->dir_fd, "stack.tmp", 0) < 0 && errno != ENOENT)
		return -errno;
	return gc_empty_dir(bases->tmp_fd);
}

int bases_publish(struct bases_view *bases, const char *tmp_name, const char *name,
		  const struct bases_stack *stack)
{
	struct bases_stack next = {0};
	int r;

	if (stack->n >= BASES_STACK_MAX)
		return -E2BIG;
	/* one syncfs for the whole tree: thousands of small files would each wait for their own
	 * fsync; the job layers that share the filesystem are flushed too, which does no harm */
	if (syncfs(bases->tmp_fd) < 0)
		return -errno;
	if (renameat(bases->tmp_fd, tmp_name, bases->gens_fd, name) < 0)
		return -errno;
	if (fsync(bases->gens_fd) < 0 || fsync(bases->tmp_fd) < 0)
		return -errno;
	next.names = calloc(stack->n + 1, sizeof(*next.names));
	if (!next.names)
		return -ENOMEM;
	snprintf(next.names[0], BASES_NAME_MAX, "%s", name);
	if (stack->n)
		memcpy(next.names + 1, stack->names, sizeof(*next.names) * stack->n);
	next.n = stack->n + 1;
	r = bases_stack_write(bases, &next);
	bases_stack_free(&next);
	return r;
}

void bases_lowers_free(char **lowers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lowers[i]);
	free(lowers);
}

int bases_view_lowers(struct store *store, const struct policy_view *view, char ***ret_lowers,
		      size_t *ret_n)
{
	struct bases_stack stack = {0};
	struct bases_view *bases = NULL;
	char **lowers;
	size_t n = 0;
	int r;

	r = bases_open(store, view->name, false, &bases);
	if (r == 0)
		r = bases_stack_read(bases, &stack);
	else if (r == -ENOENT)
		r = 0; /* never promoted into */
	if (r < 0)
		goto out;
	lowers = calloc(stack.n + view->n_lower + 1, sizeof(*lowers));
	if (!lowers) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < stack.n; i++) {
		if (asprintf(&lowers[n], "%s/gens/%s", bases->path, stack.names[i]) < 0)
			goto out_nomem;
		n++;
	}
	for (size_t i = 0; i < view->n_lower; i++) {
		if (!(lowers[n] = strdup(view->lower[i])))
			goto out_nomem;
		n++;
	}
	*ret_lowers = lowers;
	*ret_n = n;
	goto out;

out_nomem:
	bases_lowers_free(lowers, n);
	r = -ENOMEM;
out:
	bases_stack_free(&stack);
	bases_close(bases);
	return r;
}
