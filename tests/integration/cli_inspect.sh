#!/usr/bin/env bash
# jobfs inspect: what a job changed, read from its upper layers (mounted or not): added, modified,
# deleted (whiteouts) and opaque paths with sizes, a summary first; --view and --json.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"

mkdir -p "$CT_DIR/lower/gone-dir/sub" "$CT_DIR/lower/keep"
echo a >"$CT_DIR/lower/gone-dir/sub/a"
echo old >"$CT_DIR/lower/keep/old"
echo untouched >"$CT_DIR/lower/keep/untouched"
printf 'base data' >"$CT_DIR/lower/keep/meta"

step "a job that adds, modifies, deletes and replaces"
jmount i1
v=$CT_DIR/mnt/i1/ws
printf '0123456789' >"$v/new-file"               # added, 10 bytes
printf 'changed!' >"$v/file"                      # modified, 8 bytes
rm "$v/keep/old"                                  # deleted
rm -r "$v/gone-dir" && mkdir "$v/gone-dir"        # opaque
printf 'abc' >"$v/gone-dir/fresh"                 # added inside the opaque dir
mkdir -p "$v/new-dir/deep" && printf 'xy' >"$v/new-dir/deep/f" # added dirs and file
ln -s /etc "$v/link"                             # added symlink
printf 'scratch' >"$CT_DIR/mnt/i1/tmp/s"          # added in the scratch view

run inspect i1
expect_rc 0 "inspect a mounted job"
check "summary first: $(head -n 1 "$CT_DIR/out")" test "$(head -n 1 "$CT_DIR/out")" = \
	"job i1 (mounted): 7 added (26 B), 1 modified (8 B), 1 deleted, 1 opaque"
expect_grep "$CT_DIR/out" "  view ws: 6 added (19 B), 1 modified (8 B), 1 deleted, 1 opaque" "ws summary"
expect_grep "$CT_DIR/out" "  view tmp: 1 added (7 B), 0 modified (0 B), 0 deleted, 0 opaque" "tmp summary"
tr -s ' ' <"$CT_DIR/out" >"$CT_DIR/norm"
expect_grep "$CT_DIR/norm" "modified file 8 ws/file" "modified line"
expect_grep "$CT_DIR/norm" "deleted whiteout 0 ws/keep/old" "deleted line"
expect_grep "$CT_DIR/norm" "opaque dir 0 ws/gone-dir/" "opaque line"
expect_grep "$CT_DIR/norm" "added file 3 ws/gone-dir/fresh" "added in opaque"
expect_grep "$CT_DIR/norm" "added dir 0 ws/new-dir/" "added dir"
expect_grep "$CT_DIR/norm" "added symlink 4 ws/link" "added symlink"
check "a copied-up parent is not a change" bash -c "! grep -q ' ws/keep/\$' '$CT_DIR/norm'"
expect_no_grep "$CT_DIR/out" "untouched" "untouched files are not listed"

run inspect --json i1
expect_rc 0 "inspect --json"
check "JSON top fields" test "$(json 'sorted(d)')" = "['context', 'id', 'state', 'summary', 'views']"
check "JSON summary" test "$(json 'd["summary"]')" = \
	"{'added': 7, 'added_bytes': 26, 'modified': 1, 'modified_bytes': 8, 'deleted': 1, 'opaque': 1}"
check "JSON changes of ws" test "$(json '[(c["path"], c["change"], c["type"], c["size"]) for c in d["views"][0]["changes"]]')" = \
	"[('file', 'modified', 'file', 8), ('gone-dir', 'opaque', 'dir', 0), ('gone-dir/fresh', 'added', 'file', 3), ('keep/old', 'deleted', 'whiteout', 0), ('link', 'added', 'symlink', 4), ('new-dir', 'added', 'dir', 0), ('new-dir/deep', 'added', 'dir', 0), ('new-dir/deep/f', 'added', 'file', 2), ('new-file', 'added', 'file', 10)]"

run inspect --view tmp --json i1
expect_rc 0 "inspect --view tmp"
check "only the tmp view" test "$(json 'tuple(v["name"] for v in d["views"])')" = "tmp"
run inspect --view nope i1
expect_rc 3 "inspect of an unknown view"
expect_grep "$CT_DIR/err" "job 'i1' has no view 'nope'" "unknown view"
run inspect nosuchjob
expect_rc 3 "inspect of an unknown job"
expect_grep "$CT_DIR/err" "no such job 'nosuchjob'" "unknown job"
run inspect ../etc
expect_rc 1 "inspect of an invalid ID"
run inspect
expect_rc 1 "inspect without an ID"

step "the same after umount, read from the layer at rest"
run inspect --json i1
cp "$CT_DIR/out" "$CT_DIR/mounted.json"
run umount --job i1
expect_rc 0 "umount i1"
run inspect --json i1
expect_rc 0 "inspect an unmounted job"
check "state unmounted" test "$(json 'd["state"]')" = unmounted
check "the same changes" test "$(json 'd["views"]')" = \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["views"])' "$CT_DIR/mounted.json")"

step "metadata-only changes (metacopies) hold no data: listed, not counted"
jmount i2
v=$CT_DIR/mnt/i2/ws
ln "$v/keep/meta" "$v/meta-link"                  # a hard link to a base file
run inspect --json i2
expect_rc 0 "inspect a job with a metacopy"
check "metacopy entries" test "$(json '[(c["path"], c["change"], c["size"], c["metacopy"]) for c in d["views"][0]["changes"] if c["type"] == "file"]')" = \
	"[('keep/meta', 'modified', 9, True), ('meta-link', 'added', 9, True)]"
check "no bytes counted" test "$(json '(d["summary"]["added_bytes"], d["summary"]["modified_bytes"])')" = "0 0"
run inspect i2
expect_grep "$CT_DIR/out" "(metadata only)" "text marks metacopies"
run umount --job i2
expect_rc 0 "umount i2"
