#!/usr/bin/env bash
# The test command: installs what the build needs, configures and builds jobfs, and runs every CTest
# test (unit and integration). Exits non-zero on any failure.
#
# usage: scripts/test.sh [--sanitize] [--build-dir DIR] [-- CTEST-ARGS...]
#   --sanitize       build with ASan and UBSan (-DJOBFS_SANITIZE=ON) into build-asan/
#   --build-dir DIR  build here instead (default build/, or build-asan/ with --sanitize)
#   CTEST-ARGS       passed to ctest, e.g. -- -L integration or -- -R view_basic
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=OFF
build_dir=""
ctest_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--sanitize)
		sanitize=ON
		;;
	--build-dir)
		[ $# -ge 2 ] || {
			echo "test.sh: --build-dir needs a directory" >&2
			exit 2
		}
		build_dir=$2
		shift
		;;
	--)
		shift
		ctest_args=("$@")
		break
		;;
	-h | --help)
		sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test.sh: unknown argument '$1'; try 'scripts/test.sh --help'" >&2
		exit 2
		;;
	esac
	shift
done
if [ -z "$build_dir" ]; then
	if [ "$sanitize" = ON ]; then
		build_dir=$root/build-asan
	else
		build_dir=$root/build
	fi
fi

bash "$root/scripts/setup.sh"

cmake -S "$root" -B "$build_dir" -DJOBFS_SANITIZE="$sanitize"
cmake --build "$build_dir" --parallel "$(nproc)"

if [ "$sanitize" = ON ]; then
	# A report fails the test that triggered it; lib.sh checks the exit status of daemons too.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:strict_string_checks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	# ASan's shadow memory and quarantine make a daemon's RSS say nothing about the daemon
	export JOBFS_LOAD_CHECK_RSS=0
fi

cd "$build_dir"
ctest --output-on-failure "${ctest_args[@]}"
