"""The systems the benchmark compares: how each one gives a job its own view of the base.

Every contender has the same shape: prepare() does untimed set-up, mount() returns the view's root
(the benchmark times it), unmount() takes the view down and removes what the job wrote (timed as
"unmount + gc"), and upper()/daemon_pid() let the benchmark weigh the job's writes and the daemon.
Overlays also mount a stack of layers (mount_depth(), for lookup cost against stack depth); jobfs
alone promotes (mount_promote(), mark_ok(), promote()).
"""

import json
import os
import shutil
import subprocess
import time

import data


class ContenderError(Exception):
    pass


def run(argv, **kw):
    """Runs argv; a failure raises ContenderError with the command's own message."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise ContenderError(f"{os.path.basename(argv[0])} exited {p.returncode}: "
                             f"{msg[-1] if msg else 'no message'}")
    return p.stdout


def mountinfo_has(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4].replace("\\040", " ") == path:
                return True
    return False


def remove_tree(path):
    """rm -rf that refuses to cross into a mount (a view left mounted must not be emptied)."""
    if not os.path.lexists(path):
        return
    run(["rm", "-rf", "--one-file-system", "--", path])


class Contender:
    name = ""          # short key, used in file names and --contenders
    label = ""         # column heading
    has_mount = True   # False: mount/unmount are not part of what it costs (the plain directory)
    can_stack = False  # mounts several lower layers (mount_depth)
    can_promote = False

    def __init__(self, bench):
        self.bench = bench
        self.jobs_dir = os.path.join(bench.work, self.name)

    def available(self):
        return None  # or the reason it cannot run

    def slot_dir(self, slot):
        return os.path.join(self.jobs_dir, str(slot))

    def prepare(self, slot, base):
        d = self.slot_dir(slot)
        remove_tree(d)
        os.makedirs(d)

    def mount(self, slot, base):
        raise NotImplementedError

    def mount_depth(self, slot, depth_dir, depth):
        """A view of the stack of depth layers in depth_dir (data.depth_layers: top first)."""
        return self.mount_layers(slot, data.depth_layers(depth_dir, depth))

    def mount_layers(self, slot, layers):
        raise NotImplementedError

    def unmount(self, slot):
        raise NotImplementedError

    def upper(self, slot):
        return None

    def daemon_pid(self, slot):
        return None

    def cleanup(self):
        """Best effort after a failure: nothing of ours stays mounted or running."""
        if not os.path.isdir(self.jobs_dir):
            return
        for slot in os.listdir(self.jobs_dir):
            if not slot.isdigit():
                continue
            try:
                self.unmount(slot)
            except Exception:
                pass
        remove_tree(self.jobs_dir)


class Plain(Contender):
    """The floor: the job works in a plain directory. One copy of the base is made beforehand
    (untimed); each job gets a hard-linked clone of it (`cp -al`), which reads and writes like any
    directory of that filesystem and costs seconds instead of a full copy."""
    name, label, has_mount = "plain", "plain dir", False

    def prepare(self, slot, base):
        super().prepare(slot, base)
        master = os.path.join(self.jobs_dir, "master")
        if not os.path.isdir(master):
            run(["cp", "-a", base, master + ".tmp"])
            os.rename(master + ".tmp", master)
        run(["cp", "-al", master, os.path.join(self.slot_dir(slot), "root")])

    def mount(self, slot, base):
        return os.path.join(self.slot_dir(slot), "root")

    def unmount(self, slot):
        remove_tree(self.slot_dir(slot))


class CopyAll(Contender):
    """Today's isolation: a full copy of the base per job; the copy is its mount time."""
    name, label = "cp", "cp -a"

    def mount(self, slot, base):
        root = os.path.join(self.slot_dir(slot), "root")
        run(["cp", "-a", base, root])
        return root

    def unmount(self, slot):
        remove_tree(self.slot_dir(slot))

    def upper(self, slot):
        return os.path.join(self.slot_dir(slot), "root")


class KernelOverlay(Contender):
    name, label, can_stack = "overlay", "kernel overlayfs", True

    def available(self):
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                subprocess.run(["modprobe", "overlay"], stderr=subprocess.DEVNULL)
        with open("/proc/filesystems") as f:
            return None if "overlay" in f.read() else "the kernel has no overlay filesystem"

    def mount(self, slot, base):
        return self.mount_layers(slot, [base])

    def mount_layers(self, slot, layers):
        d = self.slot_dir(slot)
        for sub in ("upper", "work", "mnt"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        mnt = os.path.join(d, "mnt")
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={':'.join(layers)},upperdir={d}/upper,workdir={d}/work", mnt])
        return mnt

    def unmount(self, slot):
        d = self.slot_dir(slot)
        mnt = os.path.join(d, "mnt")
        if mountinfo_has(mnt):
            run(["umount", mnt])
        remove_tree(d)

    def upper(self, slot):
        return os.path.join(self.slot_dir(slot), "upper")


class FuseDaemon(Contender):
    """A FUSE overlay started in the foreground by us, so we know its PID and can wait for it."""
    can_stack = True

    def __init__(self, bench):
        super().__init__(bench)
        self.procs = {}

    def command(self, layers, upper, work, mnt):
        raise NotImplementedError

    def mount(self, slot, base):
        return self.mount_layers(slot, [base])

    def mount_layers(self, slot, layers):
        d = self.slot_dir(slot)
        for sub in ("upper", "work", "mnt"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        mnt = os.path.join(d, "mnt")
        log = open(os.path.join(d, "daemon.log"), "w")
        p = subprocess.Popen(self.command(layers, f"{d}/upper", f"{d}/work", mnt),
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs[str(slot)] = p
        deadline = time.monotonic() + 30
        while not mountinfo_has(mnt):
            if p.poll() is not None:
                raise ContenderError(f"{self.label} exited {p.returncode} before mounting: "
                                     f"{self.log_tail(slot)}")
            if time.monotonic() > deadline:
                raise ContenderError(f"{self.label} did not mount within 30 s")
            time.sleep(0.0005)
        return mnt

    def log_tail(self, slot):
        try:
            with open(os.path.join(self.slot_dir(slot), "daemon.log")) as f:
                lines = f.read().strip().splitlines()
            return lines[-1] if lines else "no message"
        except OSError:
            return "no log"

    def unmount(self, slot):
        d = self.slot_dir(slot)
        mnt = os.path.join(d, "mnt")
        if mountinfo_has(mnt):
            run(["umount", mnt])
        p = self.procs.pop(str(slot), None)
        if p is not None:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()  # our own child, by PID
                p.wait()
        remove_tree(d)

    def upper(self, slot):
        return os.path.join(self.slot_dir(slot), "upper")

    def daemon_pid(self, slot):
        p = self.procs.get(str(slot))
        return p.pid if p else None


class FuseOverlayfs(FuseDaemon):
    name, label = "fuse-overlayfs", "fuse-overlayfs"

    def available(self):
        return None if shutil.which("fuse-overlayfs") else "fuse-overlayfs is not installed"

    def command(self, layers, upper, work, mnt):
        return ["fuse-overlayfs", "-f", "-o",
                f"lowerdir={':'.join(layers)},upperdir={upper},workdir={work}", mnt]


class UnionfsFuse(FuseDaemon):
    name, label = "unionfs", "unionfs-fuse"

    def available(self):
        return None if shutil.which("unionfs") else "unionfs-fuse is not installed"

    def command(self, layers, upper, work, mnt):
        branches = ":".join([f"{upper}=RW"] + [f"{x}=RO" for x in layers])
        return ["unionfs", "-f", "-o", "cow,use_ino", branches, mnt]


class Jobfs(Contender):
    """jobfs through its CLI, as a runner's hook uses it: `jobfs mount` / `jobfs umount --collect`."""
    name, label, can_stack, can_promote = "jobfs", "jobfs", True, True
    volatile = False   # the views' policy says volatile: true (JobfsVolatile)

    def __init__(self, bench):
        super().__init__(bench)
        self.policies = {}
        self.binary = bench.jobfs

    def available(self):
        return None if os.access(self.binary, os.X_OK) else f"{self.binary} is not built"

    def state_dir(self):
        return os.path.join(self.jobs_dir, "state")

    def promote_state_dir(self):
        """The promote cells' own state: their generations must not sit under the main view."""
        return os.path.join(self.jobs_dir, "promote-state")

    def job_id(self, slot):
        return f"bench-{slot}"

    def policy_for(self, base, state=None, view="base", promote=None):
        """A policy with one view over base (the main cells' unless told otherwise)."""
        key = (base, state, view, promote)
        if key not in self.policies:
            path = os.path.join(self.jobs_dir, f"policy-{len(self.policies)}.yaml")
            os.makedirs(self.jobs_dir, exist_ok=True)
            with open(path, "w") as f:
                f.write("version: 1\n"
                        f"state_dir: {state or self.state_dir()}\n"
                        "views:\n"
                        f"  - name: {view}\n"
                        f"    lower: [{base}]\n"
                        f"    target: {self.jobs_dir}/mnt/${{JOB_ID}}\n" +
                        (f"    promote: {promote}\n" if promote else "") +
                        ("    volatile: true\n" if self.volatile else ""))
            self.policies[key] = path
        return self.policies[key]

    def prepare(self, slot, base):
        self.policy_for(base)

    def mount_with(self, slot, policy):
        self.current_policy = policy
        run([self.binary, "mount", "--job", self.job_id(slot), "--policy", policy])
        return os.path.join(self.jobs_dir, "mnt", self.job_id(slot))

    def mount(self, slot, base):
        return self.mount_with(slot, self.policy_for(base))

    def mount_depth(self, slot, depth_dir, depth):
        """The view dN of the depth data's state dir: its stack of N-1 generations over lowerN."""
        return self.mount_with(slot, self.policy_for(os.path.join(depth_dir, f"lower{depth}"),
                                                     os.path.join(depth_dir, "state"),
                                                     f"d{depth}"))

    def mount_promote(self, slot, store):
        """A pnpm-store view over store, in the promote cells' state dir."""
        return self.mount_with(slot, self.policy_for(store, self.promote_state_dir(), "store",
                                                     "pnpm-store"))

    def promote_layer(self, slot):
        return os.path.join(self.promote_state_dir(), "jobs", self.job_id(slot), "views",
                            "store", "upper")

    def mark_ok(self, slot):
        run([self.binary, "mark-ok", "--job", self.job_id(slot), "--policy",
             self.current_policy])

    def promote(self, slot):
        """`jobfs promote --json` of an unmounted job of mount_promote(): its report."""
        out = run([self.binary, "promote", "--job", self.job_id(slot), "--json", "--policy",
                   self.current_policy])
        try:
            return json.loads(out)
        except ValueError as e:
            raise ContenderError(f"jobfs promote --json printed no JSON: {e}")

    def unmount(self, slot, collect=True):
        policy = getattr(self, "current_policy", None)
        if policy is None:
            return
        run([self.binary, "umount", "--job", self.job_id(slot), "--policy", policy] +
            (["--collect"] if collect else []))

    def upper(self, slot):
        return os.path.join(self.state_dir(), "jobs", self.job_id(slot), "views", "base", "upper")

    def daemon_pid(self, slot):
        out = run([self.binary, "ls", "--json", "--policy", self.current_policy])
        for job in json.loads(out):
            if job.get("id") == self.job_id(slot):
                return job.get("pid")
        return None

    def cleanup(self):
        if not os.path.isdir(self.jobs_dir):
            return
        for policy in self.policies.values():
            out = subprocess.run([self.binary, "ls", "--json", "--policy", policy],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                jobs = json.loads(out.stdout)
            except ValueError:
                jobs = []
            for job in jobs:
                subprocess.run([self.binary, "umount", "--job", job["id"], "--kill",
                                "--collect", "--policy", policy],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        remove_tree(self.jobs_dir)
        self.policies = {}  # their files went with jobs_dir


class JobfsBaseline(Jobfs):
    """Another jobfs build (--baseline-jobfs), to measure a change against in the same run."""
    name, label = "jobfs-baseline", "jobfs, baseline"

    def __init__(self, bench):
        super().__init__(bench)
        self.binary = bench.args.baseline_jobfs or ""
        if bench.args.baseline_label:
            self.label = bench.args.baseline_label

    def available(self):
        if not self.binary:
            return "no --baseline-jobfs given"
        return super().available()


class JobfsVolatile(Jobfs):
    """The same jobfs with a volatile view (policy `volatile: true`): nothing synced, copy-ups
    included, as fuse-overlayfs never syncs; for a cache a job fills and throws away or promotes.
    The main cells only: promote and the stack-depth cells are the durable contender's."""
    name, label, can_stack, can_promote = "jobfs-volatile", "jobfs, volatile view", False, False
    volatile = True


ALL = [Plain, CopyAll, KernelOverlay, FuseOverlayfs, UnionfsFuse, JobfsBaseline, JobfsVolatile,
       Jobfs]
