#!/usr/bin/env bash
# Deletion: whiteouts (char device 0:0) in the upper hide lower names, opaque dirs hide lower
# children, readdir never shows a whiteout, deleted names can be re-created with a new type, and an
# open file outlives its last name.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
L2=$IT_DIR/l2
mkdir -p "$L2/d1/sub" "$L2/merged/sub" "$L1/merged" "$L2/again/inner" "$L2/emptied" "$L1/emptied"
mkdir -p "$L2/parent"
for f in gone.txt gone2.txt retype.txt reborn.txt d1/a d1/sub/b merged/m2 merged/sub/x again/old1 \
	again/inner/old2 emptied/e2 parent/child parent/stay unlinked.txt; do
	printf 'lower %s\n' "$f" >"$L2/$f"
done
printf 'lower merged/m1\n' >"$L1/merged/m1"
printf 'lower emptied/e1\n' >"$L1/emptied/e1"
ln -s gone.txt "$L2/link"
snapshot_lower "$L1" "$L2"
new_view v "$L1" "$L2"

step "deleting a lower file leaves a whiteout"
rm "$MNT/gone.txt"
assert_missing "$MNT/gone.txt"
assert_whiteout "$UPPER/gone.txt"
check_fails "stat of a deleted name" stat "$MNT/gone.txt"
check_fails "open of a deleted name" cat "$MNT/gone.txt"
if find "$MNT" -mindepth 1 -maxdepth 1 -printf '%f\n' | grep -qx gone.txt; then
	fail "readdir lists the deleted gone.txt"
fi
rm "$MNT/parent/child"
assert_whiteout "$UPPER/parent/child"
assert_listing "$MNT/parent" stay
rm "$MNT/link"
assert_whiteout "$UPPER/link"
assert_missing "$MNT/link"

step "rm -r of a lower dir and of a merged dir"
rm -r "$MNT/d1"
assert_missing "$MNT/d1"
assert_whiteout "$UPPER/d1"
rm -r "$MNT/merged"
assert_missing "$MNT/merged"
assert_whiteout "$UPPER/merged"

step "a dir emptied entry by entry can be removed"
rm "$MNT/emptied/e1" "$MNT/emptied/e2"
assert_listing "$MNT/emptied"
check "rmdir of a dir holding only whiteouts" rmdir "$MNT/emptied"
assert_missing "$MNT/emptied"
assert_whiteout "$UPPER/emptied"

step "a deleted dir re-created as a dir is opaque"
rm -r "$MNT/again"
mkdir "$MNT/again"
assert_listing "$MNT/again"
assert_type "$UPPER/again" directory
assert_opaque "$UPPER/again"
printf 'fresh\n' >"$MNT/again/new"
assert_listing "$MNT/again" new
assert_missing "$MNT/again/old1"
assert_missing "$MNT/again/inner"
check_fails "stat of a hidden lower child" stat "$MNT/again/inner/old2"
mkdir "$MNT/d1"
assert_listing "$MNT/d1"

step "a deleted name re-created shows the new content and type"
rm "$MNT/reborn.txt"
printf 'new life\n' >"$MNT/reborn.txt"
assert_content "$MNT/reborn.txt" "new life"
assert_type "$UPPER/reborn.txt" "regular file"
rm "$MNT/retype.txt"
mkdir "$MNT/retype.txt"
assert_type "$MNT/retype.txt" directory
assert_listing "$MNT/retype.txt"
rm "$MNT/gone2.txt"
ln -s somewhere "$MNT/gone2.txt"
assert_type "$MNT/gone2.txt" "symbolic link"
assert_eq "$(readlink "$MNT/gone2.txt")" somewhere "readlink of a re-created name"
rmdir "$MNT/retype.txt"
mkfifo "$MNT/retype.txt"
assert_type "$MNT/retype.txt" fifo
rm "$MNT/retype.txt"
assert_missing "$MNT/retype.txt"
printf 'third\n' >"$MNT/retype.txt"
assert_content "$MNT/retype.txt" third
rm -r "$MNT/again"
assert_missing "$MNT/again"
mkdir "$MNT/again"
assert_listing "$MNT/again"

step "readdir never shows whiteouts"
found=$(find "$MNT" -type c)
assert_eq "$found" "" "char devices listed in the view"
assert_listing "$MNT" again d1 gone2.txt parent reborn.txt retype.txt unlinked.txt
found=$(find "$MNT" -mindepth 1 | sed "s|^$MNT/||" | LC_ALL=C sort | tr '\n' ' ')
assert_eq "$found" "again d1 gone2.txt parent parent/stay reborn.txt retype.txt unlinked.txt " \
	"find over the view"

step "an open file outlives its last name"
got=$(
	python3 - "$MNT" <<'EOF'
import os, sys
mnt = sys.argv[1]
out = []
# A lower file opened read-only, then unlinked.
fd = os.open(mnt + "/unlinked.txt", os.O_RDONLY)
os.unlink(mnt + "/unlinked.txt")
out.append(os.path.exists(mnt + "/unlinked.txt"))
out.append(os.pread(fd, 100, 0).decode().strip())
out.append(os.fstat(fd).st_nlink)
os.close(fd)
# A new file opened read-write, then unlinked, then written and read.
fd = os.open(mnt + "/scratch", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"before ")
os.unlink(mnt + "/scratch")
os.write(fd, b"after")
out.append(os.pread(fd, 100, 0).decode())
out.append(os.fstat(fd).st_nlink)
os.close(fd)
print("|".join(str(x) for x in out))
EOF
) || true
assert_eq "$got" "False|lower unlinked.txt|0|before after|0" \
	"exists, content, nlink of unlinked open files"
assert_whiteout "$UPPER/unlinked.txt"
assert_missing "$UPPER/scratch"

finish
