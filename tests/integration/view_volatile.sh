#!/usr/bin/env bash
# A volatile view (-o volatile) syncs nothing, and never lets a layer that may be torn be served:
# the marker work/incompat/volatile exists while it is served and is gone after a clean unmount;
# a daemon SIGKILLed on this boot leaves it and a new daemon (volatile or not) serves the layer
# with the data intact, the durable one flushing and removing it; a marker from another boot (a
# machine restart) makes jobfs-fs refuse the layer with a message saying why and how, and kernel
# overlayfs refuses it too.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
mkdir -p "$L1/dir"
for i in 1 2 3 4 5; do
	head -c $((256 * 1024)) /dev/urandom >"$L1/dir/f$i"
done
printf 'lower\n' >"$L1/small"
snapshot_lower "$L1"

marker_of() { echo "$1/work/incompat/volatile"; }
boot_id=$(cat /proc/sys/kernel/random/boot_id)

step "served volatile: the marker holds this boot's ID; writes, copy-ups and fsync work"
new_view v -o volatile "$L1"
assert_eq "$(cat "$(marker_of "$WORK")/boot_id" 2>/dev/null)" "$boot_id" "marker while served"
printf 'appended\n' >>"$MNT/dir/f1"
printf 'new\n' >"$MNT/new"
check "fsync of a copied-up file" python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDWR); os.write(fd, b"x"); os.fsync(fd); os.fdatasync(fd)' "$MNT/dir/f2"
check "fsync of a directory" python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/dir"
{
	cat "$L1/dir/f1"
	printf 'appended\n'
} >"$IT_DIR/f1.expected"

step "a clean unmount flushes the upper and removes the marker"
unmount_view "$MNT"
assert_missing "$(marker_of "$WORK")"
assert_same_content "$IT_DIR/f1.expected" "$UPPER/dir/f1"
assert_content "$UPPER/new" "new"

step "SIGKILL on this boot: the marker stays, a new volatile daemon serves the layer as it was"
mount_view -o volatile "$MNT" "$UPPER" "$WORK" "$L1"
head -c 4096 /dev/urandom >"$IT_DIR/tail"
cat "$IT_DIR/tail" >>"$MNT/dir/f3"
cat "$L1/dir/f3" "$IT_DIR/tail" >"$IT_DIR/f3.expected"
kill_view_daemon "$MNT"
assert_exists "$(marker_of "$WORK")"
mount_view -o volatile "$MNT" "$UPPER" "$WORK" "$L1"
check "f3 after the kill" cmp "$IT_DIR/f3.expected" "$MNT/dir/f3"
kill_view_daemon "$MNT"

step "a durable daemon over a killed volatile one's layer (same boot) flushes it and drops the marker"
mount_view "$MNT" "$UPPER" "$WORK" "$L1"
assert_missing "$(marker_of "$WORK")"
check "f3 through the durable view" cmp "$IT_DIR/f3.expected" "$MNT/dir/f3"
unmount_view "$MNT"

step "a marker from another boot: jobfs-fs refuses the layer, saying why; so does the kernel"
mount_view -o volatile "$MNT" "$UPPER" "$WORK" "$L1"
kill_view_daemon "$MNT"
printf '00000000-0000-4000-8000-000000000000' >"$(marker_of "$WORK")/boot_id"
for opts in volatile ""; do
	status=0
	out=$(timeout 20 "$JOBFS_FS" --lower "$L1" --upper "$UPPER" --work "$WORK" -f \
		${opts:+-o "$opts"} "$MNT" 2>&1 </dev/null) || status=$?
	assert_eq "$status" 2 "exit status of jobfs-fs ${opts:+-o $opts }over a torn layer"
	case $out in
	*"machine has restarted"*"incompat/volatile"*) ;;
	*) fail "the refusal does not say why and what to remove: $out" ;;
	esac
	if is_mounted "$MNT"; then
		fail "the refused layer got mounted"
		umount "$MNT"
	fi
done
# a marker cut short (no ID) is as suspect as one from another boot
: >"$(marker_of "$WORK")/boot_id"
check_fails "a marker without an ID" timeout 20 "$JOBFS_FS" --lower "$L1" --upper "$UPPER" \
	--work "$WORK" -f "$MNT"
kmnt=$IT_DIR/kernel
mkdir -p "$kmnt"
if mount -t overlay overlay -o "lowerdir=$L1,upperdir=$UPPER,workdir=$WORK" "$kmnt" 2>/dev/null; then
	umount "$kmnt"
	fail "kernel overlayfs mounted a work dir holding incompat/volatile"
fi

step "removing the marker, as the message says, makes the layer usable again"
rm -r "$(marker_of "$WORK")"
mount_view "$MNT" "$UPPER" "$WORK" "$L1"
check "f3 after the marker was removed" cmp "$IT_DIR/f3.expected" "$MNT/dir/f3"
assert_content "$MNT/small" "lower"
unmount_view "$MNT"

finish
