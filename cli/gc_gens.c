/* gc of base generations: a stack deeper than the policy allows is flattened into one generation
 * (hard links of the same immutable files, top wins, so the content is identical), and
 * generations that neither the stack nor any job record names are removed through the trash.
 * Order matters: the stack is replaced before the job dirs are listed, so a mount that read the
 * old stack has its job dir already (see cmd_mount.c) and is seen. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bases.h"
#include "fs.h"
#include "gc.h"

/* Puts the union of the dirs in src_fds (top first, -1 where absent) into out_fd. */
static int flatten_dir(const int *src_fds, size_t n, int out_fd, unsigned depth)
{
	int r = 0;

	if (depth > 256)
		return -ELOOP;
	for (size_t s = 0; s < n && r == 0; s++) {
		struct dirent *de;
		DIR *dir;
		int fd;

		if (src_fds[s] < 0)
			continue;
		fd = openat(src_fds[s], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || !(dir = fdopendir(fd))) {
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		while (r == 0 && (de = readdir(dir))) {
			struct stat st, have;
			int *child, sub;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			/* an upper source already put it there: top wins */
			if (fstatat(out_fd, de->d_name, &have, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			if (fstatat(src_fds[s], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				r = -errno;
				break;
			}
			if (!S_ISDIR(st.st_mode)) {
				if (linkat(src_fds[s], de->d_name, out_fd, de->d_name, 0) < 0)
					r = -errno;
				continue;
			}
			child = calloc(n, sizeof(int));
			if (!child) {
				r = -ENOMEM;
				break;
			}
			/* the dir in each source from here down, as a mount merges it: a non-dir
			 * in between hides the dirs below it */
			for (size_t l = 0; l < n; l++)
				child[l] = -1;
			for (size_t l = s; l < n; l++) {
				struct stat lst;

				if (src_fds[l] < 0 ||
				    fstatat(src_fds[l], de->d_name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
					continue;
				if (!S_ISDIR(lst.st_mode))
					break;
				child[l] = openat(src_fds[l], de->d_name,
						  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
			if (mkdirat(out_fd, de->d_name, 0700) < 0 ||
			    (sub = openat(out_fd, de->d_name,
					  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				r = -errno;
			} else {
				struct timespec times[2] = {st.st_atim, st.st_mtim};

				r = flatten_dir(child, n, sub, depth + 1);
				if (r == 0 && (fchown(sub, st.st_uid, st.st_gid) < 0 ||
					       fchmod(sub, st.st_mode & 07777) < 0 ||
					       futimens(sub, times) < 0))
					r = -errno;
				close(sub);
			}
			for (size_t l = 0; l < n; l++)
				if (child[l] >= 0)
					close(child[l]);
			free(child);
		}
		closedir(dir);
	}
	return r;
}

/* Replaces the stack with one generation holding what all of it held. The caller holds the
 * lock. */
static int flatten(struct bases_view *bases, const struct bases_stack *stack, char *ret_name)
{
	struct bases_stack empty = {0};
	int *fds, out_fd = -1, r;

	r = bases_clean_tmp(bases);
	if (r == 0)
		r = bases_next_name(bases, stack, ret_name);
	if (r < 0)
		return r;
	fds = calloc(stack->n, sizeof(int));
	if (!fds)
		return -ENOMEM;
	for (size_t i = 0; i < stack->n; i++)
		fds[i] = openat(bases->gens_fd, stack->names[i],
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (store_mkdirat(bases->tmp_fd, ret_name, 0755) < 0 ||
	    (out_fd = openat(bases->tmp_fd, ret_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		r = -errno;
	for (size_t i = 0; i < stack->n && r == 0; i++)
		if (fds[i] < 0)
			r = -EIO; /* a generation the stack names is missing: do not hide it */
	if (r == 0)
		r = flatten_dir(fds, stack->n, out_fd, 0);
	if (out_fd >= 0)
		close(out_fd);
	for (size_t i = 0; i < stack->n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	if (r == 0)
		r = bases_publish(bases, ret_name, ret_name, &empty);
	if (r < 0)
		jfs_remove_tree_at(bases->tmp_fd, ret_name);
	return r;
}

/* Adds the generations of view named in job records to used; false when a job dir has no
 * readable record (a mount between creating its dir and writing its record): keep them all. */
static bool collect_used(struct store *store, const struct bases_view *bases,
			 struct bases_stack *used)
{
	char prefix[PATH_MAX];
	struct dirent *de;
	bool complete = true;
	DIR *dir;
	int fd;

	snprintf(prefix, sizeof(prefix), "%s/gens/", bases->path);
	fd = openat(store->jobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while ((de = readdir(dir))) {
		struct store_record *rec;
		int job_fd;

		if (!policy_job_id_valid(de->d_name))
			continue;
		if (store_job_open(store, de->d_name, &job_fd) < 0)
			continue;
		if (store_record_read(job_fd, &rec) < 0) {
			complete = false;
			close(job_fd);
			continue;
		}
		close(job_fd);
		for (size_t v = 0; v < rec->n_views; v++)
			for (size_t l = 0; l < rec->views[v].n_lowers; l++) {
				const char *lower = rec->views[v].lowers[l];

				if (!strncmp(lower, prefix, strlen(prefix)) &&
				    bases_name_valid(lower + strlen(prefix)) &&
				    !bases_stack_has(used, lower + strlen(prefix)))
					bases_stack_push(used, lower + strlen(prefix));
			}
		store_record_free(rec);
	}
	closedir(dir);
	return complete;
}

int gc_generations(struct store *store, const char *view, uint64_t max_generations, bool dry_run,
		   gc_generation_fn *report, void *userdata)
{
	struct bases_stack stack = {0}, used = {0};
	struct bases_view *bases = NULL;
	char flat[BASES_NAME_MAX];
	struct dirent *de;
	DIR *dir = NULL;
	int fd, r;

	r = bases_open(store, view, false, &bases);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = bases_lock(bases, false);
	if (r < 0)
		goto out; /* a promote is at work: next time */
	if (!dry_run && (r = bases_clean_tmp(bases)) < 0)
		goto out;
	r = bases_stack_read(bases, &stack);
	if (r < 0)
		goto out;
	if (stack.n > max_generations) {
		if (dry_run) {
			report(view, "(new)", "would flatten", stack.n, userdata);
		} else {
			r = flatten(bases, &stack, flat);
			if (r < 0)
				goto out;
			report(view, flat, "flattened", stack.n, userdata);
			bases_stack_free(&stack);
			bases_stack_push(&stack, flat);
		}
	}
	/* after the stack is replaced: see the comment at the top */
	if (!collect_used(store, bases, &used))
		goto out;
	fd = openat(bases->gens_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	while ((de = readdir(dir))) {
		char trash_name[PATH_MAX];
		uint64_t bytes = 0, files;

		if (!bases_name_valid(de->d_name) || bases_stack_has(&stack, de->d_name) ||
		    bases_stack_has(&used, de->d_name))
			continue;
		store_tree_usage(bases->gens_fd, de->d_name, &bytes, &files);
		if (!dry_run) {
			snprintf(trash_name, sizeof(trash_name), "base.%s.%s.%lld.%d", view,
				 de->d_name, (long long)time(NULL), (int)getpid());
			if (store->trash_fd < 0 ||
			    renameat(bases->gens_fd, de->d_name, store->trash_fd, trash_name) < 0) {
				r = -errno;
				break;
			}
			r = jfs_remove_tree_at(store->trash_fd, trash_name);
			if (r < 0)
				break;
		}
		report(view, de->d_name, dry_run ? "would remove" : "removed", bytes, userdata);
	}
out:
	if (dir)
		closedir(dir);
	bases_stack_free(&stack);
	bases_stack_free(&used);
	bases_close(bases);
	return r == -EWOULDBLOCK ? 0 : r;
}
