#!/usr/bin/env bash
# Hostile input through the real jobfs binary. First fixed regression checks for what fuzzing
# found, then a few thousand generated argument vectors (tests/integration/cli_fuzz.py: every verb
# but manifest and verify, which write and read files by name; every option spelling, hostile job
# IDs, view names, paths, sizes, durations, timeouts, missing and extra arguments), each checked: a
# documented exit code and no signal, an error on one line naming the argument, nothing made
# outside the temp dir, no mount left, and every accepted mount unmounted.
#
# Environment: JOBFS_CLI_FUZZ_SEED (CTest pins one; empty: a new one, printed) and
# JOBFS_CLI_FUZZ_VECTORS (default 2500). A failure prints the seed that reproduces it.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state
mkdir -p "$CT_DIR/mnt2" "$CT_DIR/cwd"
write_policy "$CT_DIR/other.yaml" "$CT_DIR/state2" "  - name: x
    lower: []
    target: $CT_DIR/mnt2/\${JOB_ID}/x"
printf 'version: 1\nviews: [\n' >"$CT_DIR/bad.yaml"

# one_line_error WHAT TEXT: stderr is one error line holding TEXT, then the "try" line
one_line_error() {
	expect_rc 1 "$1"
	check "$1: two lines of stderr" test "$(wc -l <"$CT_DIR/err")" -eq 2
	expect_grep "$CT_DIR/err" "$2" "$1"
	expect_grep "$CT_DIR/err" "try 'jobfs --help'" "$1"
}

step "regression: control characters in arguments stay on the error's one line"
run mount --job $'a\nb\e[31m'
one_line_error "job ID with a newline and an escape" "invalid job ID 'a\\nb\\x1b[31m'"
run inspect --view $'v\n' -- $'x\ty'
one_line_error "inspect ID with a tab" "invalid job ID 'x\\ty'"
run gc --older-than $'1h\n'
one_line_error "duration with a newline" "invalid duration '1h\\n'"
run ls --policy $'/no/such\npolicy'
expect_rc 2 "policy path with a newline"
check "policy path with a newline: one line" test "$(wc -l <"$CT_DIR/err")" -eq 1
expect_grep "$CT_DIR/err" "'/no/such\\npolicy'" "policy path with a newline"
run $'bo\rgus'
one_line_error "verb with a carriage return" "unknown verb 'bo\\x0dgus'"

step "regression: option errors name the option"
run ls --json=yes
one_line_error "--json=yes" "option '--json' takes no argument"
run umount -kq --job a
one_line_error "unknown option inside a cluster" "unknown option '-q'"
run umount -kj
one_line_error "missing value inside a cluster" "option '-j' needs an argument"
run inspect a b
one_line_error "an extra argument" "unexpected argument 'b'"
run policy check -- "$CT_DIR/policy.yaml" $'x\ny'
one_line_error "an extra argument with a newline" "unexpected argument 'x\\ny'"

step "regression: the largest size and duration are valid"
run gc --dry-run --max-total 18446744073709551615B
expect_rc 0 "gc --max-total of 2^64-1 bytes"

step "regression: a retention beyond 2^63 seconds keeps every layer"
jmount keep1
run umount --job keep1
expect_rc 0 "umount keep1"
run gc --older-than 18446744073709551615s
expect_rc 0 "gc --older-than 2^64-1 seconds"
check "the unmounted layer is kept" test -d "$state/jobs/keep1"
run gc --older-than 9223372036854775808s --dry-run
expect_grep "$CT_DIR/out" "remove 0 layer(s)" "gc --older-than 2^63 seconds removes nothing"
run gc --older-than 0s
expect_rc 0 "gc --older-than 0s"
check "an expired layer is removed" test ! -e "$state/jobs/keep1"

seed=${JOBFS_CLI_FUZZ_SEED:-}
if [ -z "$seed" ]; then
	seed=$((($(date +%s%N) / 1000) % 1000000000))
fi
vectors=${JOBFS_CLI_FUZZ_VECTORS:-2500}
step "$vectors generated vectors, seed $seed (rerun: JOBFS_CLI_FUZZ_SEED=$seed)"
rm -f "$CT_DIR/out" "$CT_DIR/err"
fuzz_rc=0
python3 "$here/cli_fuzz.py" "$JOBFS" "$CT_DIR" "$seed" "$vectors" || fuzz_rc=$?
if [ "$fuzz_rc" -eq 0 ]; then
	ok
else
	bad "generated vectors failed (exit $fuzz_rc); reproduce with JOBFS_CLI_FUZZ_SEED=$seed"
fi
