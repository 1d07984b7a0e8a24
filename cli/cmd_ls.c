/* `jobfs ls`: one row per job dir in the state dir, with its live state (mounted, stale,
 * unmounted, orphan, or mounting while a mount holds its lock), age, upper size, files and views.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exit_codes.h"
#include "json.h"
#include "policy.h"
#include "store.h"

struct ls_row {
	char *id;
	enum store_state state;
	int64_t created; /* 0: unknown (orphan) */
	uint64_t bytes;
	uint64_t files;
	struct store_record *rec; /* NULL for an orphan */
};

static int compare_rows(const void *a, const void *b)
{
	return strcmp(((const struct ls_row *)a)->id, ((const struct ls_row *)b)->id);
}

static void fill_row(struct store *store, struct ls_row *row)
{
	struct stat st;
	int job_fd, lock_fd, r;

	row->state = STORE_ORPHAN;
	if (store_job_open(store, row->id, &job_fd) < 0)
		return;
	if (fstat(job_fd, &st) == 0)
		row->created = (int64_t)st.st_mtime;
	store_job_usage(job_fd, &row->bytes, &row->files);
	r = store_record_read(job_fd, &row->rec);
	if (r == 0) {
		row->created = row->rec->created;
		row->state = store_live_state(row->rec);
	}
	/* a record in progress: the mount that holds the lock decides */
	if (row->state != STORE_MOUNTED && row->state != STORE_UNMOUNTED) {
		r = store_job_lock(job_fd, false, &lock_fd);
		if (r == -EWOULDBLOCK)
			row->state = STORE_MOUNTING;
		else if (r == 0)
			close(lock_fd);
	}
	close(job_fd);
}

static void print_table(const struct ls_row *rows, size_t n)
{
	int64_t now = (int64_t)time(NULL);
	char age[32], size[32];

	int width = 24;

	for (size_t i = 0; i < n; i++)
		if ((int)strlen(rows[i].id) > width)
			width = (int)strlen(rows[i].id);
	printf("%-*s %-9s %6s %10s %7s  %s\n", width, "ID", "STATE", "AGE", "UPPER", "FILES",
	       "VIEWS");
	for (size_t i = 0; i < n; i++) {
		const struct ls_row *row = &rows[i];

		printf("%-*s %-9s %6s %10s %7llu  ", width, row->id, store_state_name(row->state),
		       row->created ? store_format_age(now - row->created, age) : "-",
		       store_format_bytes(row->bytes, size), (unsigned long long)row->files);
		if (!row->rec || row->rec->n_views == 0)
			fputs("-", stdout);
		for (size_t j = 0; row->rec && j < row->rec->n_views; j++)
			printf("%s%s", j ? "," : "", row->rec->views[j].name);
		putchar('\n');
	}
}

static void print_json(const struct ls_row *rows, size_t n)
{
	int64_t now = (int64_t)time(NULL);
	struct json_writer w;

	json_init(&w, stdout);
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		const struct ls_row *row = &rows[i];

		json_object_begin(&w);
		json_key(&w, "id");
		json_string(&w, row->id);
		json_key(&w, "state");
		json_string(&w, store_state_name(row->state));
		json_key(&w, "created");
		if (row->created)
			json_int(&w, row->created);
		else
			json_null(&w);
		json_key(&w, "age_seconds");
		if (row->created)
			json_int(&w, now - row->created);
		else
			json_null(&w);
		json_key(&w, "unmounted");
		if (row->rec && row->rec->unmounted)
			json_int(&w, row->rec->unmounted);
		else
			json_null(&w);
		json_key(&w, "pid");
		if (row->rec && row->rec->pid)
			json_int(&w, row->rec->pid);
		else
			json_null(&w);
		json_key(&w, "namespace");
		if (row->rec)
			json_string(&w, row->rec->private_ns ? "private" : "host");
		else
			json_null(&w);
		json_key(&w, "upper_bytes");
		json_uint(&w, row->bytes);
		json_key(&w, "files");
		json_uint(&w, row->files);
		json_key(&w, "policy_digest");
		json_string(&w, row->rec ? row->rec->policy_digest : NULL);
		json_key(&w, "outcome");
		json_string(&w, row->rec ? store_outcome_name(row->rec->outcome) : NULL);
		json_key(&w, "context");
		if (row->rec)
			cli_json_context(&w, row->rec);
		else
			json_null(&w);
		json_key(&w, "views");
		json_array_begin(&w);
		for (size_t j = 0; row->rec && j < row->rec->n_views; j++) {
			const struct store_view *view = &row->rec->views[j];

			json_object_begin(&w);
			json_key(&w, "name");
			json_string(&w, view->name);
			json_key(&w, "target");
			json_string(&w, view->target);
			json_key(&w, "lower");
			json_array_begin(&w);
			for (size_t k = 0; k < view->n_lowers; k++)
				json_string(&w, view->lowers[k]);
			json_array_end(&w);
			json_object_end(&w);
		}
		json_array_end(&w);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_finish(&w);
}

int cmd_ls(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'J'},
		{"policy", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *path = NULL;
	struct ls_row *rows = NULL;
	struct policy *policy = NULL;
	struct store *store = NULL;
	struct dirent *de;
	size_t n = 0, cap = 0;
	bool json = false;
	DIR *dir = NULL;
	int c, r, rc, fd;

	while ((c = getopt_long(argc, argv, ":p:h", options, NULL)) != -1) {
		switch (c) {
		case 'J':
			json = true;
			break;
		case 'p':
			path = optarg;
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
	rc = cli_load_policy(path, NULL, &policy);
	if (rc)
		return rc;

	rc = JOBFS_EXIT_SYSTEM;
	r = store_open(policy->state_dir, false, &store);
	if (r < 0 && r != -ENOENT) {
		cli_error(verb, "cannot open state dir '%s': %s", policy->state_dir, strerror(-r));
		goto out;
	}
	if (store) {
		fd = openat(store->jobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dir) {
			cli_error(verb, "cannot list '%s/jobs': %s", store->path, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		while ((de = readdir(dir))) {
			if (!policy_job_id_valid(de->d_name))
				continue; /* ".", "..", and nothing jobfs made */
			if (n == cap) {
				struct ls_row *grown =
					realloc(rows, sizeof(*rows) * (cap = cap ? cap * 2 : 16));
				if (!grown) {
					cli_error(verb, "out of memory");
					goto out;
				}
				rows = grown;
			}
			memset(&rows[n], 0, sizeof(rows[n]));
			rows[n].id = strdup(de->d_name);
			if (!rows[n].id) {
				cli_error(verb, "out of memory");
				goto out;
			}
			n++;
		}
		for (size_t i = 0; i < n; i++)
			fill_row(store, &rows[i]);
		if (n)
			qsort(rows, n, sizeof(*rows), compare_rows);
	}
	if (json)
		print_json(rows, n);
	else
		print_table(rows, n);
	rc = JOBFS_EXIT_OK;
out:
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < n; i++) {
		free(rows[i].id);
		store_record_free(rows[i].rec);
	}
	free(rows);
	store_close(store);
	policy_free(policy);
	return rc;
}
