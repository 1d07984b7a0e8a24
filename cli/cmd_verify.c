/* `jobfs verify`: scans a view's base as `jobfs manifest` would and compares it with a manifest
 * written earlier: every changed, missing and extra path, and exit code 7 when there is one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exit_codes.h"
#include "json.h"
#include "manifest.h"
#include "policy.h"

enum difference_kind { DIFF_CHANGED, DIFF_MISSING, DIFF_EXTRA };

static const char *const kind_names[] = {"changed", "missing", "extra"};

struct difference {
	enum difference_kind kind;
	const struct manifest_entry *entry; /* the expected one, or the extra one */
	unsigned fields;		    /* MANIFEST_DIFF_* for DIFF_CHANGED */
};

struct comparison {
	struct difference *list;
	size_t n, cap;
	uint64_t count[3], unchanged;
};

static int add_difference(struct comparison *cmp, enum difference_kind kind,
			  const struct manifest_entry *entry, unsigned fields)
{
	if (cmp->n == cmp->cap) {
		size_t cap = cmp->cap ? cmp->cap * 2 : 64;
		struct difference *grown = realloc(cmp->list, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		cmp->list = grown;
		cmp->cap = cap;
	}
	cmp->list[cmp->n++] = (struct difference){kind, entry, fields};
	cmp->count[kind]++;
	return 0;
}

/* Both are sorted by path bytes: one merge pass. */
static int compare(const struct manifest *expected, const struct manifest *actual,
		   struct comparison *cmp)
{
	size_t i = 0, j = 0;
	int r = 0;

	while (r == 0 && (i < expected->n || j < actual->n)) {
		int c = i == expected->n ? 1
			: j == actual->n ? -1
					 : manifest_path_cmp(expected->entries[i]->path,
							     actual->entries[j]->path);
		unsigned fields;

		if (c < 0) {
			r = add_difference(cmp, DIFF_MISSING, expected->entries[i++], 0);
		} else if (c > 0) {
			r = add_difference(cmp, DIFF_EXTRA, actual->entries[j++], 0);
		} else {
			fields = manifest_entry_diff(expected->entries[i], actual->entries[j]);
			if (fields)
				r = add_difference(cmp, DIFF_CHANGED, expected->entries[i], fields);
			else
				cmp->unchanged++;
			i++;
			j++;
		}
	}
	return r;
}

static void print_text(const char *view, const struct comparison *cmp)
{
	printf("view %s: %llu changed, %llu missing, %llu extra, %llu unchanged\n", view,
	       (unsigned long long)cmp->count[DIFF_CHANGED],
	       (unsigned long long)cmp->count[DIFF_MISSING],
	       (unsigned long long)cmp->count[DIFF_EXTRA], (unsigned long long)cmp->unchanged);
	for (size_t i = 0; i < cmp->n; i++) {
		const struct difference *d = &cmp->list[i];

		printf("%-7s ", kind_names[d->kind]);
		if (d->kind == DIFF_CHANGED) {
			const char *sep = "";

			for (int b = 0; b < MANIFEST_DIFF_COUNT; b++) {
				if (d->fields & (1u << b)) {
					printf("%s%s", sep, manifest_diff_names[b]);
					sep = ",";
				}
			}
		} else {
			fputs(manifest_type_name(d->entry->type), stdout);
		}
		putchar(' ');
		manifest_escape(stdout, d->entry->path);
		putchar('\n');
	}
}

static void print_json(const char *view, const char *manifest_path, const struct comparison *cmp)
{
	struct json_writer w;

	json_init(&w, stdout);
	json_object_begin(&w);
	json_key(&w, "view");
	json_string(&w, view);
	json_key(&w, "manifest");
	json_string(&w, manifest_path);
	json_key(&w, "identical");
	json_bool(&w, cmp->n == 0);
	json_key(&w, "summary");
	json_object_begin(&w);
	for (int k = 0; k < 3; k++) {
		json_key(&w, kind_names[k]);
		json_uint(&w, cmp->count[k]);
	}
	json_key(&w, "unchanged");
	json_uint(&w, cmp->unchanged);
	json_object_end(&w);
	json_key(&w, "differences");
	json_array_begin(&w);
	for (size_t i = 0; i < cmp->n; i++) {
		const struct difference *d = &cmp->list[i];

		json_object_begin(&w);
		json_key(&w, "path");
		json_string(&w, d->entry->path);
		json_key(&w, "path_escaped");
		manifest_json_escaped(&w, d->entry->path);
		json_key(&w, "kind");
		json_string(&w, kind_names[d->kind]);
		json_key(&w, "type");
		json_string(&w, manifest_type_name(d->entry->type));
		json_key(&w, "fields");
		json_array_begin(&w);
		for (int b = 0; b < MANIFEST_DIFF_COUNT; b++)
			if (d->fields & (1u << b))
				json_string(&w, manifest_diff_names[b]);
		json_array_end(&w);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	json_finish(&w);
}

static int read_manifest(const struct cli_verb *verb, const char *path, struct manifest **ret)
{
	struct manifest_error err;
	FILE *in = fopen(path, "re");
	int r;

	if (!in) {
		cli_error(verb, "cannot open manifest '%s': %s", path, strerror(errno));
		return JOBFS_EXIT_MANIFEST;
	}
	r = manifest_parse(in, ret, &err);
	fclose(in);
	if (r == -EINVAL) {
		if (err.line)
			cli_error(verb, "%s:%u: %s", path, err.line, err.message);
		else
			cli_error(verb, "%s: %s", path, err.message);
		return JOBFS_EXIT_MANIFEST;
	}
	if (r < 0) {
		cli_error(verb, "cannot read manifest '%s': %s", path, strerror(-r));
		return r == -ENOMEM ? JOBFS_EXIT_SYSTEM : JOBFS_EXIT_MANIFEST;
	}
	return JOBFS_EXIT_OK;
}

int cmd_verify(const struct cli_verb *verb, int argc, char **argv)
{
	static const struct option options[] = {
		{"view", required_argument, NULL, 'v'},
		{"manifest", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'J'},
		{"policy", required_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 't'},
		{"progress", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *policy_path = NULL, *view_name = NULL, *manifest_path = NULL;
	struct manifest *expected = NULL, *actual = NULL;
	struct comparison cmp = {0};
	const struct policy_view *view;
	struct policy *policy = NULL;
	bool json = false, progress = false;
	unsigned threads = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":v:m:p:t:h", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			view_name = optarg;
			break;
		case 'm':
			manifest_path = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'p':
			policy_path = optarg;
			break;
		case 't':
			rc = cli_parse_threads(verb, optarg, &threads);
			if (rc)
				return rc;
			break;
		case 'P':
			progress = true;
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
	if (!manifest_path)
		return cli_usage_error(verb, "--manifest FILE is required");
	rc = cli_load_policy(policy_path, NULL, &policy);
	if (rc)
		return rc;
	rc = read_manifest(verb, manifest_path, &expected);
	if (rc)
		goto out;
	/* without --view, the view the manifest was made of */
	rc = cli_find_view(verb, policy, view_name ? view_name : expected->view, &view);
	if (rc)
		goto out;
	rc = cli_scan_view(verb, policy, view, threads, progress, &actual);
	if (rc)
		goto out;
	if (compare(expected, actual, &cmp) < 0) {
		cli_error(verb, "out of memory");
		rc = JOBFS_EXIT_SYSTEM;
		goto out;
	}
	if (json)
		print_json(view->name, manifest_path, &cmp);
	else
		print_text(view->name, &cmp);
	rc = cmp.n ? JOBFS_EXIT_DIFFERENT : JOBFS_EXIT_OK;
out:
	free(cmp.list);
	manifest_free(actual);
	manifest_free(expected);
	policy_free(policy);
	return rc;
}
