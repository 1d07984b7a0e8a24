#!/usr/bin/env bash
# The test suite under valgrind memcheck: builds jobfs (a normal build, no sanitizer) in its own
# build dir, runs every cmocka unit test under valgrind, then the integration tests with the FUSE
# daemon (jobfs-fs) and the jobfs CLI (and the job daemon it forks) under valgrind, and fails on any
# memcheck error or definitely lost block in any process. One valgrind log per process.
#
# usage: scripts/memcheck.sh [--all] [--build-dir DIR] [--unit-only | --integration-only]
#                            [-R REGEX] [--help]
#   --all               view_fsx and diff_overlay at their CI length too (about 12 minutes on
#                       an idle 2-core machine; the default takes about 9)
#   --build-dir DIR     build here (default build-memcheck/); logs go to DIR/memcheck/
#   --unit-only         only the unit tests; --integration-only: only the integration tests
#   -R REGEX            only the integration tests whose name matches, at their CI length
#
# By default every test runs but view_load (eight daemons under stress-ng, with RSS bounds that
# valgrind's own memory breaks), view_fsx and diff_overlay shortened to a sixth of their CI length
# (JOBFS_FSX_OPS=1000, JOBFS_DIFF_OPS=500 unless set), cli_fuzz to 100 vectors, cli_promote_faults
# to 1 + 1 promote kills and 1 gc kill: at full length they take 3 of --all's 12
# minutes, and a sixth still reaches every kind of operation many times over. The view_* daemons
# are barely slower under valgrind (the tests wait on the kernel and on I/O); the cli_* tests pay
# valgrind's start-up, about a second, for every jobfs command (cli_policy runs some 130: 2 min).
# No test needed a longer timeout; JOBFS_DIFF_HANG is raised to 600 s all the same.
#
# How: jobfs-fs and jobfs run through a generated wrapper (DIR/memcheck/vg-wrap) that execs
# valgrind; the harnesses take it from JOBFS_TEST_WRAPPER (tests/integration/lib.sh, cli_lib.sh).
# valgrind follows the job daemon that `jobfs mount` forks into a log of its own. Valgrind 3.19
# does not know open_tree/mount_setattr or the *xattrat calls (it warns "unhandled syscall" and
# fails them with ENOSYS), so under it the daemon takes its fallbacks: lowers opened as they are,
# no xattrs on symlinks. ASan covers those paths (scripts/test.sh --sanitize).
#
# Environment: VALGRIND_OPTS adds valgrind options (valgrind reads it itself), e.g.
# --track-origins=yes to find where an uninitialised value came from, or --track-fds=yes.
# scripts/memcheck.supp, when present, holds suppressions (only for reports inside libfuse or
# glibc; there are none so far).
#
# Exit status 0 when every test passed and every log is clean; 1 otherwise, with one line per bad
# log naming it. A process killed with SIGKILL (a stale job daemon in cli_ls and cli_gc, the crash
# in view_faults: on purpose) leaves a log with no summary; those are counted, not failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-memcheck
all=0
do_unit=1
do_integration=1
regex=""

usage_error()
{
	echo "memcheck.sh: $*; try 'scripts/memcheck.sh --help'" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--all)
		all=1
		;;
	--build-dir)
		[ $# -ge 2 ] || usage_error "--build-dir needs a directory"
		build=$(realpath -m "$2")
		shift
		;;
	--unit-only)
		do_integration=0
		;;
	--integration-only)
		do_unit=0
		;;
	-R)
		[ $# -ge 2 ] || usage_error "-R needs a regular expression"
		regex=$2
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		usage_error "unknown argument '$1'"
		;;
	esac
	shift
done

command -v valgrind >/dev/null || {
	echo "memcheck.sh: valgrind is not installed (scripts/setup.sh installs it)" >&2
	exit 1
}

start=$SECONDS
cmake -S "$root" -B "$build" -DJOBFS_SANITIZE=OFF >/dev/null
cmake --build "$build" --parallel "$(nproc)"

logs=$build/memcheck
rm -rf "$logs"
mkdir -p "$logs/out"
# tests run jobfs as other users too (runner_github, cli_home_view as 65534): their valgrind must
# be able to write its log here
chmod 1777 "$logs"

# The wrapper every process under test is started through: it execs valgrind (the PID stays the
# one the harness waits for), one log per process, named for the test and the program; a fork
# (the job daemon) gets a log of its own. --vgdb=no: no /tmp/vgdb-* files, which a process of
# another user (uid 65534) cannot replace when a stale one of an earlier run has its PID in the
# name. (Not --sim-hints=fuse-compatible: valgrind 3.19 then fails an assertion at close_range.)
supp=""
if [ -f "$root/scripts/memcheck.supp" ]; then
	supp="--suppressions=$root/scripts/memcheck.supp"
fi
wrapper=$logs/vg-wrap
cat >"$wrapper" <<EOF
#!/bin/sh
# made by scripts/memcheck.sh: runs "\$@" under valgrind memcheck, one log per process, named for
# the test that runs now (from a file: cli_policy.sh clears the environment) and the program
tag=\$(cat '$logs/tag' 2>/dev/null || echo manual).\$(basename "\$1")
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \\
	--errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 \\
	--vgdb=no \\
	${supp:+"\"$supp\""} --log-file="$logs/\$tag.%p.log" "\$@"
EOF
chmod +x "$wrapper"

tests_run=0
tests_failed=()

# ctest_names LABEL: the names of the tests with that label, in ctest's order.
ctest_names()
{
	(cd "$build" && ctest -L "$1" --show-only=json-v1) |
		python3 -c 'import json, sys; [print(t["name"]) for t in json.load(sys.stdin)["tests"]]'
}

if [ "$do_unit" = 1 ]; then
	echo "=== memcheck: unit tests"
	for t in $(ctest_names unit); do
		# the test's own command line and directory, as ctest would run it
		mapfile -t cmd < <((cd "$build" && ctest -R "^$t\$" --show-only=json-v1) |
			python3 -c 'import json, sys; t = json.load(sys.stdin)["tests"][0]
print(dict((p["name"], p["value"]) for p in t.get("properties", [])).get(
	"WORKING_DIRECTORY", "."))
[print(a) for a in t["command"]]')
		dir=${cmd[0]}
		cmd=("${cmd[@]:1}")
		tests_run=$((tests_run + 1))
		rc=0
		t0=$SECONDS
		echo "$t" >"$logs/tag"
		(cd "$build" && cd "$dir" && "$wrapper" "${cmd[@]}") \
			>"$logs/out/$t.out" 2>&1 || rc=$?
		if [ "$rc" -eq 0 ]; then
			echo "    $t: passed ($((SECONDS - t0)) s)"
		else
			echo "    $t: FAILED (exit $rc; output in $logs/out/$t.out)"
			tests_failed+=("$t")
		fi
	done
fi

if [ "$do_integration" = 1 ]; then
	echo "=== memcheck: integration tests"
	export JOBFS_TEST_WRAPPER=$wrapper
	if [ "$all" = 0 ] && [ -z "$regex" ]; then
		export JOBFS_FSX_OPS=${JOBFS_FSX_OPS:-1000}
		export JOBFS_DIFF_OPS=${JOBFS_DIFF_OPS:-500}
		# each vector is a jobfs run, and valgrind's start-up costs about a second
		export JOBFS_CLI_FUZZ_VECTORS=${JOBFS_CLI_FUZZ_VECTORS:-100}
		# each kill is followed by a jobfs verify of thousands of files: 4 + 1 kills took 14
		# minutes under valgrind; one of each still runs every recovery path
		export JOBFS_PFAULTS_KILLS=${JOBFS_PFAULTS_KILLS:-1}
		export JOBFS_PFAULTS_FLATTEN_KILLS=${JOBFS_PFAULTS_FLATTEN_KILLS:-1}
	fi
	# a step of diff_overlay may take this long before it counts as a hang (default 60)
	export JOBFS_DIFF_HANG=${JOBFS_DIFF_HANG:-600}
	for t in $(ctest_names integration); do
		if [ -n "$regex" ] && ! [[ $t =~ $regex ]]; then
			continue
		fi
		# eight daemons under stress-ng for a minute, with RSS bounds valgrind's own memory
		# would break: --all (or -R view_load) only; its code paths are the other tests' too
		if [ "$all" = 0 ] && [ -z "$regex" ] && [ "$t" = view_load ]; then
			continue
		fi
		tests_run=$((tests_run + 1))
		rc=0
		t0=$SECONDS
		echo "$t" >"$logs/tag"
		(cd "$build" && ctest -R "^$t\$" -V) \
			>"$logs/out/$t.out" 2>&1 || rc=$?
		if [ "$rc" -eq 0 ] && ! grep -q 'tests skipped\|\*\*\*Skipped' "$logs/out/$t.out"; then
			echo "    $t: passed ($((SECONDS - t0)) s)"
		elif [ "$rc" -eq 0 ]; then
			echo "    $t: skipped (output in $logs/out/$t.out)"
		else
			echo "    $t: FAILED (output in $logs/out/$t.out)"
			tests_failed+=("$t")
		fi
	done
fi

# Every log: the error count of its summary, and the bytes definitely lost.
echo "=== memcheck: valgrind logs in $logs"
procs=0
incomplete=0
bad=0
errors_total=0
lost_total=0
for log in "$logs"/*.log; do
	[ -e "$log" ] || continue
	procs=$((procs + 1))
	read -r summary errors lost < <(awk '
		/ERROR SUMMARY:/ { summary = 1; errors = $4 }
		/definitely lost:/ { gsub(",", "", $4); lost = $4 }
		END { print summary + 0, errors + 0, lost + 0 }' "$log")
	if [ "$summary" = 0 ]; then
		incomplete=$((incomplete + 1))
		continue
	fi
	errors_total=$((errors_total + errors))
	lost_total=$((lost_total + lost))
	if [ "$errors" -gt 0 ] || [ "$lost" -gt 0 ]; then
		echo "BAD: $log: $errors errors, $lost bytes definitely lost"
		bad=$((bad + 1))
	fi
done

failed_names=${tests_failed[*]:+ (${tests_failed[*]})}
echo "=== memcheck: $tests_run tests run, ${#tests_failed[@]} failed$failed_names;" \
	"$procs processes checked ($incomplete killed before their summary);" \
	"$errors_total errors, $lost_total bytes definitely lost, $bad bad logs;" \
	"$((SECONDS - start)) s"
if [ "${#tests_failed[@]}" -gt 0 ] || [ "$bad" -gt 0 ]; then
	exit 1
fi
