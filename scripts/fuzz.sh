#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs the policy parser's fuzzer for
# SECONDS (default 60), seeded from tests/fuzz/corpus/policy and the policy test corpus. Fails on
# any crash, sanitizer report, leak or timeout; the input that caused it is left in
# build-fuzz/fuzz-artifacts/ (replay: build-fuzz/tests/fuzz_policy FILE).
set -euo pipefail

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS]" >&2
	exit 1
	;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DJOBFS_FUZZ=ON -DJOBFS_SANITIZE=ON >/dev/null
cmake --build "$build" --target fuzz_policy -j "$(nproc)"

# New inputs go to a corpus in the build dir, never into the repository's seed corpus.
work=$build/fuzz-corpus/policy
artifacts=$build/fuzz-artifacts
mkdir -p "$work" "$artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
"$build/tests/fuzz_policy" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-max_len=4096 -dict="$root/tests/fuzz/policy.dict" -artifact_prefix="$artifacts/" \
	-print_final_stats=1 \
	"$work" "$root/tests/fuzz/corpus/policy" "$root/tests/policy/valid" \
	"$root/tests/policy/invalid" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "fuzz_policy: FAILED (exit $rc); reproducer in $artifacts/" >&2
	exit 1
fi
echo "fuzz_policy: no crash, leak or timeout in ${seconds}s"
