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
import shutil
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


def manifest(root):
    """Everything a contender could change in the base, content hashed once per inode."""
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
            elif os.path.isfile(path):
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


def verify(data_set):
    """None if the base is exactly as built, else a one-line description of the first change."""
    with open(os.path.join(data_set, "manifest.json")) as f:
        want = json.load(f)
    have = manifest(os.path.join(data_set, "base"))
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
