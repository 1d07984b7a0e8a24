"""What a job does inside its view, one function per timed workload.

Each takes the view's root (and the benchmark, for its data and tools) and raises on failure: a
workload that fails is reported as failed, never timed.
"""

import os
import random
import subprocess

from data import pnpm_env


class WorkloadError(Exception):
    pass


def check(argv, **kw):
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines()
        raise WorkloadError(f"{os.path.basename(argv[0])} exited {p.returncode}: "
                            f"{lines[-1] if lines else 'no message'}")


def shell(script, **kw):
    check(["bash", "-o", "pipefail", "-c", script], **kw)


def find_stat(bench, view):
    """Stat storm: every entry of the view, with its size (one lstat each)."""
    check(["find", view, "-printf", "%s %p\n"])


def read_all(bench, view):
    """Every regular file of the store and the installed project, read whole, each file once:
    node_modules holds hard links to the store's files, and a name whose inode number was seen
    already is skipped (xargs batches the names, cat reads each file sequentially)."""
    shell(f'find "{view}/store" "{view}/app" -type f -printf "%i %p\\0" '
          "| awk -v RS='\\0' -v ORS='\\0' '!seen[$1]++ { sub(/^[0-9]+ /, \"\"); print }' "
          "| xargs -0 -r cat > /dev/null")


def read_large(bench, view):
    """Sequential read of the big lower file."""
    shell(f'cat "{view}/large/big" > /dev/null')


def compile_tsc(bench, view):
    """tsc compiles rxjs's TypeScript sources (from node_modules) into app/out. rxjs's config is
    incremental, and its build info would land outside the view (out/../../../, relative to the
    rootDir), where the next job's tsc would find it and emit nothing: not incremental here."""
    app = os.path.join(view, "app")
    out = os.path.join(app, "out")
    check(["rm", "-rf", out])
    check(["node", "node_modules/typescript/bin/tsc", "-p", "tsconfig.bench.json",
           "--incremental", "false"], cwd=app)
    emitted = sum(len([f for f in files if f.endswith(".js")]) for _, _, files in os.walk(out))
    if emitted < 100:
        raise WorkloadError(f"tsc emitted {emitted} JavaScript files, expected hundreds")


def pnpm_install(bench, view, project="seed"):
    """The seed's job: an offline, frozen-lockfile install with the store inside the view."""
    cwd = os.path.join(view, project)
    check([bench.pnpm, "install", "--offline", "--frozen-lockfile", "--store-dir",
           os.path.join(view, "store"), "--reporter=silent"],
          cwd=cwd, env=pnpm_env(os.path.join(view, "home")))
    if not os.path.isdir(os.path.join(cwd, "node_modules", ".pnpm")):
        raise WorkloadError("pnpm install left no node_modules/.pnpm")


def pnpm_install_second(bench, view):
    """Another project with the same lockfile, installed after the first from the same store."""
    pnpm_install(bench, view, "seed2")


def extract_small(bench, view):
    d = os.path.join(view, "extract")
    os.makedirs(d, exist_ok=True)
    check(["tar", "-xf", bench.small_tar, "-C", d])


def delete_small(bench, view):
    check(["rm", "-rf", os.path.join(view, "extract")])


def append_large(bench, view):
    """Copy-up of whole files: 4 KiB appended to each large lower file."""
    block = b"a" * 4096
    large = os.path.join(view, "large")
    for name in sorted(os.listdir(large)):
        if not name.startswith("f"):
            continue
        fd = os.open(os.path.join(large, name), os.O_WRONLY | os.O_APPEND)
        try:
            if os.write(fd, block) != len(block):
                raise WorkloadError(f"short append to {name}")
        finally:
            os.close(fd)


RANDOM_WRITES = 4096


def random_writes(bench, view):
    """4 KiB writes at random aligned offsets of the big lower file (copied up first), fsynced."""
    path = os.path.join(view, "large", "big")
    size = os.path.getsize(path)
    rng = random.Random(4096)
    block = bytes(rng.getrandbits(8) for _ in range(4096))
    fd = os.open(path, os.O_RDWR)
    try:
        for _ in range(RANDOM_WRITES):
            off = rng.randrange(size // 4096) * 4096
            if os.pwrite(fd, block, off) != 4096:
                raise WorkloadError("short write")
        os.fsync(fd)
    finally:
        os.close(fd)


def job(bench, view):
    """The work of one job in the concurrency workload: an offline install of a smaller project
    (seed-jobs) from the same store, so that four at once fit the time of the full run."""
    pnpm_install(bench, view, "seed-jobs")


def add_packages(bench, view):
    """The promote cells' job: what `pnpm install` of scripts/bench/project-promote writes into
    the store (its new content files and the grown index.db), replayed from the data set into the
    store's view, offline."""
    check(["cp", "-a", os.path.join(bench.promote_dir, "delta") + "/.", view])


def pnpm_install_promoted(bench, view):
    """After a promote: an offline install of project-promote from a store view that mounts the
    new generation. pnpm fails if the promoted index names files the store lacks."""
    work = os.path.join(bench.work, "promote-check")
    check(["rm", "-rf", work])
    os.makedirs(work)
    project, home = os.path.join(work, "project"), os.path.join(work, "home")
    check(["cp", "-a", os.path.join(bench.promote_dir, "seed"), project])
    # pnpm's metadata cache from the online install: --offline resolves from it
    check(["cp", "-a", os.path.join(bench.promote_dir, "home"), home])
    check([bench.pnpm, "install", "--offline", "--frozen-lockfile", "--store-dir", view,
           "--reporter=silent"], cwd=project, env=pnpm_env(home))
    installed = os.listdir(os.path.join(project, "node_modules", ".pnpm"))
    check(["rm", "-rf", work])
    if not any(x.startswith("mocha@") for x in installed):
        raise WorkloadError("pnpm install from the promoted store installed no mocha")


def find_listing(bench, view, out):
    """find with sizes, as find_stat, its listing kept in out (type, size, path in the view)."""
    shell(f'find "{view}" -printf "%y %s %P\\n" > "{out}"')


def listing_differs(path, want):
    """None if the listing in path names the entries of want (a set of lines as find_listing
    writes them), with the same types and file sizes; else the first difference. A directory's
    size is left out: it depends on how the entries are spread over the layers."""
    have = set(listing_lines(path))
    for line in sorted(have ^ want):
        return f"{'extra' if line in have else 'missing'}: {line}"
    return None


def listing_lines(path):
    with open(path, errors="surrogateescape") as f:
        for line in f:
            kind, size, rel = line.rstrip("\n").split(" ", 2)
            yield f"{kind} {'-' if kind == 'd' else size} {rel}"
