#!/usr/bin/env bash
# Metacopy: link, chmod, chown, utimes, xattrs and rename of a lower file copy its metadata only
# (kernel overlayfs's format: no data blocks, overlay.metacopy and an absolute overlay.redirect);
# the data follows on the first write, in place, so every name keeps seeing it. Size and mtime are
# the lower's exactly, the kernel reads the upper the same way, and -o nometacopy copies data.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$IT_PEER" != jobfs ]; then
	skip "metacopy is checked on jobfs only"
fi

L1=$IT_DIR/l1
mkdir -p "$L1/store/ab" "$L1/pkg" "$L1/deep/a/b"
head -c 300000 /dev/urandom >"$L1/store/ab/blob"
printf 'small\n' >"$L1/store/ab/small"
: >"$L1/store/ab/empty"
head -c 70000 /dev/urandom >"$L1/deep/a/b/file"
printf 'moved\n' >"$L1/pkg/moveme"
touch -d '2001-02-03 04:05:06.789' "$L1/store/ab/blob" "$L1/deep/a/b/file"
snapshot_lower "$L1"
new_view v "$L1"
X=trusted.overlay

blocks() { stat -c %b "$1"; }
expect() { assert_eq "$3" "$2" "$1"; } # DESC EXPECTED GOT
# data_extent FILE: where its first data is (SEEK_DATA from 0), or "none"
data_extent()
{
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    print(os.lseek(fd, 0, os.SEEK_DATA))
except OSError:
    print("none")' "$1"
}

step "a hard link to a lower file copies no data"
mtime=$(stat -c %y "$L1/store/ab/blob")
check "link a lower file" ln "$MNT/store/ab/blob" "$MNT/pkg/index.js"
expect "upper blocks of the linked file" 0 "$(blocks "$UPPER/store/ab/blob")"
expect "upper size" 300000 "$(stat -c %s "$UPPER/store/ab/blob")"
expect "metacopy xattr" "" "$(getfattr -h --absolute-names --only-values -n $X.metacopy \
	"$UPPER/store/ab/blob" 2>&1)"
expect "redirect xattr" /store/ab/blob "$(xattr_of "$UPPER/store/ab/blob" $X.redirect)"
assert_stat "$UPPER/pkg/index.js" %i "$(stat -c %i "$UPPER/store/ab/blob")"
assert_same_content "$MNT/pkg/index.js" "$L1/store/ab/blob"
assert_same_content "$MNT/store/ab/blob" "$L1/store/ab/blob"
assert_stat "$MNT/pkg/index.js" %s 300000
assert_stat "$MNT/pkg/index.js" %y "$mtime"
assert_stat "$MNT/store/ab/blob" %h 2
assert_stat "$MNT/pkg/index.js" %i "$(stat -c %i "$MNT/store/ab/blob")"
expect "blocks shown are the data's" "$(blocks "$L1/store/ab/blob")" \
	"$(blocks "$MNT/pkg/index.js")"
check_fails "the private xattrs stay hidden" getfattr -h -n $X.metacopy "$MNT/pkg/index.js"

step "the linked name reads the data after the kernel forgets it"
sync
echo 3 >/proc/sys/vm/drop_caches
assert_same_content "$MNT/pkg/index.js" "$L1/store/ab/blob"
assert_stat "$MNT/pkg/index.js" %s 300000

step "an empty file is simply copied"
check "link an empty lower file" ln "$MNT/store/ab/empty" "$MNT/pkg/empty"
check_fails "no metacopy for an empty file" getfattr -h -n $X.metacopy "$UPPER/store/ab/empty"

step "chmod, chown, utimes and xattrs copy metadata only"
chmod 0600 "$MNT/store/ab/small"
assert_stat "$MNT/store/ab/small" %a 600
expect "chmod: no data in the upper" 0 "$(blocks "$UPPER/store/ab/small")"
assert_content "$MNT/store/ab/small" small
chown 1234:5678 "$MNT/deep/a/b/file"
assert_stat "$MNT/deep/a/b/file" %u:%g 1234:5678
expect "chown: no data in the upper" 0 "$(blocks "$UPPER/deep/a/b/file")"
expect "chown: redirect" /deep/a/b/file "$(xattr_of "$UPPER/deep/a/b/file" $X.redirect)"
assert_same_content "$MNT/deep/a/b/file" "$L1/deep/a/b/file"
# utimensat on the name (touch(1) would open the file for writing)
python3 -c 'import os, sys; os.utime(sys.argv[1], (1262304000, 1262304000))' "$MNT/deep/a/b/file"
assert_stat "$MNT/deep/a/b/file" %Y 1262304000
expect "utimes: still no data" 0 "$(blocks "$UPPER/deep/a/b/file")"
setfattr -n user.tag -v hello "$MNT/deep/a/b/file"
expect "user xattr on a metacopy" hello "$(xattr_of "$MNT/deep/a/b/file" user.tag)"
# an xattr that does not fit in the inode takes a block: still no data extent
expect "xattr: still no data" none "$(data_extent "$UPPER/deep/a/b/file")"
sync
echo 3 >/proc/sys/vm/drop_caches
assert_same_content "$MNT/deep/a/b/file" "$L1/deep/a/b/file"

step "rename keeps the redirect to the data"
check "rename a lower file" mv "$MNT/pkg/moveme" "$MNT/deep/moved"
expect "renamed: redirect" /pkg/moveme "$(xattr_of "$UPPER/deep/moved" $X.redirect)"
assert_content "$MNT/deep/moved" moved
assert_missing "$MNT/pkg/moveme"

step "the first write copies the data in place; every name sees it"
printf 'tail' >>"$MNT/pkg/index.js"
expect "size after append" 300004 "$(stat -c %s "$MNT/store/ab/blob")"
expect "data now in the upper" 0 "$([ "$(blocks "$UPPER/store/ab/blob")" -gt 0 ]; echo $?)"
check_fails "metacopy xattr gone" getfattr -h -n $X.metacopy "$UPPER/store/ab/blob"
check_fails "redirect xattr gone" getfattr -h -n $X.redirect "$UPPER/store/ab/blob"
cmp -s -n 300000 "$MNT/store/ab/blob" "$L1/store/ab/blob" || fail "data before the append changed"
expect "appended bytes" tail "$(tail -c 4 "$MNT/store/ab/blob")"
assert_stat "$MNT/store/ab/blob" %i "$(stat -c %i "$MNT/pkg/index.js")"
truncate -s 10 "$MNT/deep/a/b/file"
assert_stat "$MNT/deep/a/b/file" %s 10
cmp -s -n 10 "$MNT/deep/a/b/file" "$L1/deep/a/b/file" || fail "truncate lost the head"
assert_stat "$MNT/deep/a/b/file" %u:%g 1234:5678

step "a reader opened before the write sees the write"
ln "$MNT/store/ab/small" "$MNT/pkg/small2"
exec 7<"$MNT/pkg/small2"
printf 'changed\n' >"$MNT/store/ab/small"
expect "reader after the write" changed "$(cat <&7)"
exec 7<&-

step "the kernel reads jobfs's metacopies (metacopy=on,redirect_dir=on)"
ln "$MNT/store/ab/blob" "$MNT/pkg/blob-again" # an ordinary upper file by now
ln "$MNT/deep/moved" "$MNT/pkg/moved-link"
expect_index=$(md5sum <"$MNT/pkg/index.js")
unmount_view "$MNT"
KMNT=$IT_DIR/kmnt
mount_kernel_view redirect_dir=on,metacopy=on "$KMNT" "$UPPER" "$IT_DIR/kwork" "$L1"
assert_content "$KMNT/deep/moved" moved
assert_content "$KMNT/pkg/moved-link" moved
assert_content "$KMNT/pkg/small2" changed
expect "kernel: appended file" "$expect_index" "$(md5sum <"$KMNT/pkg/index.js")"
assert_stat "$KMNT/pkg/index.js" %s 300004
unmount_view "$KMNT"

step "a remount of jobfs reads them too"
mount_view "$MNT" "$UPPER" "$WORK" "$L1"
assert_content "$MNT/deep/moved" moved
assert_content "$MNT/pkg/moved-link" moved
expect "remount: appended file" "$expect_index" "$(md5sum <"$MNT/pkg/index.js")"
assert_content "$MNT/store/ab/small" changed
assert_stat "$MNT/deep/moved" %i "$(stat -c %i "$MNT/pkg/moved-link")"

step "-o nometacopy copies data on link"
new_view nm -o nometacopy "$L1"
ln "$MNT/store/ab/blob" "$MNT/pkg/x"
expect "nometacopy: data copied" 0 "$([ "$(blocks "$UPPER/store/ab/blob")" -gt 0 ]; echo $?)"
check_fails "nometacopy: no metacopy xattr" getfattr -h -n $X.metacopy "$UPPER/store/ab/blob"
assert_same_content "$MNT/pkg/x" "$L1/store/ab/blob"

finish
