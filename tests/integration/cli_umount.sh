#!/usr/bin/env bash
# jobfs umount on busy views: the exact holders are listed (open file, cwd, mapped file), the exit
# code is "busy"; --kill ends exactly those processes (SIGTERM, then SIGKILL after --timeout) while
# an unrelated process with the same command line survives; the daemon exits afterwards.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state

step "a sleep holding a file open makes the view busy"
jmount b1
view=$CT_DIR/mnt/b1/ws
echo data >"$view/held"
daemon=$(record_field b1 pid)
# a background command's stdin is /dev/null unless redirected in it: sh execs sleep with the file
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec sleep 1000 <"$1"' sh "$view/held"
holder=$BG_PID
bg sleep 1000
other=$BG_PID
sleep 0.2
run umount --job b1
expect_rc 4 "umount of a busy view"
expect_grep "$CT_DIR/err" "jobfs: umount: view 'ws' at '$view' is busy, held by:" "busy message"
expect_grep "$CT_DIR/err" "  $holder sleep 1000" "the holder is listed"
expect_no_grep "$CT_DIR/err" "  $other " "the unrelated sleep is not listed"
check "exactly one holder listed" test "$(grep -c '^  [0-9]' "$CT_DIR/err")" -eq 1
check "the busy view stays mounted" is_mounted "$view"
check "the record still says mounted" test "$(record_field b1 state)" = mounted
check "the holder was not signalled" pid_running "$holder"
run ls --json
expect_rc 0 "ls while busy"
check "the job is still mounted" test "$(json 'd[0]["state"]')" = mounted

step "--kill ends exactly the holder"
run umount --job b1 --kill --timeout 5
expect_rc 0 "umount --kill"
hrc=0
wait "$holder" || hrc=$?
check "the holder ended by SIGTERM (status $hrc)" test "$hrc" -eq 143
check "the unrelated sleep with the same command line survives" pid_running "$other"
check "the view is unmounted" bash -c "! grep -q ' $view ' /proc/self/mountinfo"
check "the daemon exited" wait_gone "$daemon" 50
check "record state unmounted" test "$(record_field b1 state)" = unmounted
expect_no_grep "$CT_DIR/err" "lazily" "no lazy detach was needed"

step "a holder that ignores SIGTERM gets SIGKILL after the timeout"
jmount b2
view=$CT_DIR/mnt/b2/ws
# sh ignores TERM and execs sleep, which keeps ignoring it; its cwd is in the view
bg sh -c "cd '$view' && trap '' TERM && exec sleep 1000"
stubborn=$BG_PID
sleep 0.3
start=$(date +%s%N)
run umount --job b2 --kill --timeout 1
expect_rc 0 "umount --kill with a stubborn holder"
elapsed=$((($(date +%s%N) - start) / 1000000))
hrc=0
wait "$stubborn" || hrc=$?
check "the stubborn holder ended by SIGKILL (status $hrc)" test "$hrc" -eq 137
check "SIGKILL came after the timeout ($elapsed ms)" test "$elapsed" -ge 1000
check "the unrelated sleep still survives" pid_running "$other"

step "a mapped file (no descriptor left) holds the view too"
jmount b3
view=$CT_DIR/mnt/b3/ws
head -c 8192 /dev/zero >"$view/mapped"
bg python3 -c '
import mmap, sys, time
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
f.close()
print("ready", flush=True)
time.sleep(1000)' "$view/mapped" >"$CT_DIR/py.out"
mapper=$BG_PID
for ((i = 0; i < 100; i++)); do
	[ -s "$CT_DIR/py.out" ] && break
	sleep 0.1
done
run umount --job b3
expect_rc 4 "umount with a mapped file"
expect_grep "$CT_DIR/err" "  $mapper " "the mapping process is listed"
expect_grep "$CT_DIR/err" "mmap.mmap(f.fileno()" "with its command line"
run umount --job b3 --kill --timeout 5
expect_rc 0 "umount --kill of the mapping process"
check "the mapping process is gone" wait_gone "$mapper" 50

step "several views: while one is busy, none is unmounted"
jmount b4
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec sleep 1000 <"$1"' sh "$CT_DIR/mnt/b4/ws/file"
holder=$BG_PID
sleep 0.2
run umount --job b4
expect_rc 4 "umount with one busy view"
check "the free view stays mounted" is_mounted "$CT_DIR/mnt/b4/tmp"
check "the busy view is still mounted" is_mounted "$CT_DIR/mnt/b4/ws"
kill "$holder"
wait "$holder" 2>/dev/null || true
run umount --job b4
expect_rc 0 "umount once the holder is gone"
check "b4 unmounted" test "$(record_field b4 state)" = unmounted

step "a job whose lock is held by another jobfs is busy"
jmount b5
# the lock is taken on fd 9, which sleep keeps after exec: killing that one PID releases it
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec 9>"$1" && flock 9 && exec sleep 1000' sh "$state/jobs/b5/lock"
locker=$BG_PID
sleep 0.2
run umount --job b5
expect_rc 4 "umount while another process holds the job lock"
expect_grep "$CT_DIR/err" "job 'b5' is busy: another jobfs holds its lock" "lock busy message"
kill "$locker"
wait "$locker" 2>/dev/null || true
run umount --job b5
expect_rc 0 "umount b5"

step "a process of another job with the same command line survives --kill"
jmount o1
jmount o2
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec sleep 1000 <"$1"' sh "$CT_DIR/mnt/o1/ws/file"
mine=$BG_PID
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec sleep 1000 <"$1"' sh "$CT_DIR/mnt/o2/ws/file"
theirs=$BG_PID
sleep 0.2
run umount --job o1 --kill --timeout 5
expect_rc 0 "umount --kill o1"
check "o1's sleep is gone" wait_gone "$mine" 50
check "o2's sleep with the same command line survives" pid_running "$theirs"
check "o2 is still mounted" is_mounted "$CT_DIR/mnt/o2/ws"
run umount --job o2
expect_rc 4 "o2 is busy with its own sleep"
expect_grep "$CT_DIR/err" "  $theirs sleep 1000" "o2's holder"
kill "$theirs"
wait "$theirs" 2>/dev/null || true
run umount --job o2
expect_rc 0 "umount o2"

step "busy without a holding process: lazy detach is the last resort, with a warning"
jmount z1
mkdir "$CT_DIR/mnt/z1/ws/sub"
mount -t tmpfs jobfs-test "$CT_DIR/mnt/z1/ws/sub"
run umount --job z1
expect_rc 4 "a mount inside the view makes it busy"
expect_grep "$CT_DIR/err" "(no process of this namespace holds it)" "no holder found"
run umount --job z1 --kill --timeout 1
expect_rc 0 "umount --kill detaches lazily"
expect_grep "$CT_DIR/err" "warning: view 'ws' at '$CT_DIR/mnt/z1/ws' is still busy, detaching it lazily" \
	"the lazy detach warns"
check "nothing left mounted under z1" bash -c "! grep -q ' $CT_DIR/mnt/z1/' /proc/self/mountinfo"
check "z1 unmounted" test "$(record_field z1 state)" = unmounted

step "SIGTERM to the daemon unmounts every view and exits cleanly"
jmount t1
daemon=$(record_field t1 pid)
kill -TERM "$daemon" # the job's daemon, started by this test through jobfs mount
check "the daemon exits" wait_gone "$daemon" 50
check "its views are unmounted" bash -c "! grep -q ' $CT_DIR/mnt/t1/' /proc/self/mountinfo"
check "it logged a clean exit" grep -q "job 't1': exiting with status 0" "$state/jobs/t1/daemon.log"
run ls --json
check "ls says stale" test "$(json '[j["state"] for j in d if j["id"] == "t1"]')" = "['stale']"
run umount --job t1
expect_rc 0 "umount after the daemon stopped"
check "t1 unmounted" test "$(record_field t1 state)" = unmounted

step "two state dirs, one job ID: each umount and gc works on its own job's views only"
write_policy "$CT_DIR/other.yaml" "$CT_DIR/state-other" "  - name: ws
    lower: [$CT_DIR/lower]
    target: $CT_DIR/mnt-other/\${JOB_ID}/ws"
# the other first: by source alone, the newer mount (ours) is the one a lookup finds
jmount dup --policy "$CT_DIR/other.yaml"
jmount dup
echo mine >"$CT_DIR/mnt/dup/ws/which"
echo other >"$CT_DIR/mnt-other/dup/ws/which"
run umount --job dup --policy "$CT_DIR/other.yaml"
expect_rc 0 "umount dup in the other state dir"
check "the other's view is gone" bash -c "! grep -q ' $CT_DIR/mnt-other/dup/ws ' /proc/self/mountinfo"
check "ours is still mounted and ours" test "$(cat "$CT_DIR/mnt/dup/ws/which")" = mine
run ls --json
check "ls still says mounted" test "$(json '[j["state"] for j in d if j["id"] == "dup"]')" = "['mounted']"
run gc --older-than 0s --policy "$CT_DIR/other.yaml"
expect_rc 0 "gc of the other state dir"
run gc --older-than 0s
expect_rc 0 "gc of ours"
check "ours survived both gcs" test "$(cat "$CT_DIR/mnt/dup/ws/which")" = mine
run umount --job dup
expect_rc 0 "umount dup"
