#!/usr/bin/env bash
# `jobfs job-key --github`: the job ID runner hooks and the action derive from a GitHub Actions
# job's environment; exact output, missing variables, hostile values. Needs neither FUSE nor root.
set -euo pipefail

jobfs=(${JOBFS_TEST_WRAPPER:+"$JOBFS_TEST_WRAPPER"}
	"${JOBFS_BUILD:?JOBFS_BUILD must name the build directory}/cli/jobfs")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
	failed=$((failed + 1))
	echo "FAIL: $*" >&2
}

# run [VAR=VALUE...] -- ARGS...: jobfs with only PATH and the given variables; sets rc, leaves
# $tmp/out and $tmp/err.
run() {
	local vars=()
	while [ "$1" != -- ]; do
		vars+=("$1")
		shift
	done
	shift
	rc=0
	env -i PATH="$PATH" "${vars[@]}" "${jobfs[@]}" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
}
expect_rc() { # CODE WHAT
	if [ "$rc" -eq "$1" ]; then ok; else bad "$2: exit $rc, expected $1 ($(head -c 300 "$tmp/err"))"; fi
}
expect_file() { # FILE EXACT-TEXT WHAT
	if [ "$(cat "$1")" = "$2" ]; then ok; else bad "$3: got '$(cat "$1")', expected '$2'"; fi
}

gh=(RUNNER_NAME=runner-1 GITHUB_RUN_ID=123456789 GITHUB_RUN_ATTEMPT=2 GITHUB_JOB=build)

# --- a plain environment gives the readable key, the same every time ---------------------------
run "${gh[@]}" -- job-key --github
expect_rc 0 "plain"
expect_file "$tmp/out" "runner-1.123456789.2.build" "plain key"
expect_file "$tmp/err" "" "plain: stderr"
# unrelated variables change nothing
run "${gh[@]}" GITHUB_REPOSITORY=o/r GITHUB_REF=refs/heads/main -- job-key --github
expect_file "$tmp/out" "runner-1.123456789.2.build" "other variables ignored"

run "${gh[@]}" -- job-key --github --json
expect_rc 0 "--json"
if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d == {"id": "runner-1.123456789.2.build", "source": "github"}, d' "$tmp/out"; then ok
else bad "--json: $(cat "$tmp/out")"; fi

# --- each variable is required, and named when missing or empty ----------------------------------
for var in RUNNER_NAME GITHUB_RUN_ID GITHUB_RUN_ATTEMPT GITHUB_JOB; do
	vars=()
	for kv in "${gh[@]}"; do [ "${kv%%=*}" = "$var" ] || vars+=("$kv"); done
	run "${vars[@]}" -- job-key --github
	expect_rc 1 "$var unset"
	expect_file "$tmp/err" \
		"jobfs: job-key: environment variable $var is not set (not a GitHub Actions job?)
try 'jobfs --help'" "$var unset: message"
	expect_file "$tmp/out" "" "$var unset: stdout"
	run "${vars[@]}" "$var=" -- job-key --github
	expect_rc 1 "$var empty"
	expect_file "$tmp/err" \
		"jobfs: job-key: environment variable $var is empty (not a GitHub Actions job?)
try 'jobfs --help'" "$var empty: message"
done

# --- hostile values still make one valid ID, which the other verbs accept ------------------------
# shellcheck disable=SC2016 # '$(id)' is a literal name
hostile=("my runner" "../../etc" $'line\nbreak' $'\e[31mred' 'café ☕' '-rf' '.hidden' '$(id)'
	"$(printf 'r%.0s' {1..300})")
declare -A seen=()
for name in "${hostile[@]}"; do
	run RUNNER_NAME="$name" GITHUB_RUN_ID=7 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB='deploy (prod)' \
		-- job-key --github
	expect_rc 0 "hostile runner name '$name'"
	id=$(cat "$tmp/out")
	if [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]] && [ "$(wc -l <"$tmp/out")" -eq 1 ]; then
		ok
	else
		bad "hostile runner name '$name': not one valid ID: '$id'"
	fi
	if [ -z "${seen[$id]:-}" ]; then ok; else bad "'$name' and '${seen[$id]}' share ID $id"; fi
	seen[$id]=$name
	first=$id
	run RUNNER_NAME="$name" GITHUB_RUN_ID=7 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB='deploy (prod)' \
		-- job-key --github
	expect_file "$tmp/out" "$first" "hostile runner name '$name': deterministic"
	run -- policy check --job "$id"
	expect_rc 0 "policy check --job accepts the key of '$name'"
done
# the unit test pins this value; the CLI gives the same
run RUNNER_NAME="my runner" GITHUB_RUN_ID=99 GITHUB_RUN_ATTEMPT=3 GITHUB_JOB=deploy -- job-key --github
expect_file "$tmp/out" "my_runner.99.3.deploy.362d8cd832aba417" "pinned key"

# --- usage --------------------------------------------------------------------------------------
run "${gh[@]}" -- job-key
expect_rc 1 "no --github"
expect_file "$tmp/err" "jobfs: job-key: --github is required (the only CI system so far)
try 'jobfs --help'" "no --github: message"
run "${gh[@]}" -- job-key --github extra
expect_rc 1 "extra argument"
run "${gh[@]}" -- job-key --github --job x
expect_rc 1 "unknown option"
run -- job-key --help
expect_rc 0 "--help"
expect_file "$tmp/out" "usage: jobfs job-key --github [--json]

print the job ID of the current CI job, derived from its environment" "--help text"

echo "cli_job_key: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
