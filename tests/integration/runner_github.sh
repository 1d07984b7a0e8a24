#!/usr/bin/env bash
# Two GitHub Actions runner registrations on one host, one user, one $HOME, their jobs overlapping,
# each driven through the real hooks (scripts/runner/github/job-started and job-completed) with
# the environment a runner gives. Canonical mode: each runner in a private mount namespace
# (`unshare --mount --propagation slave`, as PrivateMounts=yes makes it), the views at the
# ordinary paths (~/.local/share/pnpm/store, ~/.npm, the workspace). Host mode: the same jobs in
# the host's namespace, the per-job paths exported through a GITHUB_ENV file.
# Each job: a real offline pnpm install into the store view at pnpm's default path (the store
# seeded once from the npm registry; skipped only when the registry cannot be reached), a SQLite
# database and a report dir in its workspace, a background HTTP server left running. Checks: each
# job saw only its own writes at the shared paths; the lowers never change and the bases only by
# promote (job 1 is marked ok, job 2 not); job 1's server dies at job 1's completion while job 2's
# identical server lives on; after both, gc leaves no mount, process or layer.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
hooks=$(cd "$here/../../scripts/runner/github" && pwd)
PNPM_VERSION=12.21.0

skip() {
	echo "SKIP: $CT_NAME: $*"
	exit 77
}
for tool in unshare nsenter sqlite3 npm node python3 flock; do
	command -v "$tool" >/dev/null || skip "needs $tool"
done

# --- the seed: pnpm and a small store, built once from the npm registry into a cache dir ---------
cache=${JOBFS_TEST_CACHE:-/var/tmp/jobfs-test-cache}/runner-github
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
pnpm=$cache/tools/node_modules/.bin/pnpm
seed=$cache/seed-1
if ! [ -x "$pnpm" ] || [ "$("$pnpm" --version 2>/dev/null)" != "$PNPM_VERSION" ] || ! [ -f "$seed/done" ]; then
	timeout 30 npm view "pnpm@$PNPM_VERSION" version >/dev/null 2>&1 ||
		skip "the npm registry cannot be reached to seed pnpm and its store"
fi
if ! [ -x "$pnpm" ] || [ "$("$pnpm" --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
	step "installing pnpm $PNPM_VERSION into $cache/tools"
	npm install --prefix "$cache/tools" --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION" >/dev/null
fi
if ! [ -f "$seed/done" ]; then
	step "seeding a small pnpm store in $seed from the npm registry"
	rm -rf "$seed"
	mkdir -p "$seed/project" "$seed/home"
	cat >"$seed/project/package.json" <<'EOF'
{"name": "runner-github-app", "version": "1.0.0", "private": true,
 "dependencies": {"is-number": "7.0.0", "ms": "2.1.3", "kleur": "4.1.5"}}
EOF
	(cd "$seed/project" && env -u XDG_DATA_HOME -u XDG_CACHE_HOME HOME="$seed/home" CI=true \
		"$pnpm" install --store-dir "$seed/store" --reporter=silent)
	rm -rf "$seed/project/node_modules" "$seed/store/v11/projects"
	touch "$seed/done"
fi
flock -u 9
exec 9>&-

# --- the host: one user's $HOME, two runner dirs, a policy, the base ------------------------------
home=$CT_DIR/home
mkdir -p "$home/.npm" "$CT_DIR/base/npm/_cacache" "$CT_DIR/bin"
cp -a "$seed/store" "$CT_DIR/base/pnpm-store"
cp -a "$seed/home/.cache/pnpm" "$CT_DIR/base/pnpm-cache" # its metadata, which --offline needs
echo "base npm cache" >"$CT_DIR/base/npm/_cacache/base-entry"
echo "the host's own file" >"$home/.npm/host-file"
cat >"$CT_DIR/policy.yaml" <<EOF
version: 1
state_dir: $CT_DIR/state
views:
  - name: pnpm-store
    lower: [$CT_DIR/base/pnpm-store]
    target: \${HOME}/.local/share/pnpm/store
    promote: pnpm-store
  - name: pnpm-cache
    lower: [$CT_DIR/base/pnpm-cache]
    target: \${HOME}/.cache/pnpm
  - name: npm-cache
    lower: [$CT_DIR/base/npm]
    target: \${HOME}/.npm
    promote: add-only
  - name: workspace
    lower: []
    target: \${GITHUB_WORKSPACE}
gc:
  keep_unmounted: 1h
EOF
export JOBFS_POLICY=$CT_DIR/policy.yaml

# The hooks derive the job key with `jobfs job-key --github`, and so does this test. Through the
# wrapper (valgrind under memcheck) when there is one.
if [ -n "${JOBFS_TEST_WRAPPER:-}" ]; then
	printf '#!/bin/sh\nexec %s "$@"\n' "${JOBFS_CMD[*]}" >"$CT_DIR/bin/jobfs"
	chmod +x "$CT_DIR/bin/jobfs"
	export JOBFS=$CT_DIR/bin/jobfs
else
	export JOBFS
fi

lower_manifest() {
	(cd "$CT_DIR/base" && find . -printf '%p %y %m %s %T@ %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
lower_before=$(lower_manifest)

# The runner: runs one job in its namespace as a runner would, hooks included, and waits at
# "$sync/$name.go" before its completion. Steps log to $sync/$name.log.
cat >"$CT_DIR/runner.sh" <<'EOF'
#!/usr/bin/env bash
# runner.sh NAME RUN_ID JOB SYNC_DIR RUNNER_ROOT
set -uo pipefail
name=$1 sync=$4 root=$5
export RUNNER_NAME=$name GITHUB_RUN_ID=$2 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=$3
export RUNNER_TEMP=$root/_work/_temp GITHUB_WORKSPACE=$root/_work/app/app
export RUNNER_WORKSPACE=$root/_work/app GITHUB_REPOSITORY=octo/app GITHUB_REF=refs/heads/main
export GITHUB_WORKFLOW=ci GITHUB_EVENT_NAME=push RUNNER_TRACKING_ID=github_$name-$2 CI=true
export GITHUB_ACTIONS=true
# The store view and the workspace view are two mounts: pnpm cannot hard-link across them and
# then ignores its default store (for one in the project) unless the store dir is set explicitly
# and packages are copied. A runner admin sets both in the runner's .env (README "Runner
# integration"); host mode's GITHUB_ENV overrides the store dir with the job's own.
export pnpm_config_package_import_method=copy pnpm_config_store_dir=$HOME/.local/share/pnpm/store
mkdir -p "$RUNNER_TEMP" "$GITHUB_WORKSPACE"
cd / || exit 1
log=$sync/$name.log
say() { echo "$*" >>"$log"; }
# what the runner does with an environment file after a step: the next steps get its variables
apply_env() {
	local line
	while IFS= read -r line; do
		[ -n "$line" ] && export "${line?}"
	done <"$1"
	: >"$1"
}
hook() { # HOOK: as the runner runs it, `bash -e FILE`, the step's own GITHUB_ENV
	local rc
	export GITHUB_ENV=$RUNNER_TEMP/_runner_file_commands/set_env_$1
	mkdir -p "$(dirname "$GITHUB_ENV")" && : >"$GITHUB_ENV"
	bash -e "$HOOKS/$1.sh" >>"$sync/$name.$1.out" 2>&1
	rc=$?
	echo "$rc" >"$sync/$name.$1.rc"
	cp "$GITHUB_ENV" "$sync/$name.$1.env"
	apply_env "$GITHUB_ENV"
	return "$rc"
}
step() { # NAME COMMANDS: a run step, with the job's environment, in the workspace
	say "step $1"
	(cd "$GITHUB_WORKSPACE" && bash -eo pipefail -c "$2") >>"$log" 2>&1 || { say "FAILED step $1"; touch "$sync/$name.failed"; }
}

hook job-started || { touch "$sync/$name.failed"; touch "$sync/$name.stepped"; exit 1; }
touch "$sync/$name.started"
# both jobs write at the same shared paths, at the same time
while ! [ -e "$sync/$OTHER.started" ]; do sleep 0.1; done
# pnpm/action-setup's pattern, where $HOME is a view: wipe and recreate ~/setup-pnpm, install
# pnpm there (a launcher and a tree of files), use it. Both jobs do it at the same moment.
if [ "${SETUP_PNPM:-0}" = 1 ]; then
	step "pnpm/action-setup" 'rm -rf ~/setup-pnpm && mkdir ~/setup-pnpm && mkdir -p ~/setup-pnpm/bin
		for i in $(seq 200); do mkdir -p ~/setup-pnpm/node_modules/pkg$i && echo "$RUNNER_NAME" >~/setup-pnpm/node_modules/pkg$i/index.js; done
		printf "#!/bin/sh\nexec %s \"\$@\"\n" "$PNPM" >~/setup-pnpm/bin/pnpm && chmod +x ~/setup-pnpm/bin/pnpm
		echo "$RUNNER_NAME" >~/setup-pnpm/owner
		ls ~/setup-pnpm/node_modules | wc -l >"$SYNC/$RUNNER_NAME.setup-count"
		test "$(cat ~/setup-pnpm/node_modules/pkg*/index.js | sort -u)" = "$RUNNER_NAME"'
	PNPM=$HOME/setup-pnpm/bin/pnpm
fi
step "own writes" 'npm_cache=${npm_config_cache:-$HOME/.npm}
	echo "$RUNNER_NAME" >"$npm_cache/written-by-$RUNNER_NAME-$GITHUB_RUN_ID"
	mkdir -p "$npm_cache/_cacache" && echo "$RUNNER_NAME" >"$npm_cache/_cacache/shared-name"
	echo "$RUNNER_NAME" >"${pnpm_config_store_dir:-$HOME/.local/share/pnpm/store}/written-by-$RUNNER_NAME-$GITHUB_RUN_ID"'
step "pnpm install --offline" 'mkdir -p app && cp "$SEED/project/package.json" "$SEED/project/pnpm-lock.yaml" app/
	cd app && "$PNPM" store path >"$SYNC/$RUNNER_NAME.store-path"
	"$PNPM" install --offline --frozen-lockfile --reporter=append-only
	node -e "require(\"is-number\"); require(\"ms\"); require(\"kleur\")"'
step "test artifacts" 'sqlite3 test-results.db "create table t(name text, ok int); insert into t values (\"$RUNNER_NAME\", 1);"
	mkdir -p report && echo "<h1>$RUNNER_NAME</h1>" >report/index.html'
step "a server left running" 'mkdir -p "${SERVER_DIR:-report}" && cd "${SERVER_DIR:-report}" && setsid python3 -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &
	echo $! >"$SYNC/$RUNNER_NAME.server.pid"'
# a server whose cwd is the workspace, under the runner's _work: with a view over the whole $HOME,
# _work is a pass-through, so it holds no view; umount --kill finds it by the job's marker
[ -n "${WS_SERVER:-}" ] && step "a server left in the workspace" 'setsid python3 -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &
	echo $! >"$SYNC/$RUNNER_NAME.ws-server.pid"'
# what each job sees at the shared paths, after both wrote there
step "look" 'npm_cache=${npm_config_cache:-$HOME/.npm}
	ls "$npm_cache" >"$SYNC/$RUNNER_NAME.npm-ls"; cat "$npm_cache/_cacache/shared-name" >"$SYNC/$RUNNER_NAME.shared-name"'
[ "$MARK_OK" = 1 ] && step "mark-ok" '"$JOBFS" mark-ok --job "$("$JOBFS" job-key --github)"'
touch "$sync/$name.stepped"
while ! [ -e "$sync/$name.go" ]; do sleep 0.1; done
"$JOBFS" ls >"$sync/$name.ls-before" 2>&1
hook job-completed
"$JOBFS" ls >"$sync/$name.ls-after" 2>&1
touch "$sync/$name.done"
# a runner's service lives on between jobs: keeps the namespace while the test looks into it
while ! [ -e "$sync/$name.exit" ]; do sleep 0.1; done
EOF
chmod +x "$CT_DIR/runner.sh"

RUNNER_PIDS=()
# start_runner NAME OTHER RUN_ID MARK_OK NS(1: a private namespace)
start_runner() {
	local cmd=(env HOME="${run_home:-$home}" HOOKS="$hooks" SEED="$seed" PNPM="$pnpm" SYNC="$sync"
		JOBFS="$JOBFS" OTHER="$2" MARK_OK="$4" JOBFS_RUNNER_MODE="$mode"
		SETUP_PNPM="${setup_pnpm:-0}" SERVER_DIR="${server_dir:-}" WS_SERVER="${ws_server:-}"
		bash "$CT_DIR/runner.sh" "$1" "$3" build "$sync" "${runners_dir:-$CT_DIR/runners}/$1")
	if [ "$5" = 1 ]; then
		bg unshare --mount --propagation slave "${cmd[@]}"
	else
		bg "${cmd[@]}"
	fi
	RUNNER_PIDS+=("$BG_PID")
}
wait_file() { # FILE [TENTHS]
	local i
	for ((i = 0; i < ${2:-1200}; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
key_of() { # NAME RUN_ID: the job key the hooks derive for runner NAME's job
	env RUNNER_NAME="$1" GITHUB_RUN_ID="$2" GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build "$JOBFS" job-key --github
}

# Cleans up what the runners left even when a check failed: each job is unmounted inside its
# daemon's namespace (from ours, umount refuses a job mounted elsewhere), then cli_lib's trap.
rg_on_exit() {
	local status=$? pid id
	set +e
	for id in "${RG_JOBS[@]}"; do
		pid=$(sed -n 's/^pid=//p' "$CT_DIR/state/jobs/$id/record" 2>/dev/null)
		if [ -n "$pid" ] && [ -e "/proc/$pid/ns/mnt" ]; then
			nsenter --target "$pid" --mount "$JOBFS" umount --job "$id" --kill --timeout 2 >/dev/null 2>&1
		fi
		# the unprivileged runners' daemons: ended, their namespaces go with the runners
		pid=$(sed -n 's/^pid=//p' "$CT_DIR/ustate/jobs/$id/record" 2>/dev/null)
		if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$id"; then
			kill -TERM "$pid" 2>/dev/null
		fi
	done
	(exit "$status")
	ct_on_exit
}
RG_JOBS=()
trap rg_on_exit EXIT

# run_pair MODE NS RUN1 RUN2: both runners' jobs, overlapping; job 1 marked ok, job 2 not.
run_pair() {
	mode=$1
	local ns=$2 k1 k2 s1 s2 pid
	sync=$CT_DIR/sync-$mode
	mkdir -p "$sync"
	rm -rf "$CT_DIR/runners"
	k1=$(key_of r1 "$3") k2=$(key_of r2 "$4")
	RG_JOBS+=("$k1" "$k2")
	RUNNER_PIDS=()
	start_runner r1 r2 "$3" 1 "$ns"
	start_runner r2 r1 "$4" 0 "$ns"
	local p1=${RUNNER_PIDS[0]} p2=${RUNNER_PIDS[1]}
	check "$mode: runner 1 ran its steps" wait_file "$sync/r1.stepped"
	check "$mode: runner 2 ran its steps" wait_file "$sync/r2.stepped"
	for r in r1 r2; do
		check "$mode: $r job-started exit 0" test "$(cat "$sync/$r.job-started.rc" 2>/dev/null)" = 0
		if [ -e "$sync/$r.failed" ]; then
			bad "$mode: $r: a step failed"
			cat "$sync/$r.log" "$sync/$r.job-started.out" >&2
		fi
		expect_no_grep "$sync/$r.job-started.out" "::warning" "$mode: $r: job-started isolated the job"
	done

	d1=$(record_field "$k1" pid) d2=$(record_field "$k2" pid)
	check "$mode: job 1's daemon recorded" test -n "$d1"
	check "$mode: job 2's daemon recorded" test -n "$d2"

	step "$mode: each job saw only its own writes at the shared paths"
	for r in r1 r2; do
		o=$([ $r = r1 ] && echo r2 || echo r1)
		run=$([ $r = r1 ] && echo "$3" || echo "$4") orun=$([ $r = r1 ] && echo "$4" || echo "$3")
		expect_grep "$sync/$r.npm-ls" "written-by-$r-$run" "$mode: $r sees its write in ~/.npm"
		expect_no_grep "$sync/$r.npm-ls" "written-by-$o-$orun" "$mode: $r does not see $o's write"
		expect_grep "$sync/$r.npm-ls" "_cacache" "$mode: $r sees the base under ~/.npm"
		expect_no_grep "$sync/$r.npm-ls" "host-file" "$mode: $r does not see the host's own ~/.npm"
		check "$mode: $r's shared-name is its own" test "$(cat "$sync/$r.shared-name")" = "$r"
	done
	s1=$(cat "$sync/r1.store-path") s2=$(cat "$sync/r2.store-path")
	if [ "$ns" = 1 ]; then
		check "canonical: pnpm's default store path" test "$s1" = "$home/.local/share/pnpm/store/v11"
		check "canonical: the same path for both" test "$s1" = "$s2"
		# from outside, through each runner's namespace
		check "canonical: r1's namespace holds r1's write" test -e "/proc/$p1/root$home/.npm/written-by-r1-$3"
		check "canonical: not r2's" test ! -e "/proc/$p1/root$home/.npm/written-by-r2-$4"
		check "canonical: r2's namespace holds r2's write" test -e "/proc/$p2/root$home/.npm/written-by-r2-$4"
		store=$home/.local/share/pnpm/store
		check "canonical: r1's store view holds r1's write" test -e "/proc/$p1/root$store/written-by-r1-$3"
		check "canonical: r1's store view not r2's" test ! -e "/proc/$p1/root$store/written-by-r2-$4"
		check "canonical: r2's store view not r1's" test ! -e "/proc/$p2/root$store/written-by-r1-$3"
		check "canonical: r1's install linked its project into its store view" \
			test -n "$(ls "/proc/$p1/root$store/v11/projects" 2>/dev/null)"
		# (sqlite3 resolves the /proc/PID/root link itself, which leads to our namespace)
		cp "/proc/$p1/root$CT_DIR/runners/r1/_work/app/app/test-results.db" "$CT_DIR/r1.db"
		check "canonical: r1's db in its workspace" test "$(sqlite3 "$CT_DIR/r1.db" 'select name from t')" = r1
		check "canonical: r2's report in its workspace" \
			grep -q r2 "/proc/$p2/root$CT_DIR/runners/r2/_work/app/app/report/index.html"
	else
		check "host: r1's store under its runner's work dir" test "${s1#"$CT_DIR/runners/r1/_work/"}" != "$s1"
		check "host: r2's store under its runner's work dir" test "${s2#"$CT_DIR/runners/r2/_work/"}" != "$s2"
		check "host: r1's db" test "$(sqlite3 "$CT_DIR/runners/r1/_work/app/app/test-results.db" 'select name from t')" = r1
		check "host: r2's db" test "$(sqlite3 "$CT_DIR/runners/r2/_work/app/app/test-results.db" 'select name from t')" = r2
	fi
	# the host's own $HOME saw no job's write
	check "$mode: host's ~/.npm untouched" test "$(ls "$home/.npm")" = host-file
	check "$mode: host has no store" test ! -e "$home/.local/share/pnpm/store/written-by-r1-$3"
	check "$mode: host has no workspace files" test ! -e "$CT_DIR/runners/r1/_work/app/app/test-results.db" -o "$ns" = 0

	step "$mode: job 1 completes while job 2 runs; its server dies, job 2's lives"
	srv1=$(cat "$sync/r1.server.pid") srv2=$(cat "$sync/r2.server.pid")
	ct_track "$srv1" "$srv2"
	check "$mode: both servers run" pid_running "$srv1"
	check "$mode: both servers run (2)" pid_running "$srv2"
	touch "$sync/r1.go"
	check "$mode: job 1 completed" wait_file "$sync/r1.done"
	check "$mode: r1 job-completed exit 0" test "$(cat "$sync/r1.job-completed.rc")" = 0
	expect_no_grep "$sync/r1.job-completed.out" "::warning" "$mode: r1 job-completed without warnings"
	expect_grep "$sync/r1.job-completed.out" "unmounted job $k1" "$mode: r1 unmounted"
	check "$mode: job 1's server killed" wait_gone "$srv1" 50
	check "$mode: job 2's server alive" pid_running "$srv2"
	if [ "$ns" = 1 ]; then
		check "canonical: r2 still sees its view" test -e "/proc/$p2/root$home/.npm/written-by-r2-$4"
		check "canonical: r1 sees the host's ~/.npm again" test -e "/proc/$p1/root$home/.npm/host-file"
	else
		check "host: r2 still sees its workspace" test -e "$CT_DIR/runners/r2/_work/app/app/test-results.db"
	fi
	run ls
	expect_grep "$CT_DIR/out" "$k2" "$mode: ls lists job 2"
	check "$mode: job 2 mounted in ls" test "$(awk -v k="$k2" '$1 == k { print $2 }' "$CT_DIR/out")" = mounted
	run gc --older-than 0s
	expect_rc 0 "$mode: gc from the host while job 2 runs"
	check "$mode: gc kept job 2 running" pid_running "$srv2"
	touch "$sync/r2.go"
	check "$mode: job 2 completed" wait_file "$sync/r2.done"
	check "$mode: r2 job-completed exit 0" test "$(cat "$sync/r2.job-completed.rc")" = 0
	expect_grep "$sync/r2.job-completed.out" "not promoted" "$mode: r2 not promoted (not marked ok)"
	check "$mode: the refusal is said once" \
		test "$(grep -c 'not marked' "$sync/r2.job-completed.out")" = 1
	check "$mode: job 2's server killed at its completion" wait_gone "$srv2" 50
	touch "$sync/r1.exit" "$sync/r2.exit"
	check "$mode: runner 1 exited" wait_gone "$p1" 100
	check "$mode: runner 2 exited" wait_gone "$p2" 100

	step "$mode: after both, gc leaves no mount, process or layer"
	run gc --older-than 0s
	expect_rc 0 "$mode: final gc"
	check "$mode: no job dir left" test -z "$(ls -A "$CT_DIR/state/jobs" 2>/dev/null)"
	# the runners' namespaces went with their processes (checked above); ours holds none
	check "$mode: no jobfs mount left here" test -z "$(grep "jobfs:$k1/\|jobfs:$k2/" /proc/self/mountinfo)"
	for pid in "$srv1" "$srv2" "$d1" "$d2"; do
		check "$mode: server $pid gone" wait_gone "$pid" 10
	done
}

step "canonical mode: two runners in private mount namespaces"
run_pair canonical 1 101 202
gen_files() { # VIEW: every file of the view's published generations
	find "$CT_DIR/state/bases/$1/gens" -type f 2>/dev/null | sed 's|.*/gens/[^/]*/||' | sort
}
check "canonical: job 1's npm write promoted" grep -qx "written-by-r1-101" <(gen_files npm-cache)
check "canonical: job 2's not" test -z "$(gen_files npm-cache | grep -x written-by-r2-202)"

step "host mode: the same two runners in the host's namespace, per-job paths in GITHUB_ENV"
run_pair host 0 303 404
for r in r1 r2; do
	env_file=$CT_DIR/sync-host/$r.job-started.env
	expect_grep "$env_file" "pnpm_config_store_dir=$CT_DIR/runners/$r/_work/_jobfs/home/.local/share/pnpm/store" "host: $r's store exported"
	expect_grep "$env_file" "npm_config_cache=$CT_DIR/runners/$r/_work/_jobfs/home/.npm" "host: $r's npm cache exported"
	expect_grep "$env_file" "JOBFS_VIEW_WORKSPACE=$CT_DIR/runners/$r/_work/app/app" "host: $r's workspace exported"
	check "host: canonical mode exported only the job's marker" test "$(cat "$CT_DIR/sync-canonical/$r.job-started.env")" = \
		"JOBFS_JOB_ID=$(key_of "$r" "$([ "$r" = r1 ] && echo 101 || echo 202)")"
	expect_grep "$env_file" "JOBFS_JOB_ID=$(key_of "$r" "$([ "$r" = r1 ] && echo 303 || echo 404)")" "host: $r's marker exported"
done
check "host: job 1 (run 303) promoted too" grep -qx "written-by-r1-303" <(gen_files npm-cache)
check "host: job 2 (run 404) not" test -z "$(gen_files npm-cache | grep -x written-by-r2-404)"

step "the lowers never changed"
check "lower dirs byte-identical" test "$(lower_manifest)" = "$lower_before"

# --- canonical mode with one view over the whole $HOME (pass_through: the runners' dirs) -----------
step "home view: two runners, one view each over the whole \$HOME, pnpm/action-setup's wipe"
home2=$CT_DIR/home2
mkdir -p "$home2/.local/share/pnpm" "$home2/.cache" "$home2/.npm/_cacache" "$home2/setup-pnpm" \
	"$home2/runners"
cp -a "$seed/store" "$home2/.local/share/pnpm/store"
cp -a "$seed/home/.cache/pnpm" "$home2/.cache/pnpm"
echo "base npm cache" >"$home2/.npm/_cacache/base-entry"
echo "an earlier job's pnpm" >"$home2/setup-pnpm/old-pnpm"
home_manifest() {
	(cd "$home2" && find . -path ./runners -prune -o -printf '%p %y %m %s %T@ %l\n' | sort &&
		find . -path ./runners -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
home_before=$(home_manifest)
cat >"$CT_DIR/home.yaml" <<HOMEPOLICY
version: 1
state_dir: $CT_DIR/state
views:
  - name: home
    lower: [$home2]
    target: \${HOME}
    promote: none
    pass_through: ["\${HOME}/runners"]
gc:
  keep_unmounted: 1h
HOMEPOLICY
export JOBFS_POLICY=$CT_DIR/home.yaml
mode=canonical sync=$CT_DIR/sync-home run_home=$home2 runners_dir=$home2/runners
setup_pnpm=1 server_dir=$home2/srv ws_server=1 # in the home view, and in the pass-through _work
mkdir -p "$sync"
kh1=$(key_of r1 1201) kh2=$(key_of r2 1202)
RG_JOBS+=("$kh1" "$kh2")
RUNNER_PIDS=()
start_runner r1 r2 1201 1 1
start_runner r2 r1 1202 0 1
p1=${RUNNER_PIDS[0]} p2=${RUNNER_PIDS[1]}
check "home: runner 1 ran its steps" wait_file "$sync/r1.stepped"
check "home: runner 2 ran its steps" wait_file "$sync/r2.stepped"
for r in r1 r2; do
	check "home: $r job-started exit 0" test "$(cat "$sync/$r.job-started.rc" 2>/dev/null)" = 0
	expect_no_grep "$sync/$r.job-started.out" "::warning" "home: $r: isolated"
	if [ -e "$sync/$r.failed" ]; then
		bad "home: $r: a step failed"
		cat "$sync/$r.log" "$sync/$r.job-started.out" >&2
	fi
	check "home: $r's ~/setup-pnpm holds its 200 files" test "$(cat "$sync/$r.setup-count")" = 200
done
pid=${RUNNER_PIDS[0]}
check "home: r1's ~/setup-pnpm is r1's" test "$(cat "/proc/$p1/root$home2/setup-pnpm/owner")" = r1
check "home: r2's ~/setup-pnpm is r2's" test "$(cat "/proc/$p2/root$home2/setup-pnpm/owner")" = r2
check "home: the wiped old pnpm gone in r1's view" test ! -e "/proc/$p1/root$home2/setup-pnpm/old-pnpm"
check "home: ... and still in the real home" test -e "$home2/setup-pnpm/old-pnpm"
check "home: r1 does not see r2's npm write" test ! -e "/proc/$p1/root$home2/.npm/written-by-r2-1202"
check "home: r2 sees its own" test -e "/proc/$p2/root$home2/.npm/written-by-r2-1202"
check "home: pnpm's store at its default path" test "$(cat "$sync/r1.store-path")" = "$home2/.local/share/pnpm/store/v11"
check "home: the runner dir stays real (r1's db, written through the view)" \
	test "$(sqlite3 "$home2/runners/r1/_work/app/app/test-results.db" 'select name from t')" = r1
srv1=$(cat "$sync/r1.server.pid") srv2=$(cat "$sync/r2.server.pid")
ws1=$(cat "$sync/r1.ws-server.pid") ws2=$(cat "$sync/r2.ws-server.pid")
ct_track "$srv1" "$srv2" "$ws1" "$ws2"
check "home: both servers run" pid_running "$srv1"
check "home: both servers run (2)" pid_running "$srv2"
check "home: both workspace servers run" pid_running "$ws1"
check "home: both workspace servers run (2)" pid_running "$ws2"
check "home: r1's workspace server's cwd is in the pass-through" \
	test "$(readlink "/proc/$ws1/cwd")" = "$home2/runners/r1/_work/app/app"
check "home: it carries job 1's marker" grep -qzx "JOBFS_JOB_ID=$kh1" "/proc/$ws1/environ"
d1=$(record_field "$kh1" pid) d2=$(record_field "$kh2" pid)
touch "$sync/r1.go"
check "home: job 1 completed" wait_file "$sync/r1.done"
check "home: r1 job-completed exit 0" test "$(cat "$sync/r1.job-completed.rc")" = 0
expect_no_grep "$sync/r1.job-completed.out" "::warning" "home: r1 job-completed without warnings"
check "home: job 1's server killed" wait_gone "$srv1" 50
check "home: job 2's server alive" pid_running "$srv2"
check "home: job 1's workspace server killed (by its marker)" wait_gone "$ws1" 50
check "home: job 2's identical workspace server alive" pid_running "$ws2"
expect_grep "$sync/r1.job-completed.out" "(it carries JOBFS_JOB_ID=$kh1)" "home: umount says why it ended it"
check "home: r2 still in its view" test -e "/proc/$p2/root$home2/setup-pnpm/owner"
touch "$sync/r2.go"
check "home: job 2 completed" wait_file "$sync/r2.done"
check "home: r2 job-completed exit 0" test "$(cat "$sync/r2.job-completed.rc")" = 0
check "home: job 2's server killed" wait_gone "$srv2" 50
check "home: job 2's workspace server killed" wait_gone "$ws2" 50
touch "$sync/r1.exit" "$sync/r2.exit"
check "home: runner 1 exited" wait_gone "$p1" 100
check "home: runner 2 exited" wait_gone "$p2" 100
run gc --older-than 0s
expect_rc 0 "home: final gc"
check "home: no layer left" test -z "$(ls -A "$CT_DIR/state/jobs" 2>/dev/null)"
for pid in "$d1" "$d2"; do
	check "home: daemon $pid gone" wait_gone "$pid" 50
done
check "home: the real home unchanged (outside the runners' dirs)" test "$(home_manifest)" = "$home_before"
export JOBFS_POLICY=$CT_DIR/policy.yaml
unset run_home runners_dir setup_pnpm server_dir ws_server

# --- the same, as the runner user: no root in the runner, views mounted through fusermount3 ------
U_UID=65534
if command -v setpriv >/dev/null && command -v fusermount3 >/dev/null; then
	step "unprivileged: two runners as uid $U_UID, each in its own namespace, through fusermount3"
	# what root and systemd give a runner: a private namespace (PrivateMounts=yes) entered before
	# the service drops to its User=; /dev/fuse usable by that user (Debian's udev rule makes it
	# 0666; this VM has none: bound over it in the runners' namespaces only); a state dir the user
	# owns. Everything else is the user's own.
	mknod -m 0666 "$CT_DIR/fuse-dev" c 10 229
	chmod 0755 "$CT_DIR"
	uhome=$CT_DIR/uhome ustate=$CT_DIR/ustate usync=$CT_DIR/sync-user
	mkdir -p "$uhome/.npm" "$ustate" "$usync" "$CT_DIR/urunners"
	echo "the host's own file" >"$uhome/.npm/host-file"
	# the user's own base: the shared caches a runner user fills are its own files
	cp -a "$CT_DIR/base" "$CT_DIR/ubase"
	sed "s|state_dir: $CT_DIR/state|state_dir: $ustate|; s|$CT_DIR/base/|$CT_DIR/ubase/|" \
		"$CT_DIR/policy.yaml" >"$CT_DIR/user.yaml"
	chmod 0644 "$CT_DIR/user.yaml" "$CT_DIR/runner.sh"
	chown -R "$U_UID:$U_UID" "$uhome" "$ustate" "$usync" "$CT_DIR/urunners" "$CT_DIR/ubase"
	as_user() { setpriv --reuid=$U_UID --regid=$U_UID --clear-groups -- "$@"; }
	ku1=$(key_of r1 1301) ku2=$(key_of r2 1302)
	RG_JOBS+=("$ku1" "$ku2")
	UPIDS=()
	for r in r1 r2; do
		o=$([ $r = r1 ] && echo r2 || echo r1) runid=$([ $r = r1 ] && echo 1301 || echo 1302)
		bg unshare --mount --propagation slave bash -c 'mount --bind "$1" /dev/fuse && shift &&
			exec setpriv --reuid='$U_UID' --regid='$U_UID' --clear-groups -- "$@"' _ "$CT_DIR/fuse-dev" \
			env -i PATH=/usr/bin:/bin HOME="$uhome" HOOKS="$hooks" SEED="$seed" PNPM="$pnpm" SYNC="$usync" \
			JOBFS="$JOBFS" JOBFS_POLICY="$CT_DIR/user.yaml" OTHER="$o" MARK_OK="$([ $r = r1 ] && echo 1 || echo 0)" \
			JOBFS_RUNNER_MODE=canonical bash "$CT_DIR/runner.sh" "$r" "$runid" build "$usync" "$CT_DIR/urunners/$r"
		UPIDS+=("$BG_PID")
	done
	for r in r1 r2; do
		check "user: $r ran its steps" wait_file "$usync/$r.stepped"
		check "user: $r job-started exit 0" test "$(cat "$usync/$r.job-started.rc" 2>/dev/null)" = 0
		expect_no_grep "$usync/$r.job-started.out" "::warning" "user: $r: isolated"
		if [ -e "$usync/$r.failed" ]; then
			bad "user: $r: a step failed"
			cat "$usync/$r.log" "$usync/$r.job-started.out" >&2
		fi
		o=$([ $r = r1 ] && echo r2 || echo r1)
		check "user: $r saw only its own write in ~/.npm" test "$(grep -c written-by "$usync/$r.npm-ls")" = 1
		check "user: $r's shared-name is its own" test "$(cat "$usync/$r.shared-name")" = "$r"
	done
	check "user: r1's views mounted by the user (fusermount3)" \
		grep -q "jobfs:$ku1/npm-cache@[0-9a-f]* .*user_id=$U_UID" "/proc/${UPIDS[0]}/mountinfo"
	check "user: the host's ~/.npm untouched" test "$(ls "$uhome/.npm")" = host-file
	usrv1=$(cat "$usync/r1.server.pid") usrv2=$(cat "$usync/r2.server.pid")
	ud1=$(sed -n 's/^pid=//p' "$ustate/jobs/$ku1/record") ud2=$(sed -n 's/^pid=//p' "$ustate/jobs/$ku2/record")
	ct_track "$usrv1" "$usrv2" "$ud1" "$ud2"
	touch "$usync/r1.go"
	check "user: job 1 completed" wait_file "$usync/r1.done"
	check "user: r1 job-completed exit 0" test "$(cat "$usync/r1.job-completed.rc")" = 0
	expect_no_grep "$usync/r1.job-completed.out" "::warning" "user: r1 job-completed without warnings"
	check "user: job 1's server killed" wait_gone "$usrv1" 50
	check "user: job 2's server alive" pid_running "$usrv2"
	check "user: job 2 still mounted" grep -q "jobfs:$ku2/npm-cache" "/proc/${UPIDS[1]}/mountinfo"
	touch "$usync/r2.go"
	check "user: job 2 completed" wait_file "$usync/r2.done"
	check "user: r2 job-completed exit 0" test "$(cat "$usync/r2.job-completed.rc")" = 0
	check "user: job 2's server killed" wait_gone "$usrv2" 50
	touch "$usync/r1.exit" "$usync/r2.exit"
	for pid in "${UPIDS[@]}" "$ud1" "$ud2"; do
		check "user: $pid gone" wait_gone "$pid" 100
	done
	rc=0
	(cd / && as_user env JOBFS_POLICY="$CT_DIR/user.yaml" "$JOBFS" gc --older-than 0s >/dev/null) || rc=$?
	check "user: final gc as the user" test "$rc" = 0
	check "user: no layer left" test -z "$(ls -A "$ustate/jobs" 2>/dev/null)"
else
	echo "--- $CT_NAME: no setpriv or fusermount3: the unprivileged runners are not tested"
fi

# --- a crashed job's leftovers, fail-open, host mode's target check ------------------------------
# runner_env NAME RUN: the variables a runner gives its hooks, for runner NAME's job RUN
runner_env() {
	local r=$CT_DIR/runners/$1
	mkdir -p "$r/_work/_temp" "$r/_work/app/app"
	echo HOME="$home" RUNNER_NAME="$1" GITHUB_RUN_ID="$2" GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build \
		RUNNER_TEMP="$r/_work/_temp" GITHUB_WORKSPACE="$r/_work/app/app" RUNNER_WORKSPACE="$r/_work/app" \
		GITHUB_REPOSITORY=octo/app GITHUB_REF=refs/heads/main RUNNER_TRACKING_ID="github_$1_$2" \
		GITHUB_ENV="$r/_work/_temp/env-$2" JOBFS="$JOBFS"
}

step "recovery: a runner died mid-job; its next job's job-started cleans up"
rm -rf "$CT_DIR/runners"
ka=$(key_of r3 505) kb=$(key_of r3 606)
RG_JOBS+=("$ka" "$kb")
# one namespace for runner r3, as its service keeps it: job A starts, a process of A's stays in
# its workspace, and A's job-completed never runs; then job B starts in the same namespace
cat >"$CT_DIR/crash.sh" <<CRASH
set -u
cd /
env $(runner_env r3 505) JOBFS_RUNNER_MODE=canonical bash -e "$hooks/job-started.sh" >"$CT_DIR/a.out" 2>&1
echo \$? >"$CT_DIR/a.rc"
(cd "$CT_DIR/runners/r3/_work/app/app" && exec setsid sleep 600 </dev/null >/dev/null 2>&1) &
echo \$! >"$CT_DIR/a.sleeper"
sleep 0.3
env $(runner_env r3 606) JOBFS_RUNNER_MODE=canonical bash -e "$hooks/job-started.sh" >"$CT_DIR/b.out" 2>&1
echo \$? >"$CT_DIR/b.rc"
"$JOBFS" ls >"$CT_DIR/b.ls" 2>&1
env $(runner_env r3 606) JOBFS_RUNNER_MODE=canonical bash -e "$hooks/job-completed.sh" >"$CT_DIR/b2.out" 2>&1
echo \$? >"$CT_DIR/b2.rc"
CRASH
bg unshare --mount --propagation slave bash "$CT_DIR/crash.sh"
wait "$BG_PID"
sleeper=$(cat "$CT_DIR/a.sleeper")
ct_track "$sleeper"
check "job A's job-started exit 0" test "$(cat "$CT_DIR/a.rc")" = 0
check "job B's job-started exit 0" test "$(cat "$CT_DIR/b.rc")" = 0
expect_grep "$CT_DIR/b.out" "recovering job '$ka'" "B's hook recovers A"
expect_no_grep "$CT_DIR/b.out" "::warning" "B's hook without warnings"
check "A's leftover process ended" wait_gone "$sleeper" 50
check "A unmounted while B ran" test "$(awk -v k="$ka" '$1 == k { print $2 }' "$CT_DIR/b.ls")" = unmounted
check "B mounted" test "$(awk -v k="$kb" '$1 == k { print $2 }' "$CT_DIR/b.ls")" = mounted
check "B's job-completed exit 0" test "$(cat "$CT_DIR/b2.rc")" = 0
expect_grep "$CT_DIR/b2.out" "unmounted job $kb" "B unmounted"
check "r3's current-job cleared" test ! -e "$CT_DIR/runners/r3/_work/_jobfs/current-job"
run gc --older-than 0s
check "no layer left" test -z "$(ls -A "$CT_DIR/state/jobs" 2>/dev/null)"

step "fail-open: jobfs cannot mount, the job runs un-isolated with a warning"
sed "s|lower: \[$CT_DIR/base/npm\]|lower: [$CT_DIR/no-such-lower]|" "$CT_DIR/policy.yaml" >"$CT_DIR/broken.yaml"
check "the broken policy names the missing lower" grep -q no-such-lower "$CT_DIR/broken.yaml"
kc=$(key_of r4 707)
RG_JOBS+=("$kc")
rc=0
# shellcheck disable=SC2046 # runner_env's words hold no space: CT_DIR is mktemp's
(cd / && env $(runner_env r4 707) JOBFS_POLICY="$CT_DIR/broken.yaml" JOBFS_RUNNER_MODE=host \
	bash -e "$hooks/job-started.sh" >"$CT_DIR/c.out" 2>&1) || rc=$?
check "fail-open: job-started exit 0" test "$rc" = 0
expect_grep "$CT_DIR/c.out" "::warning title=jobfs::cannot mount the job's views" "a warning annotation"
expect_grep "$CT_DIR/c.out" "WITHOUT isolation" "says the job is not isolated"
expect_grep "$CT_DIR/c.out" "no-such-lower" "names the cause"
check "fail-open: nothing mounted" test -z "$(grep "jobfs:$kc/" /proc/self/mountinfo)"
rc=0
# shellcheck disable=SC2046 # runner_env's words hold no space: CT_DIR is mktemp's
(cd / && env $(runner_env r4 707) JOBFS_POLICY="$CT_DIR/broken.yaml" JOBFS_RUNNER_MODE=host \
	bash -e "$hooks/job-completed.sh" >"$CT_DIR/c2.out" 2>&1) || rc=$?
check "fail-open: job-completed exit 0" test "$rc" = 0
expect_grep "$CT_DIR/c2.out" "has no jobfs views" "job-completed: nothing to do"

step "host mode never mounts at a path other runners share"
sed "s|target: \\\${HOME}/.npm|target: $CT_DIR/shared-npm|" "$CT_DIR/policy.yaml" >"$CT_DIR/shared.yaml"
check "the policy names a shared target" grep -q "target: $CT_DIR/shared-npm" "$CT_DIR/shared.yaml"
kd=$(key_of r5 808)
RG_JOBS+=("$kd")
rc=0
# shellcheck disable=SC2046
(cd / && env $(runner_env r5 808) JOBFS_POLICY="$CT_DIR/shared.yaml" JOBFS_RUNNER_MODE=host \
	bash -e "$hooks/job-started.sh" >"$CT_DIR/d.out" 2>&1) || rc=$?
check "host mode refusal: exit 0 (fail-open)" test "$rc" = 0
expect_grep "$CT_DIR/d.out" "outside this runner's work dir" "says why"
check "nothing mounted at the shared path" test -z "$(grep "jobfs:$kd/" /proc/self/mountinfo)"
check "no layer for the refused job" test ! -e "$CT_DIR/state/jobs/$kd"

step "jobfs umount in one namespace leaves another namespace's view at the same path mounted"
# without the hooks: job E makes the target's dirs, job F mounts at the same path in another
# namespace; E's umount must not remove the dirs (that would detach F's view)
cat >"$CT_DIR/same-target.yaml" <<SAME
version: 1
state_dir: $CT_DIR/state
views:
  - name: cache
    lower: [$CT_DIR/base/npm]
    target: $CT_DIR/same/deep/cache
SAME
RG_JOBS+=(same-e same-f)
sync=$CT_DIR/sync-same
mkdir -p "$sync"
export JOBFS_POLICY=$CT_DIR/same-target.yaml
bg unshare --mount --propagation slave bash -c '"$1" mount --job same-e >/dev/null && touch "$2/e.up"
	while ! [ -e "$2/f.up" ]; do sleep 0.1; done
	"$1" umount --job same-e >"$2/e.umount" 2>&1; echo $? >"$2/e.rc"
	while ! [ -e "$2/exit" ]; do sleep 0.1; done' _ "$JOBFS" "$sync"
pe=$BG_PID
wait_file "$sync/e.up" 300
bg unshare --mount --propagation slave bash -c '"$1" mount --job same-f >/dev/null && touch "$2/f.up"
	while ! [ -e "$2/exit" ]; do sleep 0.1; done
	"$1" umount --job same-f >"$2/f.umount" 2>&1; echo $? >"$2/f.rc"' _ "$JOBFS" "$sync"
pf=$BG_PID
check "E unmounted" wait_file "$sync/e.rc" 300
check "E's umount exit 0" test "$(cat "$sync/e.rc")" = 0
check "F's view still mounted in its namespace" grep -q "jobfs:same-f/cache" "/proc/$pf/mountinfo"
check "F's view still serves the base" test -e "/proc/$pf/root$CT_DIR/same/deep/cache/_cacache/base-entry"
touch "$sync/exit"
check "F unmounted" wait_file "$sync/f.rc" 300
check "F's umount exit 0" test "$(cat "$sync/f.rc")" = 0
wait "$pe" "$pf"
export JOBFS_POLICY=$CT_DIR/policy.yaml

# --- the policy's switches and selectors (jobfs policy get, mount --context) --------------------
# start_hook NAME RUN POLICY OUT [HOOK]: runs one hook of runner NAME's job RUN; sets rc
start_hook() {
	rc=0
	# shellcheck disable=SC2046
	(cd / && env $(runner_env "$1" "$2") JOBFS_POLICY="$3" JOBFS_RUNNER_MODE=host \
		GITHUB_EVENT_NAME=push GITHUB_WORKFLOW=ci \
		bash -e "$hooks/${5:-job-started}.sh" >"$4" 2>&1) || rc=$?
}

step "fail-closed: hooks.fail_open false fails the job, naming the cause"
{ cat "$CT_DIR/broken.yaml"; printf 'hooks:\n  fail_open: false\n'; } >"$CT_DIR/closed.yaml"
ke=$(key_of r6 909)
RG_JOBS+=("$ke")
start_hook r6 909 "$CT_DIR/closed.yaml" "$CT_DIR/e.out"
check "fail-closed: job-started exit 1" test "$rc" = 1
expect_grep "$CT_DIR/e.out" "::error title=jobfs::cannot mount the job's views" "an error annotation"
expect_grep "$CT_DIR/e.out" "no-such-lower" "names the cause"
check "fail-closed: nothing mounted" test -z "$(grep "jobfs:$ke/" /proc/self/mountinfo)"

step "selectors: a job of a repository no view is for costs a no-op"
sed "s|^views:|views:|; s|    target: \\\${GITHUB_WORKSPACE}|    target: \\\${GITHUB_WORKSPACE}\n    when: {repository: [other/*]}|" \
	"$CT_DIR/policy.yaml" | awk '/^  - name:/ { print; if ($3 != "workspace") print "    when: {repository: [other/*]}"; next } { print }' >"$CT_DIR/other.yaml"
check "every view is for other/*" test "$(grep -c 'when: {repository: \[other/\*\]}' "$CT_DIR/other.yaml")" = 4
kf=$(key_of r7 1001)
RG_JOBS+=("$kf")
start_hook r7 1001 "$CT_DIR/other.yaml" "$CT_DIR/f.out"
check "no-view job: job-started exit 0" test "$rc" = 0
expect_no_grep "$CT_DIR/f.out" "::warning" "no-view job: no warning"
check "no-view job: nothing mounted" test -z "$(grep "jobfs:$kf/" /proc/self/mountinfo)"
check "no-view job: the home dir untouched" test "$(ls "$home/.npm")" = host-file
start_hook r7 1001 "$CT_DIR/other.yaml" "$CT_DIR/f2.out" job-completed
check "no-view job: job-completed exit 0" test "$rc" = 0
expect_no_grep "$CT_DIR/f2.out" "::warning" "no-view job: job-completed quiet"

step "trust: a marked-ok job of an untrusted ref is not promoted, and says why"
awk '{ print } /promote: add-only/ { }' "$CT_DIR/policy.yaml" |
	sed 's|    promote: add-only|    promote: {kind: add-only, trust: {ref: [refs/heads/release]}}|' >"$CT_DIR/trust.yaml"
check "the trust policy is valid" "$JOBFS" policy check "$CT_DIR/trust.yaml"
kg=$(key_of r8 1101)
RG_JOBS+=("$kg")
start_hook r8 1101 "$CT_DIR/trust.yaml" "$CT_DIR/g.out"
check "trust: job-started exit 0" test "$rc" = 0
echo "from an untrusted ref" >"$CT_DIR/runners/r8/_work/_jobfs/home/.npm/untrusted-r8"
JOBFS_POLICY=$CT_DIR/trust.yaml "$JOBFS" mark-ok --job "$kg"
start_hook r8 1101 "$CT_DIR/trust.yaml" "$CT_DIR/g2.out" job-completed
check "trust: job-completed exit 0" test "$rc" = 0
expect_grep "$CT_DIR/g2.out" "not promoted" "says it was not promoted"
expect_grep "$CT_DIR/g2.out" "trust" "names the trust rule"
check "trust: the refusal is said once" test "$(grep -c 'trust' "$CT_DIR/g2.out")" = 1
check "trust: nothing promoted" test -z "$(gen_files npm-cache | grep -x untrusted-r8)"
JOBFS_POLICY=$CT_DIR/trust.yaml "$JOBFS" gc --older-than 0s >/dev/null

step "the lowers never changed, after everything"
check "lower dirs byte-identical (2)" test "$(lower_manifest)" = "$lower_before"
