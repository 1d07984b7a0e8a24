#!/usr/bin/env bash
# jobfs promote: add-only promotion of two jobs (both land, also when promoted at once); identical
# files skipped; a conflict reported with the base unchanged; modified (through a hard link and a
# write) and deleted base files never promoted; symlinks out of the layer promoted as links only;
# a job mounted before a promote keeps its generation, a new one sees the new one; failure outcome
# refused (exit 9); --dry-run changes nothing; --json parses; kill -9 mid-promote leaves the old
# stack and the next promote succeeds; gc removes generations nobody uses. The policy's lowers and
# published generations are checked byte for byte before and after.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state
bases=$state/bases/cache

# manifest DIR...: every path, type, mode, size, mtime, link target and content hash
manifest() {
	local d
	for d in "$@"; do
		[ -d "$d" ] || continue
		(cd "$d" && find . -printf '%p %y %m %s %T@ %l\n' | sort &&
			find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
	done
}

mkdir -p "$CT_DIR/base/pkg" "$CT_DIR/outside"
echo "base content" >"$CT_DIR/base/pkg/a.txt"
echo "keep me" >"$CT_DIR/base/pkg/keep.txt"
echo "secret" >"$CT_DIR/outside/secret"
write_policy "$CT_DIR/policy.yaml" "$state" "  - name: cache
    lower: [$CT_DIR/base]
    target: $CT_DIR/mnt/\${JOB_ID}/cache
    promote: add-only
  - name: tmp
    lower: []
    target: $CT_DIR/mnt/\${JOB_ID}/tmp"
m=$CT_DIR/mnt

# job ID: mounts, runs the rest of the arguments as a shell snippet in the view, unmounts with
# the outcome in $OUTCOME (default success)
job() {
	local id=$1
	shift
	jmount "$id"
	(cd "$m/$id/cache" && bash -c "$1")
	run umount --job "$id" --outcome "${OUTCOME:-success}"
	expect_rc 0 "umount $id"
	[ "$rc" = 0 ] || cat "$CT_DIR/err" >&2
}

lower_before=$(manifest "$CT_DIR/base")

step "a job without an outcome, a failed job, a mounted job: refused"
jmount j0
echo x >"$m/j0/cache/new"
run promote --job j0
expect_rc 5 "promote of a mounted job"
expect_grep "$CT_DIR/err" "still mounted" "says mounted"
run mark-ok --job j0
expect_rc 0 "mark-ok while mounted"
check "outcome recorded" test "$(record_field j0 outcome)" = success
run umount --job j0 --outcome failure
expect_rc 0 "umount --outcome failure"
run promote --job j0
expect_rc 9 "promote of a failed job"
expect_grep "$CT_DIR/err" "not marked successful (outcome: failure)" "says why"
check "no base dir made" test ! -e "$bases"
run umount --job j0 --outcome maybe
expect_rc 1 "umount --outcome maybe"
run promote --job nosuch
expect_rc 3 "promote of no job"

step "job A adds files, a symlink out of the layer, modifies and deletes base files"
job ja '
mkdir -p pkg/new-a sub/deep
echo "from A" >pkg/new-a/file
printf "%s" "bin" >sub/deep/tool && chmod 750 sub/deep/tool && touch -d 2001-02-03 sub/deep/tool
ln -s '"$CT_DIR"'/outside outlink
ln -s ../../outside/secret sub/rel-link
echo "changed" >>pkg/a.txt
rm pkg/keep.txt
mkfifo fifo'
# a hard link to a base file, then a write through it
job jh 'ln pkg/keep.txt hl && echo more >>hl && echo "new in H" >fresh'

step "--dry-run changes nothing"
run promote --job ja --dry-run --json
expect_rc 0 "dry run"
check "dry run flag" test "$(json 'd["dry_run"]')" = True
check "dry run names a generation" test "$(json 'd["views"][0]["generation"]')" = G000001
check "nothing made" test ! -e "$bases/stack"
check "no generation" test -z "$(ls -A "$bases/gens" 2>/dev/null)"

step "promote A"
run promote --job ja --json
expect_rc 0 "promote ja"
check "json: generation" test "$(json 'd["views"][0]["generation"]')" = G000001
acts=$(json '",".join(sorted(i["path"]+"="+i["action"] for i in d["views"][0]["items"]))')
for want in pkg/new-a/file=added sub/deep/tool=added outlink=added sub/rel-link=added \
	pkg/a.txt=conflict pkg/keep.txt=ignored fifo=ignored; do
	case ",$acts," in *",$want,"*) ok ;; *) bad "ja: $want not in $acts" ;; esac
done
check "stack names G000001" test "$(tail -n +2 "$bases/stack")" = G000001
g1=$bases/gens/G000001
check "added file copied" test "$(cat "$g1/pkg/new-a/file")" = "from A"
check "mode kept" test "$(stat -c %a "$g1/sub/deep/tool")" = 750
check "mtime kept" test "$(stat -c %Y "$g1/sub/deep/tool")" = "$(date -d 2001-02-03 +%s)"
check "outlink is a link" test -L "$g1/outlink"
check "outlink's target kept, not followed" test "$(readlink "$g1/outlink")" = "$CT_DIR/outside"
check "nothing of outside copied" test ! -e "$g1/secret"
check "conflict not promoted" test ! -e "$g1/pkg/a.txt"
check "deletion not promoted" test ! -e "$g1/pkg/keep.txt"
check "fifo not promoted" test ! -e "$g1/fifo"
check "tmp is empty" test -z "$(ls -A "$bases/tmp")"
check "lowers unchanged" test "$(manifest "$CT_DIR/base")" = "$lower_before"
run manifest --view cache
expect_rc 0 "jobfs manifest after the promote"
expect_grep "$CT_DIR/out" " pkg/new-a/file" "jobfs manifest lists the promoted generation's files"

step "hard link to a base file, written through: nothing of it promoted"
run promote --job jh --json
expect_rc 0 "promote jh"
acts=$(json '",".join(sorted(i["path"]+"="+i["action"] for i in d["views"][0]["items"]))')
for want in pkg/keep.txt=conflict hl=ignored fresh=added; do
	case ",$acts," in *",$want,"*) ok ;; *) bad "jh: $want not in $acts" ;; esac
done
check "two generations" test "$(tail -n +2 "$bases/stack" | tr '\n' ' ')" = "G000002 G000001 "
check "hl not in the base" test ! -e "$bases/gens/G000002/hl"

step "a job mounted now keeps its stack"
jmount old
check "old sees A's file" test "$(cat "$m/old/cache/pkg/new-a/file")" = "from A"

step "two jobs promoted at once: both land"
job jb 'mkdir -p pkg && echo "from B" >pkg/b.txt && echo "from A" >pkg/new-a/file'
job jc 'echo "from C" >c.txt && dd if=/dev/urandom of=big bs=1M count=8 status=none'
gens_before=$(manifest "$bases/gens/G000001" "$bases/gens/G000002")
bg "$JOBFS" promote --job jb --json
pb=$BG_PID
"$JOBFS" promote --job jc >"$CT_DIR/pc.out" 2>&1 && rc=0 || rc=$?
wait "$pb" && rb=0 || rb=$?
check "promote jb ok" test "$rb" = 0
check "promote jc ok ($(cat "$CT_DIR/pc.out"))" test "$rc" = 0
check "four generations" test "$(tail -n +2 "$bases/stack" | wc -l)" = 4
check "published generations unchanged" \
	test "$(manifest "$bases/gens/G000001" "$bases/gens/G000002")" = "$gens_before"
check "B's and C's additions both landed" \
	test "$(cat "$bases"/gens/G00000[34]/pkg/b.txt "$bases"/gens/G00000[34]/c.txt)" = "from B
from C"

step "identical content skipped"
job jd 'echo "from B" >pkg/b.txt'
run promote --job jd --json
expect_rc 0 "promote jd"
check "identical" test "$(json 'd["views"][0]["items"][0]["action"]')" = identical
check "no new generation" test "$(json 'd["views"][0]["generation"]')" = None

step "conflict: reported, base unchanged"
before=$(manifest "$CT_DIR/base" "$bases/gens")
job je 'echo "other" >c.txt'
run promote --job je
expect_rc 0 "promote je"
expect_grep "$CT_DIR/out" "conflict: c.txt (different content in the base)" "conflict reported"
check "base unchanged" test "$(manifest "$CT_DIR/base" "$bases/gens")" = "$before"

step "the old job still sees its stack, a new one sees everything"
check "old job: no b.txt" test ! -e "$m/old/cache/pkg/b.txt"
check "old job: no c.txt" test ! -e "$m/old/cache/c.txt"
run umount --job old
expect_rc 0 "umount old"
jmount new
check "new: A's file" test "$(cat "$m/new/cache/pkg/new-a/file")" = "from A"
check "new: B's file" test "$(cat "$m/new/cache/pkg/b.txt")" = "from B"
check "new: C's file" test "$(cat "$m/new/cache/c.txt")" = "from C"
check "new: H's file" test "$(cat "$m/new/cache/fresh")" = "new in H"
check "new: base file as it was" test "$(cat "$m/new/cache/pkg/a.txt")" = "base content"
check "new: deleted base file still there" test "$(cat "$m/new/cache/pkg/keep.txt")" = "keep me"
check "new: tool's mode" test "$(stat -c %a "$m/new/cache/sub/deep/tool")" = 750
check "new: the record names its generations" \
	test "$(grep -c "^lower=$bases/gens/" "$state/jobs/new/record")" = 4

step "kill -9 during a promote: the old stack stays, the next promote succeeds"
job jk 'dd if=/dev/zero of=huge bs=1M count=1000 status=none; echo small >small.txt'
stack_before=$(cat "$bases/stack")
gens_before=$(manifest "$bases/gens")
bg "$JOBFS" promote --job jk
pk=$BG_PID
for ((i = 0; i < 200; i++)); do
	[ -n "$(ls -A "$bases/tmp" 2>/dev/null)" ] && break
	sleep 0.05
done
sleep 0.3
check "killed while building" test -n "$(ls -A "$bases/tmp")"
kill -KILL "$pk" # the promote this test started
wait "$pk" 2>/dev/null || true
check "stack unchanged" test "$(cat "$bases/stack")" = "$stack_before"
check "generations unchanged" test "$(manifest "$bases/gens")" = "$gens_before"
run promote --job jk
expect_rc 0 "promote jk again"
check "tmp cleaned" test -z "$(ls -A "$bases/tmp")"
check "five generations" test "$(tail -n +2 "$bases/stack" | wc -l)" = 5
check "huge promoted whole" test "$(stat -c %s "$bases/gens/$(sed -n 2p "$bases/stack")/huge")" = $((1000 * 1024 * 1024))

step "gc flattens a deep stack: same content, old generations kept while jobs name them"
run umount --job new --collect
expect_rc 0 "umount new"
sed 's/^gc:$/gc:\n  max_generations: 2/' "$CT_DIR/policy.yaml" >"$CT_DIR/policy2.yaml"
CT_POLICIES+=("$CT_DIR/policy2.yaml")
jmount pre
view_before=$(manifest "$m/pre/cache" | grep -v '^\. ')
run umount --job pre --collect
expect_rc 0 "umount pre"
mkdir "$bases/gens/G000099" # an unpublished leftover, as a crash before the stack write leaves
gens_before=$(manifest "$bases/gens"/G00000[1-4])
run gc --policy "$CT_DIR/policy2.yaml" --json
expect_rc 0 "gc flattens"
check "flattened reported" test "$(json '[g["action"] for g in d["generations"] if g["generation"]=="G000100"]')" = "['flattened']"
check "the stack is one generation" test "$(tail -n +2 "$bases/stack")" = G000100
check "the leftover is gone" test ! -e "$bases/gens/G000099"
check "generations jobs name stay" test "$(manifest "$bases/gens"/G00000[1-4])" = "$gens_before"
check "G000005, named by no job, is gone" test ! -e "$bases/gens/G000005"
jmount flat --policy "$CT_DIR/policy2.yaml"
check "a new job sees the same content" test "$(manifest "$m/flat/cache" | grep -v '^\. ')" = "$view_before"
run umount --job flat --policy "$CT_DIR/policy2.yaml"
expect_rc 0 "umount flat"

step "gc removes generations once no job names them"
run gc --policy "$CT_DIR/policy2.yaml" --older-than 0s --json
expect_rc 0 "gc --older-than 0s"
check "old generations removed" test "$(ls "$bases/gens")" = G000100
check "lowers unchanged at the end" test "$(manifest "$CT_DIR/base")" = "$lower_before"

step "a volatile view: marked while served, flushed and unmarked at umount; a torn layer is refused"
sed 's/^    promote: add-only$/    promote: add-only\n    volatile: true/' "$CT_DIR/policy.yaml" >"$CT_DIR/policy-vol.yaml"
CT_POLICIES+=("$CT_DIR/policy-vol.yaml")
run policy get --policy "$CT_DIR/policy-vol.yaml" views.cache.volatile
check "policy get says volatile" test "$(cat "$CT_DIR/out")" = true
jmount vol --policy "$CT_DIR/policy-vol.yaml"
marker=$state/jobs/vol/views/cache/work/work/incompat/volatile
check "the marker while mounted" test "$(cat "$marker/boot_id")" = "$(cat /proc/sys/kernel/random/boot_id)"
check "the other view is not volatile" test ! -e "$state/jobs/vol/views/tmp/work/work/incompat/volatile"
echo volatile >"$m/vol/cache/vol-file"
run umount --job vol --outcome success --policy "$CT_DIR/policy-vol.yaml"
expect_rc 0 "umount vol"
check "no marker after a clean umount" test ! -e "$marker"
# as if the machine had restarted while it was served
mkdir -p "$marker"
printf '00000000-0000-4000-8000-000000000000' >"$marker/boot_id"
stack_before=$(cat "$bases/stack")
run promote --job vol --policy "$CT_DIR/policy-vol.yaml"
expect_rc 9 "promote of a torn layer"
expect_grep "$CT_DIR/err" "refused: the layer of job 'vol' for view 'cache' may be torn" "says why"
check "the stack unchanged" test "$(cat "$bases/stack")" = "$stack_before"
rm -r "$marker"
run promote --job vol --policy "$CT_DIR/policy-vol.yaml"
expect_rc 0 "promote once the marker is removed"
check "vol-file promoted" test "$(cat "$bases/gens/$(sed -n 2p "$bases/stack")/vol-file")" = volatile
