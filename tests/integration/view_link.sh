#!/usr/bin/env bash
# Hard links: linking a lower or an upper file gives names that share one inode (st_ino, nlink,
# data), in the view and after a remount.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
L2=$IT_DIR/l2
mkdir -p "$L2/dir" "$L1/other"
printf 'orig\n' >"$L2/f.txt"
printf 'deep\n' >"$L2/dir/g.txt"
printf 'pair\n' >"$L2/h1"
ln "$L2/h1" "$L2/h2"
snapshot_lower "$L1" "$L2"
new_view v "$L1" "$L2"

step "hard link to a lower file"
check "link to a lower file" ln "$MNT/f.txt" "$MNT/f2.txt"
assert_stat "$MNT/f2.txt" %i "$(stat -c %i "$MNT/f.txt")"
assert_stat "$MNT/f.txt" %h 2
assert_stat "$MNT/f2.txt" %h 2
printf 'more\n' >>"$MNT/f2.txt"
assert_content "$MNT/f.txt" "$(printf 'orig\nmore')"
printf 'rewritten\n' >"$MNT/f.txt"
assert_content "$MNT/f2.txt" rewritten
assert_stat "$UPPER/f2.txt" %i "$(stat -c %i "$UPPER/f.txt")"
assert_stat "$UPPER/f.txt" %h 2
assert_content "$L2/f.txt" orig

step "hard link across directories"
check "link from a lower dir into another dir" ln "$MNT/dir/g.txt" "$MNT/other/g-link"
assert_stat "$MNT/other/g-link" %i "$(stat -c %i "$MNT/dir/g.txt")"
assert_stat "$MNT/dir/g.txt" %h 2
chmod 0600 "$MNT/other/g-link"
assert_stat "$MNT/dir/g.txt" %a 600

step "hard link to an upper file"
printf 'upper\n' >"$MNT/u"
ln "$MNT/u" "$MNT/u2"
ln "$MNT/u" "$MNT/dir/u3"
assert_stat "$MNT/u2" %i "$(stat -c %i "$MNT/u")"
assert_stat "$MNT/dir/u3" %i "$(stat -c %i "$MNT/u")"
assert_stat "$MNT/u" %h 3
printf 'x\n' >>"$MNT/dir/u3"
assert_content "$MNT/u" "$(printf 'upper\nx')"

step "unlinking one name keeps the other"
rm "$MNT/u2"
assert_stat "$MNT/u" %h 2
assert_content "$MNT/dir/u3" "$(printf 'upper\nx')"
rm "$MNT/f.txt"
assert_stat "$MNT/f2.txt" %h 1
assert_content "$MNT/f2.txt" rewritten
assert_missing "$MNT/f.txt"

step "hard links that already exist in a lower"
assert_stat "$MNT/h2" %i "$(stat -c %i "$MNT/h1")"
assert_stat "$MNT/h1" %h 2

step "links survive a remount"
ino_u=$(stat -c %i "$MNT/u")
ino_g=$(stat -c %i "$MNT/dir/g.txt")
unmount_view "$MNT"
mount_view "$MNT" "$UPPER" "$WORK" "$L1" "$L2"
assert_stat "$MNT/dir/u3" %i "$(stat -c %i "$MNT/u")"
assert_stat "$MNT/other/g-link" %i "$(stat -c %i "$MNT/dir/g.txt")"
assert_stat "$MNT/u" %h 2
assert_stat "$MNT/dir/g.txt" %h 2
printf 'after remount\n' >"$MNT/other/g-link"
assert_content "$MNT/dir/g.txt" "after remount"
echo "inode numbers before and after the remount: u $ino_u/$(stat -c %i "$MNT/u")," \
	"g.txt $ino_g/$(stat -c %i "$MNT/dir/g.txt")"

finish
