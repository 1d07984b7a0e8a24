#!/usr/bin/env bash
# Faults: an upper filesystem that fills up (ENOSPC, the daemon stays up, nothing written is
# damaged, a failed copy-up leaves nothing visible); the daemon killed with SIGKILL during fsynced
# writes and copy-ups (everything fsynced is in the upper, no partial copy-up, a new daemon on the
# same layers starts clean); thousands of open files and 250-level trees (no descriptor leak); a
# lower directory removed while mounted (errors, no crash).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
mkdir -p "$L1/big" "$L1/keep"
head -c $((6 << 20)) /dev/urandom >"$L1/big/six"
for i in $(seq -w 0 19); do
	head -c $((256 << 10)) /dev/urandom >"$L1/big/f$i"
done
printf 'kept\n' >"$L1/keep/k"
snapshot_lower "$L1"

# Open descriptors of a process, without the one ls itself opens.
fd_count()
{
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l
}

step "the upper's filesystem fills up"
mount_tmpfs "$IT_DIR/small" 10m
mount_view "$IT_DIR/full/mnt" "$IT_DIR/small/upper" "$IT_DIR/small/work" "$L1"
MNT=$(realpath "$IT_DIR/full/mnt")
pid=$(view_daemon_pid "$MNT")
head -c $((1 << 20)) /dev/urandom >"$IT_DIR/one"
check "write 1 MiB" cp "$IT_DIR/one" "$MNT/one"
check "fsync it" python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' \
	"$MNT/one"
out=$(dd if=/dev/zero of="$MNT/fill" bs=1M count=64 2>&1) && fail "filling the upper succeeded"
case $out in
*"No space left on device"*) ;;
*) fail "filling the upper: expected ENOSPC, got '$out'" ;;
esac
it_pid_running "$pid" || fail "the daemon died when the upper filled up"
assert_same_content "$MNT/one" "$IT_DIR/one"
# another job over the same lower, its upper elsewhere, is unaffected
FULL=$MNT
new_view other "$L1"
check "another view writes while one upper is full" sh -c "head -c 4194304 /dev/zero >'$MNT/w'"
check "and copies up" sh -c "printf x >>'$MNT/big/six'"
unmount_view "$MNT"
MNT=$FULL
out=$(printf 'x' 2>&1 >>"$MNT/big/six") && fail "a copy-up into a full upper succeeded"
case $out in
*"No space left on device"*) ;;
*) fail "copy-up into a full upper: expected ENOSPC, got '$out'" ;;
esac
assert_same_content "$MNT/big/six" "$L1/big/six"
assert_missing "$IT_DIR/small/upper/big/six"
assert_listing "$IT_DIR/small/work/work"
check "stat still works" stat "$MNT/keep/k"
check "free the space" rm "$MNT/fill"
check "the copy-up works once there is room" sh -c "printf x >>'$MNT/big/six'"
assert_eq "$(stat -c %s "$MNT/big/six")" $(((6 << 20) + 1)) "size after the append"
assert_eq "$(head -c $((6 << 20)) "$MNT/big/six" | cmp - "$L1/big/six" && echo same)" same \
	"the copied data"
assert_same_content "$MNT/one" "$IT_DIR/one"
unmount_view "$MNT"

step "SIGKILL during fsynced writes and copy-ups"
new_view k "$L1"
pid=$(view_daemon_pid "$MNT")
# The writer logs a name only after fsync returned: those must survive the crash.
python3 - "$MNT" "$IT_DIR/written.log" >"$IT_DIR/writer.out" 2>&1 <<'EOF' &
import hashlib, os, sys
mnt, log = sys.argv[1], open(sys.argv[2], "w", buffering=1)
os.makedirs(os.path.join(mnt, "new"), exist_ok=True)
try:
	for i in range(100000):
		data = hashlib.sha256(str(i).encode()).digest() * (64 + i % 512)
		path = os.path.join(mnt, "new", "w%05d" % i)
		fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
		os.write(fd, data)
		os.fsync(fd)
		os.close(fd)
		log.write("new w%05d\n" % i)
		if i < 20:  # a copy-up of a lower file, then an fsynced append
			path = os.path.join(mnt, "big", "f%02d" % i)
			fd = os.open(path, os.O_WRONLY | os.O_APPEND)
			os.write(fd, b"appended %d\n" % i)
			os.fsync(fd)
			os.close(fd)
			log.write("append f%02d\n" % i)
except OSError as e:
	print("writer stopped:", e)
EOF
writer=$!
for _ in $(seq 50); do
	[ "$(grep -c '^append' "$IT_DIR/written.log" 2>/dev/null || echo 0)" -ge 20 ] && break
	sleep 0.1
done
sleep 0.3
kill_view_daemon "$MNT"
wait "$writer" || true
grep -q "writer stopped" "$IT_DIR/writer.out" || fail "the writer did not see the crash: $(cat "$IT_DIR/writer.out")"
python3 - "$UPPER" "$L1" "$IT_DIR/written.log" <<'EOF' || fail "fsynced data lost or a partial copy-up visible"
import hashlib, os, sys
upper, lower, log = sys.argv[1:]
bad, n = [], 0
for line in open(log):
	kind, name = line.split()
	n += 1
	if kind == "new":
		i = int(name[1:])
		want = hashlib.sha256(str(i).encode()).digest() * (64 + i % 512)
		try:
			got = open(os.path.join(upper, "new", name), "rb").read()
		except OSError as e:
			got = str(e)
		if got != want:
			bad.append("new/" + name)
	else:
		i = int(name[1:])
		want = open(os.path.join(lower, "big", name), "rb").read() + b"appended %d\n" % i
		got = open(os.path.join(upper, "big", name), "rb").read()
		if got != want:
			bad.append("big/" + name)
# any copy in the upper of a lower file holds at least the whole lower data
for name in os.listdir(os.path.join(upper, "big")):
	base = open(os.path.join(lower, "big", name), "rb").read()
	if not open(os.path.join(upper, "big", name), "rb").read().startswith(base):
		bad.append("partial copy-up big/" + name)
print(n, "fsynced writes checked;", "lost or damaged: %s" % bad if bad else "none lost")
sys.exit(1 if bad or n < 21 else 0)
EOF
mount_view "$MNT" "$UPPER" "$WORK" "$L1"
assert_listing "$WORK/work"
check "the view works after the crash" cmp "$MNT/keep/k" "$L1/keep/k"
first=$(awk '$1 == "new" { print $2; exit }' "$IT_DIR/written.log")
assert_exists "$MNT/new/$first"
check "remove what the crashed job wrote" rm -r "$MNT/new"
unmount_view "$MNT"

step "thousands of open files and a 250-level tree leak no descriptors"
new_view d "$L1"
pid=$(view_daemon_pid "$MNT")
before=$(fd_count "$pid")
python3 - "$MNT" <<'EOF' || fail "opening 3000 files at once"
import os, sys
mnt = sys.argv[1]
os.makedirs(os.path.join(mnt, "many"))
fds = []
for i in range(3000):
	fd = os.open(os.path.join(mnt, "many", "%d" % i), os.O_RDWR | os.O_CREAT, 0o644)
	os.write(fd, b"%d" % i)
	fds.append(fd)
for i, fd in enumerate(fds):
	if os.pread(fd, 16, 0) != b"%d" % i:
		sys.exit("file %d reads back wrong" % i)
	os.close(fd)
# 250 levels, made and read back with relative opens
fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
for i in range(250):
	os.mkdir("d", dir_fd=fd)
	sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
	os.close(fd)
	fd = sub
f = os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
os.write(f, b"deep")
os.close(f)
os.close(fd)
EOF
assert_content "$MNT$(printf '/d%.0s' $(seq 250))/bottom" deep
check "remove the deep tree" rm -r "$MNT/d" "$MNT/many"
sync
echo 2 >/proc/sys/vm/drop_caches # the kernel forgets its inodes: the daemon's cache may shrink
sleep 0.5
after=$(fd_count "$pid")
[ "$after" -le $((before + 64)) ] || fail "descriptors: $before before, $after after"
it_pid_running "$pid" || fail "the daemon died"

step "hard-linked files whose known name was removed stay within the descriptor bound"
new_view h -o max_fds=64 "$L1"
pid=$(view_daemon_pid "$MNT")
mkdir "$MNT/h"
for i in $(seq 300); do
	echo "content $i" >"$MNT/h/a$i"
	ln "$MNT/h/a$i" "$MNT/h/b$i" # the view now knows the file by b$i
	rm "$MNT/h/b$i"              # ... which is gone: a$i is reached by its handle
done
held=$(fd_count "$pid")
[ "$held" -le 160 ] || fail "300 files with a removed name keep $held descriptors (max_fds=64)"
bad=0
for i in $(seq 300); do
	[ "$(cat "$MNT/h/a$i")" = "content $i" ] || bad=$((bad + 1))
done
assert_eq "$bad" 0 "files read back wrong after their descriptors were evicted"
check "append through the remaining name" sh -c "echo more >>'$MNT/h/a7'"
assert_content "$UPPER/h/a7" "$(printf 'content 7\nmore')"

step "a lower directory removed while mounted"
L2=$IT_DIR/l2
mkdir -p "$L2/gone/sub" "$L2/stays"
printf 'a\n' >"$L2/gone/sub/a"
printf 'b\n' >"$L2/stays/b"
new_view g "$L2"
pid=$(view_daemon_pid "$MNT")
assert_content "$MNT/gone/sub/a" a
rm -rf "$L2/gone"
# what the kernel still caches may be served (an open file would be too); a fresh lookup fails
got=$(cat "$MNT/gone/sub/a" 2>/dev/null) || true
case $got in "" | a) ;; *) fail "a vanished lower file read as '$got'" ;; esac
ls "$MNT/gone/sub" >/dev/null 2>&1 || true
sync
echo 2 >/proc/sys/vm/drop_caches
check_fails "a vanished lower directory after the kernel forgot it" stat "$MNT/gone"
it_pid_running "$pid" || fail "the daemon died when a lower directory vanished"
assert_content "$MNT/stays/b" b
check "writing elsewhere still works" sh -c "echo c >'$MNT/stays/c'"

finish
