#!/usr/bin/env bash
# jobfs mount and umount (without --kill): job IDs, the record, the daemon, double mounts, two jobs
# over one lower, concurrent mounts, rollback naming the view, --help and exit codes.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state

step "help and usage"
run --help
expect_rc 0 "--help"
for verb in "mount --job ID" "umount --job ID" "ls [--json]" "inspect [--view NAME]" "gc [--older-than DURATION]"; do
	expect_grep "$CT_DIR/out" "$verb" "--help lists $verb"
done
for code in 0 1 2 3 4 5 6; do
	expect_grep "$CT_DIR/out" "  $code  " "--help documents exit code $code"
done
for verb in mount umount ls inspect gc; do
	run "$verb" --help
	expect_rc 0 "$verb --help"
	expect_grep "$CT_DIR/out" "usage: jobfs $verb" "$verb --help"
done
run mount
expect_rc 1 "mount without --job"
expect_grep "$CT_DIR/err" "jobfs: mount: --job ID is required" "mount without --job"
expect_grep "$CT_DIR/err" "try 'jobfs --help'" "mount without --job"
run mount --job a extra
expect_rc 1 "mount with an argument"
run umount --job a --timeout soon
expect_rc 1 "umount --timeout soon"

step "invalid job IDs are refused before anything is created"
long=$(printf 'a%.0s' $(seq 1 129))
for id in .. . ../etc a/b /abs "" "$long" $'a\tb' $'a\nb' -x .hidden 'a b' 'ä'; do
	run mount --job "$id"
	expect_rc 1 "mount --job '$id'"
	expect_grep "$CT_DIR/err" "invalid job ID" "mount --job '$id'"
	run umount --job "$id"
	expect_rc 1 "umount --job '$id'"
done
check "no state dir made for invalid IDs" test ! -e "$state"
check "nothing made under $CT_DIR/mnt" test -z "$(ls -A "$CT_DIR/mnt")"
run mount --job "$(printf 'a%.0s' $(seq 1 128))" --policy "$CT_DIR/no-such-policy.yaml"
expect_rc 2 "a 128-character ID is valid; a missing policy is exit 2"

step "mount"
jmount j1
expect_grep "$CT_DIR/out" "ws	$CT_DIR/mnt/j1/ws" "mount prints the views"
for v in ws tmp; do
	check "view $v of j1 is mounted" is_mounted "$CT_DIR/mnt/j1/$v"
	check "upper of $v" test -d "$state/jobs/j1/views/$v/upper"
	check "work of $v" test -d "$state/jobs/j1/views/$v/work"
done
check "the view shows the lower" cmp -s "$CT_DIR/lower/file" "$CT_DIR/mnt/j1/ws/file"
check "the daemon log exists" test -f "$state/jobs/j1/daemon.log"
check "one daemon serves all views" test "$(grep -c "mounted at" "$state/jobs/j1/daemon.log")" -eq 2
# the daemon formats its time stamps itself (no time zone file read before it is ready)
stamp=$(sed -n '1s/ jobfs-daemon\[.*//p' "$state/jobs/j1/daemon.log")
now=$(date -u +%s)
check "the daemon log's time stamp is UTC, now" test \
	"$(($(date -u -d "$stamp" +%s) - now))" -le 0 -a "$((now - $(date -u -d "$stamp" +%s)))" -le 60
check "its format is YYYY-MM-DDTHH:MM:SSZ" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z jobfs-daemon' "$state/jobs/j1/daemon.log"
pid=$(record_field j1 pid)
check "the recorded daemon runs" pid_running "$pid"
check "record state" test "$(record_field j1 state)" = mounted
check "record id" test "$(record_field j1 id)" = j1
check "record digest" test "$(record_field j1 policy_digest | tr -d '0-9a-f' | wc -c)" -eq 1
check "record lowers" test "$(record_field j1 lower)" = "$CT_DIR/lower"
check "record start time" test "$(record_field j1 pid_start)" = \
	"$(cut -d' ' -f22 <<<"$(sed 's/.*) //; s/^/x x /' "/proc/$pid/stat")")"
check "no temp record left" test ! -e "$state/jobs/j1/record.tmp"
check "lock file" test -f "$state/jobs/j1/lock"

step "double mount"
run mount --job j1
expect_rc 5 "second mount of j1"
expect_grep "$CT_DIR/err" "jobfs: mount: job 'j1' is already mounted" "second mount of j1"
check "the first mount is untouched" is_mounted "$CT_DIR/mnt/j1/ws"

step "two jobs over one lower see only their own writes"
jmount j2
echo one >"$CT_DIR/mnt/j1/ws/only-j1"
echo two >"$CT_DIR/mnt/j2/ws/only-j2"
echo changed >"$CT_DIR/mnt/j1/ws/file"
rm "$CT_DIR/mnt/j2/ws/dir/inner"
check "j1 sees its file" test -f "$CT_DIR/mnt/j1/ws/only-j1"
check "j2 does not see j1's file" test ! -e "$CT_DIR/mnt/j2/ws/only-j1"
check "j1 does not see j2's file" test ! -e "$CT_DIR/mnt/j1/ws/only-j2"
check "j2 sees the lower's file unchanged" test "$(cat "$CT_DIR/mnt/j2/ws/file")" = "lower file"
check "j1 still sees dir/inner" test -f "$CT_DIR/mnt/j1/ws/dir/inner"
check "the lower is unchanged" test "$(cat "$CT_DIR/lower/file")" = "lower file"
check "the lower keeps dir/inner" test -f "$CT_DIR/lower/dir/inner"

step "concurrent mounts of different IDs"
pids=()
for i in 1 2 3 4; do
	CT_JOBS+=("c$i")
	"${JOBFS_CMD[@]}" mount --job "c$i" >"$CT_DIR/c$i.out" 2>&1 &
	pids+=($!)
done
for i in 1 2 3 4; do
	crc=0
	wait "${pids[$((i - 1))]}" || crc=$?
	check "concurrent mount c$i (exit $crc: $(cat "$CT_DIR/c$i.out"))" test "$crc" -eq 0
	check "c$i is mounted" is_mounted "$CT_DIR/mnt/c$i/ws"
done
for i in 1 2 3 4; do
	run umount --job "c$i"
	expect_rc 0 "umount c$i"
done

step "umount"
run umount --job j1
expect_rc 0 "umount j1"
check "j1/ws unmounted" bash -c "! awk -v m='$CT_DIR/mnt/j1/ws' '\$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo"
check "the daemon exited" wait_gone "$pid" 10
check "record state unmounted" test "$(record_field j1 state)" = unmounted
check "the layer stays" test "$(cat "$state/jobs/j1/views/ws/upper/only-j1")" = one
check "the target dirs jobfs made are gone" test ! -e "$CT_DIR/mnt/j1"
run umount --job j1
expect_rc 0 "umount of an unmounted job"
run mount --job j1
expect_rc 5 "mount of a job whose layer remains"
expect_grep "$CT_DIR/err" "already exists (unmounted)" "mount of a job whose layer remains"
run umount --job nosuchjob
expect_rc 3 "umount of an unknown job"
expect_grep "$CT_DIR/err" "jobfs: umount: no such job 'nosuchjob'" "umount of an unknown job"
run umount --job j2 --collect
expect_rc 0 "umount --collect"
check "--collect removed the layer" test ! -e "$state/jobs/j2"
check "the trash is empty" test -z "$(ls -A "$state/trash")"
run umount --job j1 --collect
expect_rc 0 "umount --collect of an unmounted job"
check "--collect removed j1" test ! -e "$state/jobs/j1"

step "a failure rolls back everything and names the view"
mkdir -p "$CT_DIR/mnt2"
write_policy "$CT_DIR/bad.yaml" "$CT_DIR/state2" "  - name: good
    lower: [$CT_DIR/lower]
    target: $CT_DIR/mnt2/\${JOB_ID}/good
  - name: broken
    lower: [$CT_DIR/no-such-lower]
    target: $CT_DIR/mnt2/\${JOB_ID}/broken"
run mount --policy "$CT_DIR/bad.yaml" --job r1
expect_rc 6 "mount with a broken view"
expect_grep "$CT_DIR/err" "view 'broken'" "the error names the view"
check "no job dir left" test -z "$(ls -A "$CT_DIR/state2/jobs")"
check "no target dir left" test -z "$(ls -A "$CT_DIR/mnt2")"
check "no mount left" bash -c "! grep -q ' $CT_DIR/mnt2' /proc/self/mountinfo"
run mount --policy "$CT_DIR/bad.yaml" --job r1
expect_rc 6 "the same mount again fails the same way, not as 'already mounted'"

# a target that is already a mount point
jmount t1
write_policy "$CT_DIR/clash.yaml" "$CT_DIR/state3" "  - name: clash
    lower: []
    target: $CT_DIR/mnt/t1/ws"
run mount --policy "$CT_DIR/clash.yaml" --job t2
expect_rc 6 "mount over a mounted target"
expect_grep "$CT_DIR/err" "view 'clash': target '$CT_DIR/mnt/t1/ws' is already a mount point" \
	"mount over a mounted target"
check "t1 still serves" test "$(cat "$CT_DIR/mnt/t1/ws/file")" = "lower file"
run umount --job t1
expect_rc 0 "umount t1"

step "--foreground keeps the daemon attached"
CT_JOBS+=(f1)
"${JOBFS_CMD[@]}" mount --job f1 --foreground >"$CT_DIR/fg.out" 2>"$CT_DIR/fg.err" &
fg=$!
CT_PIDS+=("$fg")
for ((i = 0; i < 100; i++)); do
	is_mounted "$CT_DIR/mnt/f1/ws" && [ -s "$CT_DIR/fg.out" ] && break
	sleep 0.1
done
check "the foreground job is mounted" is_mounted "$CT_DIR/mnt/f1/ws"
check "mount --foreground has not returned" pid_running "$fg"
check "the daemon logs to the terminal" grep -q "job 'f1': serving 2 view(s)" "$CT_DIR/fg.err"
run umount --job f1
expect_rc 0 "umount of a foreground job"
frc=0
wait "$fg" || frc=$?
check "mount --foreground returns 0 after the umount (got $frc)" test "$frc" -eq 0
check "no daemon log file with --foreground" test ! -s "$state/jobs/f1/daemon.log"

step "the daemon keeps none of the caller's descriptors"
CT_JOBS+=(d1)
rc=0
"${JOBFS_CMD[@]}" mount --job d1 >"$CT_DIR/out" 2>"$CT_DIR/err" 9>"$CT_DIR/marker" || rc=$?
expect_rc 0 "mount with an extra descriptor"
daemon=$(record_field d1 pid)
check "the daemon does not hold fd 9's file" \
	bash -c "! ls -l /proc/$daemon/fd | grep -qF '$CT_DIR/marker'"
check "the daemon's stdin is /dev/null" test "$(readlink "/proc/$daemon/fd/0")" = /dev/null
check "its stderr is the log" test "$(readlink "/proc/$daemon/fd/2")" = "$state/jobs/d1/daemon.log"
run umount --job d1
expect_rc 0 "umount d1"

step "a view's quota from the policy is enforced"
write_policy "$CT_DIR/quota.yaml" "$CT_DIR/state4" "  - name: small
    lower: [$CT_DIR/lower]
    target: $CT_DIR/mnt4/\${JOB_ID}/small
    quota: 2MiB
  - name: free
    lower: []
    target: $CT_DIR/mnt4/\${JOB_ID}/free"
jmount q1 --policy "$CT_DIR/quota.yaml"
small=$CT_DIR/mnt4/q1/small
check "df shows the quota as the view's size" \
	test "$(($(stat -f -c '%b * %S' "$small")))" -eq $((2 << 20))
check "a view without quota shows its filesystem" \
	test "$(stat -f -c %b "$CT_DIR/mnt4/q1/free")" -eq "$(stat -f -c %b "$CT_DIR/state4")"
rc=0
dd if=/dev/zero of="$small/fill" bs=1M count=8 status=none 2>"$CT_DIR/dd.err" || rc=$?
check "writing 8 MiB into a 2 MiB view fails" test "$rc" -ne 0
expect_grep "$CT_DIR/dd.err" "No space left on device" "the error is ENOSPC"
check "the view is full" test "$(stat -f -c %a "$small")" -eq 0
check "the lower still reads" test "$(cat "$small/file")" = "lower file"
check "the other view is not limited" \
	dd if=/dev/zero of="$CT_DIR/mnt4/q1/free/big" bs=1M count=4 status=none
run umount --policy "$CT_DIR/quota.yaml" --job q1
expect_rc 0 "umount q1"

step "a daemon that fails: one line naming the job, the cause and the kept daemon log"
mkdir -p "$CT_DIR/vanishing"
write_policy "$CT_DIR/vanish.yaml" "$CT_DIR/state5" "  - name: base
    lower: [$CT_DIR/vanishing]
    target: $CT_DIR/mnt5/\${JOB_ID}/base"
rmdir "$CT_DIR/vanishing" # the lower vanished between the policy and the job
CT_JOBS+=(v1 v2)
run mount --policy "$CT_DIR/vanish.yaml" --job v1
expect_rc 6 "mount over a vanished lower"
log5=$CT_DIR/state5/logs/v1.daemon.log
check "the error is exactly one line" test "$(wc -l <"$CT_DIR/err")" -eq 1
check "it names the job, the view, the cause and the log" test "$(cat "$CT_DIR/err")" = \
	"jobfs: mount: job 'v1': view 'base': cannot open lower layer '$CT_DIR/vanishing': No such file or directory (daemon log: $log5)"
check "the job dir is rolled back" test ! -e "$CT_DIR/state5/jobs/v1"
check "the daemon log is kept where the message says" \
	grep -q "jobfs-daemon\[[0-9]*\]: view 'base': cannot open lower layer '$CT_DIR/vanishing'" "$log5"
run mount --policy "$CT_DIR/vanish.yaml" --job v2 --foreground
expect_rc 6 "mount --foreground over a vanished lower"
check "--foreground: the daemon's line, then jobfs's" test "$(grep -c . "$CT_DIR/err")" -eq 2
check "--foreground: jobfs's line says where the log went" test "$(tail -n 1 "$CT_DIR/err")" = \
	"jobfs: mount: job 'v2': view 'base': cannot open lower layer '$CT_DIR/vanishing': No such file or directory (the daemon logged to this terminal)"
check "--foreground: no log file" test ! -e "$CT_DIR/state5/logs/v2.daemon.log"
run gc --policy "$CT_DIR/vanish.yaml"
check "gc keeps the log within the retention" test -f "$log5"
touch -d '2 hours ago' "$log5"
run gc --policy "$CT_DIR/vanish.yaml"
expect_rc 0 "gc of the logs"
check "gc removes the log after the retention" test ! -e "$log5"
