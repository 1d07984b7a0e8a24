/* The descriptor cache: each inode's per-layer descriptors, pinned while requests use them,
 * re-opened after eviction (by parent and name, redirect or file handle), upgraded for reading,
 * and the second-chance sweep that keeps them under the limit. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfs.h"

static int fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int *ret_idx,
		     bool readable);

static void retired_free(struct jfs_retired *r)
{
	while (r) {
		struct jfs_retired *next = r->next;
		jfs_ilayers_close(r->layers, r->n);
		free(r->layers);
		free(r);
		r = next;
	}
}

/* Parks layers (taking them, and the node) until the last unpin, and returns true; returns false
 * when the inode is not pinned, and the caller closes them itself once it dropped the lock. A
 * node the caller could not allocate (NULL) parks nothing. Called with the inode's lock held. */
bool jfs_fdcache_park_locked(struct jfs_inode *inode, struct jfs_retired *node,
			     struct jfs_ilayer *layers, int n)
{
	struct jfs_inode_rare *x;

	if (inode->fd_pins == 0 || !node || !(x = jfs_inode_rare_locked(inode)))
		return false;
	node->next = x->retired;
	node->n = n;
	node->layers = layers;
	x->retired = node;
	return true;
}

static void fdlist_del_locked(struct jfs_fs *fs, struct jfs_inode *inode)
{
	struct jfs_fdlink *l = &inode->fdlink;

	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
	fs->fdlist_len--;
}

static void fdlist_add_tail_locked(struct jfs_fs *fs, struct jfs_inode *inode)
{
	struct jfs_fdlink *l = &inode->fdlink;

	l->prev = fs->fdlist.prev;
	l->next = &fs->fdlist;
	fs->fdlist.prev->next = l;
	fs->fdlist.prev = l;
	fs->fdlist_len++;
}

/* Puts an inode that now holds descriptors on the evictor's list (once). Not the root. */
void jfs_fdcache_add(struct jfs_fs *fs, struct jfs_inode *inode)
{
	if (inode == fs->root)
		return;
	pthread_mutex_lock(&fs->fdlist_lock);
	if (!inode->fdlink.next)
		fdlist_add_tail_locked(fs, inode);
	pthread_mutex_unlock(&fs->fdlist_lock);
}

/* What the cache holds of an inode being freed: its place on the list, parked descriptors. */
void jfs_fdcache_release(struct jfs_fs *fs, struct jfs_inode *inode)
{
	if (fs) {
		pthread_mutex_lock(&fs->fdlist_lock);
		if (inode->fdlink.next)
			fdlist_del_locked(fs, inode);
		pthread_mutex_unlock(&fs->fdlist_lock);
	}
	if (inode->rare) {
		retired_free(inode->rare->retired);
		inode->rare->retired = NULL;
	}
}

void jfs_fdlist_init(struct jfs_fs *fs)
{
	pthread_mutex_init(&fs->fdlist_lock, NULL);
	fs->fdlist.prev = fs->fdlist.next = &fs->fdlist;
	fs->fdlist_len = 0;
}

/* The cached descriptor of the object holding the inode's data, for a caller holding a pin. */
static int data_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx, bool readable)
{
	for (;;) {
		int pos, fd;

		jfs_lock(&inode->lock);
		pos = jfs_inode_is_metacopy_locked(inode) ? 1 : 0;
		jfs_unlock(&inode->lock);
		fd = fd_pinned(fs, inode, pos, ret_idx, readable);
		if (fd != -EIO || pos == 0)
			return fd;
		/* the data was copied up meanwhile: the layer is gone, ask again */
	}
}

int jfs_inode_data_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx)
{
	return data_fd_pinned(fs, inode, ret_idx, false);
}

/* Whether a cached descriptor with these status flags serves I/O with access mode accmode. */
static bool serves(int flags, int accmode)
{
	if (flags & O_PATH)
		return false;
	return accmode == O_RDONLY ? (flags & O_ACCMODE) != O_WRONLY
				   : (flags & O_ACCMODE) == O_RDWR;
}

/*
 * The cached descriptor of the object holding the inode's data, open for I/O with access mode
 * accmode (O_RDONLY or O_RDWR), for a caller holding a pin: not to be closed. The first time, the
 * inode's O_PATH descriptor (or a read-only one, for writing) is replaced by one open so; the old
 * one may be in use by other requests and is parked until the last unpin. Only the upper is
 * opened for writing.
 */
int jfs_inode_io_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int accmode, int *ret_idx)
{
	struct jfs_ilayer *old;
	struct jfs_retired *node;
	char proc[64];
	int idx, pos, fd, rfd, flags;

	fd = data_fd_pinned(fs, inode, &idx, true);
	if (fd < 0)
		return fd;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (serves(flags, accmode))
		goto out;
	if (accmode != O_RDONLY && idx != JFS_UPPER)
		return -EIO; /* the caller copies up first */
	jfs_proc_path(proc, sizeof(proc), fd);
	rfd = idx == JFS_UPPER ? open(proc, accmode | O_CLOEXEC)
			       : jfs_open_noatime(AT_FDCWD, proc, O_RDONLY);
	if (rfd < 0)
		return idx == JFS_UPPER ? -errno : rfd;
	old = malloc(sizeof(*old));
	node = malloc(sizeof(*node));
	if (!old || !node) {
		free(old);
		free(node);
		close(rfd);
		return -ENOMEM;
	}
	jfs_lock(&inode->lock);
	pos = jfs_inode_is_metacopy_locked(inode) ? 1 : 0;
	if (pos < inode->nlayers && inode->layers[pos].fd == fd) {
		*old = inode->layers[pos];
		inode->layers[pos].fd = rfd;
	} else { /* the layers changed meanwhile: ours serves this request only */
		old->idx = idx;
		old->fd = rfd;
		old->ino = 0;
	}
	jfs_fdcache_park_locked(inode, node, old, 1); /* the caller's pin keeps it parked */
	jfs_unlock(&inode->lock);
	fd = rfd;
out:
	if (ret_idx)
		*ret_idx = idx;
	return fd;
}

/* A descriptor of the object holding the inode's data open for reading, owned by the caller:
 * read-only opens share the cached one (reads go by offset) instead of re-opening each time. */
int jfs_inode_read_fd(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx)
{
	int fd;

	jfs_inode_pin(inode);
	fd = jfs_inode_io_fd_pinned(fs, inode, O_RDONLY, ret_idx);
	if (fd >= 0 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		fd = -errno;
	jfs_inode_unpin(inode);
	return fd;
}

/* A descriptor of the object holding the inode's data, owned by the caller. */
int jfs_inode_data_fd(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx)
{
	int fd;

	jfs_inode_pin(inode);
	fd = jfs_inode_data_fd_pinned(fs, inode, ret_idx);
	if (fd >= 0 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		fd = -errno;
	jfs_inode_unpin(inode);
	return fd;
}

static int find_layer_pos(struct jfs_inode *inode, int idx)
{
	int pos = -1;

	jfs_lock(&inode->lock);
	for (int i = 0; i < inode->nlayers; i++) {
		if (inode->layers[i].idx == idx) {
			pos = i;
			break;
		}
	}
	jfs_unlock(&inode->lock);
	return pos;
}

/* The descriptor of the parent directory in layer idx and the inode's name in it (both owned by
 * the caller): how an object is reached when its own descriptor cannot serve. */
int jfs_inode_parent_fd(struct jfs_fs *fs, struct jfs_inode *inode, int idx, char **ret_name)
{
	struct jfs_inode *parent;
	char *name;
	int ppos, pfd;

	jfs_lock(&inode->lock);
	parent = inode->parent;
	name = inode->name ? strdup(inode->name) : NULL;
	jfs_unlock(&inode->lock);
	if (!parent || !name) {
		free(name);
		return -ESTALE;
	}
	ppos = find_layer_pos(parent, idx);
	pfd = ppos < 0 ? -ESTALE : jfs_inode_fd(fs, parent, ppos, NULL);
	if (pfd < 0) {
		free(name);
		return pfd;
	}
	*ret_name = name;
	return pfd;
}

/* Stats layer pos of an inode whose descriptor the cache evicted, by name from the parent's
 * descriptor in the same layer, checked by inode number: a GETATTR (one per file after every
 * read, the kernel's atime invalidation) then costs one fstatat instead of an open, a stat, a
 * close of another inode's descriptor and the dup and close of the parent's. -ESTALE when it
 * cannot (no name, the layer's object replaced, an upper reached by file handle): the caller
 * re-opens. */
static int stat_by_name(struct jfs_fs *fs, struct jfs_inode *inode, int pos, struct stat *ret_st)
{
	struct jfs_inode *parent;
	struct stat st;
	char *name;
	int idx, ppos, pfd, r = -ESTALE;
	ino_t ino;

	jfs_lock(&inode->lock);
	if (pos >= inode->nlayers || inode->layers[pos].fd >= 0 || !inode->parent || !inode->name ||
	    (inode->rare && (inode->rare->handle || (pos > 0 && inode->rare->redirect)))) {
		jfs_unlock(&inode->lock);
		return -ESTALE;
	}
	idx = inode->layers[pos].idx;
	ino = inode->layers[pos].ino;
	parent = inode->parent;
	name = strdup(inode->name);
	jfs_unlock(&inode->lock);
	if (!name)
		return -ENOMEM;
	ppos = find_layer_pos(parent, idx);
	if (ppos < 0)
		goto out_free;
	jfs_inode_pin(parent);
	pfd = jfs_inode_fd_pinned(fs, parent, ppos, NULL);
	if (pfd >= 0 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == ino) {
		*ret_st = st;
		r = 0;
	}
	jfs_inode_unpin(parent);
out_free:
	free(name);
	return r;
}

/* The stat of layer pos of an inode: through its cached descriptor, or by name when the cache
 * evicted it (stat_by_name), re-opening only when that cannot serve. */
int jfs_inode_stat(struct jfs_fs *fs, struct jfs_inode *inode, int pos, struct stat *ret_st)
{
	struct stat st;
	int fd, r;

	jfs_inode_pin(inode);
	r = stat_by_name(fs, inode, pos, &st);
	if (r == -ESTALE) {
		fd = jfs_inode_fd_pinned(fs, inode, pos, NULL);
		r = fd < 0 ? fd : fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (r == -1)
			r = -errno;
	}
	jfs_inode_unpin(inode);
	if (r < 0)
		return r;
	*ret_st = st;
	return 0;
}

/* Re-opens an evicted descriptor from the parent's descriptor in the same layer and the name, or
 * a metacopy's data by its redirect. */
static int reopen_layer(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int idx, ino_t ino,
			bool readable)
{
	struct file_handle *handle = NULL;
	struct stat st;
	char *name, *redirect = NULL;
	int pfd, fd;

	jfs_lock(&inode->lock);
	if (pos > 0 && jfs_inode_is_metacopy_locked(inode) && inode->rare && inode->rare->redirect)
		redirect = strdup(inode->rare->redirect);
	if (pos == 0 && idx == JFS_UPPER && inode->rare && inode->rare->handle) {
		size_t size = sizeof(*inode->rare->handle) + inode->rare->handle->handle_bytes;
		handle = malloc(size);
		if (handle)
			memcpy(handle, inode->rare->handle, size);
	}
	jfs_unlock(&inode->lock);
	if (handle) {
		/* its name may be gone: by its handle (root daemons only, see jfs_inode_lose_name)
		 */
		fd = open_by_handle_at(fs->layers[JFS_UPPER].fd, handle,
				       (readable ? O_RDONLY : O_PATH) | O_NOFOLLOW | O_CLOEXEC);
		free(handle);
		if (fd < 0)
			return errno == ENOENT || errno == ESTALE ? -ESTALE : -errno;
		goto check;
	}
	if (redirect) {
		fd = jfs_open_redirect(fs, idx, redirect);
		free(redirect);
	} else {
		pfd = jfs_inode_parent_fd(fs, inode, idx, &name);
		if (pfd < 0)
			return pfd;
		if (readable) /* what a read-only open wants: no O_PATH one to re-open after */
			fd = jfs_open_noatime(pfd, name, O_RDONLY | O_NOFOLLOW);
		else
			fd = jfs_open_object(pfd, name, inode->type);
		close(pfd);
		free(name);
	}
	if (fd < 0)
		return fd == -ENOENT ? -ESTALE : fd;
check:
	if (fstat(fd, &st) < 0 || st.st_ino != ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/*
 * The name an upper non-directory is re-opened by was removed while other hard links remain: the
 * inode is re-opened by its file handle from now on (open_by_handle_at needs CAP_DAC_READ_SEARCH:
 * root daemons), or, where handles cannot be used, its descriptors are never evicted.
 */
void jfs_inode_lose_name(struct jfs_fs *fs, struct jfs_inode *inode, int upper_fd)
{
	struct file_handle *h = NULL;
	int mount_id;

	if (fs->open_handles) {
		h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
		if (h) {
			h->handle_bytes = MAX_HANDLE_SZ;
			if (name_to_handle_at(upper_fd, "", h, &mount_id, AT_EMPTY_PATH) < 0) {
				free(h);
				h = NULL;
			} else {
				struct file_handle *small =
					realloc(h, sizeof(*h) + h->handle_bytes);
				h = small ? small : h;
			}
		}
	}
	jfs_lock(&inode->lock);
	if (h && jfs_inode_rare_locked(inode)) {
		free(inode->rare->handle);
		inode->rare->handle = h;
		h = NULL;
	} else {
		inode->keep_fds = true;
	}
	jfs_unlock(&inode->lock);
	free(h);
}

/* Whether this daemon can re-open upper objects by file handle (CAP_DAC_READ_SEARCH). */
bool jfs_can_open_handles(int upper_fd)
{
	struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
	int mount_id, fd;
	bool ok = false;

	if (!h)
		return false;
	h->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(upper_fd, "", h, &mount_id, AT_EMPTY_PATH) == 0) {
		fd = open_by_handle_at(upper_fd, h, O_PATH | O_CLOEXEC);
		ok = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	free(h);
	return ok;
}

/* While pinned, the inode's cached descriptors stay open: the evictor skips it and a copy-up
 * parks the ones it replaces. Requests use them directly, without a dup and a close each. */
void jfs_inode_pin(struct jfs_inode *inode)
{
	jfs_lock(&inode->lock);
	inode->fd_pins++;
	jfs_unlock(&inode->lock);
}

void jfs_inode_unpin(struct jfs_inode *inode)
{
	struct jfs_retired *r = NULL;

	jfs_lock(&inode->lock);
	if (--inode->fd_pins == 0) {
		if (inode->rare) {
			r = inode->rare->retired;
			inode->rare->retired = NULL;
		}
	}
	jfs_unlock(&inode->lock);
	retired_free(r);
}

/* The cached descriptor of layer pos (re-opened if the cache evicted it), valid until the caller,
 * who holds a pin, unpins the inode: not to be closed. */
int jfs_inode_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int *ret_idx)
{
	return fd_pinned(fs, inode, pos, ret_idx, false);
}

/* The same; an evicted regular file is re-opened O_RDONLY (readable) rather than O_PATH. */
static int fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int *ret_idx,
		     bool readable)
{
	struct jfs_retired *node;
	struct jfs_ilayer *extra;
	int fd, idx;
	ino_t ino;

	jfs_lock(&inode->lock);
	if (pos >= inode->nlayers) {
		jfs_unlock(&inode->lock);
		return -EIO;
	}
	inode->accessed = true;
	idx = inode->layers[pos].idx;
	ino = inode->layers[pos].ino;
	fd = inode->layers[pos].fd;
	jfs_unlock(&inode->lock);
	if (fd >= 0)
		goto out;

	fd = reopen_layer(fs, inode, pos, idx, ino, readable && inode->type == S_IFREG);
	if (fd < 0)
		return fd;
	jfs_lock(&inode->lock);
	if (pos < inode->nlayers && inode->layers[pos].idx == idx && inode->layers[pos].fd < 0) {
		inode->layers[pos].fd = fd;
		jfs_unlock(&inode->lock);
		__atomic_add_fetch(&fs->nfds, 1, __ATOMIC_RELAXED);
		jfs_fdcache_add(fs, inode);
		jfs_fd_cache_trim(fs);
		goto out;
	}
	/* the layers changed meanwhile: ours serves this request only, parked until the unpin */
	jfs_unlock(&inode->lock);
	extra = malloc(sizeof(*extra));
	node = malloc(sizeof(*node));
	if (!extra || !node) {
		free(extra);
		free(node);
		close(fd);
		return -ENOMEM;
	}
	extra->idx = idx;
	extra->fd = fd;
	extra->ino = ino;
	jfs_lock(&inode->lock);
	jfs_fdcache_park_locked(inode, node, extra, 1); /* the caller's pin keeps it parked */
	jfs_unlock(&inode->lock);
out:
	if (ret_idx)
		*ret_idx = idx;
	return fd;
}

/* Returns a descriptor of layer pos of the inode, owned by the caller, re-opening it if the cache
 * evicted it. */
int jfs_inode_fd(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int *ret_idx)
{
	int fd;

	jfs_inode_pin(inode);
	fd = jfs_inode_fd_pinned(fs, inode, pos, ret_idx);
	if (fd >= 0 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		fd = -errno;
	jfs_inode_unpin(inode);
	return fd;
}

/* Pins the inode and gives its layers' cached descriptors, top first: the caller uses them until
 * jfs_inode_unpin(inode), and closes none. */
int jfs_inode_layers_pin(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_ilayer *out,
			 int max)
{
	int n;

	jfs_inode_pin(inode);
	jfs_lock(&inode->lock);
	n = inode->nlayers < max ? inode->nlayers : max;
	jfs_unlock(&inode->lock);
	for (int i = 0; i < n; i++) {
		int idx, fd = jfs_inode_fd_pinned(fs, inode, i, &idx);
		if (fd < 0) {
			jfs_inode_unpin(inode);
			return fd;
		}
		out[i].fd = fd;
		out[i].idx = idx;
		out[i].ino = 0;
	}
	return n;
}

/* A second-chance sweep over the inodes holding descriptors: closes those of inodes not used
 * since it last passed them, until the cache is back under three quarters of its limit. */
void jfs_fd_cache_trim(struct jfs_fs *fs)
{
	uint64_t low = fs->max_cached_fds / 4 * 3, nfds, steps, max_steps;

	nfds = __atomic_load_n(&fs->nfds, __ATOMIC_RELAXED);
	if (nfds <= fs->max_cached_fds ||
	    nfds < __atomic_load_n(&fs->evict_retry_at, __ATOMIC_RELAXED))
		return;
	if (pthread_mutex_trylock(&fs->evict_lock) != 0)
		return; /* someone is sweeping */
	pthread_mutex_lock(&fs->fdlist_lock);
	max_steps = 2 * fs->fdlist_len; /* every inode twice: once to clear its mark */
	for (steps = 0; steps < max_steps && fs->fdlist.next != &fs->fdlist &&
			__atomic_load_n(&fs->nfds, __ATOMIC_RELAXED) > low;
	     steps++) {
		struct jfs_inode *inode = (struct jfs_inode *)((char *)fs->fdlist.next -
							       offsetof(struct jfs_inode, fdlink));
		fdlist_del_locked(fs, inode);
		if (!jfs_trylock(&inode->lock)) {
			fdlist_add_tail_locked(fs, inode);
			continue;
		}
		if (inode->keep_fds || inode->unlinked || !inode->parent) {
			/* never evicted: off the list for good */
		} else if (inode->accessed || inode->fd_pins > 0) {
			inode->accessed = false;
			fdlist_add_tail_locked(fs, inode);
		} else {
			int closed = jfs_ilayers_count_open(inode->layers, inode->nlayers);
			jfs_ilayers_close(inode->layers, inode->nlayers);
			for (int i = 0; i < inode->nlayers; i++)
				inode->layers[i].fd = -1;
			__atomic_sub_fetch(&fs->nfds, closed, __ATOMIC_RELAXED);
		}
		jfs_unlock(&inode->lock);
	}
	pthread_mutex_unlock(&fs->fdlist_lock);
	/* what is left could not be evicted (pinned, unlinked, no usable name): sweeping again for
	 * every request would only burn the CPU, so wait until an eighth more is cached */
	nfds = __atomic_load_n(&fs->nfds, __ATOMIC_RELAXED);
	__atomic_store_n(&fs->evict_retry_at, nfds > low ? nfds + fs->max_cached_fds / 8 + 1 : 0,
			 __ATOMIC_RELAXED);
	pthread_mutex_unlock(&fs->evict_lock);
}
