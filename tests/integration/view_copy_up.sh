#!/usr/bin/env bash
# Copy-up: changing a lower file copies it to the upper with its content (holes included), mode,
# owner, times and xattrs, and its parent dirs with their mode, owner and xattrs; st_ino survives
# copy-up and st_dev is one value across the view.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
mkdir -p "$L1/deep/a/b"
old_time='2001-02-03 04:05:06.123456789 +0000'
for f in append trunc chmod chown touch xattr; do
	printf 'content of %s\n' "$f" >"$L1/$f"
	chmod 0640 "$L1/$f"
	chown 1234:5678 "$L1/$f"
	setfattr -n user.keep -v "kept-$f" "$L1/$f"
	touch -d "$old_time" "$L1/$f"
done
# A 64 MiB file with 4 KiB of data at 0 and at 32 MiB, holes elsewhere.
head -c 4096 /dev/urandom >"$L1/sparse"
truncate -s 64M "$L1/sparse"
head -c 4096 /dev/urandom | dd of="$L1/sparse" bs=4096 seek=8192 conv=notrunc status=none
cp --sparse=always "$L1/sparse" "$IT_DIR/sparse.expect"
printf 'deep file\n' >"$L1/deep/a/b/file"
chmod 0750 "$L1/deep"
chown 1111:2222 "$L1/deep"
setfattr -n user.dirattr -v deep "$L1/deep"
chmod 0705 "$L1/deep/a"
chown 3333:4444 "$L1/deep/a"
chmod 0711 "$L1/deep/a/b"
chown 5555:6666 "$L1/deep/a/b"
touch -d "$old_time" "$L1/deep/a/b/file" "$L1/deep/a/b" "$L1/deep/a" "$L1/deep"
snapshot_lower "$L1"
new_view v "$L1"

names=(append trunc chmod chown touch xattr sparse deep/a/b/file deep/a/b deep/a deep)
declare -A ino_before
for f in "${names[@]}"; do
	ino_before[$f]=$(stat -c %i "$MNT/$f")
done
dev=$(stat -c %d "$MNT")

step "append"
printf 'appended\n' >>"$MNT/append"
assert_content "$MNT/append" "$(printf 'content of append\nappended')"
assert_content "$UPPER/append" "$(printf 'content of append\nappended')"
assert_stat "$UPPER/append" '%a %u:%g' '640 1234:5678'
assert_eq "$(xattr_of "$UPPER/append" user.keep)" kept-append "user.keep on upper/append"

step "truncate"
truncate -s 4 "$MNT/trunc"
assert_content "$MNT/trunc" "cont"
assert_content "$UPPER/trunc" "cont"
assert_stat "$UPPER/trunc" '%a %u:%g' '640 1234:5678'
assert_eq "$(xattr_of "$UPPER/trunc" user.keep)" kept-trunc "user.keep on upper/trunc"

step "chmod, chown, touch, setfattr keep content and the other attributes"
chmod 0604 "$MNT/chmod"
chown 4321:8765 "$MNT/chown"
touch -d '2010-01-01 00:00:00.5 +0000' "$MNT/touch"
setfattr -n user.x -v hello "$MNT/xattr"
for f in chmod chown touch xattr; do
	assert_copied_up "$UPPER/$f" "$L1/$f" "/$f"
	assert_same_content "$MNT/$f" "$L1/$f"
	assert_eq "$(xattr_of "$UPPER/$f" user.keep)" "kept-$f" "user.keep on upper/$f"
done
assert_stat "$MNT/chmod" '%a %u:%g' '604 1234:5678'
assert_stat "$UPPER/chmod" '%a %u:%g %y' "604 1234:5678 $old_time"
assert_stat "$MNT/chown" '%a %u:%g' '640 4321:8765'
assert_stat "$UPPER/chown" '%a %u:%g %y' "640 4321:8765 $old_time"
assert_stat "$MNT/touch" '%y' '2010-01-01 00:00:00.500000000 +0000'
assert_stat "$UPPER/touch" '%a %u:%g %y' '640 1234:5678 2010-01-01 00:00:00.500000000 +0000'
assert_stat "$UPPER/xattr" '%a %u:%g %y' "640 1234:5678 $old_time"
assert_eq "$(xattr_of "$MNT/xattr" user.x)" hello "user.x through the view"
assert_eq "$(xattr_of "$UPPER/xattr" user.x)" hello "user.x on upper/xattr"
check_fails "user.x must not reach the lower" getfattr -n user.x "$L1/xattr"

step "sparse file"
head -c 4096 /dev/urandom >"$IT_DIR/tail"
cat "$IT_DIR/tail" >>"$MNT/sparse"
cat "$IT_DIR/tail" >>"$IT_DIR/sparse.expect"
assert_same_content "$MNT/sparse" "$IT_DIR/sparse.expect"
assert_same_content "$UPPER/sparse" "$IT_DIR/sparse.expect"
used=$(du -k "$UPPER/sparse" | cut -f1)
if [ "$used" -gt 1024 ]; then
	fail "upper/sparse uses $used KiB on disk, the holes were filled (expected about 12 KiB)"
fi
assert_eq "$(hole_map "$UPPER/sparse")" "4096 $((32 << 20))" \
	"SEEK_HOLE from 0 and SEEK_DATA after it in upper/sparse"

step "parent directories are copied up with their attributes"
printf 'changed\n' >"$MNT/deep/a/b/file"
assert_content "$UPPER/deep/a/b/file" changed
assert_stat "$UPPER/deep" '%a %u:%g' '750 1111:2222'
assert_stat "$UPPER/deep/a" '%a %u:%g' '705 3333:4444'
assert_stat "$UPPER/deep/a/b" '%a %u:%g' '711 5555:6666'
assert_eq "$(xattr_of "$UPPER/deep" user.dirattr)" deep "user.dirattr on upper/deep"
assert_stat "$MNT/deep" '%a %u:%g' '750 1111:2222'
assert_stat "$MNT/deep/a" '%a %u:%g %y' "705 3333:4444 $old_time"

step "st_ino survives copy-up, st_dev is constant"
for f in "${names[@]}"; do
	assert_stat "$MNT/$f" %i "${ino_before[$f]}"
done
printf 'new\n' >"$MNT/deep/a/newfile"
mkdir "$MNT/newdir"
for f in "${names[@]}" deep/a/newfile newdir .; do
	assert_stat "$MNT/$f" %d "$dev"
done
inos=$(for f in "${names[@]}" deep/a/newfile newdir .; do
	stat -c %i "$MNT/$f"
done | sort | uniq -d)
assert_eq "$inos" "" "inode numbers shared between different files"

step "the copies survive a remount"
unmount_view "$MNT"
mount_view "$MNT" "$UPPER" "$WORK" "$L1"
assert_content "$MNT/append" "$(printf 'content of append\nappended')"
assert_stat "$MNT/chmod" '%a %u:%g' '604 1234:5678'
assert_same_content "$MNT/sparse" "$IT_DIR/sparse.expect"
assert_content "$MNT/deep/a/b/file" changed

finish
