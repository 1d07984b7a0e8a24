#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ (or $JOBFS_FUZZ_BUILD) and runs each for
# its share of SECONDS (default 60, split evenly, at least 1 s each), seeded from
# tests/fuzz/corpus/NAME (the policy parser also from the policy test corpus). Fails on any crash,
# broken invariant, sanitizer report, leak or timeout; the input that caused it is left in
# BUILD/fuzz-artifacts/ (replay: BUILD/tests/fuzz_NAME FILE).
#
# usage: scripts/fuzz.sh [SECONDS [TARGET...]]   e.g. scripts/fuzz.sh 300 record
# targets: policy job_id units record procs json (tests/CMakeLists.txt, JOBFS_FUZZ section)
set -euo pipefail

all_targets=(policy job_id units record procs json)
seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS [TARGET...]]" >&2
	exit 1
	;;
esac
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=("${all_targets[@]}")
fi
for t in "${targets[@]}"; do
	case " ${all_targets[*]} " in
	*" $t "*) ;;
	*)
		echo "scripts/fuzz.sh: unknown target '$t' (one of: ${all_targets[*]})" >&2
		exit 1
		;;
	esac
done
share=$((seconds / ${#targets[@]}))
if [ "$share" -lt 1 ]; then
	share=1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
build=${JOBFS_FUZZ_BUILD:-$root/build-fuzz}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DJOBFS_FUZZ=ON -DJOBFS_SANITIZE=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
	# New inputs go to a corpus in the build dir, never into the repository's seed corpus.
	work=$build/fuzz-corpus/$t
	mkdir -p "$work"
	flags=()
	seeds=("$root/tests/fuzz/corpus/$t")
	if [ "$t" = policy ]; then
		flags=(-dict="$root/tests/fuzz/policy.dict")
		seeds+=("$root/tests/policy/valid" "$root/tests/policy/invalid")
	fi
	echo "--- fuzz_$t: ${share}s"
	rc=0
	"$build/tests/fuzz_$t" -max_total_time="$share" -timeout=10 -rss_limit_mb=2048 \
		-max_len=4096 -artifact_prefix="$artifacts/" -print_final_stats=1 \
		"${flags[@]}" "$work" "${seeds[@]}" \
		>"$build/fuzz-$t.log" 2>&1 || rc=$?
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$build/fuzz-$t.log" |
		sed "s/^/fuzz_$t: /" || true
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$build/fuzz-$t.log" >&2
		echo "fuzz_$t: FAILED (exit $rc); log $build/fuzz-$t.log, reproducer in $artifacts/" >&2
		failed+=("$t")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: ${targets[*]}: no crash, broken invariant, leak or timeout in ${share}s each"
