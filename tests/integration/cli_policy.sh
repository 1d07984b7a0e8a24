#!/usr/bin/env bash
# `jobfs policy check/show`, `--help` and `--version`: exit codes, messages and output, over the
# policy corpus in tests/policy. Needs neither FUSE nor root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
corpus=$(cd "$here/../policy" && pwd)
# JOBFS_TEST_WRAPPER: a program jobfs is started through (scripts/memcheck.sh: valgrind)
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

# run CMD...: runs jobfs in the corpus environment; sets rc, and leaves $tmp/out and $tmp/err.
run() {
	rc=0
	env -i PATH="$PATH" HOME=/home/runner RUNNER_WORKSPACE=/home/runner/work/app EMPTY= \
		JOB_ID=from-env ${extra_env:+"$extra_env"} "${jobfs[@]}" "$@" >"$tmp/out" \
		2>"$tmp/err" || rc=$?
}
extra_env=

expect_rc() { # CODE WHAT
	if [ "$rc" -eq "$1" ]; then ok; else bad "$2: exit $rc, expected $1 ($(head -c 300 "$tmp/err"))"; fi
}
expect_file() { # FILE EXACT-TEXT WHAT
	if [ "$(cat "$1")" = "$2" ]; then ok; else bad "$3: got '$(cat "$1")', expected '$2'"; fi
}
expect_grep() { # FILE FIXED-STRING WHAT
	if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in '$(head -c 300 "$1")'"; fi
}
expect_usage_error() { # FIRST-LINE WHAT
	expect_rc 1 "$2"
	expect_file "$tmp/err" "$1
try 'jobfs --help'" "$2"
	expect_file "$tmp/out" "" "$2: stdout"
}
json_field() { # EXPRESSION: a Python expression over the parsed document d; tuples print joined
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = eval(sys.argv[2])
print(" ".join(map(str, r)) if isinstance(r, tuple) else r)' "$tmp/out" "$1"
}

# --- help, version, usage errors --------------------------------------------------------------
for flag in --help -h; do
	run $flag
	expect_rc 0 "$flag"
	expect_grep "$tmp/out" "usage: jobfs" "$flag"
	expect_grep "$tmp/out" "policy check [--job ID] [FILE]" "$flag lists policy check"
	expect_grep "$tmp/out" "policy show [--job ID] [--json] [--policy FILE]" "$flag lists show"
	for code in 0 1 2 3 4 5 6; do
		expect_grep "$tmp/out" "  $code  " "$flag documents exit code $code"
	done
	expect_file "$tmp/err" "" "$flag: stderr"
done

run --version
expect_rc 0 "--version"
if grep -qE '^jobfs [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out"; then ok; else bad "--version: $(cat "$tmp/out")"; fi

run
expect_usage_error "jobfs: missing verb" "no verb"
run bogus
expect_usage_error "jobfs: unknown verb 'bogus'" "unknown verb"
run --bogus
expect_usage_error "jobfs: unknown option '--bogus'" "unknown global option"
run policy
expect_usage_error "jobfs: policy: missing subverb (one of check, show, get)" "no subverb"
run policy bogus
expect_usage_error "jobfs: policy: unknown subverb 'bogus' (one of check, show, get)" "bad subverb"
run policy show --bogus
expect_usage_error "jobfs: policy show: unknown option '--bogus'" "unknown option"
run policy show -x
expect_usage_error "jobfs: policy show: unknown option '-x'" "unknown short option"
run policy show --job
expect_usage_error "jobfs: policy show: option '--job' needs an argument" "missing option value"
run policy show extra
expect_usage_error \
	"jobfs: policy show: unexpected argument 'extra' (usage: jobfs policy show [--job ID] [--json] [--policy FILE])" \
	"extra argument"
run policy check a b
expect_usage_error \
	"jobfs: policy check: unexpected argument 'b' (usage: jobfs policy check [--job ID] [FILE])" \
	"two files"
run policy show --job ../etc
expect_usage_error \
	"jobfs: policy show: invalid job ID '../etc' (expected [A-Za-z0-9][A-Za-z0-9._-]{0,127})" \
	"bad job ID"
run policy check --help
expect_rc 0 "policy check --help"
expect_grep "$tmp/out" "usage: jobfs policy check [--job ID] [FILE]" "policy check --help"
run policy --help
expect_rc 0 "policy --help"
expect_grep "$tmp/out" "usage: jobfs policy show" "policy --help"

# --- the corpus: every valid file passes, every invalid one fails with its one-line error ------
for file in "$corpus"/valid/*.yaml; do
	run policy check --job job-42 "$file"
	expect_rc 0 "check $file"
	expect_file "$tmp/out" "$file: ok" "check $file"
done
for file in "$corpus"/invalid/*.yaml; do
	run policy check --job job-42 "$file"
	expect_rc 2 "check $file"
	expect_file "$tmp/err" "$file:$(sed -n 's/^# error: //p' "$file" | head -n 1)" "check $file"
	expect_file "$tmp/out" "" "check $file: stdout"
done

# Errors found only at expansion need a job; without --job the file is only parsed.
run policy check "$corpus/invalid/target-undefined.yaml"
expect_rc 0 "check without --job does not expand"
run policy show --job job-42 --policy "$corpus/invalid/target-undefined.yaml"
expect_rc 2 "show expands"
expect_grep "$tmp/err" "undefined variable 'GITHUB_RUN_ID' in view 'workspace'" "show expands"

run policy check "$tmp/missing.yaml"
expect_rc 2 "missing file"
expect_file "$tmp/err" \
	"jobfs: cannot open policy '$tmp/missing.yaml': No such file or directory" "missing file"

# --- where the policy comes from -------------------------------------------------------------
cp "$corpus/valid/scratch.yaml" "$tmp/env.yaml"
cp "$corpus/valid/multi-lower.yaml" "$tmp/option.yaml"
extra_env="JOBFS_POLICY=$tmp/env.yaml"
run policy show --json
expect_rc 0 "JOBFS_POLICY"
[ "$(json_field 'd["origin"], d["source"]')" = "env $tmp/env.yaml" ] && ok ||
	bad "JOBFS_POLICY not used: $(cat "$tmp/out")"
run policy show --json --policy "$tmp/option.yaml"
[ "$(json_field 'd["origin"], d["source"]')" = "option $tmp/option.yaml" ] && ok ||
	bad "--policy does not win over JOBFS_POLICY"
run policy check
expect_file "$tmp/out" "$tmp/env.yaml: ok" "check without FILE uses JOBFS_POLICY"
extra_env="JOBFS_POLICY=$tmp/missing.yaml"
run policy show
expect_rc 2 "JOBFS_POLICY names a missing file"
extra_env=

if [ -e /etc/jobfs/policy.yaml ]; then
	echo "note: /etc/jobfs/policy.yaml exists, built-in default checks skipped" >&2
else
	run policy check
	expect_rc 0 "built-in check"
	expect_file "$tmp/out" "<built-in>: ok" "built-in check"
	run policy show --job 7 --json
	expect_rc 0 "built-in show"
	[ "$(json_field 'd["origin"], d["state_dir"], [(v["name"], v["lower"], v["target"]) for v in d["views"]]')" = \
		"builtin /var/lib/jobfs [('workspace', [], '/run/jobfs/7/workspace')]" ] && ok ||
		bad "built-in default: $(cat "$tmp/out")"
	extra_env="JOBFS_POLICY="
	run policy check
	expect_file "$tmp/out" "<built-in>: ok" "empty JOBFS_POLICY counts as unset"
	extra_env=
fi

# --- show: JSON field names, YAML that check accepts again --------------------------------------
run policy show --json --job job-42 --policy "$corpus/valid/github-actions.yaml"
expect_rc 0 "show --json"
[ "$(json_field 'sorted(d)')" = "['gc', 'hooks', 'job', 'origin', 'source', 'state_dir', 'version', 'views']" ] &&
	ok || bad "show --json top-level fields: $(json_field 'sorted(d)')"
[ "$(json_field 'sorted(d["views"][0])')" = "['lower', 'name', 'pass_through', 'promote', 'promote_ignore', 'promote_trust', 'quota_bytes', 'target', 'when']" ] &&
	ok || bad "show --json view fields"
[ "$(json_field 'd["views"][0]["quota_bytes"], d["views"][0]["promote"], d["views"][3]["quota_bytes"], d["gc"]')" = \
	"21474836480 add-only 10737418240 {'keep_unmounted_seconds': 86400, 'max_total_bytes': 107374182400, 'max_generations': 8}" ] &&
	ok || bad "show --json values: $(cat "$tmp/out")"
[ "$(json_field 'd["job"], d["views"][2]["target"]')" = "job-42 /home/runner/work/app/job-42" ] &&
	ok || bad "show --json expansion"

run policy show --json --policy "$corpus/valid/selectors.yaml"
expect_rc 0 "show --json of selectors.yaml"
[ "$(json_field 'd["views"][0]["when"]["repository"], d["views"][0]["when"]["ref"], d["views"][0]["promote_trust"]["ref"], d["hooks"]')" = \
	"['acme/*'] None ['refs/heads/main', 'refs/tags/v*'] {'fail_open': False, 'kill_on_umount': True}" ] &&
	ok || bad "show --json selectors: $(cat "$tmp/out")"
run policy show --policy "$corpus/valid/selectors.yaml"
cp "$tmp/out" "$tmp/shown.yaml"
run policy show --json --policy "$tmp/shown.yaml"
[ "$(json_field 'd["views"][0]["when"], d["views"][0]["promote_trust"], d["views"][1]["when"]["job"], d["hooks"]["fail_open"]')" = \
	"{'repository': ['acme/*'], 'ref': None, 'workflow': None, 'job': None, 'event': ['push', 'pull_request']} {'repository': ['acme/web', 'acme/api'], 'ref': ['refs/heads/main', 'refs/tags/v*'], 'workflow': ['ci', 'release *'], 'job': None, 'event': None} ['*'] False" ] &&
	ok || bad "show of selectors.yaml keeps when, trust and hooks: $(cat "$tmp/out")"

for name in github-actions defaults quoted units multi-lower selectors; do
	for job in "" "--job job-42"; do
		# shellcheck disable=SC2086
		run policy show $job --policy "$corpus/valid/$name.yaml"
		cp "$tmp/out" "$tmp/shown.yaml"
		run policy check --job job-42 "$tmp/shown.yaml"
		expect_rc 0 "show ${job:-(no job)} of $name.yaml is a valid policy again"
	done
done

# Values from the environment may hold anything but control characters; JSON stays valid and
# exact (invalid UTF-8 becomes U+FFFD).
extra_env=$'HOME=/home/"q"\\x\xff'
run policy show --json --job job-42 --policy "$corpus/valid/github-actions.yaml"
expect_rc 0 "odd HOME"
[ "$(json_field 'd["views"][1]["target"] == "/home/\"q\"\\x\ufffd/.npm"')" = True ] &&
	ok || bad "odd HOME in JSON: $(grep npm "$tmp/out")"
extra_env=$'HOME=/home/a\tb'
run policy show --json --job job-42 --policy "$corpus/valid/github-actions.yaml"
expect_rc 2 "HOME with a tab"
expect_grep "$tmp/err" "contains a control character" "HOME with a tab"
extra_env=

# --- output that cannot be written is an error --------------------------------------------------
rc=0
"${jobfs[@]}" --help >/dev/full 2>"$tmp/err" || rc=$?
expect_rc 6 "--help to a full disk"
expect_file "$tmp/err" "jobfs: cannot write output: No space left on device" "--help to /dev/full"
rc=0
"${jobfs[@]}" policy show --json --policy "$corpus/valid/units.yaml" >/dev/full 2>/dev/null || rc=$?
expect_rc 6 "show to a full disk"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
