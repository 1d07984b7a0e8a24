#!/usr/bin/env bash
# Open files, in both of the daemon's modes: without per-open state (the root default: the kernel
# sends no open, release or flush, and reads and writes use each inode's own descriptors) and with
# it (-o open_files). In each: a write-open copies up once something is written (open_files: at
# the open, as kernel overlayfs does); O_TRUNC
# truncates; O_APPEND appends; a reader sees another writer's copy-up; files made by open(O_CREAT)
# get the caller's mode; open files outlive their last name while the descriptor cache is under
# pressure (max_fds=8), for reading, writing and fstat (nlink 0); stat of files whose descriptors
# were evicted (by name from the parent) shows the object now under the name: the lower's, the
# copy-up's, the renamed one's; fsync works on lower, metacopy and upper files.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L=$IT_DIR/lower
mkdir -p "$L/d"
for i in $(seq 1 40); do
	printf 'lower file %s\n' "$i" >"$L/d/f$i"
done
printf 'lower keep\n' >"$L/keep"
printf 'lower trunc\n' >"$L/trunc"
printf 'lower append\n' >"$L/append"
printf 'lower shared\n' >"$L/shared"
printf 'lower gone\n' >"$L/gone"
printf 'lower meta\n' >"$L/meta"
mkdir "$L/s"
for i in $(seq 1 40); do
	head -c "$((i * 100))" /dev/zero >"$L/s/f$i"
	chmod "$((i % 2 ? 644 : 640))" "$L/s/f$i"
done
snapshot_lower "$L"

# A short Python program per check keeps several descriptors of one file open at once.
py()
{
	python3 -c "$1" "${@:2}"
}

run_mode()
{
	local mode=$1 opts=max_fds=8
	[ "$mode" = open_files ] && opts=$opts,open_files
	new_view "$mode" -o "$opts" "$L"

	step "$mode: a write-open copies up when something is written (open_files: at the open)"
	check "open O_RDWR, read, close" py '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
assert os.read(fd, 100) == b"lower keep\n"
os.close(fd)' "$MNT/keep"
	if [ "$mode" = open_files ]; then
		assert_content "$UPPER/keep" "lower keep" # as kernel overlayfs does
	else
		assert_missing "$UPPER/keep"
	fi
	check "open O_WRONLY, write, close" py '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"UPPER", 0)
os.close(fd)' "$MNT/keep"
	assert_content "$MNT/keep" "UPPER keep"
	assert_content "$UPPER/keep" "UPPER keep"

	step "$mode: O_TRUNC and O_APPEND"
	printf 'new\n' >"$MNT/trunc"
	assert_content "$MNT/trunc" "new"
	assert_content "$UPPER/trunc" "new"
	printf 'more\n' >>"$MNT/append"
	printf 'more\n' >>"$MNT/append"
	assert_content "$MNT/append" "$(printf 'lower append\nmore\nmore')"

	step "$mode: a reader opened on the lower sees a writer's copy-up"
	check "read, write elsewhere, read again" py '
import os, sys
r = os.open(sys.argv[1], os.O_RDONLY)
assert os.pread(r, 100, 0) == b"lower shared\n"
w = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(w, b"UPPER", 0)
os.close(w)
got = os.pread(r, 100, 0)
assert got == b"UPPER shared\n", got
os.close(r)' "$MNT/shared"

	step "$mode: open(O_CREAT) makes a file with the caller's mode, writable by that open"
	check "create 0444, write through the creating open" py '
import os, sys
os.umask(0o022)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
os.write(fd, b"made\n")
os.close(fd)
st = os.stat(sys.argv[1])
assert st.st_mode & 0o7777 == 0o444, oct(st.st_mode)
try:
    os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    sys.exit("O_EXCL on an existing name succeeded")
except FileExistsError:
    pass' "$MNT/made"
	assert_content "$MNT/made" "made"

	step "$mode: open files outlive their last name under descriptor pressure"
	# an upper file and a lower file, each unlinked while open for reading and writing; reading
	# 40 other files in between makes the cache (8 descriptors) evict whatever it may
	printf 'upper orphan\n' >"$MNT/orphan"
	check "unlinked files keep their data" py '
import os, sys
mnt = sys.argv[1]
fds = {n: os.open(os.path.join(mnt, n), os.O_RDWR) for n in ("orphan", "gone")}
for n in fds:
    os.unlink(os.path.join(mnt, n))
    assert not os.path.exists(os.path.join(mnt, n))
for i in range(1, 41):
    with open(os.path.join(mnt, "d", "f%d" % i), "rb") as f:
        assert f.read() == b"lower file %d\n" % i
for n, fd in fds.items():
    st = os.fstat(fd)
    assert st.st_nlink == 0, (n, st.st_nlink)
    os.pwrite(fd, b"+" * 3, 0)
for i in range(1, 41):
    os.stat(os.path.join(mnt, "d", "f%d" % i))
assert os.pread(fds["orphan"], 100, 0) == b"+++er orphan\n"
assert os.pread(fds["gone"], 100, 0) == b"+++er gone\n"
os.fsync(fds["orphan"])
for fd in fds.values():
    os.close(fd)' "$MNT"
	assert_missing "$MNT/orphan"
	assert_whiteout "$UPPER/gone"

	step "$mode: fsync of a lower, a metacopy and an upper file"
	chmod 600 "$MNT/meta"
	check "fsync each" py '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)' "$MNT/d/f1" "$MNT/meta" "$MNT/made"
	assert_missing "$UPPER/d/f1"
	assert_content "$MNT/meta" "lower meta"

	step "$mode: stat of files whose descriptors were evicted"
	# each read makes the kernel ask for the attributes again (atime): GETATTR of an inode
	# whose descriptor the cache (8) evicted in between
	check "size, mode, mtime as the lower's; inode numbers stable" py '
import os, stat, sys
mnt, low = sys.argv[1], sys.argv[2]
def read_all():
    for i in range(1, 41):
        with open(f"{mnt}/s/f{i}", "rb") as f:
            f.read()
def view_stats():
    read_all()
    return {i: os.lstat(f"{mnt}/s/f{i}") for i in range(1, 41)}
first = view_stats()
for i, st in first.items():
    ls = os.lstat(f"{low}/s/f{i}")
    assert st.st_size == i * 100 == ls.st_size, (i, st.st_size)
    assert stat.S_IMODE(st.st_mode) == stat.S_IMODE(ls.st_mode), (i, oct(st.st_mode))
    assert st.st_mtime_ns == ls.st_mtime_ns, i
again = view_stats()
assert all(again[i].st_ino == first[i].st_ino for i in first), "inode numbers changed"
for i in range(1, 11):
    os.chmod(f"{mnt}/s/f{i}", 0o600)   # copied up: the top object is now the upper one
os.rename(f"{mnt}/s/f11", f"{mnt}/s/r11")
for i in range(12, 41):   # evicts the descriptors of the files above again
    with open(f"{mnt}/s/f{i}", "rb") as f:
        f.read()
for i in range(1, 11):
    st = os.lstat(f"{mnt}/s/f{i}")
    assert stat.S_IMODE(st.st_mode) == 0o600, (i, oct(st.st_mode))
    assert st.st_size == i * 100 and st.st_ino == first[i].st_ino, i
st = os.lstat(f"{mnt}/s/r11")
assert st.st_size == 1100 and st.st_ino == first[11].st_ino, st
try:
    os.lstat(f"{mnt}/s/f11")
    raise SystemExit("f11 still there after its rename")
except FileNotFoundError:
    pass' "$MNT" "$L"
	unmount_view "$MNT"
}

run_mode no_open
run_mode open_files
assert_lowers_unchanged
finish
