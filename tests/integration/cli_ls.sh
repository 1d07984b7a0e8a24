#!/usr/bin/env bash
# jobfs ls: one row per job with its live state (mounted, stale, unmounted, orphan, mounting),
# age, upper size and files, views; the table and the JSON fields.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
state=$CT_DIR/state

step "no state dir yet"
run ls
expect_rc 0 "ls without a state dir"
check "only the header" test "$(cat "$CT_DIR/out")" = \
	"$(printf '%-24s %-9s %6s %10s %7s  %s' ID STATE AGE UPPER FILES VIEWS)"
run ls --json
expect_rc 0 "ls --json without a state dir"
check "an empty array" test "$(json 'd')" = "[]"
run ls extra
expect_rc 1 "ls with an argument"

step "one job in each state"
jmount a-mounted
head -c 1048576 /dev/urandom >"$CT_DIR/mnt/a-mounted/ws/big"
echo small >"$CT_DIR/mnt/a-mounted/tmp/small"
mkdir "$CT_DIR/mnt/a-mounted/tmp/d"
jmount b-unmounted
echo x >"$CT_DIR/mnt/b-unmounted/ws/x"
run umount --job b-unmounted
expect_rc 0 "umount b-unmounted"
jmount c-stale
daemon=$(record_field c-stale pid)
kill -KILL "$daemon" # the job's daemon, started by this test through jobfs mount
check "the daemon died" wait_gone "$daemon" 50
mkdir -p "$state/jobs/d-orphan/views/ws/upper"
echo lost >"$state/jobs/d-orphan/views/ws/upper/lost"
jmount e-badrecord
run umount --job e-badrecord
echo "garbage=1" >>"$state/jobs/e-badrecord/record"
mkdir "$state/jobs/f-mounting"
# shellcheck disable=SC2016 # $1 is the inner shell's
bg sh -c 'exec 9>"$1" && flock 9 && exec sleep 1000' sh "$state/jobs/f-mounting/lock"
sleep 0.2
mkdir "$state/jobs/-notajob" "$state/jobs/.hidden"

run ls
expect_rc 0 "ls"
table=$CT_DIR/out
row() { awk -v id="$1" '$1 == id' "$table"; }
check "mounted row: $(row a-mounted)" bash -c "[[ '$(row a-mounted)' =~ ^a-mounted\ +mounted\ +[0-9]+s\ +1\.0\ MiB\ +3\ +ws,tmp$ ]]"
check "unmounted row: $(row b-unmounted)" bash -c "[[ '$(row b-unmounted)' =~ ^b-unmounted\ +unmounted\ .*\ 1\ +ws,tmp$ ]]"
check "stale row: $(row c-stale)" bash -c "[[ '$(row c-stale)' =~ ^c-stale\ +stale\  ]]"
check "orphan row: $(row d-orphan)" bash -c "[[ '$(row d-orphan)' =~ ^d-orphan\ +orphan\ .*\ 1\ +-$ ]]"
check "a bad record is an orphan: $(row e-badrecord)" bash -c "[[ '$(row e-badrecord)' =~ ^e-badrecord\ +orphan ]]"
check "a locked job without a record is mounting: $(row f-mounting)" bash -c "[[ '$(row f-mounting)' =~ ^f-mounting\ +mounting ]]"
expect_no_grep "$table" "-notajob" "names that are not job IDs are not listed"
check "rows sorted by ID" test "$(awk 'NR > 1 { print $1 }' "$table" | tr '\n' ' ')" = \
	"a-mounted b-unmounted c-stale d-orphan e-badrecord f-mounting "

run ls --json
expect_rc 0 "ls --json"
check "JSON fields" test "$(json 'sorted(d[0])')" = \
	"['age_seconds', 'context', 'created', 'files', 'id', 'namespace', 'outcome', 'pid', 'policy_digest', 'state', 'unmounted', 'upper_bytes', 'views']"
check "JSON states" test "$(json 'tuple(j["state"] for j in d)')" = \
	"mounted unmounted stale orphan orphan mounting"
check "JSON upper bytes count blocks of the uppers" test "$(json 'd[0]["upper_bytes"] >= 1048576 + 4096')" = True
check "JSON files" test "$(json 'd[0]["files"]')" = 3
check "JSON views" test "$(json 'd[0]["views"][0]["name"], d[0]["views"][0]["lower"][0], d[0]["views"][1]["lower"]')" = \
	"ws $CT_DIR/lower []"
check "JSON pid" test "$(json 'd[0]["pid"]')" = "$(record_field a-mounted pid)"
check "JSON unmounted time" test "$(json 'd[1]["unmounted"] >= d[1]["created"]')" = True
check "JSON orphan has no record fields" test "$(json 'd[3]["views"], d[3]["policy_digest"], d[3]["pid"]')" = "[] None None"

step "ls never reads through a dead view"
# the stale job's mount is not connected; ls above returned, and so does this one quickly
start=$(date +%s)
run ls
check "ls with a dead mount is fast" test $(($(date +%s) - start)) -lt 5
run umount --job c-stale
expect_rc 0 "umount of a stale job"
check "the stale mount is gone" bash -c "! grep -q ' $CT_DIR/mnt/c-stale/ws ' /proc/self/mountinfo"
run umount --job a-mounted
expect_rc 0 "umount a-mounted"
