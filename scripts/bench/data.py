"""The benchmark's data: a real pnpm store and node_modules tree, built once from the npm registry
with the lockfile in scripts/bench/project*, plus large files for copy-up, a 10x base for mount
latency, a tarball of small files, and a manifest that proves the base unchanged.

Layout of DATA/SET (SET is "full" or "quick"):
  base/store/v11/...     pnpm's content-addressed store (files/, index.db, projects/)
  base/app/              the project, installed: node_modules hard-linked from the store, tsconfig
  base/seed/, seed2/      the same project without node_modules: what `pnpm install` fills in
  base/seed-jobs/         a smaller project from the same store, for the four concurrent jobs
  base/home/              the runner user's home as pnpm left it (its metadata cache, state)
  base/large/            NLARGE files for appends, and big (random writes)
  base10x/copy0..9/      ten hard-linked copies of base: 10x the entries, for mount latency
  small.tar              small files from the store, for the extract/delete workload
  manifest.json          type, mode, owner, size, mtime, ctime, links and content hash of base
  stamp                  what the set was built from; a different stamp rebuilds it
"""

import hashlib
import json
import os
import stat
import shutil
import sqlite3
import subprocess
import sys

PNPM_VERSION = "12.21.0"
LAYOUT_VERSION = "4"

SETS = {
    # name: project dir, the project each of the four concurrent jobs installs (its packages are
    # a subset of the project's: checked when the set is built), large files (count, MiB), big
    # file MiB, small files in the tarball
    "full": dict(project="project", jobs_project="project-quick", nlarge=100, large_mib=2,
                 big_mib=256, nsmall=10000),
    "quick": dict(project="project-quick", jobs_project="project-quick", nlarge=20,
                  large_mib=2, big_mib=64, nsmall=2000),
}

PROJECT_FILES = ("package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "tsconfig.bench.json")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(argv, **kw):
    subprocess.run(argv, check=True, **kw)


def pnpm_path(data):
    return os.path.join(data, "tools", "node_modules", ".bin", "pnpm")


def ensure_pnpm(data):
    pnpm = pnpm_path(data)
    if os.access(pnpm, os.X_OK):
        v = subprocess.run([pnpm, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
        if v == PNPM_VERSION:
            return pnpm
    log(f"installing pnpm {PNPM_VERSION} into {data}/tools")
    os.makedirs(os.path.join(data, "tools"), exist_ok=True)
    sh(["npm", "install", "--prefix", os.path.join(data, "tools"), "--no-audit", "--no-fund",
        "--loglevel=error", f"pnpm@{PNPM_VERSION}"], stdout=subprocess.DEVNULL)
    return pnpm


def stamp_of(here, spec):
    h = hashlib.sha256()
    h.update(f"{LAYOUT_VERSION} {PNPM_VERSION} {sorted(spec.items())}".encode())
    for project in (spec["project"], spec["jobs_project"]):
        for name in PROJECT_FILES:
            with open(os.path.join(here, project, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def pnpm_env(home):
    """pnpm as a CI job runs it: HOME is the runner user's (its caches and state under it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "npm_config_"))}
    env["HOME"] = home
    env["CI"] = "true"
    return env


def write_random(path, mib, seed):
    """Incompressible, reproducible content."""
    h = hashlib.sha256(seed.encode()).digest()
    block = b"".join(hashlib.sha256(h + i.to_bytes(4, "little")).digest() for i in range(32768))
    with open(path, "wb") as f:  # 1 MiB of hash output, rotated per MiB
        for i in range(mib):
            k = (i * 4099) % len(block)
            f.write(block[k:] + block[:k])


def manifest(root, contents=True):
    """Everything a contender could change in the base, content hashed once per inode (without
    contents: the metadata alone, which any change through the file system shows in a ctime)."""
    entries = {}
    hashes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [""] + sorted(dirnames + filenames):
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            e = [st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                 st.st_nlink]
            if os.path.islink(path):
                e.append(os.readlink(path))
            elif os.path.isfile(path) and contents:
                key = (st.st_dev, st.st_ino)
                if key not in hashes:
                    h = hashlib.blake2b(digest_size=16)
                    with open(path, "rb") as f:
                        while chunk := f.read(1 << 20):
                            h.update(chunk)
                    hashes[key] = h.hexdigest()
                e.append(hashes[key])
            if name == "" and dirpath != root:
                continue  # directories are listed by their parent
            entries[rel] = e
    return entries


def verify(data_set, contents=True):
    """None if the base is exactly as built, else a one-line description of the first change;
    without contents, its metadata alone is compared (seconds, not a read of every file)."""
    with open(os.path.join(data_set, "manifest.json")) as f:
        want = json.load(f)
    have = manifest(os.path.join(data_set, "base"), contents)
    if not contents:
        want = {rel: e[:7] if stat.S_ISREG(e[0]) else e for rel, e in want.items()}
    for rel in sorted(set(want) | set(have)):
        if rel not in have:
            return f"{rel}: missing"
        if rel not in want:
            return f"{rel}: added"
        if want[rel] != have[rel]:
            return f"{rel}: changed ({want[rel]} -> {have[rel]})"
    return None


def ensure(data, name, here):
    """Builds DATA/NAME unless it is already built from the same lockfile; returns its path."""
    spec = SETS[name]
    d = os.path.join(data, name)
    stamp = stamp_of(here, spec)
    try:
        with open(os.path.join(d, "stamp")) as f:
            if f.read().strip() == stamp:
                return d
    except OSError:
        pass
    pnpm = ensure_pnpm(data)
    if os.path.lexists(d):
        log(f"rebuilding {d} (built from another lockfile, or unfinished)")
        sh(["rm", "-rf", "--one-file-system", "--", d])
    os.makedirs(d)
    base = os.path.join(d, "base")
    app, large = os.path.join(base, "app"), os.path.join(base, "large")
    seeds = [os.path.join(base, x) for x in ("seed", "seed2")]
    for x in [app, large] + seeds:
        os.makedirs(x)
    jobs_seed = os.path.join(base, "seed-jobs")
    os.makedirs(jobs_seed)
    for fname in PROJECT_FILES:
        for x in [app] + seeds:
            shutil.copy2(os.path.join(here, spec["project"], fname), x)
        shutil.copy2(os.path.join(here, spec["jobs_project"], fname), jobs_seed)

    log(f"building the {name} set in {d}: pnpm install from the npm registry")
    sh([pnpm, "install", "--frozen-lockfile", "--store-dir", os.path.join(base, "store"),
        "--reporter=append-only"], cwd=app, env=pnpm_env(os.path.join(base, "home")),
       stdout=subprocess.DEVNULL)

    log(f"writing {spec['nlarge']} x {spec['large_mib']} MiB and one {spec['big_mib']} MiB file")
    for i in range(spec["nlarge"]):
        write_random(os.path.join(large, f"f{i:03d}"), spec["large_mib"], f"large{i}")
    write_random(os.path.join(large, "big"), spec["big_mib"], "big")

    files_root = os.path.join(base, "store", "v11")
    small = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(files_root, "files")):
        dirnames.sort()
        for fn in sorted(filenames):
            small.append(os.path.relpath(os.path.join(dirpath, fn), files_root))
            if len(small) == spec["nsmall"]:
                break
        if len(small) == spec["nsmall"]:
            break
    with open(os.path.join(d, "small.list"), "w") as f:
        f.write("\n".join(small) + "\n")
    sh(["tar", "-cf", os.path.join(d, "small.tar"), "-C", files_root,
        "-T", os.path.join(d, "small.list")])

    log("linking the 10x base")
    os.makedirs(os.path.join(d, "base10x"))
    for i in range(10):
        sh(["cp", "-al", base, os.path.join(d, "base10x", f"copy{i}")])

    log("hashing the base into manifest.json")
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest(base), f)
    with open(os.path.join(d, "stamp"), "w") as f:
        f.write(stamp + "\n")
    return d


def describe(d):
    """Counts for the report: entries, regular files, bytes, packages."""
    base = os.path.join(d, "base")
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    tree = {k: v for k, v in m.items() if k.startswith(("store", "app"))}
    files = [v for v in tree.values() if (v[0] & 0o170000) == 0o100000]
    seen, nbytes = set(), 0
    for v in files:
        if v[7] not in seen:
            seen.add(v[7])
            nbytes += v[3]
    pkgs = sum(1 for x in os.listdir(os.path.join(base, "app", "node_modules", ".pnpm"))
               if "@" in x[1:])
    with open(os.path.join(d, "small.list")) as f:
        nsmall = sum(1 for _ in f)
    return dict(entries=len(tree), view_entries=len(m), files=len(files), bytes=nbytes,
                packages=pkgs,
                base10x_entries=len(m) * 10, small_files=nsmall)


# Promotion: what a job's `pnpm install` of scripts/bench/project-promote adds to the set's store.
# Its lockfile holds 93 packages, 49 of which the full set's store lacks (70 the quick set's: rows
# of package_index). Built once, online, beside the set; replayed offline into a job's view.
#   promote/delta/v11/files/...   the content files the install wrote that the store lacks
#   promote/delta/v11/index.db    the store's index after the install: the base's rows and the new
#   promote/seed/                 the project, for the offline install that checks the promotion
#   promote/home/                 pnpm's home after the online install (its metadata cache)
#   promote/stamp
PROMOTE_PROJECT = "project-promote"
PROMOTE_LAYOUT = "1"

# Stack depth: the set's store split into generations that hold only what they add, the way
# promotes leave it. Every file of v11/files has a share, hash(path) % DEPTH_SHARES; share s > 0
# is generation s, share 0 and the shares above a stack's depth stay in its bottom layer (the
# policy's lower dir). Every generation and bottom also holds the index (hard links of one copy).
#   depth/lower1/                    the whole store (a copy of base/store): a base of one layer
#   depth/lowerN/                    the bottom layer of an N-generation base (hard links)
#   depth/state/bases/dN/gens/G0000NN, stack   the N-1 generations above it, as jobfs keeps them
#   depth/stamp
DEPTHS = (1, 8, 32)
DEPTH_SHARES = 32
DEPTH_LAYOUT = "2"


def sub_stamp(set_dir, what):
    with open(os.path.join(set_dir, "stamp")) as f:
        return hashlib.sha256(f"{f.read().strip()} {what}".encode()).hexdigest()


def fresh_dir(d, stamp):
    """True when d was built with this stamp; otherwise empties d's unfinished copy for a build."""
    try:
        with open(os.path.join(d, "stamp")) as f:
            if f.read().strip() == stamp:
                return True
    except OSError:
        pass
    for x in (d, d + ".tmp"):
        if os.path.lexists(x):
            sh(["rm", "-rf", "--one-file-system", "--", x])
    return False


def ensure_promote(data, set_dir, here):
    """Builds SET/promote unless built for this set and project; returns its path."""
    d = os.path.join(set_dir, "promote")
    h = hashlib.sha256(f"{PROMOTE_LAYOUT} {PNPM_VERSION}".encode())
    for name in PROJECT_FILES[:3]:
        with open(os.path.join(here, PROMOTE_PROJECT, name), "rb") as f:
            h.update(f.read())
    stamp = sub_stamp(set_dir, h.hexdigest())
    if fresh_dir(d, stamp):
        return d
    pnpm = ensure_pnpm(data)
    tmp = d + ".tmp"
    store, seed, delta = (os.path.join(tmp, x) for x in ("store", "seed", "delta"))
    os.makedirs(seed)
    for name in PROJECT_FILES[:3]:
        shutil.copy2(os.path.join(here, PROMOTE_PROJECT, name), seed)
    log(f"building {d}: pnpm install of {PROMOTE_PROJECT} from the npm registry into a copy "
        "of the store")
    base_store = os.path.join(set_dir, "base", "store")
    sh(["cp", "-a", base_store, store])
    project = os.path.join(tmp, "project")
    shutil.copytree(seed, project)
    sh([pnpm, "install", "--frozen-lockfile", "--store-dir", store, "--reporter=append-only"],
       cwd=project, env=pnpm_env(os.path.join(tmp, "home")), stdout=subprocess.DEVNULL)
    index = os.path.join("v11", "index.db")
    for side in ("-wal", "-shm"):
        if os.path.exists(os.path.join(store, index + side)):
            raise SystemExit(f"bench: pnpm left {index}{side} behind in {store}")
    files = os.path.join(store, "v11", "files")
    added = 0
    for dirpath, dirnames, filenames in os.walk(files):
        for fn in filenames:
            rel = os.path.relpath(os.path.join(dirpath, fn), store)
            if os.path.lexists(os.path.join(base_store, rel)):
                continue
            os.makedirs(os.path.dirname(os.path.join(delta, rel)), exist_ok=True)
            os.link(os.path.join(store, rel), os.path.join(delta, rel))
            added += 1
    if added == 0:
        raise SystemExit(f"bench: {PROMOTE_PROJECT} added nothing to the store: its packages "
                         "are in the base already")
    os.link(os.path.join(store, index), os.path.join(delta, index))
    for x in (store, project):
        sh(["rm", "-rf", "--one-file-system", "--", x])
    with open(os.path.join(tmp, "stamp"), "w") as f:
        f.write(stamp + "\n")
    os.rename(tmp, d)
    log(f"{d}: {added} new content files")
    return d


def depth_share(rel):
    return int.from_bytes(hashlib.blake2b(rel.encode(), digest_size=4).digest(),
                          "little") % DEPTH_SHARES


def ensure_depth(set_dir):
    """Builds SET/depth unless built for this set; returns its path."""
    d = os.path.join(set_dir, "depth")
    stamp = sub_stamp(set_dir, f"depth {DEPTH_LAYOUT} {DEPTHS} {DEPTH_SHARES}")
    if fresh_dir(d, stamp):
        return d
    tmp = d + ".tmp"
    os.makedirs(tmp)
    log(f"building {d}: the store split into generations of 1, 8 and 32-layer bases")
    src = os.path.join(tmp, "lower1")
    sh(["cp", "-a", os.path.join(set_dir, "base", "store"), src])
    state = os.path.join(tmp, "state")
    os.makedirs(os.path.join(state, "bases"), mode=0o700)
    os.chmod(state, 0o700)
    layers = {}  # (depth, share or "bottom") -> root
    for depth in DEPTHS[1:]:
        layers[depth, "bottom"] = os.path.join(tmp, f"lower{depth}")
        view = os.path.join(state, "bases", f"d{depth}")
        os.makedirs(os.path.join(view, "gens"), mode=0o755)
        os.makedirs(os.path.join(view, "tmp"), mode=0o700)
        names = [f"G{s:06d}" for s in range(1, depth)]
        for s, name in zip(range(1, depth), names):
            layers[depth, s] = os.path.join(view, "gens", name)
        with open(os.path.join(view, "stack"), "w") as f:
            f.write("jobfs-stack 1\n" + "".join(n + "\n" for n in reversed(names)))

    def place(root, rel, st, is_dir):
        path = os.path.join(root, rel) if rel != "." else root
        if is_dir:
            os.makedirs(path, exist_ok=True)
            os.chmod(path, st.st_mode & 0o7777)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.link(os.path.join(src, rel), path, follow_symlinks=False)

    index = os.path.join("v11", "index.db")
    for dirpath, dirnames, filenames in os.walk(src):
        # a symlink to a directory (pnpm's projects/) is linked as it is, like a file
        filenames += [x for x in dirnames if os.path.islink(os.path.join(dirpath, x))]
        dirnames[:] = sorted(x for x in dirnames if x not in filenames)
        rel_dir = os.path.relpath(dirpath, src)
        in_files = rel_dir == os.path.join("v11", "files") or \
            rel_dir.startswith(os.path.join("v11", "files") + os.sep)
        st = os.lstat(dirpath)
        for (depth, share), root in layers.items():
            # a bottom layer holds every directory; a generation the path down to its files
            if share == "bottom" or rel_dir in (".", "v11"):
                place(root, rel_dir, st, True)
        for fn in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, fn))
            fst = os.lstat(os.path.join(src, rel))
            s = depth_share(rel) if in_files else None
            for (depth, share), root in layers.items():
                if rel == index or (share == "bottom" and (s is None or s == 0 or s >= depth)) \
                        or (share != "bottom" and s == share):
                    place(root, rel, fst, False)
    # directory times as in the source, children first (adding entries moved them)
    for (depth, share), root in list(layers.items()) + [((1, "bottom"), src)]:
        for dirpath, _, _ in os.walk(root, topdown=False):
            rel = os.path.relpath(dirpath, root)
            st = os.lstat(os.path.join(src, rel))
            os.utime(dirpath, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    with open(os.path.join(tmp, "stamp"), "w") as f:
        f.write(stamp + "\n")
    os.rename(tmp, d)
    return d


def depth_layers(depth_dir, depth):
    """The layers of an N-generation base, top first: its generations, then its bottom."""
    bottom = os.path.join(depth_dir, f"lower{depth}")
    if depth == 1:
        return [bottom]
    gens = os.path.join(depth_dir, "state", "bases", f"d{depth}", "gens")
    return [os.path.join(gens, f"G{s:06d}") for s in range(depth - 1, 0, -1)] + [bottom]


def describe_promote(d):
    """Counts for the report: what the promote cells' job writes."""
    files, nbytes = 0, 0
    for dirpath, _, filenames in os.walk(os.path.join(d, "delta")):
        for fn in filenames:
            files += 1
            nbytes += os.lstat(os.path.join(dirpath, fn)).st_size
    with open(os.path.join(d, "seed", "pnpm-lock.yaml")) as f:
        text = f.read()
    packages = text.split("\npackages:\n", 1)[1].split("\nsnapshots:\n", 1)[0]
    npkgs = sum(1 for line in packages.splitlines()
                if line.startswith("  ") and not line.startswith("   "))
    return dict(files=files, bytes=nbytes, lockfile_packages=npkgs,
                new_packages=index_rows(os.path.join(d, "delta", "v11", "index.db")) -
                index_rows(os.path.join(os.path.dirname(d), "base", "store", "v11", "index.db")))


def index_rows(path):
    """Rows of pnpm's package_index: one per package in the store."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return db.execute("SELECT count(*) FROM package_index").fetchone()[0]
    finally:
        db.close()
