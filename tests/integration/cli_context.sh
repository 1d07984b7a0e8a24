#!/usr/bin/env bash
# Job contexts through the real binary: `mount --context` picks the views whose `when` matches
# (a view the job does not get may even use a variable it lacks); a job that matches no view is a
# fast no-op that ls, inspect, mark-ok, promote, umount and gc all handle; hostile --context values
# are refused naming the argument, before anything is created; promote.trust refuses (exit 9,
# naming the selector) and accepts through real promotes, the base unchanged by a refusal;
# `policy get` reads hooks and other values.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state
m=$CT_DIR/mnt
policy=$CT_DIR/context.yaml
mkdir -p "$CT_DIR/base/pkg"
echo "base" >"$CT_DIR/base/pkg/a"
cat >"$policy" <<EOF
version: 1
state_dir: $state
views:
  - name: store
    lower: [$CT_DIR/base]
    target: $m/\${JOB_ID}/store
    when: {repository: ["acme/*"]}
    promote:
      kind: add-only
      trust:
        repository: [acme/web]
        ref: [refs/heads/main, "refs/tags/v*"]
  - name: push
    lower: []
    target: $m/\${JOB_ID}/push
    when: {event: [push]}
  - name: never
    lower: []
    target: \${NOT_SET_ANYWHERE}/never
    when: {workflow: [never]}
gc:
  keep_unmounted: 1h
hooks:
  fail_open: false
EOF
CT_POLICIES+=("$policy")
export JOBFS_POLICY=$policy

views_of() { # JOB: the view names ls --json gives the job, comma-separated
	run ls --json
	json "','.join(v['name'] for j in d if j['id'] == '$1' for v in j['views'])"
}

step "selectors pick the views"
jmount c1 --context repository=acme/web --context event=push --context ref=refs/heads/main
check "c1 printed its two views" test "$(cut -f1 "$CT_DIR/out" | tr '\n' ,)" = "store,push,"
check "c1: store mounted" is_mounted "$m/c1/store"
check "c1: push mounted" is_mounted "$m/c1/push"
check "c1: the lower shows" test "$(cat "$m/c1/store/pkg/a")" = base
check "c1: records two views" test "$(views_of c1)" = "store,push"
run ls --json
check "ls --json shows the context" test "$(json "[j['context'] for j in d if j['id'] == 'c1'][0]")" = \
	"{'repository': 'acme/web', 'ref': 'refs/heads/main', 'workflow': None, 'job': None, 'event': 'push'}"
check "record keeps the context" test "$(record_field c1 context_repository)" = acme/web
run inspect c1
expect_grep "$CT_DIR/out" "  context ref: refs/heads/main" "inspect shows the context"

jmount c2 --context repository=acme/api --context event=pull_request
check "c2: only store" test "$(views_of c2)" = store
check "c2: no push target" test ! -e "$m/c2/push"
jmount c3 --context event=push --context 'workflow=nightly build' --context repository=
check "c3: only push (an empty value is no value)" test "$(views_of c3)" = push
check "c3: no repository recorded" test -z "$(record_field c3 context_repository)"
for id in c1 c2 c3; do
	run umount --job "$id"
	expect_rc 0 "umount $id"
done
check "targets removed" test -z "$(ls -A "$m/c1" "$m/c2" "$m/c3" 2>/dev/null)"

step "a job that matches no view: a fast no-op"
start=$(date +%s%N)
CT_JOBS+=(nv)
run mount --job nv --context repository=other/x --context event=pull_request
ms=$((($(date +%s%N) - start) / 1000000))
echo "--- $CT_NAME: no-view mount took $ms ms"
expect_rc 0 "mount of a job without views"
check "no-view mount is fast ($ms ms)" test "$ms" -lt 2000
check "stdout empty" test ! -s "$CT_DIR/out"
check "stderr says why" test "$(cat "$CT_DIR/err")" = \
	"jobfs: mount: job 'nv' matches no view of policy '$policy': nothing to mount"
check "nothing made under the mount dir" test ! -e "$m/nv"
check "no daemon recorded" test "$(record_field nv pid)" = 0
run ls --json
check "ls: mounted without views" test "$(json "[(j['state'], len(j['views'])) for j in d if j['id'] == 'nv'][0]")" = "mounted 0"
run inspect nv
expect_rc 0 "inspect nv"
expect_grep "$CT_DIR/out" "no views" "inspect says it has no views"
run mount --job nv --context repository=other/x
expect_rc 5 "a second mount of nv"
run promote --job nv
expect_rc 0 "promote of a job without views (mounted, not marked ok)"
expect_grep "$CT_DIR/out" "job nv has no views: nothing to promote" "promote says so"
# shellcheck disable=SC2016 # $PWD is the command's, expanded by its shell
run exec --job nv -- sh -c 'echo "in $PWD"'
expect_rc 0 "exec in a job without views runs the command (on the host)"
check "exec's output" test "$(cat "$CT_DIR/out")" = "in $PWD"
run mark-ok --job nv
expect_rc 0 "mark-ok nv"
run gc
expect_rc 0 "gc"
check "gc keeps a mounted job without views within the retention" test -d "$state/jobs/nv"
run umount --job nv --kill
expect_rc 0 "umount nv"
check "umount of nv is quiet" test ! -s "$CT_DIR/err"
check "nv unmounted" test "$(record_field nv state)" = unmounted
run umount --job nv
expect_rc 0 "umount nv again"
run promote --job nv --json
expect_rc 0 "promote --json of nv"
check "promote --json: no views, none refused" test "$(json "len(d['views']), len(d['refused'])")" = "0 0"
run gc --older-than 0s
expect_rc 0 "gc after umount"
check "gc removed nv" test ! -e "$state/jobs/nv"
CT_JOBS+=(nv2)
run mount --job nv2 --namespace private
expect_rc 0 "a job without any context matches no view here (a private namespace too)"
check "nv2: no namespace recorded" test -z "$(record_field nv2 namespace)"
run exec --job nv2 -- true
expect_rc 0 "exec in nv2"
run umount --job nv2 --collect
expect_rc 0 "umount --collect nv2"
check "nv2 collected" test ! -e "$state/jobs/nv2"

step "a job without views whose umount never comes expires with the retention"
CT_JOBS+=(nv3)
run mount --job nv3 --context repository=other/x
expect_rc 0 "mount nv3 (no views)"
run gc --older-than 1h --json
expect_rc 0 "gc --older-than 1h"
check "nv3 kept: younger than the retention" test "$(json "[s['reason'] for s in d['skipped'] if s['id'] == 'nv3']")" = "['mounted']"
sleep 1.1
run gc --older-than 1s --json
expect_rc 0 "gc --older-than 1s"
check "nv3 removed as expired" test "$(json "[r['reason'] for r in d['removed'] if r['id'] == 'nv3']")" = "['no views, expired']"
check "nv3's dir is gone" test ! -e "$state/jobs/nv3"
run umount --job nv3
expect_rc 3 "a late umount of nv3: no such job"

step "hostile --context values are refused, naming the argument"
long=$(printf 'r%.0s' {1..1025})
while IFS='|' read -r arg message; do
	arg=$(printf '%b' "$arg")
	run mount --job bad --context "$arg"
	expect_rc 1 "--context '$arg'"
	first=$(head -n 1 "$CT_DIR/err")
	check "--context '$arg': message ($first)" test "$first" = "jobfs: mount: invalid --context '$(printf '%s' "$arg" | sed 's/\x1b/\\x1b/g; s/\t/\\t/g')': $message"
	check "--context '$arg': nothing created" test ! -e "$state/jobs/bad"
done <<'EOF'
repository|expected KEY=VALUE
=acme/web|expected KEY=VALUE
branch=main|unknown key (expected repository, ref, workflow, job or event)
Ref=main|unknown key (expected repository, ref, workflow, job or event)
ref=a\tb|contains a control character
ref=\e[31mred|contains a control character
ref=\xff\xfe|not valid UTF-8
ref=\xc0\xaf|not valid UTF-8
ref=evil\xe2\x80\xaetxt|contains a Unicode line separator or direction control
EOF
run mount --job bad --context "ref=$long"
expect_rc 1 "a 1025-byte value"
expect_grep "$CT_DIR/err" "value longer than 1024 bytes" "says too long"
run mount --job bad --context $'ref=a\nb'
expect_rc 1 "a newline"
check "a newline: one line and the try line" test "$(wc -l <"$CT_DIR/err")" = 2
expect_grep "$CT_DIR/err" "invalid --context 'ref=a\\nb': contains a control character" "escaped"
run mount --job bad --context ref=a --context ref=b
expect_rc 1 "a key given twice"
expect_grep "$CT_DIR/err" "invalid --context 'ref=b': key 'ref' given twice" "names the second"
check "nothing created at all" test ! -e "$state/jobs/bad"

step "promote.trust: refused and accepted through real promotes"
stack() { cat "$state/bases/store/stack" 2>/dev/null || echo "(none)"; }
# tjob ID FILE CONTEXT...: mounts with the context, adds FILE to the store, unmounts as success
tjob() {
	local id=$1 file=$2
	shift 2
	jmount "$id" "$@"
	echo "from $id" >"$m/$id/store/pkg/$file"
	run umount --job "$id" --outcome success
	expect_rc 0 "umount $id"
}
tjob t1 t1 --context repository=acme/web --context ref=refs/heads/main
run promote --job t1
expect_rc 0 "promote of a trusted job"
expect_grep "$CT_DIR/out" "published generation" "t1 published"
after_t1=$(stack)
check "a generation" test "$after_t1" != "(none)"

tjob t2 t2 --context repository=acme/web --context ref=refs/heads/feature
run promote --job t2
expect_rc 9 "promote of a job on an untrusted ref"
check "t2 refused naming the ref selector" test "$(cat "$CT_DIR/err")" = \
	"jobfs: promote: refused: job 't2' is not trusted for view 'store': its ref 'refs/heads/feature' matches none of promote.trust.ref"
check "t2: stack unchanged" test "$(stack)" = "$after_t1"
run promote --job t2 --json
expect_rc 9 "promote --json of t2"
check "--json lists the refusal" test "$(json "d['refused'][0]['view'], len(d['views'])")" = "store 0"

tjob t3 t3 --context repository=acme/api --context ref=refs/heads/main
run promote --job t3
expect_rc 9 "promote of a job from an untrusted repository"
expect_grep "$CT_DIR/err" "its repository 'acme/api' matches none of promote.trust.repository" "names repository"

tjob t4 t4 --context repository=acme/web
run promote --job t4
expect_rc 9 "promote of a job mounted without a ref"
expect_grep "$CT_DIR/err" "it was mounted without a ref (--context ref=...), which promote.trust.ref requires" "names the missing ref"
check "t2-t4: stack unchanged" test "$(stack)" = "$after_t1"

jmount t5 --context repository=acme/web --context ref=refs/tags/v1.2
echo "from t5" >"$m/t5/store/pkg/t5"
run umount --job t5 --outcome failure
run promote --job t5
expect_rc 9 "a trusted job that failed"
expect_grep "$CT_DIR/err" "not marked successful" "says not successful"
run mark-ok --job t5
run promote --job t5
expect_rc 0 "the same job marked ok: a release tag is trusted"
check "t5: a newer stack" test "$(stack)" != "$after_t1"

jmount t6 --context repository=acme/web
check "t6 sees t1's and t5's files" test "$(cat "$m/t6/store/pkg/t1" "$m/t6/store/pkg/t5")" = "from t1
from t5"
check "t6 sees none of the refused ones" test ! -e "$m/t6/store/pkg/t2" -a ! -e "$m/t6/store/pkg/t3" -a ! -e "$m/t6/store/pkg/t4"
run umount --job t6
check "the policy's lower is unchanged" test "$(cd "$CT_DIR/base" && find . | sort | tr '\n' ' ')" = ". ./pkg ./pkg/a "

step "policy get"
get() { run policy get "$@"; }
get hooks.fail_open
expect_rc 0 "get hooks.fail_open"
check "hooks.fail_open is false here" test "$(cat "$CT_DIR/out")" = false
get hooks.kill_on_umount
check "hooks.kill_on_umount defaults to true" test "$(cat "$CT_DIR/out")" = true
get --policy "$CT_DIR/policy.yaml" hooks.fail_open
check "hooks.fail_open defaults to true" test "$(cat "$CT_DIR/out")" = true
get views
check "views lists the names" test "$(tr '\n' , <"$CT_DIR/out")" = "store,push,never,"
get views.store.when.repository
check "a when list" test "$(cat "$CT_DIR/out")" = 'acme/*'
get views.store.promote.trust.ref
check "a trust list, one a line" test "$(tr '\n' , <"$CT_DIR/out")" = 'refs/heads/main,refs/tags/v*,'
get views.push.when.ref
expect_rc 0 "an absent selector key"
check "prints nothing" test ! -s "$CT_DIR/out"
get views.store.promote.kind
check "promote.kind" test "$(cat "$CT_DIR/out")" = add-only
get state_dir
check "state_dir" test "$(cat "$CT_DIR/out")" = "$state"
get gc.keep_unmounted
check "gc.keep_unmounted" test "$(cat "$CT_DIR/out")" = 1h
get gc.max_total
check "gc.max_total unset" test "$(cat "$CT_DIR/out")" = none
get --job g1 views.push.target
check "a target expanded for --job" test "$(cat "$CT_DIR/out")" = "$m/g1/push"
get --job g1 hooks.fail_open
expect_rc 0 "--job expands only the view a key names: NOT_SET_ANYWHERE stops nothing"
check "hooks.fail_open with --job" test "$(cat "$CT_DIR/out")" = false
get --job g1 views.never.target
expect_rc 2 "the view that needs NOT_SET_ANYWHERE cannot be expanded"
expect_grep "$CT_DIR/err" "NOT_SET_ANYWHERE" "names the variable"
get views.push.target
check "a target unexpanded without --job" test "$(cat "$CT_DIR/out")" = "$m/\${JOB_ID}/push"
get hooks.nope
expect_rc 1 "an unknown key"
check "names the key" test "$(head -n 1 "$CT_DIR/err")" = "jobfs: policy get: unknown key 'hooks.nope' in policy '$policy' (see 'jobfs policy show')"
get views.nosuch.target
expect_rc 1 "an unknown view"
get
expect_rc 1 "no key"
printf 'version: 2\nviews: []\n' >"$CT_DIR/bad.yaml"
get --policy "$CT_DIR/bad.yaml" hooks.fail_open
expect_rc 2 "a bad policy"
expect_grep "$CT_DIR/err" "bad.yaml:1:10: version: unsupported version '2'" "names file and line"
get --job ../x state_dir
expect_rc 1 "a bad job ID"
