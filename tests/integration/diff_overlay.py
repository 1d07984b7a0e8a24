#!/usr/bin/env python3
"""Differential test: a jobfs view against the kernel's overlayfs over byte-identical layers.

Builds a seeded random pair of lower layers (merged directories, names whose type differs between
the layers, whiteouts and an opaque directory in the upper lower layer, hard links, a sparse file,
a fifo, symlinks, setuid/setgid/sticky modes, user.* xattrs), copies the layer set twice, mounts
one copy with `mount -t overlay` and the other with the jobfs daemon, applies the same seeded
random operations to both, and compares every result and the visible trees after every step. At
the end the jobfs upper is mounted with the kernel overlay, which must show the tree jobfs showed
(the on-disk format), and the lowers of both copies must be unchanged down to inode and ctime.

Run as root:
    tests/integration/diff_overlay.py [--seed N] [--ops N] [--keep] [--trace FILE]
        [--skip-ops KIND,...] [--ignore ATTR,...] [--full-every N]
Environment:
    JOBFS_FS         the daemon (CTest sets it), run as
                     `$JOBFS_FS --lower L1:L2 --upper U --work W -f MNT`
    JOBFS_DIFF_OPS   the operation count when --ops is not given (default 3000)
    JOBFS_DIFF_SEED  the seed when --seed is not given (CTest pins one; default random)
    JOBFS_DIFF_PEER  jobfs (default) | fuse-overlayfs (to develop the harness without jobfs) |
                     kernel | kernel-redirect (self-tests, also --self-test[=redirect]: a second
                     kernel overlay; "redirect" mounts it with redirect_dir=on, so it renames
                     directories and the EXDEV emulation below is exercised)
    JOBFS_DIFF_HANG  seconds a step may take before the daemon is killed (default 60)
    JOBFS_DIFF_DAEMON_ARGS  more arguments for the jobfs daemon, e.g. "-o max_fds=64"
    JOBFS_TEST_WRAPPER  a program the daemon is started through, its command line the arguments
                     (scripts/memcheck.sh: a valgrind wrapper that execs the daemon)
Exit status: 0 pass, 1 mismatch or error, 77 skipped (not root, no /dev/fuse, no overlay).
A failure prints the seed, the step, the operation, both results, a tree diff and the steps before;
`--seed N --ops STEP --keep` reproduces it and keeps the layers. Operations are drawn from the
kernel-side tree with names sorted, so a seed gives the same sequence on any machine.

Compared for every visible path: type, st_mode, uid, gid, size (not for directories), content,
symlink target, user.* xattrs, st_nlink, which paths share an st_ino, readdir d_type against lstat,
duplicate names in readdir, and that a path's st_ino stays put across a step that did not touch
the name whenever the kernel's does. Timestamps are not compared. Files and xattrs are re-read
after every step where the step may have changed them and all of them every --full-every steps.

Deviations. Kernel overlayfs here runs with index=off, redirect_dir=off, metacopy=off, xino=off
(the module defaults on our runners), and then differs from what jobfs must do as below. Each is
tolerated only in the stated direction, counted, and listed at the end of a run; anything else
fails.

1. Directory rename (rename-exdev). The kernel refuses rename(2) of a directory with a lower part
   (lower-only or merged) with EXDEV, likewise RENAME_EXCHANGE if either side is one; jobfs must
   succeed (and must never answer a rename with EXDEV). The harness then brings the kernel side to
   the state the rename produces: it renames what the kernel accepts and, where it gets EXDEV,
   recreates the directory (mode, owner, user.* xattrs), moves each entry the same way and removes
   the old directory; an exchange goes through a temporary name. This is `mv` except that
   non-directories are renamed rather than copied: a copy would break hard links between the moved
   tree and the rest, which rename(2) keeps. The kernel checks EXDEV before ENOTEMPTY, so a rename
   over a non-empty directory gives EXDEV there and must give ENOTEMPTY on jobfs
   (rename-exdev-notempty).
2. Directory link count (dir-nlink-1). The kernel reports st_nlink=1 for every merged directory
   (fs/overlayfs/inode.c, ovl_getattr: "nlink=1 seems to pacify 'find' and other utilities");
   lower-only and pure-upper directories get the real count. Either side may report 1 where the
   other reports the true count, 2 + visible subdirectories; any other difference fails.
3. Stale link count of lower hard links (stale-lower-nlink). With index=off a copy-up breaks a
   lower hard link: the copied-up alias becomes a new inode with nlink 1 while aliases still in
   the lower keep the lower inode's st_nlink, also after other aliases are unlinked. jobfs may
   report the number of aliases actually visible instead.
4. Renumbered inodes (kernel-renumbered). The kernel gives a new st_ino to a copied-up alias of a
   lower hard link and to the directories the harness recreated in (1). jobfs may keep the number;
   the reverse, jobfs renumbering what the kernel keeps, fails.
5. fstat of an unlinked lower file (unlinked-lower-nlink). A file opened read-only is not copied
   up, so after its name is unlinked the kernel's fstat shows the lower inode's st_nlink (1, or
   the lower's count of hard links). jobfs may report the names actually left (0 for the last).
Reported as warnings only: readdir d_ino different from lstat st_ino (the kernel itself does this
for copied-up files moved into a directory created on the upper).
Kernel behaviour jobfs must match, found with this test: mknod of a 0:0 character device (a
whiteout) through the mount fails with EPERM; removexattr of an absent xattr fails with ENODATA
without copying up (setxattr with XATTR_REPLACE does copy up first); a file opened for writing
is copied up, so fstat after unlinking it gives st_nlink 0.
Not exercised by default (--ops-extra trusted_xattr): trusted.overlay.* xattrs set through the
mount, which the kernel (6.7+) accepts and stores escaped as trusted.overlay.overlay.*.
"""

import argparse
import collections
import ctypes
import errno
import hashlib
import os
import random
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP = 77
DEFAULT_OPS = 3000
HANG_SECONDS = int(os.environ.get("JOBFS_DIFF_HANG") or 60)
MAX_FILE = 640 * 1024

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
OPEN_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC

NAME_POOL = ["a", "b", "c", "d", "x", "y", "lib", "src", "bin", "data.txt", "README", "new",
             "same.txt", "t1", "t2", "t3", "sub", "deep", "f1", "f2"]
XATTR_POOL = ["user.a", "user.b", "user.mime", "user.layer"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]


class Fatal(Exception):
    """A failure of the harness or of a mount, reported as is."""


class Interrupted(BaseException):
    pass


def log(msg):
    print("diff_overlay: " + msg, flush=True)


def errname(e):
    return errno.errorcode.get(e, str(e))


def renameat2(src, dst, flags):
    if _libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, 0, dst)


def join(root, rel):
    return os.path.join(root, rel) if rel else root


def parent_of(rel):
    return rel.rpartition("/")[0]


def is_under(rel, top):
    """True when rel is top or inside it (top "" is the root)."""
    return top == "" or rel == top or rel.startswith(top + "/")


def digest_fd(fd):
    h = hashlib.blake2b(digest_size=16)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return h.hexdigest()
        h.update(chunk)


def digest_path(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | OPEN_FLAGS)
    try:
        return digest_fd(fd)
    finally:
        os.close(fd)


def content_of(path):
    """The whole content: trees are small, and comparing bytes is cheaper than hashing them."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | OPEN_FLAGS)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def short_hash(data):
    return hashlib.blake2b(data, digest_size=8).hexdigest()


# --- trees --------------------------------------------------------------------------------------

KIND = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFIFO: "p",
        stat.S_IFCHR: "c", stat.S_IFBLK: "b", stat.S_IFSOCK: "s"}

Entry = collections.namedtuple(
        "Entry", "kind mode uid gid size nlink ino mtime ctime content target xattrs dkind dino")


def kind_of(st):
    return KIND[stat.S_IFMT(st.st_mode)]


def xattrs_of(path, prefix="user."):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return ()
        raise
    out = []
    for name in sorted(names):
        if prefix and not name.startswith(prefix):
            continue
        try:
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError as e:
            out.append((name, "<%s>" % errname(e.errno)))
    return tuple(out)


def entry_of(path, st, dkind, dino, old=None, with_xattrs=True):
    """The entry for path; content, symlink target and xattrs are taken from old when given."""
    kind = kind_of(st)
    if old is not None:
        content, target, xattrs = old.content, old.target, old.xattrs
    else:
        content = content_of(path) if kind == "f" else None
        target = os.readlink(path) if kind == "l" else None
        xattrs = xattrs_of(path) if with_xattrs else ()
    return Entry(kind=kind, mode=st.st_mode, uid=st.st_uid, gid=st.st_gid,
                 size=st.st_size, nlink=st.st_nlink, ino=st.st_ino, mtime=st.st_mtime_ns,
                 ctime=st.st_ctime_ns, content=content, target=target, xattrs=xattrs,
                 dkind=dkind, dino=dino)


class Snapshot:
    """The visible tree under a mount: path -> Entry, paths relative, the root is "".

    Reading every file and listing every xattr through FUSE after every step is most of the
    cost of a run, so with prev (the snapshot before the step) content, symlink targets and
    xattrs are reused for a path whose object cannot have changed: not under a dirty path
    (the step's arguments and what their symlinks resolve to), not sharing an inode with one
    before the step, and with the same type, inode, size, mtime and ctime as before. The run
    takes a full snapshot every --full-every steps and at the end."""

    def __init__(self, root, prev=None, dirty=(), with_xattrs=True):
        self.root = root
        self.entries = {}
        self.problems = []
        dirty_inos = set()
        if prev is not None:
            for p in prev.paths:
                if any(is_under(p, t) for t in dirty):
                    dirty_inos.add(prev.entries[p].ino)

        def reusable(rel, st):
            if prev is None or any(is_under(rel, t) for t in dirty):
                return None
            old = prev.entries.get(rel)
            if (old is None or old.ino in dirty_inos or old.kind != kind_of(st)
                or (old.ino, old.size, old.mtime, old.ctime) !=
                (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)):
                return None
            return old

        st = os.lstat(root)
        self.entries[""] = entry_of(root, st, "d", None, reusable("", st), with_xattrs)
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(join(root, rel)) as it:
                listing = list(it)
            names = [d.name for d in listing]
            if len(set(names)) != len(names):
                dup = sorted(n for n in set(names) if names.count(n) > 1)
                self.problems.append("readdir of '%s' lists %s more than once" %
                                     (rel or ".", dup))
            seen = set()
            for d in sorted(listing, key=lambda d: d.name):
                if d.name in seen:
                    continue
                seen.add(d.name)
                crel = rel + "/" + d.name if rel else d.name
                if d.is_dir(follow_symlinks=False):
                    dkind = "d"
                elif d.is_symlink():
                    dkind = "l"
                elif d.is_file(follow_symlinks=False):
                    dkind = "f"
                else:
                    dkind = "o"
                try:
                    st = os.lstat(d.path)
                except OSError as e:
                    self.problems.append("readdir of '%s' lists '%s' but lstat "
                                         "gives %s" % (rel or ".", d.name,
                                                       errname(e.errno)))
                    continue
                e = entry_of(d.path, st, dkind, d.inode(), reusable(crel, st), with_xattrs)
                self.entries[crel] = e
                if e.kind == "d":
                    stack.append(crel)
        self.paths = sorted(self.entries)
        self.groups = collections.defaultdict(list)
        self.subdirs = collections.Counter()
        for p in self.paths:
            self.groups[self.entries[p].ino].append(p)
            if p and self.entries[p].kind == "d":
                self.subdirs[parent_of(p)] += 1

    def group(self, p):
        return tuple(self.groups[self.entries[p].ino])

    def of_kind(self, *kinds):
        return [p for p in self.paths if p and self.entries[p].kind in kinds]

    def dirs(self):
        return [p for p in self.paths if self.entries[p].kind == "d"]

    def children(self, rel):
        pre = rel + "/" if rel else ""
        return [p for p in self.paths if p and p.startswith(pre) and "/" not in p[len(pre):]]


def lstat_kind(path):
    try:
        return kind_of(os.lstat(path))
    except OSError:
        return None


def upper_backed(upper, rel):
    """Whether the kernel serves a visible non-directory from the upper layer."""
    k = lstat_kind(join(upper, rel))
    if k is None:
        return False
    if k == "c":
        st = os.lstat(join(upper, rel))
        return st.st_rdev != 0
    return True


def dkind_matches(e):
    return e.dkind == (e.kind if e.kind in ("d", "l", "f") else "o")


class Findings:
    """Tolerated deviations and warnings, counted by kind with the first example of each. With
    a key (a path), each key counts once however many steps show it."""

    def __init__(self):
        self.count = collections.Counter()
        self.example = {}
        self.keys = collections.defaultdict(set)

    def add(self, kind, detail, key=None):
        if key is not None:
            if key in self.keys[kind]:
                return
            self.keys[kind].add(key)
        self.count[kind] += 1
        self.example.setdefault(kind, detail)

    def report(self, title):
        if not self.count:
            return
        log(title + ":")
        for kind in sorted(self.count):
            log("  %-24s %5d  e.g. %s" % (kind, self.count[kind], self.example[kind]))


def fmt_val(field, v):
    if field == "mode":
        return "0o%o" % v
    if field == "content":
        return "<%d bytes %s>" % (len(v), short_hash(v))
    if field == "xattrs":
        return "{" + ", ".join("%s=%r" % (n, val[:24] if isinstance(val, bytes) else val)
                               for n, val in v) + "}"
    return repr(v)


COMPARED = ("type", "mode", "uid", "gid", "size", "content", "target", "xattrs", "nlink", "inode",
            "dtype", "readdir")


def compare(ks, js, names, kernel_upper, devs, warns, prev=None, touched=(), ignore=()):
    """Differences between two snapshots that are not tolerated deviations: a list of lines.
    ignore names attributes of COMPARED to leave out."""
    kn, jn = names
    fails = []
    for side, snap in ((kn, ks), (jn, js)):
        for prob in snap.problems:
            if side == kn or "readdir" in ignore:
                warns.add("kernel-readdir", prob, prob)
            else:
                fails.append("%s: %s" % (side, prob))
    kset, jset = set(ks.entries), set(js.entries)
    for p in sorted(kset - jset):
        fails.append("only in %s: %s (%s)" % (kn, p, ks.entries[p].kind))
    for p in sorted(jset - kset):
        fails.append("only in %s: %s (%s)" % (jn, p, js.entries[p].kind))
    for p in sorted(kset & jset):
        k, j = ks.entries[p], js.entries[p]
        where = p or "."
        if k.kind != j.kind:
            if "type" not in ignore:
                fails.append("%s: type %s vs %s" % (where, k.kind, j.kind))
            continue
        for field in ("mode", "uid", "gid", "size", "target", "xattrs", "content"):
            if (field == "size" and k.kind == "d") or field in ignore:
                continue
            kv, jv = getattr(k, field), getattr(j, field)
            if kv != jv:
                fails.append("%s: %s %s vs %s" % (where, field, fmt_val(field, kv),
                                                  fmt_val(field, jv)))
        if not dkind_matches(j) and "dtype" not in ignore:
            fails.append("%s: %s readdir d_type %s but lstat says %s" %
                         (where, jn, j.dkind, j.kind))
        if not dkind_matches(k):
            warns.add("kernel-dtype", where, p)
        for side, e in ((kn, k), (jn, j)):
            if e.dino is not None and e.dino != e.ino:
                warns.add("dino-vs-ino(%s)" % side, "%s: d_ino %d st_ino %d" %
                          (where, e.dino, e.ino), p)
        if k.nlink != j.nlink and "nlink" not in ignore:
            if k.kind == "d":
                true_count = 2 + ks.subdirs[p]
                if (k.nlink, j.nlink) in ((1, true_count), (true_count, 1)):
                    devs.add("dir-nlink-1", "%s: %s %d, %s %d" % (
                            where, kn, k.nlink, jn, j.nlink), p)
                else:
                    fails.append("%s: nlink %d vs %d (directory; true count %d)" %
                                 (where, k.nlink, j.nlink, true_count))
            else:
                visible = len(ks.group(p))
                if (kernel_upper and not upper_backed(kernel_upper, p)
                    and k.nlink > j.nlink and j.nlink == visible):
                    devs.add("stale-lower-nlink", "%s: kernel %d, %s %d" %
                             (where, k.nlink, jn, j.nlink), p)
                else:
                    fails.append("%s: nlink %d vs %d (%d visible aliases)" %
                                 (where, k.nlink, j.nlink, visible))
        if "inode" in ignore:
            continue
        kg, jg = ks.group(p), js.group(p)
        if kg != jg:
            fails.append("%s: same inode as %s vs %s" % (where, list(kg), list(jg)))
        if prev is not None:
            pk, pj = prev
            if (p in pk.entries and p in pj.entries
                and not any(is_under(p, t) for t in touched)):
                kc = pk.entries[p].ino != k.ino
                jc = pj.entries[p].ino != j.ino
                if jc and not kc:
                    fails.append("%s: st_ino changed on %s (%d -> %d) but not on "
                                 "%s" % (where, jn, pj.entries[p].ino, j.ino, kn))
                elif kc and not jc:
                    devs.add("kernel-renumbered", where, p)
    return fails


# --- layer manifests ----------------------------------------------------------------------------

def manifest(top, strict):
    """Every attribute of a raw layer directory that a copy must keep; with strict also the
    inode numbers and ctimes, which must not change while the layer is a lower."""
    out = {}
    first_of_ino = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in [""] + sorted(dirnames + filenames):
            path = os.path.join(dirpath, name) if name else dirpath
            if not name and dirpath != top:
                continue
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            kind = kind_of(st)
            if kind != "d":
                first_of_ino.setdefault(st.st_ino, rel)
            rec = [kind, st.st_mode, st.st_uid, st.st_gid, st.st_nlink,
                   st.st_rdev if kind in ("c", "b") else None,
                   st.st_size if kind != "d" else None, st.st_mtime_ns,
                   digest_path(path) if kind == "f" else None,
                   os.readlink(path) if kind == "l" else None,
                   xattrs_of(path, prefix=None),
                   first_of_ino.get(st.st_ino) if kind != "d" else None,
                   st.st_blocks * 512 < st.st_size if kind == "f" else None]
            if strict:
                rec += [st.st_ino, st.st_ctime_ns]
            out[rel] = tuple(rec)
    return out


MANIFEST_FIELDS = ["type", "mode", "uid", "gid", "nlink", "rdev", "size", "mtime", "content",
                   "symlink", "xattrs", "hardlink-of", "sparse", "ino", "ctime"]


def manifest_diff(a, b, limit=20):
    lines = []
    for p in sorted(set(a) | set(b)):
        if p not in a or p not in b:
            lines.append("%s: only in %s" % (p, "first" if p in a else "second"))
        elif a[p] != b[p]:
            fields = [MANIFEST_FIELDS[i] for i in range(len(a[p])) if a[p][i] != b[p][i]]
            lines.append("%s: %s differ" % (p, ",".join(fields)))
        if len(lines) >= limit:
            break
    return lines


# --- the seeded lower layers --------------------------------------------------------------------

def build_lowers(rng, l1, l2):
    """Two lower layers, l1 over l2, with every feature the merge has to get right."""

    def wfile(root, rel, size, mode=0o644, xattrs=None):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        os.chmod(path, mode)
        for name, value in (xattrs or {}).items():
            os.setxattr(path, name, value)

    def mkd(root, rel, mode=0o755, xattrs=None):
        path = os.path.join(root, rel)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        for name, value in (xattrs or {}).items():
            os.setxattr(path, name, value)

    def sym(root, rel, target):
        os.symlink(target, os.path.join(root, rel))

    def whiteout(root, rel):
        os.mknod(os.path.join(root, rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))

    sizes = [0, 1, 17, 511, 4095, 4096, 4097, 12000, 65536, 70001]

    def fill(root, rel, depth):
        for i in range(rng.randint(2, 6)):
            name = "%s%d" % (rng.choice(["f", "g", "doc", "mod", "item"]), i)
            crel = rel + "/" + name
            r = rng.random()
            if r < 0.18 and depth < 4:
                mkd(root, crel, rng.choice([0o755, 0o755, 0o750, 0o775]))
                fill(root, crel, depth + 1)
            elif r < 0.28:
                sym(root, crel, rng.choice(["f0", "g1", "nope", "../x", "doc2"]))
            else:
                xa = {"user.n": rng.randbytes(rng.randint(0, 20))} \
                        if rng.random() < 0.2 else None
                wfile(root, crel, rng.choice(sizes),
                      rng.choice([0o644, 0o644, 0o600, 0o755, 0o444]), xa)

    for root in (l1, l2):
        os.makedirs(root, exist_ok=True)

    # l2, the bottom layer
    mkd(l2, "usr")
    mkd(l2, "usr/lib")
    wfile(l2, "usr/lib/libc.so", 70001, 0o755, {"user.mime": b"application/x-sharedlib"})
    wfile(l2, "usr/lib/h1", 3000)
    os.link(os.path.join(l2, "usr/lib/h1"), os.path.join(l2, "usr/h2"))
    mkd(l2, "etc", 0o755)
    os.link(os.path.join(l2, "usr/lib/h1"), os.path.join(l2, "etc/h3"))
    wfile(l2, "etc/empty", 0)
    wfile(l2, "etc/hosts", 120)
    os.mkfifo(os.path.join(l2, "etc/fifo"), 0o644)
    wfile(l2, "usr/bin-suid", 2000, 0o4755)
    with open(os.path.join(l2, "usr/lib/sparse.bin"), "wb") as f:
        f.write(rng.randbytes(1000))
        f.seek(400 * 1024)
        f.write(rng.randbytes(3000))
        f.truncate(512 * 1024)
    sym(l2, "usr/link_lib", "lib")
    sym(l2, "usr/lib/dangling", "nope")
    sym(l2, "abs", "/nonexistent-jobfs-diff/x")
    mkd(l2, "shared", 0o755, {"user.layer": b"l2", "user.only2": b"2"})
    wfile(l2, "shared/same.txt", 300)
    wfile(l2, "shared/t1", 100)
    mkd(l2, "shared/t2")
    wfile(l2, "shared/t2/inside", 10)
    wfile(l2, "shared/t3", 50)
    wfile(l2, "shared/gone", 40)
    wfile(l2, "shared/low_only", 40, 0o600)
    mkd(l2, "shared/sub")
    wfile(l2, "shared/sub/low.txt", 200)
    mkd(l2, "wh_dir")
    wfile(l2, "wh_dir/hidden", 5)
    mkd(l2, "opq")
    wfile(l2, "opq/hidden_by_opaque", 5)
    mkd(l2, "opq/sub")
    mkd(l2, "sgid", 0o2775)
    mkd(l2, "tmp", 0o1777)
    wfile(l2, "tmp/stale", 33)
    mkd(l2, "deep/er/est")
    wfile(l2, "deep/er/est/leaf", 4096)
    mkd(l2, "lo_only/sub/sub2")
    fill(l2, "lo_only", 1)
    fill(l2, "usr/lib", 2)

    # l1, over l2
    mkd(l1, "shared", 0o755, {"user.layer": b"l1"})
    wfile(l1, "shared/same.txt", 500)
    mkd(l1, "shared/t1")
    wfile(l1, "shared/t1/in_dir", 77)
    wfile(l1, "shared/t2", 64)
    sym(l1, "shared/t3", "same.txt")
    sym(l1, "shared/up", "../etc/hosts")
    whiteout(l1, "shared/gone")
    whiteout(l1, "wh_dir")
    mkd(l1, "shared/sub")
    wfile(l1, "shared/sub/high.txt", 100, 0o640, {"user.a": b"1"})
    wfile(l1, "shared/hl1", 900)
    os.link(os.path.join(l1, "shared/hl1"), os.path.join(l1, "top_hl"))
    mkd(l1, "opq")
    os.setxattr(os.path.join(l1, "opq"), "trusted.overlay.opaque", b"y")
    wfile(l1, "opq/visible", 8)
    mkd(l1, "deep/er")
    wfile(l1, "deep/er/mid", 10)
    wfile(l1, "empty2", 0)
    mkd(l1, "usr")
    wfile(l1, "usr/override", 100)
    mkd(l1, "hi_only")
    fill(l1, "hi_only", 1)
    fill(l1, "shared", 2)


# --- operations ---------------------------------------------------------------------------------

class Op:
    """One operation: a description, the function that runs it under a root, and the paths
    whose identity it may change (for the inode-stability check)."""

    def __init__(self, kind, desc, fn, paths=(), touched=(), rename=None, tolerate=None):
        self.kind = kind
        self.desc = desc
        self.fn = fn
        self.paths = tuple(paths) + tuple(touched)  # every path argument
        self.dirty = self.paths  # and what they resolve to; set by the generator
        self.touched = touched
        self.rename = rename  # (src, dst, flags) for renames
        self.tolerate = tolerate  # (kernel result, peer result) -> a deviation's name or None

    def run(self, root):
        try:
            return ("ok", self.fn(root))
        except OSError as e:
            return ("err", errname(e.errno))


def fmt_result(r):
    return r[0] if r[1] is None else "%s %s" % r


def rename_flag_name(flags):
    return {0: "0", RENAME_NOREPLACE: "RENAME_NOREPLACE", RENAME_EXCHANGE: "RENAME_EXCHANGE"}[flags]


class Generator:
    """Draws operations from the kernel-side tree with the seeded generator, so both sides get
    the same arguments; depends on nothing that differs between runs (names are sorted)."""

    WEIGHTS = {
            "create": 9, "write": 13, "truncate": 6, "read": 8, "rename": 15, "link": 5,
            "unlink": 7, "mkdir": 7, "rmdir": 6, "rmtree": 1, "chmod": 5, "symlink": 5,
            "mkfifo": 1, "setxattr": 6, "removexattr": 4, "ro_then_write": 3,
            "fd_unlinked": 2, "fd_renamed": 2, "fallocate": 1, "mknod_whiteout": 0.5,
            "trusted_xattr": 0,
    }

    def __init__(self, rng, kroot, skip, extra):
        self.rng = rng
        self.kroot = kroot
        self.kinds = []
        self.weights = []
        for kind, w in self.WEIGHTS.items():
            if kind in extra and w == 0:
                w = 1
            if kind in skip or w == 0:
                continue
            self.kinds.append(kind)
            self.weights.append(w)

    # path choices
    def safe_follow(self, rel):
        """Whether following rel on the kernel side stays inside the mount."""
        real = os.path.realpath(join(self.kroot, rel))
        return real == self.kroot or real.startswith(self.kroot + "/")

    def any_path(self, t):
        return self.rng.choice(t.paths[1:]) if len(t.paths) > 1 else ""

    def pick(self, t, kinds, p_other=0.1):
        """Usually a path of the given kinds, sometimes any path (for the failing variants)."""
        cands = t.of_kind(*kinds)
        if not cands or self.rng.random() < p_other:
            return self.bad_or_any(t)
        return self.rng.choice(cands)

    def bad_or_any(self, t):
        r = self.rng.random()
        if r < 0.25:
            return self.missing(t)
        if r < 0.4:
            return self.under_nondir(t)
        return self.any_path(t)

    def missing(self, t):
        d = self.rng.choice(t.dirs())
        p = (d + "/" if d else "") + "no-such-%d" % self.rng.randint(0, 9)
        if self.rng.random() < 0.4:
            p += "/" + self.rng.choice(NAME_POOL)
        return p

    def under_nondir(self, t):
        nd = t.of_kind("f", "p", "l")
        if not nd:
            return self.missing(t)
        return self.rng.choice(nd) + "/" + self.rng.choice(NAME_POOL)

    def new_name(self, t, p_bad=0.1):
        r = self.rng.random()
        if r < p_bad * 0.5:
            return self.missing(t)
        if r < p_bad:
            return self.under_nondir(t)
        d = self.rng.choice(t.dirs())
        name = self.rng.choice(NAME_POOL)
        if self.rng.random() < 0.01:
            name = "n" * 256
        return (d + "/" if d else "") + name

    def data(self):
        # never 0 bytes: an empty write does not reach a FUSE daemon, and a view without per-open
        # state copies up at the first write, where the kernel copies up at the write-open
        # (docs/differences.md); the trees would differ in link counts until the next write
        n = self.rng.choice([1, 100, 4096, self.rng.randint(1, 20000)])
        return self.rng.randbytes(n)

    def offset(self, t, rel):
        e = t.entries.get(rel)
        size = e.size if e is not None and e.kind == "f" else 0
        r = self.rng.random()
        if r < 0.3:
            off = 0
        elif r < 0.7:
            off = self.rng.randint(0, size)
        elif r < 0.9:
            off = size + self.rng.randint(1, 70000)
        else:
            off = self.rng.randint(0, 500 * 1024)
        return min(off, MAX_FILE - 20000)

    def next(self, t):
        while True:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            op = getattr(self, "gen_" + kind)(t)
            if op is not None:
                break
        resolved = []
        for p in op.paths:
            real = os.path.realpath(join(self.kroot, p))
            if real.startswith(self.kroot + "/"):
                resolved.append(os.path.relpath(real, self.kroot))
        op.dirty = op.paths + tuple(resolved)
        return op

    # one generator per kind
    def gen_create(self, t):
        rel = self.new_name(t) if self.rng.random() < 0.75 else self.any_path(t)
        if not self.safe_follow(rel):
            return None
        flags = os.O_WRONLY | os.O_CREAT
        names = ["O_CREAT"]
        if self.rng.random() < 0.5:
            flags |= os.O_EXCL
            names.append("O_EXCL")
        if self.rng.random() < 0.2:
            flags |= os.O_TRUNC
            names.append("O_TRUNC")
        mode = self.rng.choice([0o644, 0o600, 0o755, 0o640, 0o666, 0o4755])
        umask = self.rng.choice([0o022, 0o002, 0o077, 0o000])
        data = self.data() if self.rng.random() < 0.6 else b""

        def fn(root):
            old = os.umask(umask)
            try:
                fd = os.open(join(root, rel), flags | OPEN_FLAGS, mode)
            finally:
                os.umask(old)
            try:
                return os.write(fd, data) if data else 0
            finally:
                os.close(fd)
        return Op("create", "open(%r, %s, 0o%o) umask 0o%03o, write %d bytes" %
                  (rel, "|".join(names), mode, umask, len(data)), fn, touched=(rel,))

    def gen_write(self, t):
        rel = self.pick(t, ("f",) if self.rng.random() < 0.9 else ("f", "l", "d", "p"))
        nofollow = not self.safe_follow(rel)
        off = self.offset(t, rel)
        data = self.data()
        append = self.rng.random() < 0.1

        def fn(root):
            flags = os.O_WRONLY | (os.O_APPEND if append else 0) | \
                    (os.O_NOFOLLOW if nofollow else 0)
            fd = os.open(join(root, rel), flags | OPEN_FLAGS)
            try:
                return os.pwrite(fd, data, off)
            finally:
                os.close(fd)
        return Op("write", "pwrite(%r%s, %d bytes @%d)%s" %
                  (rel, ", O_APPEND" if append else "", len(data), off,
                   " O_NOFOLLOW" if nofollow else ""), fn, paths=(rel,))

    def gen_truncate(self, t):
        rel = self.pick(t, ("f",))
        if not self.safe_follow(rel):
            return None
        e = t.entries.get(rel)
        size = e.size if e is not None and e.kind == "f" else 0
        r = self.rng.random()
        if r < 0.25:
            length = 0
        elif r < 0.6:
            length = self.rng.randint(0, size)
        elif r < 0.95:
            length = size + self.rng.randint(1, 100000)
        else:
            length = -1
        length = min(length, MAX_FILE)

        def fn(root):
            os.truncate(join(root, rel), length)
        return Op("truncate", "truncate(%r, %d)" % (rel, length), fn, paths=(rel,))

    def gen_read(self, t):
        rel = self.pick(t, ("f",) if self.rng.random() < 0.85 else ("f", "d", "l", "p"))
        if not self.safe_follow(rel):
            return None
        off = self.offset(t, rel)
        length = self.rng.choice([1, 4096, 65536, 1 << 20])

        def fn(root):
            fd = os.open(join(root, rel), os.O_RDONLY | OPEN_FLAGS)
            try:
                data = os.pread(fd, length, off)
            finally:
                os.close(fd)
            return "%d bytes %s" % (len(data), short_hash(data))
        return Op("read", "pread(%r, %d @%d)" % (rel, length, off), fn, paths=(rel,))

    def gen_rename(self, t):
        rng = self.rng
        dirs = t.of_kind("d")
        src = rng.choice(dirs) if dirs and rng.random() < 0.4 else self.any_path(t)
        if rng.random() < 0.05:
            src = self.bad_or_any(t)
        if src == "":
            return None
        r = rng.random()
        if r < 0.4:
            dst = self.new_name(t, p_bad=0.05)
        elif r < 0.65:
            e = t.entries.get(src)
            same = t.of_kind(e.kind) if e is not None else []
            dst = rng.choice(same) if same else self.any_path(t)
        elif r < 0.8:
            dst = self.any_path(t)
        elif r < 0.9 and t.entries.get(src) and t.entries[src].kind == "d":
            below = [p for p in t.paths if is_under(p, src)]
            dst = rng.choice(below) + "/" + rng.choice(NAME_POOL)
        elif r < 0.95:
            dst = src
        else:
            dst = parent_of(src) or self.any_path(t)
        if dst == "":
            return None
        r = rng.random()
        flags = 0 if r < 0.7 else RENAME_NOREPLACE if r < 0.85 else RENAME_EXCHANGE

        def fn(root):
            renameat2(join(root, src), join(root, dst), flags)
        return Op("rename", "renameat2(%r, %r, %s)" % (src, dst, rename_flag_name(flags)), fn,
                  touched=(src, dst), rename=(src, dst, flags))

    def gen_link(self, t):
        src = self.pick(t, ("f", "l", "p"), p_other=0.15)
        dst = self.new_name(t) if self.rng.random() < 0.85 else self.any_path(t)
        follow = self.rng.random() < 0.2 and self.safe_follow(src)

        def fn(root):
            os.link(join(root, src), join(root, dst), follow_symlinks=follow)
        return Op("link", "link(%r, %r%s)" % (src, dst, ", AT_SYMLINK_FOLLOW" if follow
                                               else ""), fn, paths=(src,), touched=(dst,))

    def gen_unlink(self, t):
        rel = self.pick(t, ("f", "l", "p"), p_other=0.15)

        def fn(root):
            os.unlink(join(root, rel))
        return Op("unlink", "unlink(%r)" % rel, fn, touched=(rel,))

    def gen_mkdir(self, t):
        rel = self.new_name(t) if self.rng.random() < 0.85 else self.any_path(t)
        mode = self.rng.choice([0o755, 0o700, 0o750, 0o777, 0o1777, 0o2755])
        umask = self.rng.choice([0o022, 0o002, 0o077])

        def fn(root):
            old = os.umask(umask)
            try:
                os.mkdir(join(root, rel), mode)
            finally:
                os.umask(old)
        return Op("mkdir", "mkdir(%r, 0o%o) umask 0o%03o" % (rel, mode, umask), fn,
                  touched=(rel,))

    def gen_rmdir(self, t):
        dirs = t.of_kind("d")
        r = self.rng.random()
        if dirs and r < 0.8:
            # favour small directories so that removals succeed now and then
            dirs.sort(key=lambda d: (len(t.children(d)), d))
            rel = self.rng.choice(dirs[:max(3, len(dirs) // 3)] if r < 0.5 else dirs)
        elif r < 0.85 and dirs:
            rel = self.rng.choice(dirs) + "/."
        else:
            rel = self.bad_or_any(t)

        def fn(root):
            os.rmdir(join(root, rel))
        return Op("rmdir", "rmdir(%r)" % rel, fn, touched=(rel,))

    def gen_rmtree(self, t):
        dirs = t.of_kind("d")
        if not dirs:
            return None
        dirs.sort(key=lambda d: (sum(1 for p in t.paths if is_under(p, d)), d))
        rel = self.rng.choice(dirs[:max(1, len(dirs) // 2)])

        def fn(root):
            def rm(path):
                names = sorted(os.listdir(path))
                for n in names:
                    c = os.path.join(path, n)
                    if stat.S_ISDIR(os.lstat(c).st_mode):
                        rm(c)
                    else:
                        os.unlink(c)
                os.rmdir(path)
            rm(join(root, rel))
        return Op("rmtree", "rm -r %r" % rel, fn, touched=(rel,))

    def gen_chmod(self, t):
        rel = self.pick(t, ("f", "d", "p"), p_other=0.1)
        if not self.safe_follow(rel):
            return None
        mode = self.rng.choice([0o644, 0o600, 0o755, 0o700, 0o000, 0o4755, 0o2755, 0o1777,
                                0o444, 0o777])

        def fn(root):
            os.chmod(join(root, rel), mode)
        return Op("chmod", "chmod(%r, 0o%o)" % (rel, mode), fn, paths=(rel,))

    def gen_symlink(self, t):
        rel = self.new_name(t) if self.rng.random() < 0.9 else self.any_path(t)
        r = self.rng.random()
        if r < 0.5:
            # a path below the link's directory, which never escapes the mount
            d = parent_of(rel)
            below = [p[len(d) + 1:] if d else p for p in t.paths if p and is_under(p, d)
                     and p != d]
            target = self.rng.choice(below) if below else "nope"
        elif r < 0.8:
            target = self.rng.choice(NAME_POOL)
        elif r < 0.9:
            target = "../" + self.rng.choice(NAME_POOL)
        else:
            target = self.rng.choice(["/nonexistent-jobfs-diff/y", "x" * 300, "a//b/./c"])

        def fn(root):
            os.symlink(target, join(root, rel))
        return Op("symlink", "symlink(%r, %r)" % (target, rel), fn, touched=(rel,))

    def gen_mkfifo(self, t):
        rel = self.new_name(t)
        mode = self.rng.choice([0o644, 0o600])

        def fn(root):
            old = os.umask(0o022)
            try:
                os.mkfifo(join(root, rel), mode)
            finally:
                os.umask(old)
        return Op("mkfifo", "mkfifo(%r, 0o%o)" % (rel, mode), fn, touched=(rel,))

    def gen_mknod_whiteout(self, t):
        rel = self.new_name(t, p_bad=0)

        def fn(root):
            os.mknod(join(root, rel), stat.S_IFCHR | 0o644, os.makedev(0, 0))
        return Op("mknod_whiteout", "mknod(%r, S_IFCHR, 0:0)" % rel, fn, touched=(rel,))

    def gen_setxattr(self, t):
        rel = self.pick(t, ("f", "d"), p_other=0.15)
        name = self.rng.choice(XATTR_POOL)
        # small enough that all of XATTR_POOL and the layers' private xattrs fit one ext4
        # block: an ENOSPC that depends on private xattrs would be noise
        value = self.rng.randbytes(self.rng.choice([0, 1, 10, 100, 600]))
        r = self.rng.random()
        flags = 0 if r < 0.7 else os.XATTR_CREATE if r < 0.85 else os.XATTR_REPLACE
        fname = {0: "0", os.XATTR_CREATE: "XATTR_CREATE", os.XATTR_REPLACE: "XATTR_REPLACE"}

        def fn(root):
            os.setxattr(join(root, rel), name, value, flags, follow_symlinks=False)
        return Op("setxattr", "lsetxattr(%r, %r, %d bytes, %s)" %
                  (rel, name, len(value), fname[flags]), fn, paths=(rel,))

    def gen_removexattr(self, t):
        with_x = [p for p in t.paths if p and t.entries[p].xattrs]
        if with_x and self.rng.random() < 0.75:
            rel = self.rng.choice(with_x)
            name = self.rng.choice([n for n, _ in t.entries[rel].xattrs])
        else:
            rel = self.pick(t, ("f", "d"), p_other=0.15)
            name = self.rng.choice(XATTR_POOL)

        def fn(root):
            os.removexattr(join(root, rel), name, follow_symlinks=False)
        return Op("removexattr", "lremovexattr(%r, %r)" % (rel, name), fn, paths=(rel,))

    def gen_trusted_xattr(self, t):
        rel = self.pick(t, ("d", "f"))
        name = self.rng.choice(["trusted.overlay.opaque", "trusted.overlay.redirect",
                                "trusted.jobfs-diff"])
        value = b"y"

        def fn(root):
            os.setxattr(join(root, rel), name, value, follow_symlinks=False)
            return os.getxattr(join(root, rel), name, follow_symlinks=False)
        return Op("trusted_xattr", "lsetxattr(%r, %r, b'y') then lgetxattr" % (rel, name), fn,
                  paths=(rel,))

    def gen_ro_then_write(self, t):
        rel = self.pick(t, ("f",), p_other=0)
        if not self.safe_follow(rel):
            return None
        off = self.offset(t, rel)
        data = self.data()

        def fn(root):
            path = join(root, rel)
            ro = os.open(path, os.O_RDONLY | OPEN_FLAGS)
            try:
                before = os.pread(ro, MAX_FILE + 100000, 0)
                wr = os.open(path, os.O_WRONLY | OPEN_FLAGS)
                try:
                    n = os.pwrite(wr, data, off)
                finally:
                    os.close(wr)
                after = os.pread(ro, MAX_FILE + 100000, 0)
            finally:
                os.close(ro)
            return "wrote %d; read-only fd saw %s then %s" % (n, short_hash(before),
                                                             short_hash(after))
        return Op("ro_then_write", "open(%r, O_RDONLY), pwrite(%d bytes @%d) through a second "
                  "fd, pread the first" % (rel, len(data), off), fn, paths=(rel,))

    def gen_fd_unlinked(self, t):
        rel = self.pick(t, ("f",), p_other=0)
        if not self.safe_follow(rel):
            return None
        # read-only, the kernel does not copy the file up and fstat shows the lower's count
        ro = self.rng.random() < 0.3
        data = b"" if ro else self.data()
        left = len(t.group(rel)) - 1 if rel in t.entries else 0

        def fn(root):
            path = join(root, rel)
            fd = os.open(path, (os.O_RDONLY if ro else os.O_RDWR) | OPEN_FLAGS)
            try:
                os.unlink(path)
                n = 0 if ro else os.pwrite(fd, data, 0)
                st = os.fstat(fd)
                back = os.pread(fd, MAX_FILE + 100000, 0)
            finally:
                os.close(fd)
            return "wrote %d; fstat nlink %d size %d; read %s" % (
                    n, st.st_nlink, st.st_size, short_hash(back))

        def tolerate(rk, rj):
            """unlinked-lower-nlink: jobfs may count the names actually left."""
            if not ro or rk[0] != "ok" or rj[0] != "ok":
                return None
            expected = rk[1].split("; fstat nlink ")[0] + "; fstat nlink %d size " % left
            if rj[1].startswith(expected) and rj[1].split(" size ")[1] == \
                    rk[1].split(" size ")[1]:
                return "unlinked-lower-nlink"
            return None
        return Op("fd_unlinked", "open(%r, %s), unlink, %sfstat, pread" % (
                rel, "O_RDONLY" if ro else "O_RDWR",
                "" if ro else "pwrite(%d bytes @0), " % len(data)), fn, touched=(rel,),
                tolerate=tolerate)

    def gen_fd_renamed(self, t):
        rel = self.pick(t, ("f",), p_other=0)
        if not self.safe_follow(rel):
            return None
        dst = self.new_name(t, p_bad=0)
        data = self.data()
        off = self.offset(t, rel)

        def fn(root):
            path = join(root, rel)
            fd = os.open(path, os.O_RDWR | OPEN_FLAGS)
            try:
                os.rename(path, join(root, dst))
                n = os.pwrite(fd, data, off)
            finally:
                os.close(fd)
            return "wrote %d; new name reads %s" % (
                    n, digest_path(join(root, dst)) if lstat_kind(join(root, dst)) == "f"
                    else "-")
        return Op("fd_renamed", "open(%r, O_RDWR), rename to %r, pwrite(%d bytes @%d), "
                  "read the new name" % (rel, dst, len(data), off), fn, touched=(rel, dst))

    def gen_fallocate(self, t):
        rel = self.pick(t, ("f",), p_other=0.05)
        if not self.safe_follow(rel):
            return None
        off = self.offset(t, rel)
        length = self.rng.randint(1, 50000)

        def fn(root):
            fd = os.open(join(root, rel), os.O_WRONLY | OPEN_FLAGS)
            try:
                os.posix_fallocate(fd, off, length)
            finally:
                os.close(fd)
        return Op("fallocate", "posix_fallocate(%r, %d, %d)" % (rel, off, length), fn, paths=(rel,))


# --- emulating on the kernel what its EXDEV refused ---------------------------------------------

def kernel_move(src, dst):
    """rename(src, dst) for a dst that does not exist, done so that the kernel accepts it."""
    try:
        os.rename(src, dst)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    st = os.lstat(src)
    os.mkdir(dst, 0o700)
    for name in sorted(os.listdir(src)):
        kernel_move(os.path.join(src, name), os.path.join(dst, name))
    for name, value in xattrs_of(src):
        os.setxattr(dst, name, value, follow_symlinks=False)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.rmdir(src)


def emulate_rename(root, src, dst, flags):
    """Perform on the kernel mount a directory rename it refused with EXDEV. Returns None, or
    why the rename should not have succeeded."""
    s, d = join(root, src), join(root, dst)
    if flags == RENAME_EXCHANGE:
        tmp = join(root, ".jobfs-diff-exchange")
        kernel_move(s, tmp)
        kernel_move(d, s)
        kernel_move(tmp, d)
        return None
    dk = lstat_kind(d)
    if dk == "d":
        if os.listdir(d):
            return "the target '%s' is a non-empty directory: expected ENOTEMPTY" % dst
        os.rmdir(d)
    elif dk is not None:
        return "the target '%s' exists and is not a directory: expected ENOTDIR" % dst
    kernel_move(s, d)
    return None


# --- mounts and processes -----------------------------------------------------------------------

def mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].replace("\\040", " ") for line in f]


class Mounts:
    """Everything this run mounted or started, undone newest first."""

    def __init__(self):
        self.stack = []  # (path, "kernel"|"fuse", Popen or None, log path)

    def kernel(self, mnt, lowers, upper, work, extra=""):
        opts = "lowerdir=%s,upperdir=%s,workdir=%s%s" % (":".join(lowers), upper, work, extra)
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Fatal("mount -t overlay -o %s %s failed: %s" % (opts, mnt,
                                                               r.stderr.strip()))
        self.stack.append((mnt, "kernel", None, None))

    def fuse(self, mnt, argv, logpath):
        logf = open(logpath, "wb")
        try:
            # its own session: a ^C or hangup for the test must not kill the daemon under
            # a live mount before the cleanup unmounts it
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            logf.close()
        self.stack.append((mnt, "fuse", proc, logpath))
        deadline = time.monotonic() + 10
        while mnt not in mountpoints():
            if proc.poll() is not None:
                raise Fatal("%s exited with status %d before mounting; its output:\n%s" %
                            (argv[0], proc.returncode, tail(logpath)))
            if time.monotonic() > deadline:
                raise Fatal("%s did not mount %s within 10 s; its output:\n%s" %
                            (argv[0], mnt, tail(logpath)))
            time.sleep(0.02)
        return proc

    def unmount(self, mnt):
        """Unmount one of ours; returns the daemon's exit status for FUSE mounts."""
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == mnt:
                entry = self.stack.pop(i)
                return self._undo(entry)
        raise Fatal("not mounted by us: " + mnt)

    def _undo(self, entry):
        mnt, kind, proc, _ = entry
        cmds = ([["fusermount3", "-u", mnt]] if kind == "fuse" else []) + \
                [["umount", mnt], ["umount", "-l", mnt]]
        for cmd in cmds:
            if mnt not in mountpoints():
                break
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        status = None
        if proc is not None:
            try:
                status = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    status = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    status = proc.wait()
        return status

    def undo_all(self):
        while self.stack:
            try:
                self._undo(self.stack.pop())
            except Exception as e:  # keep undoing the rest
                log("cleanup: %s" % e)


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    return "\n".join("    | " + line for line in text[-lines:]) or "    | (empty)"


class Watchdog(threading.Thread):
    """Kills the peer daemon (only the one we started) if a step hangs, so the test ends with a
    report instead of running into the CTest timeout."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.busy_since = None
        self.proc = None
        self.fired = False
        self.stop = threading.Event()

    def begin(self):
        with self.lock:
            self.busy_since = time.monotonic()

    def end(self):
        with self.lock:
            self.busy_since = None

    def run(self):
        while not self.stop.wait(1):
            with self.lock:
                since, proc = self.busy_since, self.proc
            if since is not None and proc is not None and \
               time.monotonic() - since > HANG_SECONDS and not self.fired:
                self.fired = True
                log("a step has hung for %d s; killing the peer daemon (pid %d)" %
                    (HANG_SECONDS, proc.pid))
                proc.kill()


# --- the run ------------------------------------------------------------------------------------

class Mismatch(Exception):
    pass


class Run:
    def __init__(self, args, peer, base):
        self.args = args
        self.peer = peer
        self.base = base
        self.mounts = Mounts()
        self.devs = Findings()
        self.warns = Findings()
        self.emulated = 0
        self.history = collections.deque(maxlen=8)
        self.results = collections.Counter()
        self.watchdog = Watchdog()
        self.peer_log = os.path.join(base, "peer.log")
        self.names = ("kernel", peer)
        self.step = 0
        self.trace = open(args.trace, "w") if args.trace else None

    def layers(self, side):
        top = os.path.join(self.base, side)
        return ([os.path.join(top, "l1"), os.path.join(top, "l2")],
                os.path.join(top, "upper"), os.path.join(top, "work"))

    def prepare(self):
        orig = os.path.join(self.base, "orig")
        build_lowers(random.Random(self.args.seed), os.path.join(orig, "l1"),
                     os.path.join(orig, "l2"))
        self.orig_manifest = {l: manifest(os.path.join(orig, l), strict=False)
                              for l in ("l1", "l2")}
        self.copy_manifest = {}
        for side in ("k", "j"):
            top = os.path.join(self.base, side)
            os.mkdir(top)
            for l in ("l1", "l2"):
                r = subprocess.run(["cp", "-a", "--preserve=all", os.path.join(orig, l),
                                    os.path.join(top, l)], capture_output=True, text=True)
                if r.returncode != 0:
                    raise Fatal("cp -a failed: " + r.stderr.strip())
                m = manifest(os.path.join(top, l), strict=False)
                if m != self.orig_manifest[l]:
                    raise Fatal("the copy of %s in %s differs from the original:\n  %s"
                                % (l, side, "\n  ".join(
                                        manifest_diff(self.orig_manifest[l], m))))
                self.copy_manifest[(side, l)] = manifest(os.path.join(top, l),
                                                         strict=True)
            os.mkdir(os.path.join(top, "upper"))
            os.mkdir(os.path.join(top, "work"))
        self.mnt_k = os.path.join(self.base, "mnt_k")
        self.mnt_j = os.path.join(self.base, "mnt_j")
        os.mkdir(self.mnt_k)
        os.mkdir(self.mnt_j)

    def mount_peer(self):
        lowers, upper, work = self.layers("j")
        if self.peer.startswith("kernel"):
            self.mounts.kernel(self.mnt_j, lowers, upper, work,
                               ",redirect_dir=on" if self.peer == "kernel-redirect" else "")
            return
        if self.peer == "fuse-overlayfs":
            argv = ["fuse-overlayfs", "-f", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" %
                    (":".join(lowers), upper, work), self.mnt_j]
        else:
            fs = os.environ.get("JOBFS_FS")
            if not fs:
                raise Fatal("JOBFS_FS is not set (the path of jobfs-fs; CTest sets it)")
            argv = [fs, "--lower", ":".join(lowers), "--upper", upper, "--work", work, "-f"]
            argv += shlex.split(os.environ.get("JOBFS_DIFF_DAEMON_ARGS", "")) + [self.mnt_j]
            if os.environ.get("JOBFS_TEST_WRAPPER"):
                argv.insert(0, os.environ["JOBFS_TEST_WRAPPER"])
        self.watchdog.proc = self.mounts.fuse(self.mnt_j, argv, self.peer_log)

    def fail(self, what, op=None, rk=None, rj=None, lines=()):
        out = ["MISMATCH seed=%d step=%d/%d peer=%s: %s" %
               (self.args.seed, self.step, self.args.ops, self.peer, what)]
        if op is not None:
            width = max(len(n) for n in self.names + ("op",)) + 1
            out.append("  %-*s [%s] %s" % (width, "op:", op.kind, op.desc))
            out.append("  %-*s %s" % (width, self.names[0] + ":", fmt_result(rk)))
            out.append("  %-*s %s" % (width, self.names[1] + ":", fmt_result(rj)))
        if lines:
            out.append("  tree diff (kernel vs %s)%s:" % (
                    self.peer, ", first 25" if len(lines) > 25 else ""))
            out += ["    " + line for line in lines[:25]]
        if self.history:
            out.append("  preceding steps:")
            out += ["    " + h for h in self.history]
        if self.watchdog.fired:
            out.append("  (the peer daemon was killed after hanging for %d s)" % HANG_SECONDS)
        out.append("  reproduce: " + self.reproducer())
        raise Mismatch("\n".join(out))

    def reproducer(self):
        argv, skip = [], False
        for a in sys.argv[1:]:
            if skip:
                skip = False
            elif a in ("--seed", "--ops", "--trace"):
                skip = True
            elif a != "--keep" and not a.startswith(("--seed=", "--ops=", "--trace=")):
                argv.append(a)
        env = "" if self.peer in ("jobfs", "kernel") else "JOBFS_DIFF_PEER=%s " % self.peer
        if self.peer == "jobfs":
            env = "JOBFS_FS=%s " % os.environ.get("JOBFS_FS", "")
        return "%s%s %s--seed %d --ops %d --keep" % (env, sys.argv[0], "".join(
                a + " " for a in argv), self.args.seed, max(self.step, 1))

    def run_op(self, op):
        rk = op.run(self.mnt_k)
        rj = op.run(self.mnt_j)
        note = ""
        if rk != rj and op.rename and rk == ("err", "EXDEV"):
            src, dst, flags = op.rename
            if rj == ("ok", None):
                problem = emulate_rename(self.mnt_k, src, dst, flags)
                if problem:
                    self.fail("the kernel refused a directory rename with EXDEV and "
                              "%s succeeded, but %s" % (self.peer, problem), op, rk, rj)
                self.emulated += 1
                self.devs.add("rename-exdev", op.desc)
                note = " (kernel EXDEV, emulated)"
                rk = rj
            elif (rj == ("err", "ENOTEMPTY") and flags != RENAME_EXCHANGE
                  and lstat_kind(join(self.mnt_k, dst)) == "d"
                  and os.listdir(join(self.mnt_k, dst))):
                self.devs.add("rename-exdev-notempty", op.desc)
                note = " (kernel EXDEV before ENOTEMPTY)"
                rk = rj
        if rk != rj and op.tolerate:
            deviation = op.tolerate(rk, rj)
            if deviation:
                self.devs.add(deviation, "%s: kernel %s" % (op.desc, fmt_result(rk)))
                note = " (kernel: %s)" % fmt_result(rk)
                rk = rj
        if op.rename and rj == ("err", "EXDEV") and not self.peer.startswith("kernel"):
            self.fail("%s refused a rename with EXDEV: a view is one filesystem, it must "
                      "move directories itself" % self.peer, op, rk, rj)
        line = "%d [%s] %s -> %s%s" % (self.step, op.kind, op.desc, fmt_result(rj), note)
        self.history.append(line)
        if self.trace:
            self.trace.write(line + ("" if rk == rj else "  (kernel: %s)" % fmt_result(rk))
                             + "\n")
            self.trace.flush()
        self.results[(op.kind, rj[0])] += 1
        if rk != rj:
            self.fail("the operation's results differ", op, rk, rj,
                      self.diff_lines(self.snapshots()))
        return rk, rj

    def snapshots(self, prev=None, dirty=()):
        x = "xattrs" not in self.args.ignore
        return (Snapshot(self.mnt_k, prev and prev[0], dirty, x),
                Snapshot(self.mnt_j, prev and prev[1], dirty, x))

    def diff_lines(self, snaps, prev=None, touched=()):
        return compare(snaps[0], snaps[1], self.names, self.layers("k")[1], self.devs,
                       self.warns, prev, touched, self.args.ignore)

    def main_loop(self):
        gen = Generator(random.Random(self.args.seed * 7919 + 1), self.mnt_k,
                        self.args.skip_ops, self.args.ops_extra)
        snaps = self.snapshots()
        lines = self.diff_lines(snaps)
        if lines:
            self.fail("the trees differ before any operation", lines=lines)
        t0 = time.monotonic()
        last_full = 0
        for self.step in range(1, self.args.ops + 1):
            self.watchdog.begin()
            op = gen.next(snaps[0])
            rk, rj = self.run_op(op)
            full = self.step % self.args.full_every == 0 or self.step == self.args.ops
            try:
                new = self.snapshots(None if full else snaps, op.dirty)
            except OSError as e:
                self.fail("walking the trees after the operation failed: %s" % e, op, rk, rj)
            lines = self.diff_lines(new, prev=snaps, touched=op.touched)
            if lines:
                what = "the trees differ after the operation"
                if full and self.step - last_full > 1 and any(
                                " %s " % f in line for line in lines
                                for f in ("content", "xattrs", "target")):
                    what += (" (found by a full re-read: a content or xattr "
                             "difference may come from steps %d-%d; --full-every 1 "
                             "pins it down)" % (last_full + 1, self.step))
                self.fail(what, op, rk, rj, lines)
            if full:
                last_full = self.step
            snaps = new
            self.watchdog.end()
            if self.step % 500 == 0:
                log("step %d/%d ok, %d entries, %.1f s" % (
                        self.step, self.args.ops, len(snaps[0].paths),
                        time.monotonic() - t0))
        return snaps

    def final_checks(self, snaps):
        jsnap = snaps[1]
        self.step = self.args.ops
        self.mounts.unmount(self.mnt_k)
        status = self.mounts.unmount(self.mnt_j)
        if status not in (None, 0):
            raise Fatal("the %s daemon exited with status %d after unmount; its output:\n%s"
                        % (self.peer, status, tail(self.peer_log)))
        # the peer's upper, read by the kernel
        lowers, upper, work = self.layers("j")
        # jobfs writes metacopy files with redirects (link, chmod, rename of lower files):
        # the kernel reads those only when told to
        self.mounts.kernel(self.mnt_k, lowers, upper, work,
                           ",redirect_dir=on,metacopy=on" if self.peer == "jobfs" else "")
        ksnap = Snapshot(self.mnt_k)
        devs = Findings()
        lines = compare(ksnap, jsnap, ("kernel-on-%s-upper" % self.peer,
                                       "%s-view" % self.peer), upper, devs, Findings(),
                        ignore=self.args.ignore)
        self.mounts.unmount(self.mnt_k)
        if lines:
            self.names = ("kernel", self.peer)
            raise Mismatch("\n".join(
                    ["MISMATCH seed=%d peer=%s: the kernel overlay over %s's layers shows "
                     "another tree than %s showed at the end (on-disk format)" %
                     (self.args.seed, self.peer, self.peer, self.peer)] +
                    ["    " + line for line in lines[:25]]))
        for kind in devs.count:
            self.devs.add("format-check:" + kind, devs.example[kind])
        # the lowers, bit for bit and inode for inode
        for side in ("k", "j"):
            for l in ("l1", "l2"):
                now = manifest(os.path.join(self.base, side, l), strict=True)
                if now != self.copy_manifest[(side, l)]:
                    raise Mismatch("MISMATCH seed=%d: lower %s of the %s copy changed:\n  %s"
                                   % (self.args.seed, l, "kernel" if side == "k"
                                      else self.peer, "\n  ".join(manifest_diff(
                                              self.copy_manifest[(side, l)], now))))

    def execute(self):
        self.prepare()
        lowers, upper, work = self.layers("k")
        self.mounts.kernel(self.mnt_k, lowers, upper, work)
        self.mount_peer()
        self.watchdog.start()
        snaps = self.main_loop()
        self.final_checks(snaps)


def preflight(need_fuse):
    if os.geteuid() != 0:
        return "not root"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read().split():
            return "no overlay filesystem in /proc/filesystems"
    if need_fuse:
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR))
        except OSError as e:
            return "/dev/fuse: " + os.strerror(e.errno)
    return None


def main():
    ap = argparse.ArgumentParser(description="Differential test of a jobfs view against the "
                                 "kernel's overlayfs.")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    ap.add_argument("--ops", type=int, default=None,
                    help="operations (default: $JOBFS_DIFF_OPS or %d)" % DEFAULT_OPS)
    ap.add_argument("--full-every", type=int, default=25, metavar="N",
                    help="re-read every file and xattr every N steps; in between only what the "
                    "step may have changed (default 25)")
    ap.add_argument("--trace", metavar="FILE", help="write every step and its result to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (layers) afterwards")
    ap.add_argument("--skip-ops", default="", help="comma-separated operation kinds to leave out")
    ap.add_argument("--ops-extra", default="", help="comma-separated kinds off by default to add")
    ap.add_argument("--ignore", default="",
                    help="comma-separated attributes not to compare, to get past a known bug: " +
                    ", ".join(COMPARED))
    ap.add_argument("--self-test", nargs="?", const="plain", choices=("plain", "redirect"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seed is None and os.environ.get("JOBFS_DIFF_SEED"):
        args.seed = int(os.environ["JOBFS_DIFF_SEED"])
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if args.ops is None:
        args.ops = int(os.environ.get("JOBFS_DIFF_OPS") or DEFAULT_OPS)
    args.skip_ops = set(filter(None, args.skip_ops.split(",")))
    args.ops_extra = set(filter(None, args.ops_extra.split(",")))
    args.ignore = set(filter(None, args.ignore.split(",")))
    if args.ignore - set(COMPARED):
        ap.error("unknown attribute in --ignore: %s" % ", ".join(sorted(args.ignore -
                                                                         set(COMPARED))))
    for k in args.skip_ops | args.ops_extra:
        if k not in Generator.WEIGHTS:
            ap.error("unknown operation kind '%s' (known: %s)" %
                     (k, ", ".join(sorted(Generator.WEIGHTS))))
    peer = os.environ.get("JOBFS_DIFF_PEER") or "jobfs"
    if args.self_test:
        peer = "kernel" if args.self_test == "plain" else "kernel-redirect"
    if peer not in ("jobfs", "fuse-overlayfs", "kernel", "kernel-redirect"):
        ap.error("JOBFS_DIFF_PEER must be jobfs, fuse-overlayfs, kernel or kernel-redirect")

    if peer == "kernel-redirect":
        # with redirects the peer moves lower hard links without copying them up, which
        # the emulation cannot: link counts and inode groups legitimately differ
        args.ignore |= {"nlink", "inode"}

    why = preflight(need_fuse=not peer.startswith("kernel"))
    if why:
        log("skipped: " + why)
        return SKIP
    log("seed=%d ops=%d peer=%s" % (args.seed, args.ops, peer))

    base = os.path.realpath(tempfile.mkdtemp(prefix="jobfs-diff-"))
    run = Run(args, peer, base)
    t0 = time.monotonic()
    status = 1

    def on_signal(signum, frame):
        raise Interrupted("signal %d" % signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        run.execute()
        status = 0
    except Mismatch as e:
        print(str(e), file=sys.stderr, flush=True)
        if not peer.startswith("kernel") and os.path.exists(run.peer_log):
            print("  %s output (last lines):\n%s" % (peer, tail(run.peer_log, 15)),
                  file=sys.stderr, flush=True)
    except Fatal as e:
        log("error (seed=%d step=%d): %s" % (args.seed, run.step, e))
    except Interrupted as e:
        log("interrupted by %s at step %d (seed=%d)" % (e, run.step, args.seed))
        status = 130
    except Exception:
        log("harness error at step %d (seed=%d):\n%s" % (run.step, args.seed,
                                                         traceback.format_exc()))
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM,
                                                  signal.SIGHUP})
        run.watchdog.stop.set()
        run.mounts.undo_all()
        left = [m for m in mountpoints() if m == base or m.startswith(base + "/")]
        if left:
            log("still mounted, temp dir left in place: " + ", ".join(left))
        elif args.keep:
            log("kept " + base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    if run.results:
        kinds = sorted({k for k, _ in run.results})
        log("operations, succeeded/failed: " + ", ".join(
                "%s %d/%d" % (k, run.results[(k, "ok")], run.results[(k, "err")])
                for k in kinds))
    run.devs.report("tolerated deviations (kernel vs %s)" % peer)
    if run.emulated:
        log("directory renames the kernel refused (EXDEV) and the harness emulated: %d" %
            run.emulated)
    run.warns.report("warnings")
    log("%s: seed=%d, %d of %d steps, %.1f s" % ("passed" if status == 0 else "FAILED",
                                               args.seed, run.step, args.ops,
                                               time.monotonic() - t0))
    return status


if __name__ == "__main__":
    sys.exit(main())
