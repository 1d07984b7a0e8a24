#!/usr/bin/env bash
# jobfs mount --namespace private and jobfs exec: the views live in a mount namespace the job's
# daemon holds, invisible to the host; exec runs a command inside it (cwd re-resolved there, --cwd,
# environment and descriptors kept) with the command's exit status, 126/127 like a shell, 10 for a
# job that is not mounted; umount --kill ends exactly the processes inside holding the views; a
# daemon killed takes its views with it and ls/gc/exec see it; a record pointing at a recycled
# PID is never trusted; two private jobs share one canonical target without seeing each other.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"

mounted_anywhere() { # JOB: a view of JOB mounted in any process's mount namespace
	grep -sqF -- " fuse.jobfs jobfs:$1/" /proc/[0-9]*/mountinfo
}
gone_everywhere() { # JOB: no view of JOB in any namespace
	! mounted_anywhere "$1"
}
wait_exec_sleep() { # PID JOB: waits until PID, an exec into JOB's namespace, runs sleep there
	local i ns
	ns=$(record_field "$2" namespace_ino)
	for ((i = 0; i < 300; i++)); do
		if [ "$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" = "sleep 1000 " ] &&
			[ "$(stat -L -c %i "/proc/$1/ns/mnt" 2>/dev/null)" = "$ns" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

step "mount --namespace private: the host does not see the views"
run mount --job x1 --namespace bogus
expect_rc 1 "an unknown namespace"
expect_grep "$CT_DIR/err" "invalid namespace 'bogus' (expected host or private)" "names the value"
jmount x1 --namespace private
ws=$CT_DIR/mnt/x1/ws
check "the record says namespace=private" grep -qx "namespace=private" "$CT_DIR/state/jobs/x1/record"
check "no view in the host's mount table" bash -c "! grep -qF ' fuse.jobfs jobfs:x1/' /proc/self/mountinfo"
check "the views are mounted in some namespace" mounted_anywhere x1
check "the host's target is a plain empty dir" test -d "$ws" -a ! -e "$ws/file"
run ls --json
expect_rc 0 "ls"
check "ls: mounted" test "$(json 'd[0]["state"]')" = mounted
check "ls: namespace private" test "$(json 'd[0]["namespace"]')" = private

step "exec runs the command inside, with its exit status"
run exec --job x1 -- cat "$ws/file"
expect_rc 0 "exec cat"
check "exec sees the lower file at the target" grep -qx "lower file" "$CT_DIR/out"
run exec --job x1 -- sh -c "echo job-write >'$ws/new' && grep -c ' fuse.jobfs jobfs:x1/' /proc/self/mountinfo"
expect_rc 0 "exec writes"
check "both views are in exec's mount table" grep -qx 2 "$CT_DIR/out"
check "the host does not see the write" test ! -e "$ws/new"
run exec --job x1 cat "$ws/new"
expect_rc 0 "a second exec (CMD right after the options, no --)"
check "a second exec sees the first one's write" grep -qx job-write "$CT_DIR/out"
JOBFS_JOB_ID=other run exec --job x1 -- sh -c 'echo "marker=$JOBFS_JOB_ID"'
expect_rc 0 "exec with a marker in its environment"
check "CMD carries the job's marker, JOBFS_JOB_ID=x1, in place of the one exec had" \
	grep -qx marker=x1 "$CT_DIR/out"
for code in 1 3 42 255; do
	run exec --job x1 -- sh -c "exit $code"
	expect_rc "$code" "exit status $code passes through"
done
run exec --job x1 -- sh -c 'kill -TERM $$'
expect_rc 143 "a command killed by a signal: exec replaced itself with it"
run exec --job x1 -- sh -c 'echo "$@"' sh --job y --cwd /x
check "CMD's own options are CMD's" grep -qx -- "--job y --cwd /x" "$CT_DIR/out"
run exec --job x1 -- "$CT_DIR/no-such-command"
expect_rc 127 "not found"
expect_grep "$CT_DIR/err" "jobfs: exec: cannot run '$CT_DIR/no-such-command': No such file or directory" "not found message"
printf 'echo hi\n' >"$CT_DIR/not-executable"
run exec --job x1 -- "$CT_DIR/not-executable"
expect_rc 126 "not executable"
expect_grep "$CT_DIR/err" "cannot run '$CT_DIR/not-executable': Permission denied" "not executable message"
# shellcheck disable=SC2016 # the inner shell expands it
FOO=bar-value run exec --job x1 -- sh -c 'echo "$FOO"; echo via-fd >&7' 7>"$CT_DIR/fd7"
check "the environment passes" grep -qx bar-value "$CT_DIR/out"
check "descriptors pass" grep -qx via-fd "$CT_DIR/fd7"

step "the working directory is re-resolved inside; --cwd"
(cd "$ws" && run exec --job x1 -- cat file && cp "$CT_DIR/out" "$CT_DIR/cwd.out")
check "the caller's cwd path leads into the view inside" grep -qx "lower file" "$CT_DIR/cwd.out"
run exec --job x1 --cwd "$ws/dir" -- sh -c 'pwd; cat inner'
check "--cwd absolute" test "$(cat "$CT_DIR/out")" = "$ws/dir
in a dir"
(cd "$CT_DIR/mnt/x1" && run exec --job x1 --cwd ws/dir -- cat inner && cp "$CT_DIR/out" "$CT_DIR/rel.out")
check "--cwd relative to the caller's cwd" grep -qx "in a dir" "$CT_DIR/rel.out"
run exec --job x1 --cwd "$ws/missing" -- true
expect_rc 6 "--cwd that does not exist inside"
expect_grep "$CT_DIR/err" "cannot change to directory '$ws/missing' in the job's namespace" "names the dir"

step "usage errors and unknown jobs"
run exec --job x1
expect_rc 1 "no command"
expect_grep "$CT_DIR/err" "missing argument" "missing command message"
run exec -- true
expect_rc 1 "no --job"
run exec --job ../x -- true
expect_rc 1 "invalid job ID"
run exec --job nosuch -- true
expect_rc 3 "no such job"
expect_grep "$CT_DIR/err" "no such job 'nosuch'" "no such job message"

step "a host-namespace job: exec just runs the command"
jmount h1
run exec --job h1 -- cat "$CT_DIR/mnt/h1/ws/file"
expect_rc 0 "exec on a host job"
check "it sees the view" grep -qx "lower file" "$CT_DIR/out"
run exec --job h1 -- sh -c 'exit 7'
expect_rc 7 "status passes for a host job"
run ls --json
check "ls: namespace host" test "$(json '[j["namespace"] for j in d if j["id"] == "h1"][0]')" = host
run umount --job h1
expect_rc 0 "umount h1"
run exec --job h1 -- true
expect_rc 10 "exec on an unmounted job"
expect_grep "$CT_DIR/err" "job 'h1' is not mounted (unmounted)" "not mounted message"

step "umount: busy inside the namespace; --kill ends exactly the holder"
daemon=$(record_field x1 pid)
bg "${JOBFS_CMD[@]}" exec --job x1 --cwd "$ws" -- sleep 1000
holder=$BG_PID
bg sleep 1000
other=$BG_PID
check "the exec runs sleep in x1's namespace" wait_exec_sleep "$holder" x1
run umount --job x1
expect_rc 4 "umount of a busy private view"
expect_grep "$CT_DIR/err" "  $holder sleep 1000" "the holder inside is listed"
expect_no_grep "$CT_DIR/err" "  $other " "the unrelated sleep is not"
check "still mounted inside" mounted_anywhere x1
run umount --job x1 --kill --timeout 5
expect_rc 0 "umount --kill"
hrc=0
wait "$holder" || hrc=$?
check "the holder ended by SIGTERM (status $hrc)" test "$hrc" -eq 143
check "the unrelated sleep survives" pid_running "$other"
check "the daemon (the namespace's holder) exited" wait_gone "$daemon" 50
check "no view of x1 in any namespace" gone_everywhere x1
check "record unmounted" test "$(record_field x1 state)" = unmounted
check "a private job's target dir stays" test -d "$ws"

step "a daemon killed takes its views along; ls, exec, umount and gc see it"
jmount x2 --namespace private
daemon=$(record_field x2 pid)
kill -KILL "$daemon"
check "the daemon is gone" wait_gone "$daemon" 50
check "its views went with its namespace" gone_everywhere x2
run ls --json
check "ls: stale" test "$(json '[j["state"] for j in d if j["id"] == "x2"][0]')" = stale
run exec --job x2 -- touch "$CT_DIR/ran-x2"
expect_rc 10 "exec with a dead holder"
expect_grep "$CT_DIR/err" "job 'x2' is stale: its daemon $daemon, which held its mount namespace, is gone" "dead holder message"
check "the command did not run" test ! -e "$CT_DIR/ran-x2"
run umount --job x2
expect_rc 0 "umount of a job whose holder died"
check "record unmounted" test "$(record_field x2 state)" = unmounted
jmount x3 --namespace private
kill -KILL "$(record_field x3 pid)"
run gc --older-than 0s --json
expect_rc 0 "gc"
check "gc removed the dead job's layer" test ! -e "$CT_DIR/state/jobs/x3"
check "gc reports it" test "$(json '[r["id"] for r in d["removed"] if r["id"] == "x3"][0]')" = x3
check "gc removed the unmounted x1 and x2 too" test ! -e "$CT_DIR/state/jobs/x1" -a ! -e "$CT_DIR/state/jobs/x2"

step "a killed daemon whose namespace a leftover process keeps"
jmount x5 --namespace private
check "the record names the namespace's inode" test "$(record_field x5 namespace_ino)" = \
	"$(stat -L -c %i "/proc/$(record_field x5 pid)/ns/mnt")"
bg "${JOBFS_CMD[@]}" exec --job x5 --cwd "$CT_DIR/mnt/x5/ws" -- sleep 1000
leftover=$BG_PID
check "the exec runs sleep in x5's namespace" wait_exec_sleep "$leftover" x5
kill -KILL "$(record_field x5 pid)"
check "the daemon is gone" wait_gone "$(record_field x5 pid)" 50
check "the leftover keeps the namespace and its dead views" mounted_anywhere x5
run ls --json
check "ls: stale" test "$(json '[j["state"] for j in d if j["id"] == "x5"][0]')" = stale
run umount --job x5
expect_rc 4 "umount finds the leftover holding a dead view"
expect_grep "$CT_DIR/err" "  $leftover sleep 1000" "the leftover is listed"
run umount --job x5 --kill --timeout 5
expect_rc 0 "umount --kill through the leftover's namespace"
hrc=0
wait "$leftover" || hrc=$?
check "the leftover ended by SIGTERM (status $hrc)" test "$hrc" -eq 143
check "no view of x5 left" gone_everywhere x5
jmount x6 --namespace private
bg "${JOBFS_CMD[@]}" exec --job x6 --cwd "$CT_DIR/mnt/x6/ws" -- sleep 1000
leftover=$BG_PID
check "the exec runs sleep in x6's namespace" wait_exec_sleep "$leftover" x6
kill -KILL "$(record_field x6 pid)"
run gc --older-than 0s --json
expect_rc 0 "gc with a leftover"
check "gc detached x6's dead view inside the leftover's namespace" \
	test "$(json '[x["view"] for x in d["detached"] if x["id"] == "x6"][0]')" = ws
check "gc removed x6's layer" test ! -e "$CT_DIR/state/jobs/x6"
check "no view of x6 left" gone_everywhere x6
check "gc signals no job process" pid_running "$leftover"
kill -KILL "$leftover"

step "a recycled PID is never trusted"
jmount x4 --namespace private
daemon=$(record_field x4 pid)
cp "$CT_DIR/state/jobs/x4/record" "$CT_DIR/x4.record"
# an unrelated process in a mount namespace of its own, alive under the recorded start time's PID
bg unshare --mount --propagation private sleep 1000
impostor=$BG_PID
sleep 0.2
sed "s/^pid=.*/pid=$impostor/" "$CT_DIR/x4.record" >"$CT_DIR/state/jobs/x4/record"
run exec --job x4 -- touch "$CT_DIR/ran-x4"
expect_rc 10 "exec refuses a record whose PID now names another process"
check "the command did not run" test ! -e "$CT_DIR/ran-x4"
run ls --json
check "ls: stale, not mounted" test "$(json '[j["state"] for j in d if j["id"] == "x4"][0]')" = stale
start=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$daemon/stat")
sed "s/^pid_start=.*/pid_start=$((start + 1))/" "$CT_DIR/x4.record" >"$CT_DIR/state/jobs/x4/record"
run exec --job x4 -- touch "$CT_DIR/ran-x4"
expect_rc 10 "exec refuses the right PID with another start time"
check "the command did not run" test ! -e "$CT_DIR/ran-x4"
cp "$CT_DIR/x4.record" "$CT_DIR/state/jobs/x4/record"
check "the impostor was not touched" pid_running "$impostor"
run exec --job x4 -- true
expect_rc 0 "with the true record, exec enters"
run umount --job x4 --kill --timeout 2
expect_rc 0 "umount x4"
check "the impostor still runs" pid_running "$impostor"

step "two private jobs at one canonical target"
write_policy "$CT_DIR/canon.yaml" "$CT_DIR/state2" "  - name: ws
    lower: [$CT_DIR/lower]
    target: $CT_DIR/canon/ws"
for id in p1 p2; do
	jmount "$id" --namespace private --policy "$CT_DIR/canon.yaml"
	run exec --policy "$CT_DIR/canon.yaml" --job "$id" -- sh -c "echo $id >'$CT_DIR/canon/ws/who'"
	expect_rc 0 "$id writes at the shared path"
done
for id in p1 p2; do
	run exec --policy "$CT_DIR/canon.yaml" --job "$id" -- cat "$CT_DIR/canon/ws/who"
	check "$id sees only its own write" grep -qx "$id" "$CT_DIR/out"
done
check "the host sees neither" test ! -e "$CT_DIR/canon/ws/who"
run umount --policy "$CT_DIR/canon.yaml" --job p1 --collect
expect_rc 0 "umount p1"
run exec --policy "$CT_DIR/canon.yaml" --job p2 -- cat "$CT_DIR/canon/ws/who"
expect_rc 0 "p2 still mounted after p1's umount"
check "p2 still sees its own write" grep -qx p2 "$CT_DIR/out"
run umount --policy "$CT_DIR/canon.yaml" --job p2 --collect
expect_rc 0 "umount p2"
for id in x1 x2 x3 x4 x5 x6 p1 p2; do
	check "no view of $id left anywhere" gone_everywhere $id
done
