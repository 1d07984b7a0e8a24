/* Merged directory listings: the layers' entries de-duplicated top first, whiteouts filtered, and
 * served to the kernel with offsets that stay valid across rebuilds (see struct jfs_listing). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

struct name_set {
	size_t cap; /* power of two */
	size_t count;
	char **slots;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void name_set_free(struct name_set *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
}

static int name_set_grow(struct name_set *set)
{
	size_t cap = set->cap ? set->cap * 2 : 256;
	char **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < set->cap; i++) {
		char *name = set->slots[i];
		if (!name)
			continue;
		size_t j = name_hash(name) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = name;
	}
	free(set->slots);
	set->slots = slots;
	set->cap = cap;
	return 0;
}

/* Returns 1 when name was added, 0 when it was there already. */
static int name_set_add(struct name_set *set, const char *name)
{
	size_t j;

	if ((set->count + 1) * 2 > set->cap && name_set_grow(set) < 0)
		return -ENOMEM;
	j = name_hash(name) & (set->cap - 1);
	for (; set->slots[j]; j = (j + 1) & (set->cap - 1))
		if (!strcmp(set->slots[j], name))
			return 0;
	set->slots[j] = strdup(name);
	if (!set->slots[j])
		return -ENOMEM;
	set->count++;
	return 1;
}

static int dirlist_add(struct jfs_dirlist *list, const char *name, uint64_t ino, unsigned char type)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct jfs_dirent *e = realloc(list->entries, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		list->entries = e;
		list->cap = cap;
	}
	list->entries[list->count].name = strdup(name);
	if (!list->entries[list->count].name)
		return -ENOMEM;
	list->entries[list->count].ino = ino;
	list->entries[list->count].type = type;
	list->count++;
	return 0;
}

void jfs_dirlist_free(struct jfs_dirlist *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->entries[i].name);
	free(list->entries);
	memset(list, 0, sizeof(*list));
}

static int read_layer(struct jfs_fs *fs, const struct jfs_ilayer *layer, bool dedup,
		      struct name_set *seen, struct jfs_dirlist *list)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	/* listing a lower must not touch its atime either */
	fd = jfs_open_noatime(layer->fd, ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		unsigned char type = de->d_type;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (dedup) {
			r = name_set_add(seen, de->d_name);
			if (r < 0)
				break;
			if (r == 0)
				continue; /* a layer above has the name */
			r = 0;
		}
		if (type == DT_CHR || type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (!fs->opts.plain && jfs_is_whiteout(&st))
				continue;
			type = (unsigned char)IFTODT(st.st_mode);
		}
		r = dirlist_add(list, de->d_name,
				jfs_inomap_view_ino(&fs->inomap, layer->idx, de->d_ino), type);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int jfs_dirlist_build(struct jfs_fs *fs, struct jfs_inode *dir, struct jfs_dirlist *ret)
{
	struct jfs_ilayer layers[JFS_MAX_LAYERS];
	struct jfs_dirlist list = {0};
	struct name_set seen = {0};
	int n, r;

	n = jfs_inode_layers_pin(fs, dir, layers, JFS_MAX_LAYERS);
	if (n < 0)
		return n;
	struct jfs_inode *parent;
	uint64_t parent_ino;

	jfs_lock(&dir->lock);
	parent = dir->parent;
	jfs_unlock(&dir->lock);
	/* readdir(3) skips entries with inode 0, so ".." needs a real number */
	parent_ino = parent ? parent->ino : dir->ino;
	r = dirlist_add(&list, ".", dir->ino, DT_DIR);
	if (r == 0)
		r = dirlist_add(&list, "..", parent_ino, DT_DIR);
	for (int i = 0; i < n && r == 0; i++)
		r = read_layer(fs, &layers[i], n > 1, &seen, &list);
	name_set_free(&seen);
	jfs_inode_unpin(dir);
	if (r < 0) {
		jfs_dirlist_free(&list);
		return r;
	}
	*ret = list;
	return 0;
}

/* Returns 1 when the directory shows no entries, 0 when it does. */
int jfs_dir_is_empty(struct jfs_fs *fs, struct jfs_inode *dir)
{
	struct jfs_dirlist list;
	int r;

	r = jfs_dirlist_build(fs, dir, &list);
	if (r < 0)
		return r;
	r = list.count <= 2;
	jfs_dirlist_free(&list);
	return r;
}

/*
 * Listings served to the kernel. The kernel keeps what we send (cache_readdir) and, once
 * NO_OPENDIR is agreed, sends no opendir or releasedir at all: readdir then comes without a
 * handle, so the listing being served lives in the directory's inode. Offsets are not positions but
 * keys: each entry's is a hash of its name (".", ".." are 1 and 2), the listing is sorted by key,
 * and readdir(off) returns the entries whose key is above off. A listing rebuilt mid-way, or served
 * to two readers at once, so never repeats or skips an entry that stayed; telldir/seekdir work.
 * A listing is rebuilt at offset 0 and dropped once its end has been served.
 */
struct jfs_listing {
	struct jfs_dirlist list; /* sorted by key */
	uint64_t *keys;
};

void jfs_listing_free(struct jfs_listing *l)
{
	if (!l)
		return;
	jfs_dirlist_free(&l->list);
	free(l->keys);
	free(l);
}

static uint64_t entry_key(const char *name)
{
	uint64_t h;

	if (!strcmp(name, "."))
		return 1;
	if (!strcmp(name, ".."))
		return 2;
	h = name_hash(name) >> 2; /* below 2^62: off_t stays positive */
	return h < 3 ? h + 3 : h;
}

static int cmp_key(const void *a, const void *b, void *keys_arg)
{
	const uint64_t *keys = keys_arg;
	uint64_t ka = keys[*(const size_t *)a], kb = keys[*(const size_t *)b];

	return ka < kb ? -1 : ka > kb;
}

static int listing_build(struct jfs_fs *fs, struct jfs_inode *dir, struct jfs_listing **ret)
{
	struct jfs_listing *l = calloc(1, sizeof(*l));
	struct jfs_dirlist raw;
	size_t *order = NULL;
	uint64_t *raw_keys = NULL;
	int r;

	if (!l)
		return -ENOMEM;
	r = jfs_dirlist_build(fs, dir, &raw);
	if (r < 0) {
		free(l);
		return r;
	}
	order = malloc(sizeof(*order) * (raw.count + 1));
	raw_keys = malloc(sizeof(*raw_keys) * (raw.count + 1));
	l->keys = malloc(sizeof(*l->keys) * (raw.count + 1));
	l->list.entries = malloc(sizeof(*l->list.entries) * (raw.count + 1));
	if (!order || !raw_keys || !l->keys || !l->list.entries) {
		free(order);
		free(raw_keys);
		jfs_dirlist_free(&raw);
		jfs_listing_free(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < raw.count; i++) {
		order[i] = i;
		raw_keys[i] = entry_key(raw.entries[i].name);
	}
	qsort_r(order, raw.count, sizeof(*order), cmp_key, raw_keys);
	for (size_t i = 0; i < raw.count; i++) {
		uint64_t k = raw_keys[order[i]];
		/* a collision (2^-62 per pair) still gets a key of its own */
		if (i > 0 && k <= l->keys[i - 1])
			k = l->keys[i - 1] + 1;
		l->keys[i] = k;
		l->list.entries[i] = raw.entries[order[i]];
	}
	l->list.count = l->list.cap = raw.count;
	free(raw.entries); /* the names moved to l */
	free(order);
	free(raw_keys);
	*ret = l;
	return 0;
}

/* The first entry whose key is above off. */
static size_t listing_seek(const struct jfs_listing *l, uint64_t off)
{
	size_t lo = 0, hi = l->list.count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->keys[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void jfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	(void)ino;
	if (fs->no_opendir) {
		/* the kernel takes this as "no opendir needed, ever" and caches listings */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* listings change only through the kernel's own operations, which drop this cache; not a
	 * plain view's, which others change too */
	fi->cache_readdir = !fs->opts.plain;
	fi->keep_cache = !fs->opts.plain;
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *dir = jfs_inode_from_id(fs, ino);
	struct jfs_listing *l, *stale = NULL, *done = NULL;
	struct jfs_inode_rare *x;
	struct jfs_ilayer dl[JFS_MAX_LAYERS];
	int ndl = -1; /* dir's layer descriptors, fetched once for all the entries */
	char *buf;
	size_t pos = 0, i;
	int r = 0;

	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(jfs_list_lock(fs, dir));
	jfs_lock(&dir->lock);
	x = jfs_inode_rare_locked(dir);
	jfs_unlock(&dir->lock);
	if (!x) {
		r = -ENOMEM;
		goto out_unlock;
	}
	if (!x->listing || off == 0) {
		r = listing_build(fs, dir, &l);
		if (r < 0)
			goto out_unlock;
		stale = x->listing;
		x->listing = l;
	}
	l = x->listing;
	for (i = listing_seek(l, (uint64_t)off); i < l->list.count; i++) {
		struct jfs_dirent *de = &l->list.entries[i];
		off_t next = (off_t)l->keys[i];
		size_t len;

		if (!plus) {
			struct stat st = {.st_ino = de->ino, .st_mode = (mode_t)DTTOIF(de->type)};
			len = fuse_add_direntry(req, buf + pos, size - pos, de->name, &st, next);
			if (len > size - pos)
				break;
		} else {
			struct fuse_entry_param e = {0};
			struct jfs_inode *inode = NULL;
			bool dots = !strcmp(de->name, ".") || !strcmp(de->name, "..");

			if (dots) {
				e.attr.st_ino = de->ino;
				e.attr.st_mode = (mode_t)DTTOIF(de->type);
			} else {
				if (ndl < 0) {
					ndl = jfs_inode_layers_pin(fs, dir, dl, JFS_MAX_LAYERS);
					if (ndl < 0) {
						r = ndl;
						break;
					}
				}
				r = jfs_lookup_entry(fs, dir, dl, ndl, de->name, &inode, &e);
				if (r < 0) {
					r = 0;
					continue; /* gone meanwhile: skip it */
				}
			}
			len = fuse_add_direntry_plus(req, buf + pos, size - pos, de->name, &e,
						     next);
			if (len > size - pos) {
				if (inode)
					jfs_inode_forget(fs, inode, 1); /* not emitted */
				break;
			}
		}
		pos += len;
	}
	if (ndl >= 0)
		jfs_inode_unpin(dir);
	if (r < 0 && pos > 0)
		r = 0; /* what was added is served; the error comes again on the next call */
	if (r < 0)
		goto out_unlock;
	if (pos == 0 && i == l->list.count) {
		/* the end, served: the kernel has it all now */
		x->listing = NULL;
		done = l;
	}
out_unlock:
	pthread_mutex_unlock(jfs_list_lock(fs, dir));
	jfs_listing_free(stale);
	jfs_listing_free(done);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, pos);
	free(buf);
}

void jfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

void jfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

void jfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void jfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	int idx, fd = jfs_inode_fd(fs, jfs_inode_from_id(fs, ino), 0, &idx);
	int r = 0;

	(void)fi;
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (idx == JFS_UPPER && !fs->opts.volatile_upper &&
	    (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		r = errno;
	close(fd);
	fuse_reply_err(req, r);
}
