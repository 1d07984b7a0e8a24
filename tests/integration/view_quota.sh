#!/usr/bin/env bash
# The per-view quota (-o quota=BYTES): writes, fallocate and copy-ups past it fail with ENOSPC and
# leave what was written intact and nothing half-copied; deleting, truncating and overwriting work
# when it is full and free room; df in the view shows the quota and the upper's usage; hard links
# count once; the usage survives a SIGKILL and a remount, and is still enforced.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

MIB=$((1 << 20))
QUOTA=$((8 * MIB))

L1=$IT_DIR/l1
mkdir -p "$L1/dir"
head -c $((12 * MIB)) /dev/urandom >"$L1/huge"
head -c $((3 * MIB)) /dev/urandom >"$L1/dir/three"
printf 'lower\n' >"$L1/dir/small"
snapshot_lower "$L1"

# view_used MNT: bytes df shows as used in the view: (f_blocks - f_bfree) * f_frsize.
view_used()
{
	python3 -c 'import os, sys; s = os.statvfs(sys.argv[1]); print((s.f_blocks - s.f_bfree) * s.f_frsize)' "$1"
}

# view_size MNT: f_blocks * f_frsize, and whether f_bavail fits in it: "SIZE ok".
view_size()
{
	python3 -c 'import os, sys; s = os.statvfs(sys.argv[1]); print(s.f_blocks * s.f_frsize, "ok" if s.f_bavail <= s.f_bfree <= s.f_blocks else "bad")' "$1"
}

# upper_usage DIR: st_blocks * 512 of DIR and everything below it, each inode once.
upper_usage()
{
	python3 - "$1" <<'EOF'
import os, stat, sys
seen, total = set(), 0
def add(st):
	global total
	if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
		if st.st_ino in seen:
			return
		seen.add(st.st_ino)
	total += st.st_blocks * 512
top = sys.argv[1]
add(os.lstat(top))
for root, dirs, files in os.walk(top):
	for name in dirs + files:
		add(os.lstat(os.path.join(root, name)))
print(total)
EOF
}

# expect_enospc DESC CMD...: CMD fails with "No space left on device".
expect_enospc()
{
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "$desc: '$*' succeeded, expected ENOSPC"
		return 0
	fi
	case $out in
	*"No space left on device"*) ;;
	*) fail "$desc: expected ENOSPC, got '$out'" ;;
	esac
}

# assert_accounted MNT UPPER DESC: df's usage in the view is the upper's real usage (df shows no
# more than the quota: directories and metadata copy-ups may pass it by a few blocks).
assert_accounted()
{
	local real size
	real=$(upper_usage "$2")
	size=$(view_size "$1")
	size=${size% *}
	if [ "$real" -gt "$size" ]; then
		real=$size
	fi
	assert_eq "$(view_used "$1")" "$real" "$3: df usage vs the upper's blocks"
}

step "df shows the quota"
new_view q -o "quota=$QUOTA" "$L1"
assert_eq "$(view_size "$MNT")" "$QUOTA ok" "size of the view"
assert_eq "$(stat -f -c '%b %S' "$MNT")" "$((QUOTA / $(stat -f -c %S "$MNT"))) $(stat -f -c %S "$MNT")" \
	"stat -f: blocks of the view"
assert_accounted "$MNT" "$UPPER" "an empty upper"

step "writes past the quota fail with ENOSPC, earlier data intact"
head -c $((3 * MIB)) /dev/urandom >"$IT_DIR/a"
check "write 3 MiB" cp "$IT_DIR/a" "$MNT/a"
check "sync" sync "$MNT/a"
assert_accounted "$MNT" "$UPPER" "after 3 MiB"
expect_enospc "filling the view" dd if=/dev/zero of="$MNT/fill" bs=1M count=64 status=none
assert_same_content "$MNT/a" "$IT_DIR/a"
fill_size=$(stat -c %s "$MNT/fill")
[ "$fill_size" -gt $((4 * MIB)) ] || fail "the fill got $fill_size bytes: the quota's rest should be writable"
used=$(view_used "$MNT")
[ "$used" -le $((QUOTA + 64 * 1024)) ] || fail "usage $used overshoots the quota $QUOTA"
assert_eq "$(stat -f -c %a "$MNT")" 0 "no blocks available when full"
assert_accounted "$MNT" "$UPPER" "full"
expect_enospc "a new file when full" bash -c "printf x >'$MNT/new'"
assert_missing "$MNT/new"
expect_enospc "mkdir when full" mkdir "$MNT/newdir"
expect_enospc "fallocate past the end when full" fallocate -o 3M -l 1M "$MNT/a"
check "fallocate of allocated blocks works when full" fallocate -l 1M "$MNT/a"
check "an overwrite of allocated blocks works when full" \
	dd if="$IT_DIR/a" of="$MNT/a" bs=64k count=4 conv=notrunc status=none
assert_same_content "$MNT/a" "$IT_DIR/a"

step "a copy-up past the quota fails cleanly"
expect_enospc "appending to a 12 MiB lower file" bash -c "printf x >>'$MNT/huge'"
assert_missing "$UPPER/huge"
assert_listing "$WORK/work"
assert_same_content "$MNT/huge" "$L1/huge"
check "chmod copies the metadata only" chmod 600 "$MNT/dir/three"
expect_enospc "writing into a metacopy whose data does not fit" \
	bash -c "printf x >>'$MNT/dir/three'"
assert_same_content "$MNT/dir/three" "$L1/dir/three"
assert_listing "$WORK/work"
assert_accounted "$MNT" "$UPPER" "after failed copy-ups"

step "deleting and truncating free the quota"
check "remove the fill" rm "$MNT/fill"
assert_accounted "$MNT" "$UPPER" "after rm"
check "truncate a to 1 MiB" truncate -s 1M "$MNT/a"
assert_accounted "$MNT" "$UPPER" "after truncate"
check "the metacopy's data fits now" bash -c "printf x >>'$MNT/dir/three'"
assert_eq "$(stat -c %s "$MNT/dir/three")" $((3 * MIB + 1)) "size after the append"
check "fallocate 1 MiB" fallocate -l 1M "$MNT/falloc"
check "write 1 MiB" dd if=/dev/urandom of="$MNT/b" bs=1M count=1 status=none
check "mkdir" mkdir "$MNT/newdir"
assert_accounted "$MNT" "$UPPER" "after writing again"
expect_enospc "fallocate past the quota" fallocate -l 8M "$MNT/falloc2"
check "rename over a file frees it" mv "$MNT/falloc" "$MNT/b"
check "rmdir" rmdir "$MNT/newdir"
assert_accounted "$MNT" "$UPPER" "after rename over and rmdir"

step "hard links count once"
check "remove b" rm -f "$MNT/b" "$MNT/falloc2"
before=$(view_used "$MNT")
check "write 1 MiB" dd if=/dev/urandom of="$MNT/linked" bs=1M count=1 status=none
for i in 1 2 3; do
	check "link $i" ln "$MNT/linked" "$MNT/link$i"
done
after=$(view_used "$MNT")
grown=$((after - before))
[ "$grown" -ge "$MIB" ] && [ "$grown" -lt $((2 * MIB)) ] ||
	fail "four names of 1 MiB grew the usage by $grown bytes"
assert_accounted "$MNT" "$UPPER" "hard links"
check "remove three names" rm "$MNT/linked" "$MNT/link1" "$MNT/link2"
assert_eq "$(view_used "$MNT")" "$after" "a name of four removed frees nothing"
assert_accounted "$MNT" "$UPPER" "hard links, one name left"

step "the usage survives a SIGKILL and a remount"
check "fill the view" bash -c "dd if=/dev/urandom of='$MNT/fill2' bs=1M count=64 status=none 2>/dev/null; true"
check "sync" sync
used=$(view_used "$MNT")
assert_accounted "$MNT" "$UPPER" "before the kill"
kill_view_daemon "$MNT"
mount_view -o "quota=$QUOTA" "$MNT" "$UPPER" "$WORK" "$L1"
assert_eq "$(view_used "$MNT")" "$used" "usage after the restart"
assert_eq "$(view_size "$MNT")" "$QUOTA ok" "size after the restart"
expect_enospc "still enforced after the restart" \
	dd if=/dev/zero of="$MNT/more" bs=1M count=1 status=none
check "rm the fill" rm -f "$MNT/fill2" "$MNT/more"
check "write 1 MiB after the restart" dd if=/dev/zero of="$MNT/more" bs=1M count=1 status=none
assert_accounted "$MNT" "$UPPER" "after the restart"
unmount_view "$MNT"

step "a clean remount measures the same, and a smaller quota is full at once"
mount_view -o "quota=$MIB" "$MNT" "$UPPER" "$WORK" "$L1"
assert_eq "$(stat -f -c %a "$MNT")" 0 "no blocks available past a lowered quota"
expect_enospc "writing past a lowered quota" bash -c "printf x >>'$MNT/more'"
check "reading works" cmp "$MNT/huge" "$L1/huge"
check "deleting works" rm "$MNT/more"
unmount_view "$MNT"

step "no quota: df shows the upper's filesystem"
new_view nq "$L1"
assert_eq "$(stat -f -c %b "$MNT")" "$(stat -f -c %b "$UPPER")" "blocks without a quota"

finish
