#!/usr/bin/env bash
# jobfs gc: a daemon killed with SIGKILL leaves a stale job that gc detaches (the mount point works
# again); retention and --older-than; --max-total removes the oldest first; orphans go; mounted and
# locked jobs stay; a symlink in an upper to a dir outside is deleted as a link, the outside dir
# stays intact; --dry-run changes nothing; a second run removes nothing.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state

# snapshot DIR: every path, type, size and content hash below DIR, to compare before and after
snapshot() {
	(cd "$1" && find . -printf '%p %y %s %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

step "gc with nothing to do"
run gc
expect_rc 0 "gc without a state dir"
expect_grep "$CT_DIR/out" "removed 0 layer(s), freed 0 B" "nothing removed"
run gc --older-than soon
expect_rc 1 "gc --older-than soon"
run gc --max-total 10GB
expect_rc 1 "gc --max-total 10GB"

step "a daemon killed with SIGKILL: ls says stale, gc recovers the mount point"
jmount s1
daemon=$(record_field s1 pid)
kill -KILL "$daemon" # the job's daemon, started by this test through jobfs mount
check "the daemon died" wait_gone "$daemon" 50
run ls --json
check "ls says stale" test "$(json 'd[0]["state"]')" = stale
run gc --dry-run
expect_rc 0 "gc --dry-run on a stale job"
expect_grep "$CT_DIR/out" "would detach s1 view ws at $CT_DIR/mnt/s1/ws" "dry run names the detach"
check "the dry run left the dead mount" is_mounted "$CT_DIR/mnt/s1/ws"
run gc --json
expect_rc 0 "gc on a stale job"
check "gc detached both views" test "$(json 'sorted(x["view"] for x in d["detached"])')" = "['tmp', 'ws']"
check "the layer stays (retention 1h)" test -d "$state/jobs/s1/views/ws/upper"
check "the mount point is free" bash -c "! grep -q ' $CT_DIR/mnt/s1/' /proc/self/mountinfo"
run ls --json
check "now unmounted" test "$(json 'd[0]["state"]')" = unmounted
mkdir -p "$CT_DIR/mnt/s1/ws"
check "the mount point can be used again" bash -c "echo x >'$CT_DIR/mnt/s1/ws/probe'"
rm -rf "$CT_DIR/mnt/s1"

step "a symlink in an upper pointing at a dir outside"
mkdir -p "$CT_DIR/outside/keep"
echo precious >"$CT_DIR/outside/keep/file"
before=$(snapshot "$CT_DIR/outside")
jmount l1
ln -s "$CT_DIR/outside" "$CT_DIR/mnt/l1/ws/link-to-outside"
mkdir "$CT_DIR/mnt/l1/ws/d"
ln -s "$CT_DIR/outside/keep" "$CT_DIR/mnt/l1/ws/d/link-to-keep"
run umount --job l1
expect_rc 0 "umount l1"
# also straight into the layer, where nothing checks what is written
ln -s "$CT_DIR/outside" "$state/jobs/l1/views/ws/upper/raw-link"
ln -s "$CT_DIR/outside" "$state/jobs/l1/views"/evil
layer_before=$(snapshot "$state/jobs")

step "--dry-run deletes nothing"
run gc --dry-run --older-than 0s --json
expect_rc 0 "gc --dry-run --older-than 0s"
check "dry run reports s1 and l1" test "$(json 'sorted(x["id"] for x in d["removed"])')" = "['l1', 's1']"
check "dry run flag" test "$(json 'd["dry_run"]')" = True
check "nothing changed in the state dir" test "$(snapshot "$state/jobs")" = "$layer_before"
check "the outside dir is intact" test "$(snapshot "$CT_DIR/outside")" = "$before"

step "retention: --older-than overrides the policy"
run gc
expect_rc 0 "gc within retention"
check "within 1h nothing is removed" test -d "$state/jobs/l1"
run gc --older-than 0s
expect_rc 0 "gc --older-than 0s"
expect_grep "$CT_DIR/out" "removed l1 (expired" "l1 removed"
check "l1's layer is gone" test ! -e "$state/jobs/l1"
check "s1's layer is gone" test ! -e "$state/jobs/s1"
check "the outside dir is intact after gc" test "$(snapshot "$CT_DIR/outside")" = "$before"
check "the trash is empty" test -z "$(ls -A "$state/trash")"

step "mounted, locked and orphan jobs"
jmount m1
echo keep >"$CT_DIR/mnt/m1/ws/keep"
mkdir -p "$state/jobs/o1/views/ws/upper"
echo lost >"$state/jobs/o1/views/ws/upper/lost"
mkdir "$state/jobs/k1"
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec 9>"$1" && flock 9 && exec sleep 1000' sh "$state/jobs/k1/lock"
locker=$BG_PID
sleep 0.2
mkdir -p "$state/trash/leftover.1/x"
run gc --older-than 0s --json
expect_rc 0 "gc with mounted, locked and orphan jobs"
check "the orphan is removed" test ! -e "$state/jobs/o1"
check "reason orphan" test "$(json '[x["reason"] for x in d["removed"] if x["id"] == "o1"]')" = "['orphan']"
check "the mounted job stays" test "$(cat "$CT_DIR/mnt/m1/ws/keep")" = keep
check "the mounted job's layer stays" test -f "$state/jobs/m1/views/ws/upper/keep"
check "the locked job stays" test -d "$state/jobs/k1"
check "skipped: mounted and locked" test "$(json 'sorted((x["id"], x["reason"]) for x in d["skipped"])')" = \
	"[('k1', 'locked by another jobfs'), ('m1', 'mounted')]"
check "trash leftovers are removed" test -z "$(ls -A "$state/trash")"
kill "$locker"
wait "$locker" 2>/dev/null || true

step "idempotent"
run gc --older-than 0s --json
expect_rc 0 "second gc"
check "k1 (now unlocked, no record) goes as an orphan" test "$(json '[x["id"] for x in d["removed"]]')" = "['k1']"
run gc --older-than 0s --json
check "third gc removes nothing" test "$(json 'd["removed"], d["freed_bytes"]')" = "[] 0"

step "gc killed with SIGKILL mid-walk: no half layer in jobs/, the next gc finishes"
jmount kg
python3 - "$CT_DIR/mnt/kg/ws" <<'PY'
import os, sys
for d in range(40):
    os.makedirs(os.path.join(sys.argv[1], "d%d" % d))
    for f in range(250):
        open(os.path.join(sys.argv[1], "d%d" % d, "f%d" % f), "w").write("x")
PY
run umount --job kg
expect_rc 0 "umount kg"
"${JOBFS_CMD[@]}" gc --older-than 0s >/dev/null 2>&1 &
gc_pid=$!
# killed once the layer is in the trash, while it is being deleted there
for ((i = 0; i < 500; i++)); do
	[ -n "$(ls -A "$state/trash" 2>/dev/null)" ] && break
	sleep 0.01
done
kill -KILL "$gc_pid" 2>/dev/null || true
wait "$gc_pid" 2>/dev/null || true
if [ -d "$state/jobs/kg" ]; then
	# killed before the move: the layer is whole, where it was
	check "kg untouched before the move" test "$(find "$state/jobs/kg/views/ws/upper" -type f | wc -l)" = 10000
fi
run gc --older-than 0s --json
expect_rc 0 "gc after the killed gc"
check "kg is gone" test ! -e "$state/jobs/kg"
check "the trash is empty" test -z "$(ls -A "$state/trash")"

step "--max-total removes the oldest unmounted layers first"
for id in x1 x2 x3; do
	jmount "$id"
	head -c 1048576 /dev/urandom >"$CT_DIR/mnt/$id/ws/blob"
	run umount --job "$id"
	expect_rc 0 "umount $id"
	sleep 1.1 # distinct unmount times
done
run gc --max-total 2MiB --json
expect_rc 0 "gc --max-total 2MiB"
check "the oldest went first" test "$(json '[x["id"] for x in d["removed"]]')" = "['x1', 'x2']"
check "reason" test "$(json 'd["removed"][0]["reason"]')" = "over max_total"
check "freed bytes" test "$(json 'd["freed_bytes"] >= 2 * 1048576')" = True
check "x3 stays" test -f "$state/jobs/x3/views/ws/upper/blob"
run umount --job m1
expect_rc 0 "umount m1"

step "gc running during mounts never touches a job being mounted"
(
	for ((i = 0; i < 30; i++)); do
		"${JOBFS_CMD[@]}" gc --older-than 0s >/dev/null 2>&1 || exit 1
	done
) &
gc_loop=$!
CT_PIDS+=("$gc_loop")
for id in p1 p2 p3 p4 p5 p6; do
	jmount "$id"
done
grc=0
wait "$gc_loop" || grc=$?
check "the gc loop succeeded" test "$grc" -eq 0
for id in p1 p2 p3 p4 p5 p6; do
	check "$id is mounted" is_mounted "$CT_DIR/mnt/$id/ws"
	check "$id has its record" test "$(record_field "$id" state)" = mounted
	check "$id has its layers" test -d "$state/jobs/$id/views/ws/upper"
	echo "$id" >"$CT_DIR/mnt/$id/ws/mine"
done
run gc --older-than 0s --json
check "mounted jobs are skipped" test "$(json 'd["removed"]')" = "[]"
for id in p1 p2 p3 p4 p5 p6; do
	check "$id's write is in its layer" test "$(cat "$state/jobs/$id/views/ws/upper/mine")" = "$id"
	run umount --job "$id" --collect
	expect_rc 0 "umount --collect $id"
done
