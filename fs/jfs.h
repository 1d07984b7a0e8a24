/* Private interface of the overlay engine: the session, the inode table and the work each FUSE
 * handler calls, prototypes grouped by the file that owns them. */
#ifndef JFS_H
#define JFS_H

/*
 * Design notes
 * ============
 *
 * Layers. fs->layers[0] is the upper (writable), fs->layers[1..nlowers] the lowers, top first. A
 * name resolves in a directory by asking that directory's layers top first:
 *   - a whiteout (char device 0:0) stops the search: the name does not exist below it;
 *   - a non-directory stops the search: it hides everything below;
 *   - a directory is merged with the directories of the same name below it, until a layer has a
 *     non-directory or whiteout there, or until a directory is opaque (xattr <prefix>opaque = "y").
 * The lowers are never written: they are opened read-only with O_NOATIME, and nothing but copy-up
 * reads from them for writing.
 *
 * Metacopy. A regular lower file whose metadata changes (link, chmod, chown, utimes, xattrs,
 * rename) is copied up as metadata only, in kernel overlayfs's format: an upper file of the same
 * size with no data blocks, the xattrs <prefix>metacopy (empty) and <prefix>redirect (the data's
 * absolute path in the lowers). Its inode then has two layers: the upper object (metadata, names,
 * links) and the lower data object, which reads use. The first open for writing (or truncate)
 * copies the data into the upper object in place, fsyncs it, then removes the xattrs: until then
 * a crash leaves a metacopy whose data is still the lower's. A regular file "is metacopy" exactly
 * when its inode has more than one layer.
 *
 * Copy-up (copy_up.c). An object lives in one of three states:
 *   LOWER    its top layer is a lower (layers[0].idx > 0);
 *   COPYING  jfs_copy_up() holds the inode lock and builds a copy in the work dir;
 *   UPPER    its top layer is the upper (layers[0].idx == 0).
 * Invariants:
 *   1. The parent is UPPER before the child leaves LOWER (jfs_copy_up copies parents first).
 *   2. The copy is complete (data, xattrs, owner, mode, times; fsync) before one rename(2) moves it
 *      from the work dir into the upper, so no partial copy is ever visible at the real name.
 *   3. The view inode number does not change: the upper's (dev, ino) is recorded in the inode map
 *      (jfs_inomap_add) as an alias of the original view number.
 *   4. A directory copied up keeps its lowers merged (it is not made opaque), unless it is moved,
 *      which copies up its whole subtree first and then makes it opaque (jfs_copy_up_tree).
 *
 * Inodes (inode.c). FUSE node ids are inode pointers (the root is FUSE_ROOT_ID). Inodes are hashed
 * by their view inode number and identified by their top object (layer index, real st_ino) so a
 * name re-created at once, or a copied-up hard link, never matches a stale inode. Lifetime: an
 * inode lives while nlookup (the kernel's references) or nref (ours: children's parent pointers,
 * in-flight work on other inodes) is non-zero. The root is pinned.
 *
 * Descriptors. An inode caches one descriptor per layer, but the hard limit on descriptors here
 * (20000) is far below the entries of a real base, so the cache is bounded: past fs->max_cached_fds
 * a second-chance sweep over the list of inodes that hold descriptors (fs->fdlist, never the whole
 * table) closes those of inodes not used since it last passed them, and they are re-opened from the
 * parent's descriptor and the name, checking the real inode number. Hot paths pin the inode
 * (jfs_inode_pin, jfs_inode_layers_pin) and use its cached descriptors directly: a pinned inode is
 * not evicted, and a copy-up parks the descriptors it replaces until the last unpin, so none is
 * closed under a running request. Elsewhere jfs_inode_fd() gives the caller its own duplicate.
 * Unhashed (unlinked) and name-unreliable inodes are never evicted.
 *
 * Locks. Order: table stripe lock, then an inode's lock; the evictor holds fdlist_lock and only
 * try-locks inodes; fdlist_lock is taken with no inode lock held. An inode's
 * copy lock before its lock; never a child's lock while taking its parent's. No lock is held across
 * a reply. Copy-up and readdir serialise on locks striped by inode address (jfs_copy_lock,
 * jfs_list_lock), not on a mutex per inode: they are rare next to the inodes a stat storm caches.
 * A thread holds at most one copy stripe: a copy-up copies the parents first, before it takes its
 * own, and directories never go back to a lower.
 *
 * Quota (quota.c). With opts.quota, fs->quota_used counts the bytes (st_blocks * 512) the upper
 * holds, plus reservations of operations in flight. It starts as a walk of the upper (each inode
 * once), so it survives a restart with no counter on disk. Each inode keeps a ledger,
 * quota_blocks: the st_blocks of its upper object as last charged. An operation that may change
 * an upper object's allocation observes it afterwards (fstat) and charges the difference to the
 * ledger, so concurrent observers never count one change twice. Allocating operations reserve
 * first and fail with ENOSPC when nothing is left: a write gets what remains (a short write),
 * fallocate and a data copy-up all or nothing, a create needs some room left. Removing the last
 * name discharges the ledger (UNCHARGED): a file deleted while open no longer counts. Exact
 * except: a write that ends within quota_dense (a file with no holes when last observed) skips
 * the reservation and the fstat, and a stale observation can stand until the next one; both are
 * corrected by the next observation of that inode, and at the latest by the walk at restart.
 */

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs.h"

#define JFS_UPPER 0
#define JFS_MAX_LAYERS 128
#define JFS_LOCK_STRIPES 64
#define JFS_TRIM_MIN_INODES 4096 /* forgetting fewer is not worth a malloc_trim */
#define JFS_WORK_SUBDIR "work"	 /* same name kernel overlayfs uses inside its workdir */
#define JFS_INCOMPAT_DIR                                                                           \
	"incompat" /* in it, kept across starts: the volatile marker (volatile.c) */

struct jfs_layer {
	char *path;
	int fd;	     /* O_RDONLY|O_DIRECTORY of the layer root */
	int tree_fd; /* the private read-only mount a lower is served through, or -1 */
	dev_t dev;
};

/* One layer's object behind an inode. */
/* A mutex in one word, for the structures there is one of per inode (pthread's takes 40 bytes):
 * 0 free, 1 held, 2 held and maybe waited for; waiters sleep on the word (lock.c). */
typedef struct {
	uint32_t word;
} jfs_lock_t;
void jfs_lock(jfs_lock_t *l);
bool jfs_trylock(jfs_lock_t *l); /* true when taken */
void jfs_unlock(jfs_lock_t *l);

struct jfs_ilayer {
	int idx;   /* index into fs->layers */
	int fd;	   /* directories: O_RDONLY|O_DIRECTORY; others: O_PATH; -1 when evicted */
	ino_t ino; /* the real inode, to check a re-opened descriptor */
};

struct file_handle;
struct jfs_listing;

/* Descriptors replaced (a copy-up) or re-opened while requests use the inode's cached ones: they
 * are closed when the last of those requests unpins the inode. */
struct jfs_retired {
	struct jfs_retired *next;
	int n;
	struct jfs_ilayer *layers; /* owned */
};

/* A link in the list of inodes holding cached descriptors (fs->fdlist), which the evictor walks. */
struct jfs_fdlink {
	struct jfs_fdlink *prev, *next; /* NULL when not on the list */
};

struct jfs_inode {
	uint64_t ino;  /* view st_ino; changes only in jfs_inode_rekey (bucket locks) */
	mode_t type;   /* S_IFMT bits; immutable */
	uint32_t hash; /* bucket index; as ino */

	/* bucket lock (the orphan links: orphan_lock) */
	struct jfs_inode *hnext;
	uint64_t nlookup;
	uint64_t nref;
	struct jfs_inode *onext;
	struct jfs_inode *oprev;
	ino_t top_ino; /* identity: the real inode number of the top object ... */
	int top_idx;   /* ... and its layer */

	/* Packed to keep the inode small: each field says which lock guards it. */
	jfs_lock_t lock;  /* protects the fields below where no other is named */
	bool hashed;	  /* bucket lock */
	bool orphaned;	  /* on itable.orphans (orphan_lock) */
	bool unlinked;	  /* its last visible name is gone */
	bool keep_fds;	  /* name unreliable and no handle: never evict */
	uint32_t fd_pins; /* requests using the cached descriptors (jfs_inode_pin) */
	bool accessed;	  /* used since the evictor last passed */
	bool no_fcaps;	  /* made by us and never given security.capability (xattr.c) */
	int nlayers;
	struct jfs_inode *parent; /* holds an nref on the parent; NULL for the root */
	char *name;
	struct jfs_ilayer *layers;   /* top first */
	uint64_t st_ino;	     /* reported st_ino: ino, unless a copy-up broke a lower hard
				      * link, which gives the copy a number of its own */
	struct jfs_inode_rare *rare; /* set once, under lock; freed with the inode */

	int64_t quota_blocks; /* atomic: st_blocks of the upper object as charged to the quota, or
			       * JFS_QUOTA_UNCHARGED (quota.c) */
	int64_t quota_dense;  /* atomic: writes ending at or below it allocate nothing */

	struct jfs_fdlink fdlink; /* fs->fdlist_lock */
	struct jfs_ilayer layer0; /* layers, while the inode has one and no copy-up replaced it */
};
/* Whether inode->layers is an array of its own, to free (not the inline layer0). */
#define jfs_inode_layers_owned(inode) ((inode)->layers != &(inode)->layer0)
/* What only some inodes need, kept aside to keep the rest small: allocated by the first that
 * needs it (jfs_inode_rare_locked). */
struct jfs_inode_rare {
	char *redirect;	      /* metacopy: the data's absolute path in the lowers, if known */
	blkcnt_t data_blocks; /* metacopy: st_blocks of the data object */
	struct jfs_retired *retired; /* descriptors replaced while pinned: closed at the unpin */
	struct file_handle *handle;  /* re-opened by it once its name is unreliable */
	struct jfs_listing *listing; /* directories: the listing being served (jfs_list_lock) */
};
struct jfs_inode_rare *jfs_inode_rare_locked(struct jfs_inode *inode);
void jfs_inode_rare_free(struct jfs_inode_rare *x); /* retired descriptors aside */

_Static_assert(sizeof(struct jfs_inode) <= 176, "the inode table holds one per cached inode");

struct jfs_itable {
	uint32_t nbuckets;
	struct jfs_inode **buckets;
	pthread_mutex_t *locks; /* one per JFS_ITABLE_STRIPE buckets */
	uint32_t nlocks;
	pthread_mutex_t orphan_lock; /* innermost; protects orphans and the inodes' olinks */
	struct jfs_inode *orphans;   /* unhashed inodes the kernel still holds: freed at the end */
};

struct jfs_inomap_entry;
struct jfs_inomap {
	pthread_mutex_t lock;
	uint32_t nbuckets;
	uint64_t count;
	struct jfs_inomap_entry **buckets;
	uint64_t next_alloc; /* view numbers for real ones too large to encode */
};

struct jfs_fs {
	int nlayers; /* upper + lowers */
	struct jfs_layer *layers;
	int work_fd;	    /* the work dir's JFS_WORK_SUBDIR, same filesystem as the upper */
	char *xattr_prefix; /* "trusted.overlay." or "user.overlay." */
	size_t xattr_prefix_len;
	struct jfs_options opts;
	struct jfs_inode *root;
	struct jfs_itable itable;
	struct jfs_inomap inomap;
	uint64_t tmp_counter;  /* atomic: names of temporaries in the work dir */
	uint64_t nfds;	       /* atomic: descriptors cached in inodes */
	uint64_t ninodes;      /* atomic: inodes in the table (the root aside) */
	uint64_t ninodes_peak; /* atomic: most inodes since memory was last trimmed */
	uint64_t max_cached_fds;
	pthread_mutex_t copy_locks[JFS_LOCK_STRIPES]; /* jfs_copy_lock */
	pthread_mutex_t list_locks[JFS_LOCK_STRIPES]; /* jfs_list_lock */
	pthread_mutex_t evict_lock;		      /* one trimmer at a time */
	pthread_mutex_t fdlist_lock; /* protects fdlist, fdlist_len and the inodes' fdlinks */
	struct jfs_fdlink fdlist;    /* inodes that may hold cached descriptors, oldest first */
	uint64_t fdlist_len;
	struct fuse_session *se;
	bool no_opendir;   /* the kernel agreed to send no opendir: readdir has no handle */
	bool no_open;	   /* nor open, nor create: reads and writes come without a handle */
	bool open_handles; /* upper objects can be re-opened by file handle (jfs_inode_lose_name) */
	uid_t euid;	   /* the daemon's own ids, what a new object gets unless changed */
	gid_t egid;
	gid_t work_gid;		 /* the group of what is made in the work dir (egid, or its own if
				    set-group-ID) */
	bool killpriv;		 /* we clear set-ID bits on write, truncate and chown (inode.c) */
	uint64_t init_unique;	 /* the INIT request, whose reply super.c amends; 0 once done */
	uint32_t init_add_flags; /* protocol flags the reply must carry (jfs_op_init) */
	uint32_t kernel_init_flags; /* protocol flags the kernel's INIT request offered */
	uint64_t evict_retry_at;    /* atomic: no sweep below this many cached descriptors */
	int64_t quota_used;	    /* atomic: bytes the upper holds and reserved (quota.c) */
	pthread_mutex_t files_lock; /* protects files */
	struct jfs_file *files;	    /* open files (per-open mode), for freeing at the end */
};

/* Resolution of one name in a merged directory (namei.c). The layers' fds are owned by the
 * struct until jfs_resolved_release() or until an inode takes them. */
struct jfs_resolved {
	bool exists;
	struct stat st; /* of the top object */
	int nlayers;
	struct jfs_ilayer layers[JFS_MAX_LAYERS];
	bool upper_whiteout; /* the upper has a whiteout at this name */
	char *redirect;	     /* a metacopy's redirect (owned, like the descriptors) */
};

/* The view number derived from a real one: (layer index + 1) << 48 | st_ino. */
#define JFS_INO_ENCODE_BITS 48
static inline uint64_t jfs_ino_encode(int idx, ino_t real_ino)
{
	return ((uint64_t)(idx + 1) << JFS_INO_ENCODE_BITS) | (uint64_t)real_ino;
}

/* Serialises copy-ups of one inode (and of the others sharing its stripe). */
static inline pthread_mutex_t *jfs_copy_lock(struct jfs_fs *fs, const struct jfs_inode *inode)
{
	return &fs->copy_locks[((uintptr_t)inode >> 6) % JFS_LOCK_STRIPES];
}

/* Serialises readdir of one directory; protects its listing. */
static inline pthread_mutex_t *jfs_list_lock(struct jfs_fs *fs, const struct jfs_inode *inode)
{
	return &fs->list_locks[((uintptr_t)inode >> 6) % JFS_LOCK_STRIPES];
}

static inline struct jfs_fs *jfs_req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* layer.c (jfs_is_whiteout and jfs_remove_tree_at are public: fs.h) */
int jfs_is_opaque(struct jfs_fs *fs, int dirfd);
int jfs_set_opaque(struct jfs_fs *fs, int dirfd);
int jfs_get_metacopy(struct jfs_fs *fs, int fd, char **ret_redirect);
int jfs_set_metacopy(struct jfs_fs *fs, int fd, const char *redirect);
int jfs_clear_metacopy(struct jfs_fs *fs, int fd);
bool jfs_is_private_xattr(struct jfs_fs *fs, const char *name);
int jfs_check_name(const char *name);
int jfs_tmpname(struct jfs_fs *fs, char *buf, size_t size);
int jfs_make_whiteout(struct jfs_fs *fs, int dirfd, const char *name);
void jfs_proc_path(char *buf, size_t size, int fd);

/* inode.c */
int jfs_itable_init(struct jfs_itable *t, uint32_t nbuckets);
void jfs_itable_destroy(struct jfs_itable *t);
int jfs_inomap_init(struct jfs_inomap *m);
void jfs_inomap_destroy(struct jfs_inomap *m);
uint64_t jfs_inomap_view_ino(struct jfs_inomap *m, int idx, ino_t real_ino);
int jfs_inomap_add(struct jfs_inomap *m, int idx, ino_t real_ino, uint64_t view_ino);
void jfs_inomap_del(struct jfs_inomap *m, int idx, ino_t real_ino);
struct jfs_inode *jfs_inode_from_id(struct jfs_fs *fs, fuse_ino_t id);
fuse_ino_t jfs_inode_id(struct jfs_fs *fs, struct jfs_inode *inode);
int jfs_inode_get(struct jfs_fs *fs, struct jfs_inode *parent, const char *name,
		  struct jfs_resolved *res, bool kernel_ref, struct jfs_inode **ret_inode);
void jfs_inode_ref(struct jfs_fs *fs, struct jfs_inode *inode);
void jfs_inode_put(struct jfs_fs *fs, struct jfs_inode *inode);
void jfs_inode_kernel_ref(struct jfs_fs *fs, struct jfs_inode *inode);
void jfs_inode_forget(struct jfs_fs *fs, struct jfs_inode *inode, uint64_t nlookup);
int jfs_inode_make_root(struct jfs_fs *fs);
void jfs_inode_unhash(struct jfs_fs *fs, struct jfs_inode *inode);
void jfs_inode_set_layers(struct jfs_fs *fs, struct jfs_inode *inode, int nlayers,
			  const struct jfs_ilayer *layers);
void jfs_inode_rekey(struct jfs_fs *fs, struct jfs_inode *inode, uint64_t ino, int top_idx,
		     ino_t top_ino);
int jfs_inode_top_idx(struct jfs_inode *inode);
bool jfs_inode_is_metacopy_locked(struct jfs_inode *inode);
void jfs_ilayers_close(struct jfs_ilayer *layers, int n);
int jfs_ilayers_count_open(const struct jfs_ilayer *layers, int n);
int jfs_inode_data_idx(struct jfs_inode *inode);
void jfs_inode_set_redirect(struct jfs_inode *inode, char *redirect, blkcnt_t data_blocks);
char *jfs_inode_path(struct jfs_inode *inode);
int jfs_inode_layer_ids(struct jfs_inode *inode, struct jfs_ilayer *out, int max);
void jfs_inode_trim_memory(struct jfs_fs *fs);
void jfs_inode_set_name(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_inode *parent,
			const char *name);
int jfs_getattr(struct jfs_fs *fs, struct jfs_inode *inode, struct stat *ret_st);
void jfs_inval_attrs(struct jfs_fs *fs, struct jfs_inode *inode);
int jfs_fill_entry(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st,
		   struct fuse_entry_param *e);
void jfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void jfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void jfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void jfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		    struct fuse_file_info *fi);

/* fdcache.c */
void jfs_inode_pin(struct jfs_inode *inode);
void jfs_inode_unpin(struct jfs_inode *inode);
int jfs_inode_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int *ret_idx);
int jfs_inode_fd(struct jfs_fs *fs, struct jfs_inode *inode, int pos, int *ret_idx);
int jfs_inode_data_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx);
int jfs_inode_data_fd(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx);
int jfs_inode_read_fd(struct jfs_fs *fs, struct jfs_inode *inode, int *ret_idx);
int jfs_inode_io_fd_pinned(struct jfs_fs *fs, struct jfs_inode *inode, int accmode, int *ret_idx);
int jfs_inode_parent_fd(struct jfs_fs *fs, struct jfs_inode *inode, int idx, char **ret_name);
int jfs_inode_stat(struct jfs_fs *fs, struct jfs_inode *inode, int pos, struct stat *ret_st);
int jfs_inode_layers_pin(struct jfs_fs *fs, struct jfs_inode *inode, struct jfs_ilayer *out,
			 int max);
void jfs_fdlist_init(struct jfs_fs *fs);
void jfs_fd_cache_trim(struct jfs_fs *fs);
void jfs_inode_lose_name(struct jfs_fs *fs, struct jfs_inode *inode, int upper_fd);
bool jfs_can_open_handles(int upper_fd);
void jfs_fdcache_add(struct jfs_fs *fs, struct jfs_inode *inode);
bool jfs_fdcache_park_locked(struct jfs_inode *inode, struct jfs_retired *node,
			     struct jfs_ilayer *layers, int n);
void jfs_fdcache_release(struct jfs_fs *fs, struct jfs_inode *inode);

/* namei.c */
int jfs_resolve_in(struct jfs_fs *fs, const struct jfs_ilayer *dl, int ndl, const char *name,
		   struct jfs_resolved *ret);
int jfs_resolve(struct jfs_fs *fs, struct jfs_inode *dir, const char *name,
		struct jfs_resolved *ret);
void jfs_resolved_release(struct jfs_resolved *res);
int jfs_open_noatime(int dirfd, const char *name, int flags);
int jfs_open_object(int dirfd, const char *name, mode_t mode);
int jfs_open_redirect(struct jfs_fs *fs, int idx, const char *path);
int jfs_lower_visible(struct jfs_fs *fs, struct jfs_inode *dir, const char *name);
int jfs_lookup(struct jfs_fs *fs, struct jfs_inode *dir, const char *name, bool kernel_ref,
	       struct jfs_inode **ret_inode);
int jfs_lookup_entry(struct jfs_fs *fs, struct jfs_inode *dir, const struct jfs_ilayer *dl, int ndl,
		     const char *name, struct jfs_inode **ret_inode,
		     struct fuse_entry_param *ret_e);
void jfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void jfs_op_readlink(fuse_req_t req, fuse_ino_t ino);

/* copy_up.c */
int jfs_copy_up(struct jfs_fs *fs, struct jfs_inode *inode);
int jfs_copy_up_meta(struct jfs_fs *fs, struct jfs_inode *inode);
int jfs_copy_up_tree(struct jfs_fs *fs, struct jfs_inode *dir);
int jfs_upper_dir_fd(struct jfs_fs *fs, struct jfs_inode *dir);
int jfs_copy_data(int src_fd, int dst_fd, off_t size);
int jfs_copy_xattrs(struct jfs_fs *fs, int src_fd, int dst_fd);

/* dir.c */
void jfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void jfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void jfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void jfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void jfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void jfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void jfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags);
int jfs_create_object(struct jfs_fs *fs, fuse_req_t req, struct jfs_inode *dir, const char *name,
		      mode_t mode, dev_t rdev, const char *link_target, int open_flags,
		      int *ret_open_fd, struct fuse_entry_param *ret_e);

/* readdir.c */
struct jfs_dirent {
	char *name;
	uint64_t ino;
	unsigned char type; /* DT_* */
};
struct jfs_dirlist {
	size_t count;
	size_t cap;
	struct jfs_dirent *entries;
};
int jfs_dirlist_build(struct jfs_fs *fs, struct jfs_inode *dir, struct jfs_dirlist *ret);
void jfs_dirlist_free(struct jfs_dirlist *list);
void jfs_listing_free(struct jfs_listing *listing);
int jfs_dir_is_empty(struct jfs_fs *fs, struct jfs_inode *dir);
void jfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void jfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void jfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
void jfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void jfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* file.c */
struct jfs_file {
	int fd;
	int idx; /* layer the fd was opened on */
	int flags;
	int retired_fd;		      /* the lower descriptor, replaced after a copy-up */
	pthread_mutex_t lock;	      /* guards re-opening after a copy-up */
	struct jfs_file *prev, *next; /* in fs->files (files_lock) */
};
/* Frees what the kernel never released: it sends no RELEASE for files still open when the
 * connection ends (a lazily detached mount whose last user goes as the daemon stops). */
void jfs_files_free_all(struct jfs_fs *fs);
void jfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi);
void jfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void jfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void jfs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		      struct fuse_file_info *fi);
void jfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void jfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void jfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi);
void jfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			    struct fuse_file_info *fi_out, size_t len, int flags);
void jfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);

/* xattr.c */
void jfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags);
void jfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void jfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void jfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* quota.c */
#define JFS_QUOTA_UNCHARGED INT64_MIN
struct statvfs;
struct jfs_quota_op {
	int64_t reserved; /* bytes taken from the quota until the operation ends */
	bool observe;	  /* the operation may have changed the allocation */
};
int jfs_quota_measure(struct jfs_fs *fs);
void jfs_quota_inode_init(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st);
int64_t jfs_quota_reserve(struct jfs_fs *fs, int64_t want, bool partial);
void jfs_quota_release(struct jfs_fs *fs, int64_t reserved);
void jfs_quota_add(struct jfs_fs *fs, blkcnt_t blocks);
void jfs_quota_charge(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st);
void jfs_quota_observe(struct jfs_fs *fs, struct jfs_inode *inode, const struct stat *st);
void jfs_quota_observe_fd(struct jfs_fs *fs, struct jfs_inode *inode, int fd);
void jfs_quota_removed(struct jfs_fs *fs, struct jfs_inode *inode);
ssize_t jfs_quota_write_begin(struct jfs_fs *fs, struct jfs_inode *inode, off_t off, size_t size,
			      struct jfs_quota_op *op);
int jfs_quota_fallocate_begin(struct jfs_fs *fs, struct jfs_inode *inode, int mode, off_t off,
			      off_t len, struct jfs_quota_op *op);
void jfs_quota_end(struct jfs_fs *fs, struct jfs_inode *inode, int fd, struct jfs_quota_op *op);
void jfs_quota_statfs(struct jfs_fs *fs, struct statvfs *sv);

/* volatile.c */
int jfs_volatile_begin(struct jfs_fs *fs, char *why, size_t whysize);
int jfs_volatile_end(struct jfs_fs *fs);

/* super.c */
void jfs_op_statfs(fuse_req_t req, fuse_ino_t ino);

#endif
