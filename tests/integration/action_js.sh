#!/usr/bin/env bash
# The JavaScript action (.github/actions/jobfs) run with node the way a runner runs it: inputs as
# INPUT_* variables, GITHUB_ENV/GITHUB_OUTPUT/GITHUB_STATE as temp files, the saved state given
# back to post.js as STATE_*. main.js detaches a crashed job's stale views and mounts the job's
# views (checked in /proc/self/mountinfo and through the view) and writes the job ID, targets and variables to the files; post.js unmounts
# with --kill (a process holding a view is ended, the daemon exits, nothing stays mounted) and
# records JOBFS_OUTCOME; fail-open turns a failure into a ::warning:: and exit 0, fail-closed
# into ::error:: and exit 1; the mark-ok composite action's script marks the job successful.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
src=$(cd "$here/../.." && pwd)
action=$src/.github/actions/jobfs
state=$CT_DIR/state

if ! command -v node >/dev/null; then
	echo "SKIP: $CT_NAME: needs node"
	exit 77
fi

# The job ID comes from `jobfs job-key --github`, the one derivation of it.
program=$JOBFS

# gh_file FILE NAME: the value NAME was given in a runner file (NAME<<DELIM ... DELIM, or NAME=V)
gh_file() {
	python3 - "$1" "$2" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
values, i = {}, 0
while i < len(lines):
    line = lines[i]
    if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
        name, delim = line.split("<<", 1)
        end = lines.index(delim, i + 1)
        values[name] = "\n".join(lines[i + 1:end])
        i = end + 1
        continue
    if "=" in line:
        name, value = line.split("=", 1)
        values[name] = value
    i += 1
if sys.argv[2] not in values:
    sys.exit(1)
print(values[sys.argv[2]])
EOF
}

# new_runner_files: empty GITHUB_ENV, GITHUB_OUTPUT, GITHUB_STATE for a new job
new_runner_files() {
	gh=$CT_DIR/gh.$1
	mkdir -p "$gh"
	: >"$gh/env"
	: >"$gh/output"
	: >"$gh/state"
}

# node_step SCRIPT [VAR=VALUE...]: runs main.js or post.js with the runner's environment for job
# $run_id; post.js also gets the state main.js saved, as STATE_NAME. Sets rc, out, err.
node_step() {
	local script=$1 name v
	local -a unset=()
	shift
	while [ "${1:-}" = -u ]; do
		unset+=("$2")
		shift 2
	done
	local -a env=(GITHUB_ACTIONS=true RUNNER_NAME=runner-a GITHUB_RUN_ID="$run_id"
		GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build GITHUB_REPOSITORY=acme/app
		GITHUB_REF=refs/heads/main GITHUB_WORKFLOW=ci GITHUB_EVENT_NAME=push
		RUNNER_TEMP="$CT_DIR/runner-temp" GITHUB_ENV="$gh/env" GITHUB_OUTPUT="$gh/output"
		GITHUB_STATE="$gh/state" INPUT_JOBFS="$program" INPUT_POLICY="$CT_DIR/policy.yaml"
		INPUT_VIEWS= "INPUT_FAIL-OPEN=")
	for v in "${unset[@]}"; do
		for name in "${!env[@]}"; do
			[[ ${env[name]} == "$v="* ]] && unset "env[name]"
		done
	done
	if [ "$script" = post.js ]; then
		for name in jobfs policy fail_open job; do
			if gh_file "$gh/state" "$name" >/dev/null; then
				env+=("STATE_$name=$(gh_file "$gh/state" "$name")")
			fi
		done
	fi
	rc=0
	env -u JOBFS_POLICY "${env[@]}" "$@" node "$action/$script" >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
}

step "action.yml: node20, main.js and post.js, the inputs main.js reads"
check "action.yml runs main.js and post.js on node20" python3 -c '
import sys, yaml
a = yaml.safe_load(open(sys.argv[1]))
r = a["runs"]
assert (r["using"], r["main"], r["post"]) == ("node20", "main.js", "post.js"), r
assert set(a["inputs"]) == {"policy", "views", "fail-open", "jobfs"}, a["inputs"]
assert set(a["outputs"]) == {"job-id", "mounted", "targets"}, a["outputs"]' "$action/action.yml"
for input in policy views fail-open jobfs; do
	expect_grep "$action/main.js" "lib.input('$input')" "main.js reads input $input"
done
deps=$(grep -hoE "require\('[^']*'\)" "$action"/*.js | sort -u | tr '\n' ' ')
check "no dependency beyond Node's standard library: $deps" test \
	"$deps" = "require('./lib.js') require('child_process') require('crypto') require('fs') "

step "main.js recovers a crashed job's stale views, mounts the job's views, exports the targets"
jmount crashed # an earlier job on this host whose daemon died with its runner
crashed_daemon=$(record_field crashed pid)
kill -KILL "$crashed_daemon" # started by this test through jobfs mount
check "the crashed job's daemon died" wait_gone "$crashed_daemon" 50
run_id=1001
new_runner_files 1
node_step main.js INPUT_VIEWS="ws=JOBFS_WS, tmp=JOBFS_TMP"
expect_rc 0 "main.js"
expect_grep "$CT_DIR/out" "jobfs: recovered job crashed, left stale by a crashed job" "recovery is logged"
check "the crashed job is unmounted" test "$(record_field crashed state)" = unmounted
check "its views are detached" bash -c "! grep -q ' $CT_DIR/mnt/crashed/' /proc/self/mountinfo"
job=$(gh_file "$gh/output" job-id) || job=""
check "main.js gives the job ID as an output" test -n "$job"
expected_job=$(env RUNNER_NAME=runner-a GITHUB_RUN_ID=1001 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build \
	"$program" job-key --github)
check "the job ID is jobfs job-key --github's" test "$job" = "$expected_job"
CT_JOBS+=("$job")
ws=$CT_DIR/mnt/$job/ws
check "view ws is mounted" is_mounted "$ws"
check "view tmp is mounted" is_mounted "$CT_DIR/mnt/$job/tmp"
check "the view shows the lower" test "$(cat "$ws/file" 2>/dev/null)" = "lower file"
echo "written by the job" >"$ws/new"
check "a write lands in the job's upper" test -f "$state/jobs/$job/views/ws/upper/new"
check "the lower is untouched" test ! -e "$CT_DIR/lower/new"
check "GITHUB_ENV: the job's marker JOBFS_JOB_ID" test "$(gh_file "$gh/env" JOBFS_JOB_ID)" = "$expected_job"
check "GITHUB_ENV: JOBFS_WS is ws's target" test "$(gh_file "$gh/env" JOBFS_WS)" = "$ws"
check "GITHUB_ENV: JOBFS_TMP is tmp's target" test "$(gh_file "$gh/env" JOBFS_TMP)" = "$CT_DIR/mnt/$job/tmp"
check "output mounted=true" test "$(gh_file "$gh/output" mounted)" = true
check "output target-ws" test "$(gh_file "$gh/output" target-ws)" = "$ws"
check "output targets is the JSON of both views" python3 -c '
import json, sys
t = json.loads(sys.argv[1])
assert t == {"ws": sys.argv[2] + "/ws", "tmp": sys.argv[2] + "/tmp"}, t' \
	"$(gh_file "$gh/output" targets)" "$CT_DIR/mnt/$job"
check "state: the job for post" test "$(gh_file "$gh/state" job)" = "$job"
expect_grep "$CT_DIR/out" "jobfs: job $job mounted 2 view(s)" "main.js says what it mounted"
expect_no_grep "$CT_DIR/out" "::warning" "no warning"
run ls --json
check "the job's context is recorded" test \
	"$(json '[x["context"] for x in d if x["id"] == "'"$job"'"][0]')" = \
	"{'repository': 'acme/app', 'ref': 'refs/heads/main', 'workflow': 'ci', 'job': 'build', 'event': 'push'}"

step "post.js unmounts with --kill and records the outcome"
daemon=$(record_field "$job" pid)
bg bash -c "cd '$ws' && exec sleep 300" # a background server still in the view
holder=$BG_PID
for _ in $(seq 50); do
	[ "$(readlink "/proc/$holder/cwd" 2>/dev/null)" = "$ws" ] && break
	sleep 0.1
done
check "a process holds the view" test "$(readlink "/proc/$holder/cwd")" = "$ws"
node_step post.js JOBFS_OUTCOME=failure
expect_rc 0 "post.js"
expect_grep "$CT_DIR/out" "jobfs: job $job unmounted" "post.js says so"
check "the holder was ended" wait_gone "$holder" 50
check "the daemon exited" wait_gone "$daemon" 50
check "nothing of the job stays mounted" bash -c "! grep -q ' $CT_DIR/mnt/$job/' /proc/self/mountinfo"
check "the record says unmounted" test "$(record_field "$job" state)" = unmounted
check "the record has the outcome" test "$(record_field "$job" outcome)" = failure
check "the layer stays for inspect" test -f "$state/jobs/$job/views/ws/upper/new"

step "mark-ok's script marks a mounted job successful"
run_id=1002
new_runner_files 2
node_step main.js
expect_rc 0 "main.js, job 2"
job2=$(gh_file "$gh/output" job-id)
CT_JOBS+=("$job2")
markok=$CT_DIR/mark-ok.sh
python3 -c '
import sys, yaml
a = yaml.safe_load(open(sys.argv[1]))
assert a["runs"]["using"] == "composite"
print(a["runs"]["steps"][0]["run"])' "$src/.github/actions/mark-ok/action.yml" >"$markok"
rc=0
env RUNNER_NAME=runner-a GITHUB_RUN_ID=1002 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build \
	JOBFS_ACTION_POLICY="$CT_DIR/policy.yaml" JOBFS_ACTION_PROGRAM="$program" \
	bash "$markok" >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
expect_rc 0 "mark-ok"
check "the record says success" test "$(record_field "$job2" outcome)" = success
node_step post.js
expect_rc 0 "post.js, job 2"
check "job 2 is unmounted" test "$(record_field "$job2" state)" = unmounted
check "no outcome given keeps mark-ok's" test "$(record_field "$job2" outcome)" = success
# a job whose views were never mounted: a notice, not a failed job
rc=0
env RUNNER_NAME=runner-a GITHUB_RUN_ID=1999 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build \
	JOBFS_ACTION_POLICY="$CT_DIR/policy.yaml" JOBFS_ACTION_PROGRAM="$program" \
	bash "$markok" >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
expect_rc 0 "mark-ok of a job never mounted"
expect_grep "$CT_DIR/out" "::notice title=jobfs::job " "a notice says why"

step "fail-open: a policy that cannot be used gives a ::warning:: and exit 0"
printf 'version: 1\nstate_dir: relative/dir\n' >"$CT_DIR/bad.yaml"
run_id=1003
new_runner_files 3
node_step main.js INPUT_POLICY="$CT_DIR/bad.yaml"
expect_rc 0 "main.js fail-open"
expect_grep "$CT_DIR/out" "::warning title=jobfs::cannot mount the views of job " "a warning annotation"
expect_grep "$CT_DIR/out" "the job runs without jobfs isolation" "the warning says the job runs on"
check "the warning is one line" test "$(grep -c '::warning' "$CT_DIR/out")" = 1
check "output mounted=false" test "$(gh_file "$gh/output" mounted)" = false
check "no job for post" bash -c "! grep -q '^job<<' '$gh/state'"
check "nothing mounted" bash -c "! grep -q ' $CT_DIR/mnt/' /proc/self/mountinfo"
node_step post.js
expect_rc 0 "post.js after fail-open"
expect_grep "$CT_DIR/out" "nothing to unmount" "post.js has nothing to do"

step "a missing runner variable: the warning names it"
new_runner_files 4
node_step main.js -u GITHUB_RUN_ATTEMPT
expect_rc 0 "main.js without GITHUB_RUN_ATTEMPT"
expect_grep "$CT_DIR/out" "::warning title=jobfs::cannot derive the job ID" "warning"
expect_grep "$CT_DIR/out" "GITHUB_RUN_ATTEMPT" "the warning names the variable"

step "fail-closed: ::error:: and exit 1"
new_runner_files 5
node_step main.js INPUT_POLICY="$CT_DIR/bad.yaml" "INPUT_FAIL-OPEN=false"
expect_rc 1 "main.js fail-closed"
expect_grep "$CT_DIR/out" "::error title=jobfs::cannot mount the views of job " "an error annotation"
expect_no_grep "$CT_DIR/out" "::warning" "no warning"
new_runner_files 6
node_step main.js "INPUT_FAIL-OPEN=maybe"
expect_rc 0 "an invalid fail-open is itself failed open"
expect_grep "$CT_DIR/out" "input 'fail-open': expected true or false, got 'maybe'" "it says why"
run_id=1007
new_runner_files 7
node_step main.js "INPUT_VIEWS=nosuch=X" "INPUT_FAIL-OPEN=false"
expect_rc 1 "a view the job lacks"
expect_grep "$CT_DIR/out" "input 'views': the policy" "names the input"
expect_grep "$CT_DIR/out" "the policy has no view 'nosuch' (it has: ws, tmp)" "names the view"
job7=$(gh_file "$gh/output" job-id)
CT_JOBS+=("$job7")
node_step post.js
expect_rc 0 "post.js unmounts what main.js mounted before it failed"
check "job 7 is unmounted" test "$(record_field "$job7" state)" = unmounted
# the policy's hooks.fail_open when the input is empty
cp "$CT_DIR/policy.yaml" "$CT_DIR/closed.yaml"
printf 'hooks:\n  fail_open: false\n' >>"$CT_DIR/closed.yaml"
CT_POLICIES+=("$CT_DIR/closed.yaml")
run_id=1008
new_runner_files 8
node_step main.js INPUT_POLICY="$CT_DIR/closed.yaml" INPUT_JOBFS=/nonexistent/jobfs
expect_rc 0 "a jobfs that cannot run: fail-open by default"
new_runner_files 9
node_step main.js INPUT_POLICY="$CT_DIR/closed.yaml" "INPUT_VIEWS=nosuch=X"
expect_rc 1 "hooks.fail_open: false in the policy fails the step"
job9=$(gh_file "$gh/output" job-id)
CT_JOBS+=("$job9")
node_step post.js
expect_rc 0 "post.js, job 9"

# a view the policy's selectors leave out of this job: a notice, the variable unset
cp "$CT_DIR/policy.yaml" "$CT_DIR/when.yaml"
cat >>"$CT_DIR/when.yaml" <<EOF
  - name: release
    lower: []
    target: $CT_DIR/mnt/\${JOB_ID}/release
    when: {ref: [refs/tags/*]}
EOF
sed -i '/^gc:/,/keep_unmounted/d' "$CT_DIR/when.yaml"
CT_POLICIES+=("$CT_DIR/when.yaml")
run policy check "$CT_DIR/when.yaml"
expect_rc 0 "the policy with a selector is valid"
run_id=1011
new_runner_files 11
node_step main.js INPUT_POLICY="$CT_DIR/when.yaml" "INPUT_VIEWS=ws=JOBFS_WS,release=JOBFS_RELEASE" \
	"INPUT_FAIL-OPEN=false"
expect_rc 0 "main.js with a view its selector leaves out"
job11=$(gh_file "$gh/output" job-id)
CT_JOBS+=("$job11")
expect_grep "$CT_DIR/out" "::notice title=jobfs::view 'release' is not mounted for job $job11; JOBFS_RELEASE not set" "a notice"
check "JOBFS_WS is set" test "$(gh_file "$gh/env" JOBFS_WS)" = "$CT_DIR/mnt/$job11/ws"
check "JOBFS_RELEASE is not" bash -c "! grep -q '^JOBFS_RELEASE' '$gh/env'"
check "release is not mounted" test ! -e "$CT_DIR/mnt/$job11/release"
node_step post.js
expect_rc 0 "post.js, job 11"

step "post.js fail-closed when umount fails: ::error:: and exit 1"
new_runner_files 10
printf 'jobfs<<E\n%s\nE\njob<<E\nno-such-job\nE\nfail_open<<E\nfalse\nE\npolicy<<E\n%s\nE\n' \
	"$program" "$CT_DIR/policy.yaml" >"$gh/state"
node_step post.js
expect_rc 1 "post.js for a job that does not exist"
expect_grep "$CT_DIR/out" "::error title=jobfs::cannot unmount the views of job no-such-job: " "an error"
