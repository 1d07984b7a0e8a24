/* The inode table: stable view inode numbers, lookup counting, forget, and getattr/setattr. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

#define JFS_ITABLE_STRIPE 16

static uint32_t hash64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (uint32_t)v;
}

/* --- the inode map: real (layer, st_ino) -> view inode number ------------------------------- */

/*
 * A view number is normally derived from the top object: (layer index + 1) << 48 | st_ino, so it
 * needs no memory and survives forget. The map holds the exceptions for the mount's life: copied-up
 * objects (their upper st_ino aliases the number they had below) and real numbers too large to
 * encode.
 */
struct jfs_inomap_entry {
	struct jfs_inomap_entry *next;
	int idx;
	ino_t real_ino;
	uint64_t view_ino;
};

int jfs_inomap_init(struct jfs_inomap *m)
{
	m->nbuckets = 4096;
	m->count = 0;
	m->next_alloc = 1ULL << 63;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	return 0;
}

void jfs_inomap_destroy(struct jfs_inomap *m)
{
	for (uint32_t i = 0; i < m->nbuckets; i++) {
		struct jfs_inomap_entry *e = m->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	pthread_mutex_destroy(&m->lock);
}

static uint32_t inomap_bucket(struct jfs_inomap *m, int idx, ino_t real_ino)
{
	return hash64((uint64_t)real_ino * 131 + (uint64_t)idx) % m->nbuckets;
}

static struct jfs_inomap_entry *inomap_find(struct jfs_inomap *m, int idx, ino_t real_ino)
{
	struct jfs_inomap_entry *e = m->buckets[inomap_bucket(m, idx, real_ino)];

	for (; e; e = e->next)
		if (e->idx == idx && e->real_ino == real_ino)
			return e;
	return NULL;
}

static int inomap_insert_locked(struct jfs_inomap *m, int idx, ino_t real_ino, uint64_t view_ino)
{
	struct jfs_inomap_entry *e = inomap_find(m, idx, real_ino);
	uint32_t b;

	if (e) {
		e->view_ino = view_ino;
		return 0;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	b = inomap_bucket(m, idx, real_ino);
	e->idx = idx;
	e->real_ino = real_ino;
	e->view_ino = view_ino;
	e->next = m->buckets[b];
	m->buckets[b] = e;
	m->count++;
	return 0;
}

uint64_t jfs_inomap_view_ino(struct jfs_inomap *m, int idx, ino_t real_ino)
{
	struct jfs_inomap_entry *e;
	uint64_t view_ino;

	pthread_mutex_lock(&m->lock);
	e = inomap_find(m, idx, real_ino);
	if (e) {
		view_ino = e->view_ino;
	} else if ((uint64_t)real_ino < (1ULL << JFS_INO_ENCODE_BITS) && idx < 0x7fff) {
		view_ino = jfs_ino_encode(idx, real_ino);
	} else {
		view_ino = m->next_alloc++;
		if (inomap_insert_locked(m, idx, real_ino, view_ino) < 0)
			view_ino = (uint64_t)real_ino; /* out of memory: unstable but usable */
	}
	pthread_mutex_unlock(&m->lock);
	return view_ino;
}

int jfs_inomap_add(struct jfs_inomap *m, int idx, ino_t real_ino, uint64_t view_ino)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = inomap_insert_locked(m, idx, real_ino, view_ino);
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* The real inode is gone (its last link removed): its number may be reused by a new object. */
void jfs_inomap_del(struct jfs_inomap *m, int idx, ino_t real_ino)
{
	struct jfs_inomap_entry **pp, *e;

	pthread_mutex_lock(&m->lock);
	pp = &m->buckets[inomap_bucket(m, idx, real_ino)];
	for (; (e = *pp); pp = &e->next) {
		if (e->idx == idx && e->real_ino == real_ino) {
			*pp = e->next;
			free(e);
			m->count--;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

/* --- the inode table ---------------------------------------------------------------------------
 */

int jfs_itable_init(struct jfs_itable *t, uint32_t nbuckets)
{
	t->nbuckets = nbuckets;
	t->nlocks = (nbuckets + JFS_ITABLE_STRIPE - 1) / JFS_ITABLE_STRIPE;
	t->buckets = calloc(nbuckets, sizeof(*t->buckets));
	t->locks = calloc(t->nlocks, sizeof(*t->locks));
	if (!t->buckets || !t->locks) {
		free(t->buckets);
		free(t->locks);
		t->buckets = NULL;
		t->locks = NULL;
		t->nbuckets = t->nlocks = 0;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->nlocks; i++)
		pthread_mutex_init(&t->locks[i], NULL);
	pthread_mutex_init(&t->orphan_lock, NULL);
	t->orphans = NULL;
	return 0;
}

static pthread_mutex_t *bucket_lock(struct jfs_fs *fs, struct jfs_inode *inode)
{
	return &fs->itable.locks[inode->hash / JFS_ITABLE_STRIPE];
}

void jfs_ilayers_close(struct jfs_ilayer *layers, int n)
{
	for (int i = 0; i < n; i++)
		if (layers[i].fd >= 0)
			close(layers[i].fd);
}

int jfs_ilayers_count_open(const struct jfs_ilayer *layers, int n)
{
	int open = 0;

	for (int i = 0; i < n; i++)
		open += layers[i].fd >= 0;
	return open;
}

static void orphan_remove(struct jfs_itable *t, struct jfs_inode *inode)
{
	pthread_mutex_lock(&t->orphan_lock);
	if (inode->orphaned) {
		if (inode->oprev)
			inode->oprev->onext = inode->onext;
		else
			t->orphans = inode->onext;
		if (inode->onext)
			inode->onext->oprev = inode->oprev;
		inode->orphaned = false;
	}
	pthread_mutex_unlock(&t->orphan_lock);
}

static void inode_free(struct jfs_fs *fs, struct jfs_inode *inode)
{
	jfs_fdcache_release(fs, inode);
	if (fs) {
		orphan_remove(&fs->itable, inode);
		__atomic_sub_fetch(&fs->nfds, jfs_ilayers_count_open(inode->layers, inode->nlayers),
				   __ATOMIC_RELAXED);
	}
	jfs_ilayers_close(inode->layers, inode->nlayers);
	if (jfs_inode_layers_owned(inode))
		free(inode->layers);
	jfs_inode_rare_free(inode->rare);
	free(inode->name);
	free(inode);
}

void jfs_itable_destroy(struct jfs_itable *t)
{
	struct jfs_inode *inode, *next;

	for (uint32_t i = 0; i < t->nbuckets; i++) {
		for (inode = t->buckets[i]; inode; inode = next) {
			next = inode->hnext;
			inode_free(NULL, inode);
		}
	}
	/* the kernel does not forget everything before an unmount */
	for (inode = t->orphans; inode; inode = next) {
		next = inode->onext;
		inode_free(NULL, inode);
	}
	pthread_mutex_destroy(&t->orphan_lock);
	for (uint32_t i = 0; i < t->nlocks; i++)
		pthread_mutex_destroy(&t->locks[i]);
	free(t->buckets);
	free(t->locks);
}

static void unhash_locked(struct jfs_fs *fs, struct jfs_inode *inode)
{
	struct jfs_inode **pp;

	if (!inode->hashed)
		return;
	for (pp = &fs->itable.buckets[inode->hash]; *pp; pp = &(*pp)->hnext) {
		if (*pp == inode) {
			*pp = inode->hnext;
			break;
		}
	}
	inode->hashed = false;
	inode->hnext = NULL;
}

void jfs_inode_unhash(struct jfs_fs *fs, struct jfs_inode *inode)
{
	pthread_mutex_t *lock = bucket_lock(fs, inode);

	pthread_mutex_lock(lock);
	bool was_hashed = inode->hashed;
	unhash_locked(fs, inode);
	if (was_hashed) {
		/* it lives on until the kernel forgets it, which may be never */
		pthread_mutex_lock(&fs->itable.orphan_lock);
		inode->orphaned = true;
		inode->oprev = NULL;
		inode->onext = fs->itable.orphans;
		if (inode->onext)
			inode->onext->oprev = inode;
		fs->itable.orphans = inode;
		pthread_mutex_unlock(&fs->itable.orphan_lock);
	}
	pthread_mutex_unlock(lock);
}

struct jfs_inode *jfs_inode_from_id(struct jfs_fs *fs, fuse_ino_t id)
{
	if (id == FUSE_ROOT_ID)
		return fs->root;
	return (struct jfs_inode *)(uintptr_t)id;
}

fuse_ino_t jfs_inode_id(struct jfs_fs *fs, struct jfs_inode *inode)
{
	if (inode == fs->root)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)(uintptr_t)inode;
}

static bool inode_is_dead(struct jfs_fs *fs, struct jfs_inode *inode)
{
	return inode != fs->root && inode->nlookup == 0 && inode->nref == 0;
}

/* Frees a dead inode and drops the reference it held on its parent, iteratively. */
static void inode_release_dead(struct jfs_fs *fs, struct jfs_inode *inode)
{
	while (inode) {
		struct jfs_inode *parent = inode->parent;
		inode_free(fs, inode);
		__atomic_sub_fetch(&fs->ninodes, 1, __ATOMIC_RELAXED);
		inode = NULL;
		if (!parent)
			break;
		pthread_mutex_t *lock = bucket_lock(fs, parent);
		pthread_mutex_lock(lock);
		if (parent->nref == 0) {
			fprintf(stderr, "jobfs-fs: reference count underflow on inode %llu\n",
				(unsigned long long)parent->ino);
			abort();
		}
		parent->nref--;
		if (inode_is_dead(fs, parent)) {
			unhash_locked(fs, parent);
			inode = parent;
		}
		pthread_mutex_unlock(lock);
	}
}

void jfs_inode_ref(struct jfs_fs *fs, struct jfs_inode *inode)
{
	pthread_mutex_t *lock = bucket_lock(fs, inode);

	pthread_mutex_lock(lock);
	inode->nref++;
	pthread_mutex_unlock(lock);
}

void jfs_inode_put(struct jfs_fs *fs, struct jfs_inode *inode)
{
	pthread_mutex_t *lock;
	bool dead;

	if (!inode)
		return;
	lock = bucket_lock(fs, inode);
	pthread_mutex_lock(lock);
	if (inode->nref == 0) {
		fprintf(stderr, "jobfs-fs: reference count underflow on inode %llu\n",
			(unsigned long long)inode->ino);
		abort();
	}
	inode->nref--;
	dead = inode_is_dead(fs, inode);
	if (dead)
		unhash_locked(fs, inode);
	pthread_mutex_unlock(lock);
	if (dead)
		inode_release_dead(fs, inode);
}

/* One more kernel reference to an inode the caller holds (a reply that names it again). */
void jfs_inode_kernel_ref(struct jfs_fs *fs, struct jfs_inode *inode)
{
	pthread_mutex_t *lock = bucket_lock(fs, inode);

	pthread_mutex_lock(lock);
	inode->nlookup++;
	pthread_mutex_unlock(lock);
}

void jfs_inode_forget(struct jfs_fs *fs, struct jfs_inode *inode, uint64_t nlookup)
{
	pthread_mutex_t *lock = bucket_lock(fs, inode);
	bool dead;

	pthread_mutex_lock(lock);
	if (inode->nlookup < nlookup) {
		fprintf(stderr, "jobfs-fs: lookup count underflow on inode %llu (%llu < %llu)\n",
			(unsigned long long)inode->ino, (unsigned long long)inode->nlookup,
			(unsigned long long)nlookup);
		abort();
	}
	inode->nlookup -= nlookup;
	dead = inode_is_dead(fs, inode);
	if (dead)
		unhash_locked(fs, inode);
	pthread_mutex_unlock(lock);
	if (dead)
		inode_release_dead(fs, inode);
}

static void count_new_inode(struct jfs_fs *fs)
{
	uint64_t n = __atomic_add_fetch(&fs->ninodes, 1, __ATOMIC_RELAXED);

	if (n > __atomic_load_n(&fs->ninodes_peak, __ATOMIC_RELAXED))
		__atomic_store_n(&fs->ninodes_peak, n, __ATOMIC_RELAXED);
}

/*
 * Gives the memory of forgotten inodes back to the system once the kernel has dropped most of
 * what it held: a daemon should not keep a stat storm's peak for the rest of its life. malloc
 * keeps freed small blocks otherwise.
 */
void jfs_inode_trim_memory(struct jfs_fs *fs)
{
	uint64_t n = __atomic_load_n(&fs->ninodes, __ATOMIC_RELAXED);
	uint64_t peak = __atomic_load_n(&fs->ninodes_peak, __ATOMIC_RELAXED);

	if (peak < JFS_TRIM_MIN_INODES || n > peak / 2)
		return;
	if (pthread_mutex_trylock(&fs->evict_lock) != 0)
		return;
	__atomic_store_n(&fs->ninodes_peak, n, __ATOMIC_RELAXED);
	malloc_trim(0);
	pthread_mutex_unlock(&fs->evict_lock);
}

static struct jfs_inode *inode_alloc(uint64_t ino, mode_t type, int nlayers,
				     const struct jfs_ilayer *layers)
{
	struct jfs_inode *inode = calloc(1, sizeof(*inode));

	if (!inode)
		return NULL;
	/* most inodes have one layer: no array of their own for it */
	inode->layers = nlayers == 1 ? &inode->layer0 : malloc(sizeof(*layers) * (size_t)nlayers);
	if (!inode->layers) {
		free(inode);
		return NULL;
	}
	memcpy(inode->layers, layers, sizeof(*layers) * (size_t)nlayers);
	inode->nlayers = nlayers;
	inode->ino = ino;
	inode->st_ino = ino;
	inode->type = type & S_IFMT;
	return inode;
}

/*
 * Finds or creates the inode for a resolved name, taking one kernel (kernel_ref) or internal
 * reference. Consumes the descriptors in res either way.
 */
int jfs_inode_get(struct jfs_fs *fs, struct jfs_inode *parent, const char *name,
		  struct jfs_resolved *res, bool kernel_ref, struct jfs_inode **ret_inode)
{
	int top_idx = res->layers[0].idx;
	ino_t top_ino = res->st.st_ino;
	uint64_t ino = jfs_inomap_view_ino(&fs->inomap, top_idx, top_ino);
	uint32_t hash = hash64(ino) % fs->itable.nbuckets;
	pthread_mutex_t *lock = &fs->itable.locks[hash / JFS_ITABLE_STRIPE];
	struct jfs_inode *inode, *fresh;
	bool by_name;

	fresh = inode_alloc(ino, res->st.st_mode, res->nlayers, res->layers);
	if (!fresh) {
		jfs_resolved_release(res);
		return -ENOMEM;
	}
	fresh->hash = hash;
	fresh->top_idx = top_idx;
	fresh->top_ino = top_ino;
	jfs_quota_inode_init(fs, fresh, &res->st);
	if (!S_ISDIR(res->st.st_mode) && res->nlayers > 1) {
		/* a metacopy; no one else sees fresh yet */
		struct jfs_inode_rare *x = jfs_inode_rare_locked(fresh);
		if (!x) {
			inode_free(fs, fresh);
			jfs_resolved_release(res);
			return -ENOMEM;
		}
		x->redirect = res->redirect;
		res->redirect = NULL;
		x->data_blocks = res->st.st_blocks;
	}
	res->nlayers = 0; /* the descriptors now belong to fresh */
	__atomic_add_fetch(&fs->nfds, jfs_ilayers_count_open(fresh->layers, fresh->nlayers),
			   __ATOMIC_RELAXED);
	fresh->name = strdup(name);
	if (!fresh->name) {
		inode_free(fs, fresh);
		return -ENOMEM;
	}

	/* like overlayfs without an index, the names of a hard-linked lower file are separate
	 * objects: each copies up on its own */
	by_name = top_idx != JFS_UPPER && !S_ISDIR(res->st.st_mode) && res->st.st_nlink > 1;
	pthread_mutex_lock(lock);
	for (inode = fs->itable.buckets[hash]; inode; inode = inode->hnext) {
		if (inode->ino != ino || inode->top_idx != top_idx || inode->top_ino != top_ino ||
		    inode->type != fresh->type)
			continue;
		if (!by_name)
			break;
		jfs_lock(&inode->lock);
		bool same = inode->parent == parent && !strcmp(inode->name, name);
		jfs_unlock(&inode->lock);
		if (same)
			break;
	}
	if (inode) {
		if (kernel_ref)
			inode->nlookup++;
		else
			inode->nref++;
		pthread_mutex_unlock(lock);
		inode_free(fs, fresh);
		*ret_inode = inode;
		return 0;
	}
	if (kernel_ref)
		fresh->nlookup = 1;
	else
		fresh->nref = 1;
	fresh->hashed = true;
	fresh->hnext = fs->itable.buckets[hash];
	fs->itable.buckets[hash] = fresh;
	fresh->parent = parent;
	pthread_mutex_unlock(lock);
	if (jfs_ilayers_count_open(fresh->layers, fresh->nlayers) > 0)
		jfs_fdcache_add(fs, fresh);
	count_new_inode(fs);
	if (parent)
		jfs_inode_ref(fs, parent);
	*ret_inode = fresh;
	jfs_fd_cache_trim(fs);
	return 0;
}

int jfs_inode_make_root(struct jfs_fs *fs)
{
	struct jfs_ilayer layers[JFS_MAX_LAYERS];
	struct jfs_inode *root;
	struct stat st;
	int n = 0;

	for (int i = 0; i < fs->nlayers && n < JFS_MAX_LAYERS; i++) {
		layers[n].idx = i;
		layers[n].ino = 0;
		layers[n].fd = fcntl(fs->layers[i].fd, F_DUPFD_CLOEXEC, 0);
		if (layers[n].fd < 0) {
			int r = -errno;
			jfs_ilayers_close(layers, n);
			return r;
		}
		n++;
		/* an opaque root hides the layers below it */
		if (jfs_is_opaque(fs, layers[n - 1].fd) > 0)
			break;
	}
	if (fstat(layers[0].fd, &st) < 0) {
		int r = -errno;
		jfs_ilayers_close(layers, n);
		return r;
	}
	root = inode_alloc(FUSE_ROOT_ID, st.st_mode, n, layers);
	if (!root) {
		jfs_ilayers_close(layers, n);
		return -ENOMEM;
	}
	root->name = strdup("");
	root->nlookup = 1;
	root->top_idx = 0;
	root->top_ino = st.st_ino;
	jfs_quota_inode_init(fs, root, &st);
	fs->root = root;
	return 0;
}

/* Replaces the inode's layers after a copy-up; takes the descriptors in layers. The old ones are
 * closed once no request has the inode pinned. */
void jfs_inode_set_layers(struct jfs_fs *fs, struct jfs_inode *inode, int nlayers,
			  const struct jfs_ilayer *layers)
{
	struct jfs_ilayer *fresh = malloc(sizeof(*layers) * (size_t)nlayers);
	struct jfs_retired *node;
	struct jfs_ilayer *old, *spare;
	pthread_mutex_t *lock;
	bool parked;
	int nold;

	if (!fresh) {
		jfs_ilayers_close((struct jfs_ilayer *)layers, nlayers);
		return;
	}
	memcpy(fresh, layers, sizeof(*layers) * (size_t)nlayers);
	node = malloc(sizeof(*node)); /* without it, the old descriptors close at once */
	spare = malloc(sizeof(*spare));
	jfs_lock(&inode->lock);
	old = inode->layers;
	nold = inode->nlayers;
	if (!jfs_inode_layers_owned(inode) && spare) {
		/* what is parked must be an array of its own; without one, layer0 (never used
		 * again) is closed at once, as without a node */
		*spare = inode->layer0;
		old = spare;
		spare = NULL;
	}
	inode->layers = fresh;
	inode->nlayers = nlayers;
	__atomic_add_fetch(&fs->nfds, jfs_ilayers_count_open(fresh, nlayers), __ATOMIC_RELAXED);
	__atomic_sub_fetch(&fs->nfds, jfs_ilayers_count_open(old, nold), __ATOMIC_RELAXED);
	parked = old != &inode->layer0 && jfs_fdcache_park_locked(inode, node, old, nold);
	jfs_unlock(&inode->lock);
	free(spare);
	if (!parked) {
		free(node);
		jfs_ilayers_close(old, nold);
		if (old != &inode->layer0)
			free(old);
	}
	jfs_fdcache_add(fs, inode);

	/* the identity follows the top object */
	lock = bucket_lock(fs, inode);
	pthread_mutex_lock(lock);
	inode->top_idx = layers[0].idx;
	inode->top_ino = layers[0].ino;
	pthread_mutex_unlock(lock);
}

/* Gives a hashed inode another view number (and the identity of its new top object) at once, so
 * that no lookup can see it half moved. For a copy-up that broke a lower hard link: the copy is a
 * new object, and must keep its number when the kernel forgets it and looks it up again. */
void jfs_inode_rekey(struct jfs_fs *fs, struct jfs_inode *inode, uint64_t ino, int top_idx,
		     ino_t top_ino)
{
	struct jfs_itable *t = &fs->itable;
	uint32_t nh = hash64(ino) % t->nbuckets;
	pthread_mutex_t *a = &t->locks[inode->hash / JFS_ITABLE_STRIPE];
	pthread_mutex_t *b = &t->locks[nh / JFS_ITABLE_STRIPE];

	if (a == b) {
		pthread_mutex_lock(a);
	} else {
		pthread_mutex_lock(a < b ? a : b);
		pthread_mutex_lock(a < b ? b : a);
	}
	if (inode->hashed) {
		struct jfs_inode **pp = &t->buckets[inode->hash];
		while (*pp && *pp != inode)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = inode->hnext;
		inode->hnext = t->buckets[nh];
		t->buckets[nh] = inode;
	}
	inode->hash = nh;
	inode->ino = ino;
	inode->top_idx = top_idx;
	inode->top_ino = top_ino;
	pthread_mutex_unlock(a);
	if (a != b)
		pthread_mutex_unlock(b);
	jfs_lock(&inode->lock);
	inode->st_ino = ino;
	jfs_unlock(&inode->lock);
}

int jfs_inode_top_idx(struct jfs_inode *inode)
{
	int idx;

	jfs_lock(&inode->lock);
	idx = inode->layers[0].idx;
	jfs_unlock(&inode->lock);
	return idx;
}

bool jfs_inode_is_metacopy_locked(struct jfs_inode *inode)
{
	return inode->type != S_IFDIR && inode->nlayers > 1;
}

/* The layer that holds a file's data: the top one, but a metacopy's lower data object. */
int jfs_inode_data_idx(struct jfs_inode *inode)
{
	int idx;

	jfs_lock(&inode->lock);
	idx = inode->layers[jfs_inode_is_metacopy_locked(inode) ? 1 : 0].idx;
	jfs_unlock(&inode->lock);
	return idx;
}

/* Records a metacopy's redirect (taking ownership) and data blocks, or clears them (NULL). */
void jfs_inode_set_redirect(struct jfs_inode *inode, char *redirect, blkcnt_t data_blocks)
{
	struct jfs_inode_rare *x;
	char *old = redirect;

	jfs_lock(&inode->lock);
	x = redirect || data_blocks ? jfs_inode_rare_locked(inode) : inode->rare;
	if (x) {
		old = x->redirect;
		x->redirect = redirect;
		x->data_blocks = data_blocks;
	}
	jfs_unlock(&inode->lock);
	free(old); /* without memory, the redirect is found again by path */
}

void jfs_inode_rare_free(struct jfs_inode_rare *x)
{
	if (!x)
		return;
	free(x->handle);
	free(x->redirect);
	jfs_listing_free(x->listing);
	free(x);
}

struct jfs_inode_rare *jfs_inode_rare_locked(struct jfs_inode *inode)
{
	if (!inode->rare)
		inode->rare = calloc(1, sizeof(*inode->rare));
	return inode->rare;
}

/* The inode's absolute path in the view ("/a/b"; "/" for the root), owned by the caller; NULL
 * when it has no name or the path exceeds PATH_MAX. For an object still in a lower, that is also
 * its path in the lower: moving a directory copies its subtree up first. */
char *jfs_inode_path(struct jfs_inode *inode)
{
	char *buf = malloc(PATH_MAX), *p;
	struct jfs_inode *cur = inode;

	if (!buf)
		return NULL;
	p = buf + PATH_MAX - 1;
	*p = '\0';
	while (cur) {
		struct jfs_inode *parent;
		size_t len;

		jfs_lock(&cur->lock);
		parent = cur->parent;
		if (parent && (!cur->name || cur->unlinked)) {
			jfs_unlock(&cur->lock);
			goto fail;
		}
		len = parent ? strlen(cur->name) : 0;
		if (parent && (size_t)(p - buf) < len + 1) {
			jfs_unlock(&cur->lock);
			goto fail;
		}
		if (parent) {
			p -= len;
			memcpy(p, cur->name, len);
			*--p = '/';
		}
		jfs_unlock(&cur->lock);
		cur = parent;
	}
	if (!*p)
		*--p = '/';
	memmove(buf, p, strlen(p) + 1);
	p = realloc(buf, strlen(buf) + 1); /* inodes keep it: no more than it needs */
	return p ? p : buf;
fail:
	free(buf);
	return NULL;
}

/* The inode's layers as (idx, ino) with no descriptors, as an evicted inode holds them. */
int jfs_inode_layer_ids(struct jfs_inode *inode, struct jfs_ilayer *out, int max)
{
	int n;

	jfs_lock(&inode->lock);
	n = inode->nlayers < max ? inode->nlayers : max;
	for (int i = 0; i < n; i++) {
		out[i].idx = inode->layers[i].idx;
		out[i].ino = inode->layers[i].ino;
		out[i].fd = -1;
	}
	jfs_unlock(&inode->lock);
	return n;
}

/* Moves the inode's remembered name (rename, or a lookup through another hard link). */
void jfs_inode_set_name(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_inode *parent,
			const char *name)
{
	struct jfs_inode *old_parent;
	char *copy = strdup(name);

	if (!copy)
		return;
	jfs_inode_ref(fs, parent);
	jfs_lock(&inode->lock);
	old_parent = inode->parent;
	free(inode->name);
	inode->name = copy;
	inode->parent = parent;
	jfs_unlock(&inode->lock);
	jfs_inode_put(fs, old_parent);
}

/* Tells the kernel to forget its cached attributes of the inode, after a change it did not make
 * itself (a copy-up that gave the object another number or link count). Attributes only: no
 * page lock is taken, so this is safe inside a request. */
void jfs_inval_attrs(struct jfs_fs *fs, struct jfs_inode *inode)
{
	if (fs->se && inode != fs->root)
		fuse_lowlevel_notify_inval_inode(fs->se, jfs_inode_id(fs, inode), -1, 0);
}

/* Turns the top object's stat into what the view shows for the inode. */
static void stat_view(struct jfs_inode *inode, struct stat *st)
{
	int nlayers;
	bool unlinked;

	jfs_lock(&inode->lock);
	nlayers = inode->nlayers;
	unlinked = inode->unlinked;
	st->st_ino = inode->st_ino;
	if (jfs_inode_is_metacopy_locked(inode) && inode->rare)
		st->st_blocks = inode->rare->data_blocks;
	jfs_unlock(&inode->lock);
	/* like overlayfs: counting a merged directory's subdirectories is not worth it; 1 tells
	 * find(1) not to rely on the count */
	if (S_ISDIR(st->st_mode) && nlayers > 1)
		st->st_nlink = 1;
	if (unlinked && !S_ISDIR(st->st_mode))
		st->st_nlink = 0;
}

int jfs_getattr(struct jfs_fs *fs, struct jfs_inode *inode, struct stat *ret_st)
{
	struct stat st;
	int r;

	r = jfs_inode_stat(fs, inode, 0, &st);
	if (r < 0)
		return r;
	stat_view(inode, &st);
	*ret_st = st;
	return 0;
}

/* Fills a FUSE entry; st is the top object's stat when the caller has it, else it is read. */
int jfs_fill_entry(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st,
		   struct fuse_entry_param *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	if (st) {
		e->attr = *st;
		stat_view(inode, &e->attr);
	} else {
		r = jfs_getattr(fs, inode, &e->attr);
		if (r < 0)
			return r;
	}
	e->ino = jfs_inode_id(fs, inode);
	e->generation = 0;
	e->attr_timeout = fs->opts.entry_timeout;
	e->entry_timeout = fs->opts.entry_timeout;
	return 0;
}

void jfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	jfs_inode_forget(fs, jfs_inode_from_id(fs, ino), nlookup);
	fuse_reply_none(req);
}

void jfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct jfs_fs *fs = jfs_req_fs(req);

	for (size_t i = 0; i < count; i++)
		jfs_inode_forget(fs, jfs_inode_from_id(fs, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
	jfs_inode_trim_memory(fs);
}

void jfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct stat st;
	int r;

	(void)fi; /* the inode's own descriptor sees the same object as any open file */
	r = jfs_getattr(fs, inode, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_attr(req, &st, fs->opts.entry_timeout);
}

static int apply_setattr(int fd, struct stat *attr, int valid, struct jfs_file *file);

#define JFS_SETATTR_CHANGES                                                                        \
	(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE |         \
	 FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |                     \
	 FUSE_SET_ATTR_MTIME_NOW)
#define JFS_CAP_FSETID 4 /* linux/capability.h */

/* Whether the caller may keep set-ID bits over a truncate (CAP_FSETID in the initial user
 * namespace, as the kernel's capable() asks). Read from /proc only for files with such bits. */
static bool caller_has_fsetid(const struct fuse_ctx *ctx)
{
	struct stat own, theirs;
	char path[64], line[256];
	bool r = false;
	FILE *f;

	if (ctx->pid <= 0)
		return ctx->uid == 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)ctx->pid);
	if (stat(path, &theirs) < 0 || stat("/proc/self/ns/user", &own) < 0)
		return ctx->uid == 0;
	if (theirs.st_ino != own.st_ino || theirs.st_dev != own.st_dev)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
	f = fopen(path, "re");
	if (!f)
		return ctx->uid == 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "CapEff:", 7)) {
			r = strtoull(line + 7, NULL, 16) & (1ULL << JFS_CAP_FSETID);
			break;
		}
	}
	fclose(f);
	return r;
}

/*
 * Set-ID bits, when the kernel leaves them to us (fs->killpriv: it then sends no GETATTR before
 * a chown). Its rules, for non-directories: a chown clears set-user-ID, and set-group-ID when
 * the group may execute (the daemon's own fchownat on the upper does exactly that); a write,
 * fallocate or copy into the file by a caller without CAP_FSETID does the same, and the kernel,
 * which knows the writer, sends it as a setattr that changes nothing; a truncate does it too,
 * but comes as a plain size change, so the caller is looked up here.
 */
static int kill_setid(struct jfs_fs *fs, int fd, int valid, const struct fuse_ctx *ctx)
{
	struct stat st;
	mode_t mode;
	char proc[64];

	if (!fs->killpriv || (valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		return 0;
	if ((valid & JFS_SETATTR_CHANGES) && !(valid & FUSE_SET_ATTR_SIZE))
		return 0;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))
		return 0;
	mode = st.st_mode & 07777 & ~S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		mode &= ~S_ISGID;
	if (mode == (st.st_mode & 07777))
		return 0;
	if ((valid & FUSE_SET_ATTR_SIZE) && (!S_ISREG(st.st_mode) || caller_has_fsetid(ctx)))
		return 0;
	jfs_proc_path(proc, sizeof(proc), fd);
	return chmod(proc, mode) < 0 ? -errno : 0;
}

static int do_setattr(struct jfs_fs *fs, struct jfs_inode *inode, struct stat *attr, int valid,
		      struct fuse_file_info *fi, const struct fuse_ctx *ctx)
{
	struct jfs_file *file = fi ? (struct jfs_file *)(uintptr_t)fi->fh : NULL;
	int fd, idx, r;

	/* only a new size needs the data */
	r = (valid & FUSE_SET_ATTR_SIZE) ? jfs_copy_up(fs, inode) : jfs_copy_up_meta(fs, inode);
	if (r < 0)
		return r;
	/* the inode's own descriptor, pinned: no duplicate to make and close per setattr (tar
	 * sends three per extracted file) */
	jfs_inode_pin(inode);
	fd = jfs_inode_fd_pinned(fs, inode, 0, &idx);
	r = fd < 0 ? fd : kill_setid(fs, fd, valid, ctx);
	if (r == 0)
		r = apply_setattr(fd, attr, valid, file);
	if (r == 0 && (valid & FUSE_SET_ATTR_SIZE) && idx == JFS_UPPER)
		jfs_quota_observe_fd(fs, inode, fd);
	jfs_inode_unpin(inode);
	return r;
}

static int apply_setattr(int fd, struct stat *attr, int valid, struct jfs_file *file)
{
	char proc[64];
	int r;

	jfs_proc_path(proc, sizeof(proc), fd);

	if (valid & FUSE_SET_ATTR_MODE) {
		if (chmod(proc, attr->st_mode & 07777) < 0)
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (file && file->idx == JFS_UPPER && (file->flags & O_ACCMODE) != O_RDONLY)
			r = ftruncate(file->fd, attr->st_size);
		else
			r = truncate(proc, attr->st_size);
		if (r < 0)
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

void jfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		    struct fuse_file_info *fi)
{
	struct jfs_fs *fs = jfs_req_fs(req);
	struct jfs_inode *inode = jfs_inode_from_id(fs, ino);
	struct stat st;
	int r;

	r = do_setattr(fs, inode, attr, valid, fi, fuse_req_ctx(req));
	if (r == 0)
		r = jfs_getattr(fs, inode, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_attr(req, &st, fs->opts.entry_timeout);
}
