#!/usr/bin/env python3
"""jobfs benchmark: jobfs side by side with kernel overlayfs, fuse-overlayfs, unionfs-fuse, a plain
directory and `cp -a`, in one run, on a real pnpm store and node_modules tree.

Run it through scripts/bench/run, which installs what it needs and builds jobfs first.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import contenders  # noqa: E402
import data  # noqa: E402
import report  # noqa: E402
import workloads as wl  # noqa: E402

# Timed cells, in report order: key, label, unit. Cold cells are measured after dropping the page,
# dentry and inode caches; warm ones right after the same work (or with the base in the page cache).
CELLS = [
    ("mount_cold", "mount, cold", "s"),
    ("mount_warm", "mount, warm", "s"),
    ("mount_10x", "mount, 10x base", "s"),
    ("umount", "unmount + gc, after the workloads", "s"),
    ("find_cold", "find with sizes, cold", "s"),
    ("find_warm", "find with sizes, warm", "s"),
    ("read_cold", "read every file, cold", "s"),
    ("read_warm", "read every file, warm", "s"),
    ("large_cold", "sequential read of a large lower file, cold", "s"),
    ("large_warm", "sequential read of a large lower file, warm", "s"),
    ("compile_warm", "tsc over rxjs's sources, warm", "s"),
    ("pnpm_cold", "pnpm install --offline, cold", "s"),
    ("pnpm_second", "pnpm install --offline, a second project, warm", "s"),
    ("extract", "extract small files", "s"),
    ("delete", "delete those files", "s"),
    ("append_cold", "append to each large lower file, cold", "s"),
    ("randw_cold", "random 4 KiB writes into a lower file, cold", "s"),
    ("jobs4", "four jobs at once (mount, pnpm install of a 75-package project, unmount + gc)",
     "s"),
    ("promote", "jobfs promote of a job's pnpm install of new packages (pnpm-store view), cold",
     "s"),
    ("promote_cp", "the same job's layer copied with cp -a, then synced: no comparison, no index "
     "merge, cold", "s"),
] + [(f"depth{n}_{t}", f"find with sizes over a store of {n} generation{'s' if n > 1 else ''}, "
      f"{t}", "s") for t in ("cold", "warm") for n in data.DEPTHS]
# Measured, not timed.
FIGURES = [
    ("upper_pnpm", "bytes pnpm install (cold) added to the job's layer", "bytes"),
    ("rss_peak", "daemon peak RSS", "bytes"),
    ("rss_inode", "daemon RSS per cached inode, after a cold stat storm of the whole view", "B"),
    ("rss_forget", "daemon RSS after the kernel forgot its inodes, as a share of the storm's", "%"),
    ("promote_rows", "rows that promote merged into the store's index.db (package_index and "
     "package_index_alias)", "count"),
    ("promote_files", "content files that promote added to the new generation", "count"),
    ("promote_bytes", "bytes of the new generation (added files and the merged index.db)",
     "bytes"),
]
QUICK_SKIP = {"mount_10x"}
PROMOTE_CELLS = {"promote", "promote_cp", "promote_rows", "promote_files", "promote_bytes"}
DEPTH_CELLS = {f"depth{n}_{t}" for t in ("cold", "warm") for n in data.DEPTHS}
MAIN_CELLS = {k for k, _, _ in CELLS + FIGURES} - PROMOTE_CELLS - DEPTH_CELLS
# --only takes these names for their groups of cells.
GROUPS = {"promotion": [k for k, _, _ in CELLS + FIGURES if k in PROMOTE_CELLS],
          "depth": [k for k, _, _ in CELLS + FIGURES if k in DEPTH_CELLS]}
# Cells shown with their ratio to another cell of the same contender and run.
REFS = {"promote": "promote_cp",
        **{f"depth{n}_{t}": f"depth1_{t}" for t in ("cold", "warm") for n in data.DEPTHS[1:]}}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def du_bytes(path):
    if not path or not os.path.exists(path):
        return None
    out = subprocess.run(["du", "-s", "-B1", "--one-file-system", path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    return int(out.split()[0]) if out else None


def proc_status_bytes(pid, field):
    """A /proc/PID/status memory figure (VmHWM, VmRSS) in bytes, or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss(pid):
    return proc_status_bytes(pid, "VmHWM")


class Bench:
    def __init__(self, args):
        self.args = args
        self.data = args.data
        self.jobfs = args.jobfs
        self.work = os.path.join(args.data, "work")
        self.pnpm = data.pnpm_path(args.data)
        self.samples = {}
        self.errors = {}
        self.base_check = {}
        self.base_changed = False  # a run changed the base: later runs are not checked
        self.wanted = [c for c, _, _ in CELLS + FIGURES
                       if not (args.quick and c in QUICK_SKIP)
                       and (not args.only or c in args.only)]

    def want(self, cell):
        return cell in self.wanted

    def add(self, c, cell, value):
        if self.args.verbose:
            unit = next(u for k, _, u in CELLS + FIGURES if k == cell)
            log(f"{c.label}: {cell} {report.fmt_value(value, unit)}")
        self.samples.setdefault(c.name, {}).setdefault(cell, []).append(value)

    def fail(self, c, cell, err):
        msg = f"{cell}: {err}"
        log(f"{c.label}: {msg}")
        errs = self.errors.setdefault(c.name, [])
        if msg not in errs:
            errs.append(msg)
        self.samples.setdefault(c.name, {}).setdefault(cell, []).append(None)

    def timed(self, c, cell, fn, *a, cold=False):
        """Times fn(*a) into cell; returns its result, or raises after recording the failure."""
        if cold:
            drop_caches()
        t0 = time.perf_counter()
        try:
            r = fn(*a)
        except (wl.WorkloadError, contenders.ContenderError, OSError) as e:
            self.fail(c, cell, e)
            raise
        self.add(c, cell, time.perf_counter() - t0)
        return r

    def invalidate(self, c, cell, err):
        """The last sample of cell was timed, but what it did turned out wrong: a failure."""
        samples = self.samples.get(c.name, {}).get(cell)
        if samples:
            samples.pop()
        self.fail(c, cell, err)

    def measures(self, c):
        """Whether contender c has a wanted cell to measure."""
        wanted = set(self.wanted)
        return bool(wanted & MAIN_CELLS or (c.can_promote and wanted & PROMOTE_CELLS)
                    or (c.can_stack and wanted & DEPTH_CELLS))

    def step(self, c, cell, fn, view, cold=False):
        if not self.want(cell):
            return
        try:
            self.timed(c, cell, fn, self, view, cold=cold)
        except (wl.WorkloadError, contenders.ContenderError, OSError):
            pass

    def one_run(self, c):
        wanted = set(self.wanted)
        if wanted & MAIN_CELLS:
            self.main_cells(c)
        if c.can_promote and wanted & PROMOTE_CELLS:
            self.promote_cells(c)
        if c.can_stack and wanted & DEPTH_CELLS:
            self.depth_cells(c)

    def main_cells(self, c):
        base = os.path.join(self.set_dir, "base")
        # View 1: everything cold first, then its warm repeat.
        c.prepare(0, base)
        drop_caches()
        view = self.timed(c, "mount_cold", c.mount, 0, base)
        try:
            pid = c.daemon_pid(0) if self.want("rss_inode") else None
            rss_mounted = proc_status_bytes(pid, "VmRSS")
            self.step(c, "find_cold", wl.find_stat, view, cold=True)
            rss_storm = proc_status_bytes(pid, "VmRSS")
            self.step(c, "find_warm", wl.find_stat, view)
            if rss_mounted and rss_storm:
                self.memory_after_storm(c, pid, rss_mounted, rss_storm)
            self.step(c, "read_cold", wl.read_all, view, cold=True)
            self.step(c, "read_warm", wl.read_all, view)
            self.step(c, "large_cold", wl.read_large, view, cold=True)
            self.step(c, "large_warm", wl.read_large, view)
            self.step(c, "compile_warm", wl.compile_tsc, view)  # read_warm warmed its input
            before = du_bytes(c.upper(0))
            self.step(c, "pnpm_cold", wl.pnpm_install, view, cold=True)
            if self.want("upper_pnpm") and before is not None:
                self.add(c, "upper_pnpm", du_bytes(c.upper(0)) - before)
            self.step(c, "pnpm_second", wl.pnpm_install_second, view)
            # A page cache without the last contender's deleted inodes: ext4 without a journal
            # passes over inodes freed in the last minutes while their table blocks are cached,
            # one by one on every new file (recently_deleted), so the previous extract's delete
            # would slow this one down. Then the tarball warm, so extract times the view.
            drop_caches()
            with open(self.small_tar, "rb") as f:
                while f.read(1 << 20):
                    pass
            self.step(c, "extract", wl.extract_small, view)
            self.step(c, "delete", wl.delete_small, view)
            self.step(c, "append_cold", wl.append_large, view, cold=True)
            self.step(c, "randw_cold", wl.random_writes, view)
            if self.want("rss_peak"):
                rss = peak_rss(c.daemon_pid(0))
                if rss:
                    self.add(c, "rss_peak", rss)
        finally:
            self.timed(c, "umount", c.unmount, 0)

        # A new job over a base that is now in the page cache: the mount alone.
        if self.want("mount_warm"):
            c.prepare(0, base)
            try:
                self.timed(c, "mount_warm", c.mount, 0, base)
            finally:
                c.unmount(0)

        if self.want("mount_10x") and c.has_mount and c.name != "cp":
            base10x = os.path.join(self.set_dir, "base10x")
            c.prepare(0, base10x)
            drop_caches()
            try:
                self.timed(c, "mount_10x", c.mount, 0, base10x)
            finally:
                c.unmount(0)

        if self.want("jobs4"):
            self.four_jobs(c, base)

    def promote_cells(self, c):
        """A job mounts a pnpm-store view over the set's store, adds the packages of
        project-promote, is marked ok and unmounted; its layer is copied (promote_cp), then
        promoted (promote). A job mounted after the promote installs those packages offline from
        the new generation: if that fails, so does the promote cell."""
        store = os.path.join(self.set_dir, "base", "store")
        errors = (wl.WorkloadError, contenders.ContenderError, OSError)
        contenders.remove_tree(c.promote_state_dir())
        try:
            try:
                view = c.mount_promote("promote", store)
                try:
                    wl.add_packages(self, view)
                    c.mark_ok("promote")
                finally:
                    c.unmount("promote", collect=False)
            except errors as e:
                for cell in ("promote", "promote_cp"):
                    if self.want(cell):
                        self.fail(c, cell, f"the job: {e}")
                return
            layer = c.promote_layer("promote")
            if self.want("promote_cp"):
                copy = os.path.join(self.work, "promote-cp")
                contenders.remove_tree(copy)
                try:
                    self.timed(c, "promote_cp", copy_synced, layer, copy, cold=True)
                except errors:
                    pass
                contenders.remove_tree(copy)
            try:
                report = self.timed(c, "promote", c.promote, "promote", cold=True)
            except errors:
                return
            try:
                totals, index = promote_summary(report)
            except contenders.ContenderError as e:
                self.invalidate(c, "promote", e)
                return
            bad = []
            if totals.get("conflict", {}).get("count"):
                bad.append(f"{totals['conflict']['count']} conflicts")
            if not totals.get("added", {}).get("count"):
                bad.append("nothing added")
            if not index.get("rows", {}).get("added"):
                bad.append("no index rows merged")
            if bad:
                self.invalidate(c, "promote", "jobfs promote: " + ", ".join(bad))
                return
            if self.want("promote_rows"):
                self.add(c, "promote_rows", index["rows"]["added"])
            if self.want("promote_files"):
                self.add(c, "promote_files", totals["added"]["count"])
            if self.want("promote_bytes"):
                self.add(c, "promote_bytes", totals["added"]["bytes"] +
                         totals.get("merged", {}).get("bytes", 0))
            try:
                view = c.mount_promote("check", store)
                try:
                    wl.pnpm_install_promoted(self, view)
                finally:
                    c.unmount("check")
            except errors as e:
                self.invalidate(c, "promote", f"the next job's offline install failed: {e}")
        finally:
            contenders.remove_tree(c.promote_state_dir())

    def depth_cells(self, c):
        """find with sizes, cold then warm, over a view of the set's store split into 1, 8 and 32
        layers; each listing must name what the store holds, with the same file sizes."""
        errors = (wl.WorkloadError, contenders.ContenderError, OSError)
        listing = os.path.join(self.work, f"listing-{c.name}")
        for depth in data.DEPTHS:
            cells = [k for k in (f"depth{depth}_cold", f"depth{depth}_warm") if self.want(k)]
            if not cells:
                continue
            c.prepare(0, data.depth_layers(self.depth_dir, depth)[-1])
            drop_caches()
            try:
                view = c.mount_depth(0, self.depth_dir, depth)
            except errors as e:
                for k in cells:
                    self.fail(c, k, e)
                continue
            try:
                if not self.want(f"depth{depth}_cold"):
                    try:
                        wl.find_listing(self, view, listing)  # warm means after the cold find
                    except errors as e:
                        for k in cells:
                            self.fail(c, k, e)
                        continue
                for k in cells:
                    try:
                        self.timed(c, k, wl.find_listing, self, view, listing,
                                   cold=k.endswith("_cold"))
                    except errors:
                        continue
                    diff = wl.listing_differs(listing, self.depth_want)
                    if diff:
                        self.invalidate(c, k, f"the view lists other entries than the store: "
                                        f"{diff}")
            finally:
                if os.path.exists(listing):
                    os.unlink(listing)
                c.unmount(0)

    def memory_after_storm(self, c, pid, rss_mounted, rss_storm):
        """What the daemon holds per inode the kernel caches, and what it gives back once the
        kernel forgets them (dropping the kernel's caches sends the forgets)."""
        self.add(c, "rss_inode", (rss_storm - rss_mounted) / self.entries)
        drop_caches()
        time.sleep(1)  # forgets are asynchronous
        rss = proc_status_bytes(pid, "VmRSS")
        if rss:
            self.add(c, "rss_forget", 100.0 * rss / rss_storm)

    def four_jobs(self, c, base):
        for slot in range(4):
            c.prepare(slot, base)
        errors = []

        def one(slot):
            try:
                view = c.mount(slot, base)
                try:
                    wl.job(self, view)
                finally:
                    c.unmount(slot)
            except Exception as e:  # reported below, on the main thread
                errors.append(e)

        threads = [threading.Thread(target=one, args=(s,)) for s in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.fail(c, "jobs4", errors[0])
        else:
            self.add(c, "jobs4", time.perf_counter() - t0)

    def run_round(self, c, r):
        """Run r of contender c, then a check of the base's metadata (a change through any file
        system moves a ctime), so that a change is pinned on the contender that made it."""
        log(f"{c.label}: run {r + 1} of {self.args.runs}")
        try:
            self.one_run(c)
        except (wl.WorkloadError, contenders.ContenderError, OSError) as e:
            log(f"{c.label}: run {r + 1} stopped: {e}")
            c.cleanup()
        if self.base_changed:
            self.base_check.setdefault(c.name, "not checked: an earlier contender changed it")
            return
        changed = data.verify(self.set_dir, contents=False)
        if changed:
            self.base_changed = True
            self.base_check[c.name] = changed
            log(f"{c.label}: THE BASE CHANGED: {changed}")
        else:
            self.base_check.setdefault(c.name, "unchanged")

    def roundtrip(self):
        """What one FUSE request costs right now (scripts/bench/roundtrip.sh --json: microseconds
        with the daemon free, on the caller's CPU, on the other), or None where it cannot run:
        recorded before and after the runs, since the ratios of request-bound rows follow it."""
        build = os.path.dirname(os.path.dirname(os.path.abspath(self.jobfs)))
        r = subprocess.run(["bash", os.path.join(HERE, "roundtrip.sh"), "--json", "--build", build,
                            "--calls", "5000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            log(f"no round-trip figure: {r.stderr.strip() or r.returncode}")
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            log(f"no round-trip figure: unreadable output '{r.stdout.strip()}'")
            return None

    def check_base_contents(self, active):
        """Once at the end: every file's content against the manifest."""
        if self.base_changed:
            return
        log("checking the base's content against its manifest")
        changed = data.verify(self.set_dir)
        if changed:
            log(f"THE BASE CHANGED: {changed}")
            for c in active:
                self.base_check[c.name] = f"content (after all runs): {changed}"

    def main(self):
        args = self.args
        self.set_dir = data.ensure(self.data, "quick" if args.quick else "full", HERE)
        self.small_tar = os.path.join(self.set_dir, "small.tar")
        described = data.describe(self.set_dir)
        self.entries = described["view_entries"]
        os.makedirs(self.work, exist_ok=True)
        chosen = [cls(self) for cls in contenders.ALL
                  if (not args.contenders or cls.name in args.contenders)
                  and (cls is not contenders.JobfsBaseline or args.baseline_jobfs)]
        chosen = [c for c in chosen if self.measures(c)]
        if any(c.can_promote for c in chosen) and set(self.wanted) & PROMOTE_CELLS:
            self.promote_dir = data.ensure_promote(self.data, self.set_dir, HERE)
            described["promote"] = data.describe_promote(self.promote_dir)
        if any(c.can_stack for c in chosen) and set(self.wanted) & DEPTH_CELLS:
            self.depth_dir = data.ensure_depth(self.set_dir)
            listing = os.path.join(self.work, "listing-store")
            wl.find_listing(self, os.path.join(self.depth_dir, "lower1"), listing)
            self.depth_want = set(wl.listing_lines(listing))
            os.unlink(listing)
            described["depth"] = dict(depths=list(data.DEPTHS), shares=data.DEPTH_SHARES,
                                      entries=len(self.depth_want))
        active = []
        skipped = {}
        for c in chosen:
            why = c.available()
            if why:
                log(f"skipping {c.label}: {why}")
                skipped[c.name] = why
            else:
                active.append(c)
        started = datetime.datetime.now(datetime.timezone.utc)
        cleanup_on_signal(active)
        # The contenders take turns, run by run, rather than each doing all its runs at once:
        # on this kind of machine a wake-up across CPUs costs 2x to 10x more in some minutes
        # than in others (scripts/bench/roundtrip.sh), and every FUSE request is one, so a
        # contender measured in one bad stretch would be off in every run.
        roundtrip = {"before": self.roundtrip()}
        try:
            for r in range(args.runs):
                for c in active:
                    self.run_round(c, r)
            self.check_base_contents(active)
        finally:
            for c in active:
                c.cleanup()
        finished = datetime.datetime.now(datetime.timezone.utc)
        roundtrip["after"] = self.roundtrip()
        result = dict(
            started=started.isoformat(timespec="seconds"),
            minutes=round((finished - started).total_seconds() / 60, 1),
            mode="quick" if args.quick else "full",
            runs=args.runs,
            machine=machine(self.data),
            versions=versions(self),
            data=described,
            workloads=dict(random_writes=wl.RANDOM_WRITES,
                           **{k: v for k, v in data.SETS["quick" if args.quick else "full"].items()
                              if k != "project"}),
            cells=[dict(key=k, label=lbl, unit=u, ref=REFS.get(k)) for k, lbl, u in CELLS + FIGURES
                   if self.want(k)],
            contenders=[dict(key=c.name, label=c.label, has_mount=c.has_mount) for c in active],
            skipped=skipped,
            samples=self.samples,
            errors=self.errors,
            base_check=self.base_check,
            roundtrip=roundtrip,
        )
        out = args.out or os.path.join(self.data, "results",
                                       started.strftime("%Y%m%d-%H%M%S") + "-" + result["mode"])
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(result, f, indent=1)
        report.write(result, out)
        log(f"results in {out} ({result['minutes']} min)")
        print(open(os.path.join(out, "table.md")).read())
        if args.publish:
            report.publish(out, os.path.dirname(os.path.dirname(HERE)))
        bad = [k for k, v in self.base_check.items() if v != "unchanged"]
        return 1 if bad else 0


def copy_synced(src, dst):
    """cp -a of a job's layer, then a sync of the filesystem, as promote syncs its generation."""
    contenders.run(["cp", "-a", src, dst])
    contenders.run(["sync", "-f", dst])


def promote_summary(report):
    """The totals by action of the one view of a `jobfs promote --json` report, and its item for
    the store's index."""
    try:
        view = report["views"][0]
        index = next((i for i in view.get("items", []) if i.get("path") == "v11/index.db"), {})
        return dict(view["totals"]), index
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise contenders.ContenderError(f"jobfs promote --json: unexpected report ({e!r})")


def cleanup_on_signal(active):
    def handler(signum, frame):
        log(f"signal {signum}: unmounting and removing every view of this run")
        for c in active:
            try:
                c.cleanup()
            except Exception:
                pass
        sys.exit(128 + signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


def machine(path):
    def read(p):
        try:
            with open(p) as f:
                return f.read()
        except OSError:
            return ""
    cpu = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.machine())
    mem = next((int(line.split()[1]) * 1024 for line in read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal:")), 0)
    fs = subprocess.run(["stat", "-f", "-c", "%T", path], stdout=subprocess.PIPE,
                        text=True).stdout.strip()
    distro = next((line.split("=", 1)[1].strip('"') for line in
                   read("/etc/os-release").splitlines() if line.startswith("PRETTY_NAME=")), "")
    return dict(kernel=platform.release(), cpu=cpu, cores=os.cpu_count(), memory=mem,
                filesystem=fs, distro=distro, host=platform.node())


def versions(bench):
    def first_line(argv):
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            return p.stdout.strip().splitlines()[0] if p.stdout.strip() else ""
        except OSError:
            return ""
    root = os.path.dirname(os.path.dirname(HERE))
    rev = first_line(["git", "-C", root, "describe", "--always", "--dirty"])
    return {
        "jobfs": f"{first_line([bench.jobfs, '--version'])} ({rev})",
        "fuse-overlayfs": first_line(["dpkg-query", "-W", "-f", "${Version}", "fuse-overlayfs"]),
        "unionfs-fuse": first_line(["dpkg-query", "-W", "-f", "${Version}", "unionfs-fuse"]),
        "pnpm": data.PNPM_VERSION,
        "node": first_line(["node", "--version"]),
    }


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/bench/run",
        description="Benchmark jobfs against kernel overlayfs, fuse-overlayfs, unionfs-fuse, a "
                    "plain directory and cp -a on a real pnpm store. Needs root. Timings are "
                    "medians of --runs runs; ratios compare contenders measured in this run.")
    p.add_argument("--quick", action="store_true",
                   help="small data set, one run, fewer cells: a few minutes, for development")
    p.add_argument("--runs", type=int, help="runs per cell (default 3; 1 with --quick)")
    p.add_argument("--data", default=os.environ.get("JOBFS_BENCH_DATA", "/var/tmp/jobfs-bench"),
                   help="where the data set is built once and reused, and scratch space "
                        "(default $JOBFS_BENCH_DATA or /var/tmp/jobfs-bench)")
    p.add_argument("--out", help="results folder (default DATA/results/STAMP-MODE)")
    p.add_argument("--jobfs", required=True, help="the jobfs binary to measure")
    p.add_argument("--contenders", type=lambda s: s.split(","),
                   help="comma-separated subset of: " +
                        ",".join(c.name for c in contenders.ALL))
    p.add_argument("--only", type=lambda s: s.split(","),
                   help="comma-separated subset of cells: " +
                        ",".join(k for k, _, _ in CELLS + FIGURES) + "; or " +
                        " and ".join(GROUPS) + " for all the cells of that group")
    p.add_argument("-v", "--verbose", action="store_true", help="print every sample as it comes")
    p.add_argument("--baseline-jobfs", metavar="BIN",
                   help="another jobfs binary to measure beside this one (e.g. the previous "
                        "release), as the contender jobfs-baseline")
    p.add_argument("--baseline-label", metavar="TEXT", help="its column heading")
    p.add_argument("--publish", action="store_true",
                   help="copy the results to results/bench/ and update README's table")
    a = p.parse_args(argv)
    if a.runs is None:
        a.runs = 1 if a.quick else 3
    if a.runs < 1:
        p.error("--runs must be at least 1")
    names = {c.name for c in contenders.ALL}
    for n in a.contenders or []:
        if n not in names:
            p.error(f"--contenders: unknown contender '{n}'")
    keys = {k for k, _, _ in CELLS + FIGURES}
    if a.only:
        a.only = [k for n in a.only for k in GROUPS.get(n, [n])]
    for n in a.only or []:
        if n not in keys:
            p.error(f"--only: unknown cell '{n}'")
    a.data = os.path.abspath(a.data)
    a.jobfs = os.path.abspath(a.jobfs)
    if a.baseline_jobfs:
        a.baseline_jobfs = os.path.abspath(a.baseline_jobfs)
    return a


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    if os.geteuid() != 0:
        print("bench: needs root (mounts, and dropping caches for cold runs)", file=sys.stderr)
        sys.exit(1)
    sys.exit(Bench(args).main())
