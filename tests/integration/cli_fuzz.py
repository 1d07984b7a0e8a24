#!/usr/bin/env python3
"""The engine of cli_fuzz.sh: runs the real `jobfs` with generated argument vectors and checks
every run. cli_fuzz.sh makes the temp dir, the policies and the cleanup trap; this file only
generates, runs and judges.

Two kinds of vector, from one seeded PRNG (the same seed gives the same vectors):
  structured  a real verb with its own options, each once, in any spelling (--opt V, --opt=V,
              -o V, -oV), values valid or hostile; the outcome is predicted: a hostile value is
              exit 1 naming it, a bad policy exit 2 naming it, otherwise the verb's own codes.
  chaos       verbs, options, values and junk in any order and number; only the invariants below.

Invariants for every run: the exit code is one of cli/exit_codes.h (no signal, no 127); stderr
is empty on success, and an error is one line naming an argument (a usage error adds the "try"
line); nothing appears outside the state dirs and mount dirs of the temp dir; a failed command
leaves no mount; a mount that succeeded is unmounted by `jobfs umount` (exit 0, targets removed,
daemon gone).

usage (from cli_fuzz.sh): cli_fuzz.py JOBFS CT_DIR SEED VECTORS
"""
import json
import os
import random
import re
import subprocess
import sys
import time

JOBFS, CT, SEED, VECTORS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
CTB = os.fsencode(CT)
POLICY = f"{CT}/policy.yaml"  # state in CT/state, views at CT/mnt/ID/{ws,tmp}
OTHER = f"{CT}/other.yaml"  # state in CT/state2, one view at CT/mnt2/ID/x
BAD = f"{CT}/bad.yaml"  # a YAML syntax error
STATE_POLICY = {f"{CT}/state": POLICY, f"{CT}/state2": OTHER}
MNT_DIRS = [f"{CT}/mnt", f"{CT}/mnt2"]
CWD = f"{CT}/cwd"
TOP = {"policy.yaml", "other.yaml", "bad.yaml", "lower", "mnt", "mnt2", "cwd", "state",
       "state2", "out", "err", "umount.out", "umount.err"}
# where jobfs's defaults point, and the root; /tmp and /run are shared with other tests
OUTSIDE = ["/", "/var/lib/jobfs", "/run/jobfs", "/etc/jobfs"]
EXIT_CODES = set(range(0, 7)) | {10}  # cli/exit_codes.h, docs/jobfs.1 EXIT STATUS (10: exec)
# job-key --github reads these; hostile but set, so it succeeds wherever the test runs
ENV = dict(os.environ, JOBFS_POLICY=POLICY, LC_ALL="C", RUNNER_NAME="fuzz runner/\u2615",
           GITHUB_RUN_ID="1234", GITHUB_RUN_ATTEMPT="1", GITHUB_JOB="a\tb")
ENV.pop("POSIXLY_CORRECT", None)

rng = random.Random(SEED)
stats = {"vectors": 0, "structured": 0, "chaos": 0, "mounted": 0, "foreground": 0,
         "unmounted": 0}
rc_hist = {}
failures = []

ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
HOSTILE = [
    b"", b".", b"..", b"/", b"a/b", b"../etc", b"../../tmp/x", b"/abs", b"-x", b"--job", b"-",
    b"--", b"%n%n%n%s", b"%s%p", b"$(touch pwned)", b"`id`", b"a;b", b"a|b", b"a&b", b"a>b",
    b"a b", b" a", b"a ", b"a\tb", b"a\nb", b"a\r", b"\x1b[31mred", b"\x01", b"a\x7f",
    b"\\0", b"%00", b"\xc3\xa4", "日本".encode(), "💥".encode(), b"\xff\xfe", b"\xc0\xaf",
    b".hidden", b"a.", b"*", b"?", b"[a]", b"~", b"$HOME", b"${JOB_ID}", b"'", b'"', b"\\",
    b"x" * 129, b"x" * 5000, b"y" * 100000, b"job\n", b"-job", b"_x", b"a/", b"/..",
]
DURATIONS_OK = [b"0s", b"1s", b"59m", b"1h", b"24h", b"7d", b"18446744073709551615s"]
DURATIONS_BAD = [b"", b"1", b"h", b"-1s", b"1.5h", b"99999999999999999999s", b"1 h", b"1h ",
                 b"1H", b"+1h", b"0x10s", b"1hh", b"213503982334602d"]
SIZES_OK = [b"1B", b"1KiB", b"20GiB", b"3TiB", b"18446744073709551615B"]
SIZES_BAD = [b"", b"0B", b"0GiB", b"1KB", b"1", b"GiB", b"-1B", b"1.5GiB", b"16777216TiB",
             b"1 B", b"1e3B"]
TIMEOUTS_OK = [b"0", b"1", b"2", b"86400"]
TIMEOUTS_BAD = [b"", b"-1", b"+1", b"86401", b"1e3", b"0x10", b" 1", b"1 ", b"1s",
                b"99999999999999999999", b"soon"]
VIEWS_OK = [b"ws", b"tmp", b"x"]
CONTEXT_OK = [b"repository=acme/web", b"ref=refs/heads/main", b"workflow=CI build (nightly)",
              b"job=build", b"event=push", b"ref=", "ref=caf\u00e9/\u2615".encode(),
              b"workflow=a=b", b"job=$(id)", b"ref=" + b"r" * 1024]
CONTEXT_BAD = [b"", b"=", b"=x", b"ref", b"branch=main", b"Ref=main", b" ref=x", b"ref =x",
               b"ref=a\nb", b"ref=a\tb", b"ref=\x1b[31m", b"ref=\x7f", b"ref=\xff",
               b"ref=\xc0\xaf", b"ref=\xed\xa0\x80", "ref=\u202e".encode(),
               "ref=\u2028".encode(), b"ref=\xc2\x85", b"ref=" + b"r" * 1025]


def policies_bad():
    return [BAD.encode(), f"{CT}/missing.yaml".encode(), CT.encode(), b"/dev/null", b"/",
            b"", b"-", b".", b"..", b"policy.yaml", b"/proc/self/fd/0"]


def valid_id():
    n = rng.choice([1, 2, 3, 8, 16, 127, 128]) if rng.random() < 0.3 else rng.randint(1, 12)
    return (rng.choice(ID_CHARS) + "".join(rng.choice(ID_CHARS + "._-")
                                           for _ in range(n - 1))).encode()


def id_valid(b):
    return re.fullmatch(rb"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", b) is not None


def mutate(b):
    """A hostile value near a valid one: a character inserted, removed or replaced."""
    if not b or rng.random() < 0.5:
        return rng.choice(HOSTILE)
    i = rng.randrange(len(b) + 1)
    junk = rng.choice([b"/", b"..", b"\n", b" ", b"%n", b"\xff", b"-", b"$", b"\x1b"])
    return b[:i] + junk + b[i + 1:]


# --- the verb table, as in cli/main.c ---------------------------------------------------------
# options: long name -> (short letter, kind); kind None is a flag
VERBS = {
    "policy check": ({"--job": ("j", "id")}, (0, 1)),
    "policy show": ({"--job": ("j", "id"), "--json": (None, None),
                     "--policy": ("p", "policy")}, (0, 0)),
    "mount": ({"--job": ("j", "id"), "--policy": ("p", "policy"),
               "--foreground": ("f", None), "--context": (None, "context")}, (0, 0)),
    "umount": ({"--job": ("j", "id"), "--kill": ("k", None), "--timeout": ("t", "timeout"),
                "--collect": ("c", None), "--policy": ("p", "policy")}, (0, 0)),
    "ls": ({"--json": (None, None), "--policy": ("p", "policy")}, (0, 0)),
    "inspect": ({"--view": ("v", "view"), "--json": (None, None),
                 "--policy": ("p", "policy")}, (1, 1)),
    "gc": ({"--older-than": ("o", "duration"), "--max-total": ("m", "size"),
            "--dry-run": ("n", None), "--json": (None, None), "--policy": ("p", "policy")},
           (0, 0)),
    "mark-ok": ({"--job": ("j", "id"), "--policy": ("p", "policy")}, (0, 0)),
    "promote": ({"--job": ("j", "id"), "--view": ("v", "viewname"), "--dry-run": ("n", None),
                 "--json": (None, None), "--progress": (None, None),
                 "--policy": ("p", "policy")}, (0, 0)),
    "job-key": ({"--github": ("g", None), "--json": (None, None)}, (0, 0)),
    # structured only, its CMD always `true`: chaos would run whatever word came next
    "exec": ({"--job": ("j", "id"), "--cwd": (None, "cwd"), "--policy": ("p", "policy")},
             (1, 1 << 30)),
}
NEEDS_JOB = ("mount", "umount", "mark-ok", "promote", "exec")
CHAOS_VERBS = [v for v in VERBS if v != "exec"]
# the error a verb gives when its required option is missing (a None in expect["bad"])
REQUIRED = {"job-key": b"--github is required"}


def value(kind):
    """(value, valid) for an option or argument of this kind."""
    good = rng.random() < 0.45
    if kind == "id":
        if good:
            return valid_id(), True
        v = mutate(valid_id())
        return v, id_valid(v)
    if kind == "policy":
        if good:
            return rng.choice([POLICY, OTHER]).encode(), True
        return rng.choice(policies_bad() + HOSTILE), False
    if kind == "duration":
        return (rng.choice(DURATIONS_OK), True) if good else (rng.choice(DURATIONS_BAD), False)
    if kind == "size":
        return (rng.choice(SIZES_OK), True) if good else (rng.choice(SIZES_BAD), False)
    if kind == "timeout":
        return (rng.choice(TIMEOUTS_OK), True) if good else (rng.choice(TIMEOUTS_BAD), False)
    if kind == "viewname":  # checked as an argument: a bad one is a usage error naming it
        if good:
            return rng.choice(VIEWS_OK), True
        v = mutate(rng.choice(VIEWS_OK))
        return v, id_valid(v) and len(v) <= 64
    if kind == "context":
        if good:
            return rng.choice(CONTEXT_OK), True
        v = rng.choice(CONTEXT_BAD + [b"ref=" + h for h in HOSTILE if b"\n" in h or b"\x1b" in h])
        return v, False
    if kind == "cwd":  # not looked at before the job is; only an empty one is refused
        v = rng.choice([b"/", CWD.encode(), b"rel/dir"]) if good else rng.choice(HOSTILE)
        return v, v != b""
    if kind == "view":
        return (rng.choice(VIEWS_OK), True) if good else (rng.choice(HOSTILE + [b"nope"]), True)
    raise ValueError(kind)


def spell(name, short, v):
    """One option with its value, in one of getopt_long's spellings."""
    forms = ["long", "eq"] + (["short", "attached"] if short else [])
    form = rng.choice(forms)
    if form == "long":
        return [name.encode(), v]
    if form == "eq":
        return [name.encode() + b"=" + v]
    if form == "short" or not v:
        return [b"-" + short.encode(), v]
    return [b"-" + short.encode() + v]


def structured():
    """A well-formed vector and what it must do: (argv, expect) with expect a dict."""
    verb = rng.choice(list(VERBS))
    options, (lo, hi) = VERBS[verb]
    groups, bad_values, policy = [], [], None
    job = None
    for name, (short, kind) in options.items():
        want = 0.9 if name == "--job" and verb in NEEDS_JOB else 0.45
        if kind is None:
            want = 0.15 if name == "--foreground" else 0.3
        if rng.random() >= want:
            continue
        if kind is None:
            groups.append([name.encode()] if not short or rng.random() < 0.5
                          else [b"-" + short.encode()])
            continue
        v, ok = value(kind)
        groups.append(spell(name, short, v))
        if kind == "policy":
            policy = (v, ok)
        elif kind == "id":
            job = v
        if not ok and kind != "policy":
            bad_values.append(v)
    rng.shuffle(groups)
    positional = []
    if verb == "inspect":
        v, ok = value("id")
        positional.append(v)
        job = v
        if not ok:
            bad_values.append(v)
    elif verb == "policy check" and rng.random() < 0.5:
        v, ok = value("policy")
        positional.append(v)
        policy = (v, ok)
    elif verb == "exec":
        # CMD's own arguments, hostile or not, are CMD's
        positional += [b"true"] + [rng.choice(HOSTILE) for _ in range(rng.randint(0, 3))]
    argv = [w.encode() for w in verb.split()]
    for g in groups:
        argv += g
    if positional:
        # after "--" anything is an argument; without it, one starting with '-' is an option
        if any(p[:1] == b"-" for p in positional) or rng.random() < 0.3:
            argv.append(b"--")
        argv += positional
    if verb in NEEDS_JOB and job is None:
        bad_values.append(None)  # "--job ID is required"
    if verb == "job-key" and b"--github" not in argv and b"-g" not in argv:
        bad_values.append(None)  # "--github is required"
    expect = {"verb": verb, "bad": bad_values, "policy": policy, "job": job,
              "json": b"--json" in argv}
    return argv, expect


def chaos():
    words = [w.encode() for v in CHAOS_VERBS for w in v.split()] + [b"bogus", b"policy", b""]
    opts = []
    for options, _ in VERBS.values():
        for name, (short, kind) in options.items():
            opts.append(name.encode())
            if short:
                opts.append(b"-" + short.encode())
    opts += [b"--help", b"-h", b"--version", b"--", b"-", b"--bogus", b"-x", b"-kc", b"-kj",
             b"-nJ", b"--json=1", b"--jo", b"--po", b"--j", b"---job", b"-\xc3\xa4"]
    values = (HOSTILE + DURATIONS_OK + DURATIONS_BAD + SIZES_OK + SIZES_BAD + TIMEOUTS_OK
              + TIMEOUTS_BAD + policies_bad() + [POLICY.encode(), OTHER.encode()]
              + [valid_id() for _ in range(3)])
    argv = []
    if rng.random() < 0.85:
        verb = rng.choice(CHAOS_VERBS)
        argv += [w.encode() for w in verb.split()]
        if verb.startswith("policy") and rng.random() < 0.2:
            argv = argv[:1]
    for _ in range(rng.randint(0, 7)):
        r = rng.random()
        if r < 0.4:
            argv.append(rng.choice(opts))
        elif r < 0.5:
            o = rng.choice([o for o in opts if o.startswith(b"--")])
            argv.append(o + b"=" + rng.choice(values))
        elif r < 0.9:
            argv.append(rng.choice(values))
        else:
            argv.append(rng.choice(words))
    return argv, None


# --- running and judging ----------------------------------------------------------------------
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def esc(b):
    """The escaping of cli/main.c's error lines: \\n, \\t and \\xNN for control characters."""
    return CONTROL.sub(lambda m: {b"\n": b"\\n", b"\t": b"\\t"}.get(
        m.group(), b"\\x%02x" % m.group()[0]), b)


def mounts():
    with open("/proc/self/mountinfo", "rb") as f:
        points = [line.split(b" ")[4] for line in f]
    return [p for p in points if p.startswith(CTB + b"/")]


def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return f"<{e.strerror}>"


def records(state):
    """(job ID, record fields) of every job in a state dir."""
    out = []
    jobs = f"{state}/jobs"
    for job in listing(jobs) if os.path.isdir(jobs) else []:
        try:
            with open(f"{jobs}/{job}/record", "rb") as f:
                fields = dict(line.split(b"=", 1) for line in f.read().splitlines()[1:]
                              if b"=" in line)
        except OSError:
            continue
        out.append((job, fields))
    return out


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return False


def run(argv, wait=60.0, serving=False, name=""):
    """Runs jobfs with stdout and stderr in CT/NAMEout and CT/NAMEerr; returns (proc, rc), rc None
    while it still runs after wait seconds, or (with serving) a second after its views
    appeared: a `mount --foreground` serving them."""
    with open(f"{CT}/{name}out", "wb") as out, open(f"{CT}/{name}err", "wb") as err:
        proc = subprocess.Popen([JOBFS.encode()] + argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, cwd=CWD, env=ENV)
    deadline, seen = time.monotonic() + wait, None
    while True:
        rc = proc.poll()
        now = time.monotonic()
        if rc is not None or now > deadline:
            return proc, rc
        if serving and seen is None and mounts():
            seen = now
        if seen is not None and now - seen > 1.0:
            return proc, None
        time.sleep(0.005 if now - deadline + wait < 0.5 else 0.05)


def read(name):
    with open(f"{CT}/{name}", "rb") as f:
        return f.read()


def fail(argv, msg):
    shown = [a[:80] + (b"...(%d bytes)" % len(a) if len(a) > 80 else b"") for a in argv]
    failures.append(f"{msg}\n    argv: {shown!r}")
    print(f"FAIL: cli_fuzz: {msg}\n    argv: {shown!r}", file=sys.stderr, flush=True)


def given(argv):
    """Every text an error may name: each argument, and the parts of one that getopt splits: "-kq"
    holds the option '-q', "-jVALUE" and "-kjVALUE" the value, "--job=VALUE" both halves."""
    out = []
    for a in argv:
        out.append(a)
        if a.startswith(b"-") and not a.startswith(b"--"):
            out += [b"-" + bytes([ch]) for ch in a[1:7]]  # getopt stops at the first error
            out += [a[k:] for k in range(2, min(len(a), 6) + 1)]
        if a.startswith(b"--") and b"=" in a:
            out += a.split(b"=", 1)
    return out


ARGLESS = [b"missing verb", b"--job ID is required", b"missing argument (usage:",
           b"missing subverb", b"--github is required"]


def names_argument(line, argv, rc):
    if any(m in line for m in ARGLESS):
        return True
    texts = given(argv)
    if any(b"'" + esc(t) + b"'" in line for t in texts):
        return True
    # a policy error names the file, unquoted ("FILE:LINE:COLUMN: ...") or cut short
    return rc == 2 and any(esc(t[:40]) in line for t in texts + [POLICY.encode()] if t)


def judge(argv, rc, out, err, expect):
    lines = err.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        if err:
            fail(argv, f"stderr does not end in a newline: {err[:200]!r}")
    if rc not in EXIT_CODES:
        fail(argv, f"exit {rc}, not a documented exit code; stderr {err[:300]!r}")
        return
    if rc == 0:
        if err:
            fail(argv, f"exit 0 with stderr {err[:300]!r}")
    elif rc == 1:
        if len(lines) != 2 or lines[1] != b"try 'jobfs --help'" or not lines[0].startswith(
                b"jobfs: "):
            fail(argv, f"usage error is not one line and the 'try' line: {err[:400]!r}")
        elif not names_argument(lines[0], argv, rc):
            fail(argv, f"usage error names no argument: {lines[0][:300]!r}")
    elif rc == 4:
        if not lines or not names_argument(lines[0], argv, rc):
            fail(argv, f"exit 4 without naming the job: {err[:300]!r}")
    else:
        if len(lines) != 1:
            fail(argv, f"exit {rc}: error is not one line: {err[:400]!r}")
        elif not names_argument(lines[0], argv, rc):
            fail(argv, f"exit {rc}: error names no argument: {lines[0][:300]!r}")
    if expect is None:
        return
    # structured: the outcome is known
    verb = expect["verb"]
    if expect["bad"]:
        if rc != 1:
            fail(argv, f"hostile value {expect['bad'][0]!r:.80}: exit {rc}, expected 1")
        elif not any(b is None and REQUIRED.get(verb, b"--job ID is required") in lines[0]
                     or b is not None and b"'" + esc(b) + b"'" in lines[0]
                     for b in expect["bad"]):
            fail(argv, f"usage error does not quote the hostile value: {lines[0][:300]!r}")
        return
    if expect["policy"] and not expect["policy"][1]:
        path = expect["policy"][0]
        if rc != 2:
            fail(argv, f"bad policy {path!r:.80}: exit {rc}, expected 2; {err[:200]!r}")
        elif esc(path[:40]) not in lines[0]:
            fail(argv, f"policy error does not name {path[:40]!r}: {lines[0][:300]!r}")
        return
    # promote: 3 no such job (or view), 5 still mounted, 9 not marked successful
    # exec: 3 no such job, 10 not mounted (nothing stays mounted between vectors)
    allowed = {"mount": {0, 5}, "umount": {0, 3}, "inspect": {0, 3}, "mark-ok": {0, 3},
               "promote": {0, 3, 5, 9}, "exec": {3, 10}}.get(verb, {0})
    if rc not in allowed:
        fail(argv, f"{verb}: exit {rc}, expected one of {sorted(allowed)}; {err[:300]!r}")
    if rc == 0 and expect["json"]:
        try:
            json.loads(out)
        except ValueError as e:
            fail(argv, f"--json output is not JSON ({e}): {out[:200]!r}")
    if rc == 0 and verb == "job-key":
        key = json.loads(out)["id"].encode() if expect["json"] else out.rstrip(b"\n")
        if not id_valid(key) or out.count(b"\n") != 1 + 3 * expect["json"]:
            fail(argv, f"job-key printed no valid job ID: {out[:200]!r}")


def unmount_all(argv, why):
    """Unmounts every mounted job with `jobfs umount`; checks it leaves nothing behind."""
    for state, policy in STATE_POLICY.items():
        for job, fields in records(state):
            if fields.get(b"state") != b"mounted":
                continue
            extra = rng.choice([[], [b"--collect"], [b"--kill", b"--timeout", b"2"]])
            um = [b"umount", b"--policy", policy.encode(), b"--job", job.encode()] + extra
            _, rc = run(um, name="umount.")
            err = read("umount.err")
            if rc != 0 or err:
                fail(argv, f"{why}: {b' '.join(um)!r} exit {rc}, stderr {err[:300]!r}")
                continue
            stats["unmounted"] += 1
            pid = fields.get(b"pid", b"0").decode()
            if pid != "0" and pid_alive(pid):
                fail(argv, f"{why}: daemon {pid} of job {job} outlived umount")
            if b"--collect" in extra and os.path.exists(f"{state}/jobs/{job}"):
                fail(argv, f"{why}: --collect left {state}/jobs/{job}")
    left = mounts()
    if left:
        fail(argv, f"{why}: still mounted after umount: {left}")
        for m in reversed(left):
            subprocess.run(["umount", "-l", m], check=False)
    for d in MNT_DIRS:
        if listing(d):
            fail(argv, f"{why}: targets left in {d}: {listing(d)[:5]}")


def check_side_effects(argv, rc, was_mount, out):
    now = mounts()
    if now and not (rc == 0 and was_mount):
        fail(argv, f"exit {rc} but mounts exist: {now[:3]}")
    if rc == 0 and was_mount and not now and not out.startswith(b"usage:"):
        fail(argv, "mount exited 0 but mounted nothing")
    if now:
        stats["mounted"] += 1
        unmount_all(argv, "after mount")
    else:
        for d in MNT_DIRS:
            if listing(d):
                fail(argv, f"no mount, but {d} holds {listing(d)[:5]}")
    if listing(CWD):
        fail(argv, f"created in the working dir: {listing(CWD)[:5]}")
    top = set(os.listdir(CT))
    if not top <= TOP:
        fail(argv, f"created in the temp dir: {sorted(top - TOP)}")


def one(argv, expect):
    is_mount = b"mount" in argv[:1]
    started = time.monotonic()
    proc, rc = run(argv, wait=20.0 if is_mount else 60.0, serving=is_mount)
    if time.monotonic() - started > 5:
        print(f"cli_fuzz: slow ({time.monotonic() - started:.1f}s): {argv!r:.300}", flush=True)
    if rc is None and is_mount:
        # --foreground: serves until its views are unmounted, then exits 0
        stats["foreground"] += 1
        if not mounts():
            fail(argv, "mount still running after 20 s and nothing mounted")
            proc.kill()
            proc.wait()
            return
        unmount_all(argv, "foreground mount")
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            fail(argv, "foreground mount did not exit after umount")
            proc.kill()
            rc = proc.wait()
        if rc != 0:
            fail(argv, f"foreground mount exited {rc} after umount")
        return
    if rc is None:
        fail(argv, "still running after 60 s")
        proc.kill()
        proc.wait()
        return
    rc_hist[rc] = rc_hist.get(rc, 0) + 1
    if rc < 0:
        fail(argv, f"killed by signal {-rc}; stderr {read('err')[:300]!r}")
        return
    judge(argv, rc, read("out"), read("err"), expect)
    check_side_effects(argv, rc, is_mount, read("out"))


def main():
    outside = {p: listing(p) for p in OUTSIDE}
    start = time.monotonic()
    try:
        for i in range(VECTORS):
            if rng.random() < 0.7:
                argv, expect = structured()
                stats["structured"] += 1
            else:
                argv, expect = chaos()
                stats["chaos"] += 1
            stats["vectors"] += 1
            one(argv, expect)
            if len(failures) >= 20:
                print("cli_fuzz: 20 failures, stopping", file=sys.stderr)
                break
    finally:
        if mounts():
            unmount_all([b"<final>"], "final cleanup")
    for p, before in outside.items():
        if listing(p) != before:
            fail([b"<all>"], f"{p} changed: {before!r:.200} -> {listing(p)!r:.200}")
    hist = " ".join(f"{k}:{v}" for k, v in sorted(rc_hist.items()))
    print(f"cli_fuzz: seed {SEED}: {stats['vectors']} vectors ({stats['structured']} "
          f"structured, {stats['chaos']} chaos) in {time.monotonic() - start:.1f}s; "
          f"exit codes {hist}; {stats['mounted']} mounts ({stats['foreground']} foreground), "
          f"{stats['unmounted']} unmounted; {len(failures)} failures", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
