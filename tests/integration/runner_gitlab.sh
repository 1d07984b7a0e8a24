#!/usr/bin/env bash
# The GitLab Runner custom-executor driver (scripts/runner/gitlab) driven the way the runner drives
# it: config, prepare, run for each stage with the runner's script and stage name, cleanup; with
# the CUSTOM_ENV_* environment and the BUILD_FAILURE/SYSTEM_FAILURE exit codes it gives. Two jobs
# overlap at the same canonical paths: each stage script sees its own job's views there while the
# host sees neither; a job that succeeds is promoted (archive_cache), one that fails is not
# (archive_cache_on_failure), one without cache stages is judged by its step stages; cleanup ends
# the background server a job left, and leaves no mount (in any namespace), process or layer.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
driver=$here/../../scripts/runner/gitlab

mounted_anywhere() { # JOB: a view of JOB mounted in any process's mount namespace
	grep -sqF -- " fuse.jobfs jobfs:$1/" /proc/[0-9]*/mountinfo
}
gone_everywhere() { ! mounted_anywhere "$1"; }

builds=$CT_DIR/builds
npm=$CT_DIR/home/.npm
mkdir -p "$CT_DIR/npm-base/_cacache" "$CT_DIR/scripts" "$builds"
echo base >"$CT_DIR/npm-base/_cacache/base-entry"
(cd "$CT_DIR/npm-base" && find . -printf '%p %s %T@\n' | sort) >"$CT_DIR/npm-base.manifest"
write_policy "$CT_DIR/gitlab.yaml" "$CT_DIR/gstate" "  - name: builds
    lower: []
    target: \${CI_BUILDS_DIR}
  - name: npm
    lower: [$CT_DIR/npm-base]
    target: $npm
    promote: add-only"

# the runner's environment for a stage of job $1; the driver's settings as an admin sets them
export JOBFS JOBFS_POLICY=$CT_DIR/gitlab.yaml JOBFS_GITLAB_RUN_DIR=$CT_DIR/run \
	JOBFS_GITLAB_BUILDS_DIR=$builds JOBFS_GITLAB_CACHE_DIR=$CT_DIR/cache \
	JOBFS_GITLAB_KILL_TIMEOUT=3 BUILD_FAILURE_EXIT_CODE=41 SYSTEM_FAILURE_EXIT_CODE=42
gl() { # JOB PROTECTED DRIVER-EXE ARGS...: runs a driver executable as the runner would
	local job=$1 protected=$2 exe=$3
	shift 3
	rc=0
	env CUSTOM_ENV_CI_JOB_ID="$job" CUSTOM_ENV_CI_BUILDS_DIR="$builds" \
		CUSTOM_ENV_CI_PROJECT_DIR="$builds/group/project" CUSTOM_ENV_CI_PROJECT_PATH_SLUG=group-project \
		CUSTOM_ENV_CI_COMMIT_REF_PROTECTED="$protected" CUSTOM_ENV_CI_JOB_NAME=test \
		CUSTOM_ENV_HOME=/nonexistent CUSTOM_ENV_CI_PIPELINE_ID=77 \
		"$driver/$exe" "$@" >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
}
stage() { # JOB STAGE SCRIPT-TEXT: the runner writes the stage's script and runs run_exec
	local dir
	dir=$(mktemp -d "$CT_DIR/scripts/script.XXXXXX")
	printf '#!/usr/bin/env bash\nset -eo pipefail\n%s\n' "$3" >"$dir/script."
	gl "$1" true run "$dir/script." "$2"
}

step "config prints the runner's JSON"
gl 1001 true config
expect_rc 0 "config"
check "builds_dir" test "$(json 'd["builds_dir"]')" = "$builds"
check "cache_dir" test "$(json 'd["cache_dir"]')" = "$CT_DIR/cache"
check "builds_dir_is_shared" test "$(json 'd["builds_dir_is_shared"]')" = False
check "driver name and version" test "$(json 'd["driver"]["name"], d["driver"]["version"]')" = \
	"jobfs $("$JOBFS" --version | cut -d' ' -f2)"

step "prepare: two jobs, each in its own namespace"
daemons=()
for job in 1001 1002; do
	CT_JOBS+=("gitlab-$job")
	gl "$job" true prepare
	expect_rc 0 "prepare $job"
	expect_grep "$CT_DIR/out" "npm	$npm" "prepare $job lists the npm view at its canonical path"
	check "job $job's views are mounted" mounted_anywhere "gitlab-$job"
	check "but not in the host's namespace" bash -c "! grep -qF ' jobfs:gitlab-$job/' /proc/self/mountinfo"
	daemons+=("$(record_field "gitlab-$job" pid "$CT_DIR/gstate")")
done
check "the builds view's target came from CI_BUILDS_DIR" \
	grep -qx "target=$builds" "$CT_DIR/gstate/jobs/gitlab-1001/record"
gl 1003 true prepare
CT_JOBS+=(gitlab-1003)
gl 1003 true prepare
expect_rc 0 "a retried prepare"
expect_grep "$CT_DIR/err" "removed what an earlier run of job gitlab-1003 left" "it starts over"
gl 1003 true cleanup

step "the stages of job 1001 (succeeds) and 1002 (fails), interleaved"
project=$builds/group/project
for job in 1001 1002; do
	# shellcheck disable=SC2016 # the stage script expands it
	stage $job prepare_script 'echo "Running with jobfs on $(hostname)"'
	expect_rc 0 "$job prepare_script"
	stage $job get_sources "mkdir -p '$project' && cd '$project' && echo $job >who && echo 'int main;' >main.c"
	expect_rc 0 "$job get_sources"
done
check "the host's builds dir is empty" test -z "$(ls -A "$builds")"
stage 1001 step_script "cd '$project'
test \"\$(cat who)\" = 1001
test \"\$(cat '$npm/_cacache/base-entry')\" = base
echo 1001 >'$npm/_cacache/added-by-1001'
echo built >build.out
# a background server the job leaves running, its cwd in the view
(cd '$project' && exec setsid sleep 1000 </dev/null >/dev/null 2>&1) &
echo \$! >'$CT_DIR/server.pid'"
expect_rc 0 "1001 step_script sees its own sources and the base at the canonical paths"
server=$(cat "$CT_DIR/server.pid")
ct_track "$server"
check "the server runs" pid_running "$server"
stage 1002 step_script "cd '$project'
test \"\$(cat who)\" = 1002
test ! -e '$npm/_cacache/added-by-1001'
echo 1002 >'$npm/_cacache/added-by-1002'
echo 'tests failed' >&2
exit 3"
expect_rc 41 "1002's failing script (exit 3, which is also a jobfs code) is a build failure"
check "the host sees no job's writes" test ! -e "$npm/_cacache/added-by-1001" -a ! -e "$project"
stage 1001 after_script "test -e '$project/build.out'"
expect_rc 0 "1001 after_script"
stage 1002 after_script "test ! -e '$project/build.out' && test -e '$project/main.c'"
expect_rc 0 "1002 after_script sees its own tree"
stage 1001 archive_cache "echo archiving"
expect_rc 0 "1001 archive_cache (the success path)"
check "1001 is marked successful" grep -qx "outcome=success" "$CT_DIR/gstate/jobs/gitlab-1001/record"
stage 1002 archive_cache_on_failure "echo archiving after a failure"
expect_rc 0 "1002 archive_cache_on_failure"
check "1002 is not marked successful" bash -c "! grep -q outcome=success '$CT_DIR/gstate/jobs/gitlab-1002/record'"
stage 1009 step_script "true"
expect_rc 42 "a job never prepared is a system failure"

step "cleanup of 1001: the server is killed, the base promoted, nothing left"
daemon=$(record_field gitlab-1001 pid "$CT_DIR/gstate")
gl 1001 true cleanup
expect_rc 0 "cleanup 1001"
check "the server was killed" wait_gone "$server" 50
check "1001's daemon exited" wait_gone "$daemon" 50
check "no view of 1001 in any namespace" gone_everywhere gitlab-1001
check "1001's layer is gone" test ! -e "$CT_DIR/gstate/jobs/gitlab-1001"
check "the driver's state of 1001 is gone" test ! -e "$CT_DIR/run/gitlab-1001"
gen=$(sed -n 2p "$CT_DIR/gstate/bases/npm/stack") # newest first, after the magic line
check "1001's addition is in the new generation" \
	grep -qx 1001 "$CT_DIR/gstate/bases/npm/gens/$gen/_cacache/added-by-1001"
run exec --job gitlab-1002 -- cat "$project/who"
check "job 1002 still has its own views" grep -qx 1002 "$CT_DIR/out"

step "cleanup of 1002: failed, not promoted"
gl 1002 true cleanup
expect_rc 0 "cleanup 1002"
expect_grep "$CT_DIR/err" "job gitlab-1002: outcome failure" "outcome failure"
check "no view of 1002 left" gone_everywhere gitlab-1002
check "1002's layer is gone" test ! -e "$CT_DIR/gstate/jobs/gitlab-1002"
check "1002's addition was not promoted" \
	bash -c "! find '$CT_DIR/gstate/bases/npm' -name added-by-1002 | grep -q ."

step "job 1004 (no cache stages): judged by its step stages; an unprotected ref is not promoted"
CT_JOBS+=(gitlab-1004)
gl 1004 false prepare
expect_rc 0 "prepare 1004"
daemons+=("$(record_field gitlab-1004 pid "$CT_DIR/gstate")")
stage 1004 step_script "test \"\$(cat '$npm/_cacache/added-by-1001')\" = 1001 && echo 1004 >'$npm/_cacache/added-by-1004'"
expect_rc 0 "1004 sees what 1001 promoted"
gl 1004 false cleanup
expect_rc 0 "cleanup 1004"
expect_grep "$CT_DIR/err" "job gitlab-1004: outcome success" "success from the step stages"
expect_grep "$CT_DIR/err" "not promoted: its ref is not protected" "unprotected: not promoted"
check "1004's addition was not promoted" \
	bash -c "! find '$CT_DIR/gstate/bases/npm' -name added-by-1004 | grep -q ."

step "nothing left behind"
check "the base dir is unchanged" \
	diff <(cd "$CT_DIR/npm-base" && find . -printf '%p %s %T@\n' | sort) "$CT_DIR/npm-base.manifest"
check "no job layer is left" test -z "$(ls -A "$CT_DIR/gstate/jobs")"
check "no driver state is left" test -z "$(ls -A "$CT_DIR/run")"
for job in 1001 1002 1003 1004; do
	check "no view of $job in any namespace" gone_everywhere "gitlab-$job"
done
for pid in "${daemons[@]}"; do
	check "daemon $pid is gone" wait_gone "$pid" 10
done
