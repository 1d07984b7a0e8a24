#!/usr/bin/env bash
# jobfs manifest and verify over a view with two lower dirs: the manifest is the merged tree (a
# higher name hides a lower one, whiteouts and opaque dirs honoured, any byte in a name kept);
# verify passes on an unchanged base and reports each kind of change with exit code 7.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"

up=$CT_DIR/up
low=$CT_DIR/low
mkdir -p "$up/d" "$up/dirover" "$up/op" "$low/d" "$low/hid/sub" "$low/op"
printf top >"$up/f"
printf low >"$low/f"                    # hidden by up/f
printf a >"$low/d/a"                    # merged with up/d
printf c >"$up/d/c"
printf file >"$up/hid"                  # a file hides the lower dir and its subtree
printf b >"$low/hid/sub/b"
printf x >"$low/dirover"                # a dir hides the lower file
printf n >"$low/new
line"
printf t >"$low/ta	b"
printf u >"$low/"$'\xff\xfe'
ln -s f "$up/link"
mknod "$up/wh" c 0 0                    # a whiteout hides low/wh and is not listed
printf gone >"$low/wh"
setfattr -n trusted.overlay.opaque -v y "$up/op" # an opaque dir hides low/op/below
printf below >"$low/op/below"

write_policy "$CT_DIR/mf.yaml" "$CT_DIR/state" "  - name: base
    lower: [$up, $low]
    target: $CT_DIR/mnt/\${JOB_ID}/base
  - name: tmp
    lower: []
    target: $CT_DIR/mnt/\${JOB_ID}/tmp"
P=(--policy "$CT_DIR/mf.yaml")
M=$CT_DIR/base.manifest

step "the manifest is the merged tree"
run manifest "${P[@]}" --threads 2
expect_rc 0 "manifest"
cp "$CT_DIR/out" "$CT_DIR/stdout.manifest"
check "header" test "$(head -n 2 "$CT_DIR/out" | tr '\n' ' ')" = "jobfs-manifest 1 view base "
check "paths, sorted by bytes" test "$(awk 'NR > 2 { print $6 }' "$CT_DIR/out" | tr '\n' ' ')" = \
	'd d/a d/c dirover f hid link new\x0aline op ta\x09b \xff\xfe '
hash=$(xxh128sum "$up/f" | cut -d' ' -f1)
expect_grep "$CT_DIR/out" "file 0644 3 $(stat -c %Y "$up/f")" "f is the upper's, mtime in ns"
expect_grep "$CT_DIR/out" " $hash f" "f's XXH3-128 is xxh128sum's"
expect_grep "$CT_DIR/out" "dir 0755 - - - dirover" "a dir hides a lower file"
expect_grep "$CT_DIR/out" "file 0644 4 " "hid is the upper's file"
expect_grep "$CT_DIR/out" "symlink 0777 1 " "symlink"
expect_grep "$CT_DIR/out" " f link" "symlink target"

run manifest "${P[@]}" --threads 1 --output "$M"
expect_rc 0 "manifest --output --threads 1"
check "--threads 1 equals --threads 2, and --output equals stdout" cmp -s "$M" "$CT_DIR/stdout.manifest"
check "--output leaves no temporary" test "$(ls "$CT_DIR" | grep -c 'base.manifest')" = 1
# a device given as --output is written to, never replaced by a file (a private null device, so
# a failure cannot break /dev/null for everyone)
mknod "$CT_DIR/null" c 1 3
run manifest "${P[@]}" --output "$CT_DIR/null"
expect_rc 0 "manifest --output DEVICE"
check "--output DEVICE leaves the device a device" test -c "$CT_DIR/null"
check "names round-trip" python3 -c '
import re, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[2:-1]
paths = [re.sub(rb"\\(x(..)|\\)", lambda m: bytes([int(m.group(2), 16)]) if m.group(2) else b"\\",
                l.split(b" ")[5]) for l in lines]
assert b"new\nline" in paths and b"ta\tb" in paths and b"\xff\xfe" in paths, paths
' "$M"

run manifest "${P[@]}" --json
expect_rc 0 "manifest --json"
check "manifest --json parses" python3 -m json.tool "$CT_DIR/out" /dev/null
check "JSON entries" test "$(json '[e["path_escaped"] for e in d["entries"] if e["type"] == "file"][-1]')" = '\xff\xfe'

step "verify passes on an unchanged base"
run verify "${P[@]}" --manifest "$M"
expect_rc 0 "verify unchanged"
expect_grep "$CT_DIR/out" "view base: 0 changed, 0 missing, 0 extra, 11 unchanged" "summary"
printf LOW >"$low/f"
run verify "${P[@]}" --manifest "$M" --view base
expect_rc 0 "a change hidden by the upper is no change of the base"

# change DESCRIPTION EXPECTED-LINE: verify must exit 7 and list exactly that line, then the
# changed base becomes the next baseline.
change() {
	run verify "${P[@]}" --manifest "$M" --threads 2
	expect_rc 7 "verify after $1"
	check "$1: '$(tail -n +2 "$CT_DIR/out" | tr '\n' '|')'" test "$(tail -n +2 "$CT_DIR/out")" = "$2"
	run manifest "${P[@]}" --output "$M"
	expect_rc 0 "manifest after $1"
}

step "verify finds each change"
printf b >"$low/d/a.new" && touch -r "$low/d/a" "$low/d/a.new" && mv "$low/d/a.new" "$low/d/a"
change "a changed byte (same size and mtime)" "changed content d/a"
chmod 600 "$up/f"
change "a changed mode" "changed mode f"
touch -d @1000000000.5 "$low/ta	b"
change "a touched mtime" 'changed mtime ta\x09b'
rm "$low/d/a"
change "a removed file" "missing file d/a"
printf new >"$up/d/added"
change "an added file" "extra   file d/added"
ln -sfn d "$up/link"
change "a retargeted symlink" "changed mtime,target link"
rm "$up/wh"
change "a removed whiteout" "extra   file wh"
rm "$up/hid" && mkdir "$up/hid"
change "a file replaced by a dir" "changed type hid
extra   dir hid/sub
extra   file hid/sub/b"

step "--json"
rm "$up/f" # uncovers low/f: same size, another mode, mtime and content
run verify "${P[@]}" --manifest "$M" --json
expect_rc 7 "verify --json with a difference"
check "verify --json parses" python3 -m json.tool "$CT_DIR/out" /dev/null
check "JSON summary" test "$(json 'd["summary"]')" = \
	"{'changed': 1, 'missing': 0, 'extra': 0, 'unchanged': 13}"
check "JSON difference" test "$(json '[(x["path"], x["kind"], x["fields"]) for x in d["differences"]]')" = \
	"[('f', 'changed', ['mode', 'mtime', 'content'])]"
check "not identical" test "$(json 'd["identical"]')" = False

step "errors"
printf 'jobfs-manifest 1\ndir 0755 - - - a\nfile 0644 x 0 - b\n' >"$CT_DIR/bad"
run verify "${P[@]}" --manifest "$CT_DIR/bad"
expect_rc 8 "a malformed manifest"
expect_grep "$CT_DIR/err" "$CT_DIR/bad:3: size" "the error names the line"
run verify "${P[@]}" --manifest "$CT_DIR/nonexistent"
expect_rc 8 "a missing manifest"
run verify "${P[@]}"
expect_rc 1 "verify without --manifest"
run manifest "${P[@]}" --view nope
expect_rc 1 "an unknown view"
expect_grep "$CT_DIR/err" "no view 'nope'" "names the view"
run manifest "${P[@]}" --threads 0
expect_rc 1 "--threads 0"
run manifest --policy "$CT_DIR/policy.yaml" --view ws --progress --output "$CT_DIR/ws.manifest"
expect_rc 0 "manifest --progress"
expect_grep "$CT_DIR/err" "jobfs: hashed 2 of 2 files" "progress on stderr"
rm -rf "$low"
run verify "${P[@]}" --manifest "$M"
expect_rc 6 "a missing lower dir"
expect_grep "$CT_DIR/err" "cannot open base dir '$low'" "names the dir"
