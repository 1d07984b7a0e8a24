# shellcheck shell=bash
# The harness of the job CLI tests (cli_mount.sh, cli_umount.sh, ...): drives the real `jobfs`
# binary over a policy of its own (state dir and targets in a temp dir, never /var/lib/jobfs or
# /run/jobfs), counts checks, and on exit, even on failure: kills the processes the test started
# (by PID), unmounts every job it mounted (`jobfs umount --kill`), detaches anything still mounted
# under its temp dir (newest first, and fails the test if it had to), and removes the temp dir.
#
# Environment: JOBFS_BUILD (set by CTest) names the build dir; JOBFS_IT_KEEP=1 keeps the temp dir;
# JOBFS_TEST_WRAPPER names a program that jobfs is started through, its command line the
# arguments (scripts/memcheck.sh: a valgrind wrapper, which follows the fork into the job daemon).

set -euo pipefail
export TZ=UTC LC_ALL=C
CT_NAME=$(basename "$0" .sh)
JOBFS=${JOBFS_BUILD:?JOBFS_BUILD must name the build directory}/cli/jobfs
# how a test runs jobfs: "${JOBFS_CMD[@]}" ARGS...
JOBFS_CMD=(${JOBFS_TEST_WRAPPER:+"$JOBFS_TEST_WRAPPER"} "$JOBFS")
CT_DIR=""
CT_JOBS=()	# jobs this test mounted, by ID
CT_PIDS=()	# processes this test started; only these are ever signalled
CT_TRACKED=()	# "PID START" of processes it started that are not its children (ct_track)
CT_POLICIES=()	# policy files, so the trap can unmount jobs of each
passed=0
failed=0

if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/fuse ]; then
	echo "SKIP: $CT_NAME: needs root and /dev/fuse"
	exit 77
fi

ok() { passed=$((passed + 1)); }
bad() {
	failed=$((failed + 1))
	echo "FAIL: $CT_NAME: $*" >&2
}
step() { echo "--- $CT_NAME: $*"; }

# run ARGS...: runs jobfs; sets rc and leaves $CT_DIR/out and $CT_DIR/err.
run() {
	rc=0
	"${JOBFS_CMD[@]}" "$@" >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
}
expect_rc() { # CODE WHAT
	if [ "$rc" -eq "$1" ]; then ok; else bad "$2: exit $rc, expected $1 (stderr: $(head -c 400 "$CT_DIR/err"))"; fi
}
expect_grep() { # FILE FIXED-STRING WHAT
	if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in '$(head -c 400 "$1")'"; fi
}
expect_no_grep() { # FILE FIXED-STRING WHAT
	if ! grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' unexpectedly in '$(head -c 400 "$1")'"; fi
}
check() { # WHAT COMMAND...: passes when the command succeeds
	local what=$1
	shift
	if "$@"; then ok; else bad "$what"; fi
}
json() { # EXPRESSION over d, the JSON document in $CT_DIR/out
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = eval(sys.argv[2])
print(" ".join(map(str, r)) if isinstance(r, tuple) else r)' "$CT_DIR/out" "$1"
}

is_mounted() { # PATH: a mount point right now
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}
record_field() { # JOB KEY [STATE_DIR]
	sed -n "s/^$2=//p" "${3:-$CT_DIR/state}/jobs/$1/record"
}
start_time() { # PID: its start time (/proc/PID/stat field 22), to tell it from a later one
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}
ct_track() { # PID...: processes the test started that are not its children (a setsid server,
	# a job daemon), ended by the exit trap if still the same processes
	local pid start
	for pid; do
		if start=$(start_time "$pid"); then # one already gone needs no ending
			CT_TRACKED+=("$pid $start")
		fi
	done
}
pid_running() { # PID: exists and is not a zombie
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat:0:1}" != Z ]
}
wait_gone() { # PID [TENTHS]: waits until PID is gone
	local i
	for ((i = 0; i < ${2:-100}; i++)); do
		pid_running "$1" || return 0
		sleep 0.1
	done
	return 1
}

# write_policy FILE STATE_DIR [VIEW-YAML]: a policy with the default views ws (over $CT_DIR/lower)
# and tmp (scratch), or the views given.
write_policy() {
	local views=${3:-"  - name: ws
    lower: [$CT_DIR/lower]
    target: $CT_DIR/mnt/\${JOB_ID}/ws
  - name: tmp
    lower: []
    target: $CT_DIR/mnt/\${JOB_ID}/tmp"}
	cat >"$1" <<EOF
version: 1
state_dir: $2
views:
$views
gc:
  keep_unmounted: 1h
EOF
	CT_POLICIES+=("$1")
}

# jmount ID [ARGS...]: mounts a job, which must succeed.
jmount() {
	local id=$1
	shift
	CT_JOBS+=("$id")
	run mount --job "$id" "$@"
	expect_rc 0 "mount $id"
}

# bg CMD...: starts CMD in the background and remembers its PID in BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	CT_PIDS+=("$BG_PID")
}

ct_on_exit() {
	local status=$? pid id policy mnt
	set +e
	cd /
	# only our children not yet reaped: a PID the test already waited for may be another's now
	local live
	live=" $(jobs -p | tr '\n' ' ') "
	for pid in "${CT_PIDS[@]}"; do
		case $live in
		*" $pid "*)
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			;;
		esac
	done
	local tracked
	for tracked in "${CT_TRACKED[@]}"; do
		pid=${tracked% *}
		[ "$(start_time "$pid")" = "${tracked#* }" ] && kill -KILL "$pid" 2>/dev/null
	done
	for ((i = ${#CT_JOBS[@]} - 1; i >= 0; i--)); do
		for policy in "${CT_POLICIES[@]}"; do
			"${JOBFS_CMD[@]}" umount --policy "$policy" --job "${CT_JOBS[$i]}" --kill \
				--timeout 2 >/dev/null 2>&1
		done
	done
	if [ -n "$CT_DIR" ]; then
		# newest first: mountinfo lists them oldest first
		for mnt in $(awk -v d="$CT_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | tac); do
			echo "FAIL: $CT_NAME: $mnt still mounted, detaching it" >&2
			umount -l "$mnt"
			status=1
		done
		# a daemon's sanitizer report lands in its log, not in our exit status
		if grep -sl -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" \
			"$CT_DIR"/state*/jobs/*/daemon.log >&2; then
			echo "FAIL: $CT_NAME: sanitizer reports in the daemon logs above" >&2
			status=1
		fi
		if [ "${JOBFS_IT_KEEP:-0}" = 1 ]; then
			echo "--- $CT_NAME: kept $CT_DIR"
		else
			rm -rf --one-file-system "$CT_DIR"
		fi
	fi
	echo "$CT_NAME: $passed passed, $failed failed"
	if [ "$failed" -gt 0 ] && [ "$status" -eq 0 ]; then
		status=1
	fi
	exit "$status"
}
trap ct_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jobfs-it-$CT_NAME.XXXXXX")
CT_DIR=$(realpath "$CT_DIR")
mkdir -p "$CT_DIR/lower/dir" "$CT_DIR/mnt"
printf 'lower file\n' >"$CT_DIR/lower/file"
printf 'in a dir\n' >"$CT_DIR/lower/dir/inner"
write_policy "$CT_DIR/policy.yaml" "$CT_DIR/state"
export JOBFS_POLICY=$CT_DIR/policy.yaml
