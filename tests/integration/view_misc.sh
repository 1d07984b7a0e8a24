#!/usr/bin/env bash
# Less common calls: fallocate, SEEK_DATA/SEEK_HOLE, xattrs (private ones hidden), utimensat with
# UTIME_OMIT, shared writable mmap, copy_file_range, and telldir/seekdir over a merged directory.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
L2=$IT_DIR/l2
mkdir -p "$L1/big" "$L2/big" "$L2/hidden/child"
printf 'small lower file\n' >"$L2/alloc"
printf 'xattr file\n' >"$L2/xf"
setfattr -n user.lower -v fromlower "$L2/xf"
printf 'times\n' >"$L2/times"
touch -d '2005-05-05 05:05:05.5 +0000' "$L2/times"
head -c 8192 /dev/zero | tr '\0' 'a' >"$L2/mapped"
head -c 1048576 /dev/urandom >"$L2/src.bin"
printf '0123456789abcdefghij\n' >"$L2/cfr-dst"
# 2 MiB, data at [0, 4 KiB) and [1 MiB, 1 MiB + 4 KiB), holes elsewhere.
head -c 4096 /dev/urandom >"$L2/sparse"
truncate -s 2M "$L2/sparse"
head -c 4096 /dev/urandom | dd of="$L2/sparse" bs=4096 seek=256 conv=notrunc status=none
# 250 names in each layer, 50 of them in both.
for i in $(seq 0 249); do
	: >"$L2/big/lower-$i"
	: >"$L1/big/upper-$i"
done
for i in $(seq 0 49); do
	: >"$L1/big/lower-$i"
done
snapshot_lower "$L1" "$L2"
new_view v "$L1" "$L2"

step "fallocate"
got=$(
	python3 - "$MNT" <<'EOF'
import os, sys
mnt = sys.argv[1]
out = []
for name in ("new-alloc", "alloc"):
	fd = os.open(os.path.join(mnt, name), os.O_RDWR | os.O_CREAT, 0o644)
	os.posix_fallocate(fd, 0, 1 << 20)
	st = os.fstat(fd)
	out.append("%s:%d:%s" % (name, st.st_size, st.st_blocks * 512 >= (1 << 20)))
	os.close(fd)
print(" ".join(out))
EOF
) || true
assert_eq "$got" "new-alloc:1048576:True alloc:1048576:True" "size and blocks after posix_fallocate"
assert_stat "$UPPER/alloc" %s 1048576
assert_eq "$(head -c 17 "$MNT/alloc")" "small lower file" "content kept by fallocate"

step "SEEK_DATA and SEEK_HOLE"
assert_eq "$(hole_map "$MNT/sparse")" "4096 1048576" "holes of a lower sparse file"
chmod 0600 "$MNT/sparse"
printf 'x' | dd of="$MNT/sparse" bs=1 seek=8 conv=notrunc status=none
assert_eq "$(hole_map "$MNT/sparse")" "4096 1048576" "holes of the copied-up sparse file"
assert_eq "$(hole_map "$UPPER/sparse")" "4096 1048576" "holes of upper/sparse"

step "xattrs"
assert_eq "$(xattr_of "$MNT/xf" user.lower)" fromlower "a lower xattr through the view"
setfattr -n user.a -v 1 "$MNT/xf"
setfattr -n user.b -v two "$MNT/xf"
assert_eq "$(xattr_of "$MNT/xf" user.a)" 1 "user.a after setfattr"
assert_eq "$(getfattr --absolute-names -d -m - "$MNT/xf" | grep '^user\.' | tr '\n' ' ')" \
	'user.a="1" user.b="two" user.lower="fromlower" ' "the xattr list"
setfattr -x user.a "$MNT/xf"
assert_eq "$(xattr_of "$MNT/xf" user.a)" "$MNT/xf: user.a: No such attribute" "user.a after removal"
setfattr -x user.lower "$MNT/xf"
assert_eq "$(getfattr --absolute-names -d -m - "$MNT/xf" | grep '^user\.' | tr '\n' ' ')" \
	'user.b="two" ' "the xattr list after removals"
check_fails "user.lower removed from the upper copy" getfattr -n user.lower "$UPPER/xf"
printf 'new\n' >"$MNT/xnew"
setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' v)" "$MNT/xnew"
assert_eq "$(xattr_of "$MNT/xnew" user.big | wc -c)" 3000 "size of a 3000-byte xattr"
setfattr -n user.on-dir -v d "$MNT/big"
assert_eq "$(xattr_of "$MNT/big" user.on-dir)" d "an xattr on a merged dir"

step "private xattrs stay hidden"
rm -r "$MNT/hidden"
mkdir "$MNT/hidden"
assert_opaque "$UPPER/hidden"
listed=$(getfattr --absolute-names -d -m - "$MNT/hidden" "$MNT/big" "$MNT/xf" "$MNT" 2>&1 |
	grep -i 'overlay' || true)
assert_eq "$listed" "" "overlay xattrs listed in the view"
# Kernel overlayfs answers EOPNOTSUPP here; no such attribute would do as well.
case $(xattr_of "$MNT/hidden" "$OPAQUE_XATTR") in
*"Operation not supported" | *"No such attribute") ;;
*) fail "reading $OPAQUE_XATTR through the view: $(xattr_of "$MNT/hidden" "$OPAQUE_XATTR")" ;;
esac
check_fails "setting trusted.overlay.* through the view" \
	setfattr -n trusted.overlay.opaque -v y "$MNT/big"
check_fails "the refused xattr reached the upper" getfattr -n trusted.overlay.opaque "$UPPER/big"
check_fails "removing $OPAQUE_XATTR through the view" setfattr -x "$OPAQUE_XATTR" "$MNT/hidden"
assert_opaque "$UPPER/hidden"

step "utimensat with UTIME_OMIT"
got=$(
	python3 - "$MNT/times" "$MNT/new-alloc" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Timespec(ctypes.Structure):
	_fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
def utimensat(path, atime, mtime):
	ts = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
	if libc.utimensat(AT_FDCWD, os.fsencode(path), ts, 0) != 0:
		raise OSError(ctypes.get_errno(), "utimensat")
out = []
for path in sys.argv[1:]:
	before = os.stat(path)
	utimensat(path, (0, UTIME_OMIT), (1234567890, 123456789))
	st = os.stat(path)
	out.append("%s %s" % (st.st_atime_ns == before.st_atime_ns, st.st_mtime_ns))
	utimensat(path, (1111111111, 222222222), (0, UTIME_OMIT))
	st = os.stat(path)
	out.append("%s %s" % (st.st_atime_ns, st.st_mtime_ns))
print("|".join(out))
EOF
) || true
assert_eq "$got" "True 1234567890123456789|1111111111222222222 1234567890123456789|\
True 1234567890123456789|1111111111222222222 1234567890123456789" "times after UTIME_OMIT calls"
assert_stat "$UPPER/times" '%X %Y' '1111111111 1234567890'

step "shared writable mmap"
got=$(
	python3 - "$MNT/mapped" "$MNT/mapped-new" <<'EOF'
import mmap, os, sys
out = []
for path in sys.argv[1:]:
	fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
	if os.fstat(fd).st_size == 0:
		os.ftruncate(fd, 8192)
	m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
	m[100:105] = b"HELLO"
	m[8000:8005] = b"WORLD"
	m.flush()
	m.close()
	os.fsync(fd)
	os.close(fd)
	with open(path, "rb") as f:
		data = f.read()
	out.append("%d %s %s" % (len(data), data[100:105].decode(), data[8000:8005].decode()))
print("|".join(out))
EOF
) || true
assert_eq "$got" "8192 HELLO WORLD|8192 HELLO WORLD" "file content after writes through mmap"
assert_eq "$(dd if="$UPPER/mapped" bs=1 skip=100 count=5 status=none)" HELLO "upper/mapped at 100"
assert_eq "$(dd if="$UPPER/mapped-new" bs=1 skip=8000 count=5 status=none)" WORLD \
	"upper/mapped-new at 8000"

step "copy_file_range"
got=$(
	python3 - "$MNT" <<'EOF'
import os, sys
mnt = sys.argv[1]
def copy(src, dst, length, dst_off=0, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
	s = os.open(os.path.join(mnt, src), os.O_RDONLY)
	d = os.open(os.path.join(mnt, dst), flags, 0o644)
	done = 0
	while done < length:
		n = os.copy_file_range(s, d, length - done, done, dst_off + done)
		if n == 0:
			break
		done += n
	os.close(s)
	os.close(d)
	return done
out = [copy("src.bin", "copy.bin", 1 << 20)]
out.append(copy("copy.bin", "copy2.bin", 1 << 20))
out.append(copy("src.bin", "cfr-dst", 5, dst_off=10, flags=os.O_WRONLY))
print(" ".join(str(x) for x in out))
EOF
) || true
assert_eq "$got" "1048576 1048576 5" "bytes copied"
assert_same_content "$MNT/copy.bin" "$L2/src.bin"
assert_same_content "$MNT/copy2.bin" "$L2/src.bin"
assert_same_content "$UPPER/copy.bin" "$L2/src.bin"
{
	printf '0123456789'
	head -c 5 "$L2/src.bin"
	printf 'fghij\n'
} >"$IT_DIR/cfr-expect"
assert_same_content "$MNT/cfr-dst" "$IT_DIR/cfr-expect"

step "telldir and seekdir over a merged directory"
rm "$MNT/big/lower-100" "$MNT/big/upper-100"
: >"$MNT/big/created"
got=$(
	python3 - "$MNT/big" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Dirent(ctypes.Structure):
	_fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
		    ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
		    ("d_name", ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]

def rest(d):
	names = []
	while True:
		ent = libc.readdir(d)
		if not ent:
			return names
		names.append(ent.contents.d_name.decode())

d = libc.opendir(os.fsencode(sys.argv[1]))
if not d:
	sys.exit("opendir failed")
names, positions = [], []
while True:
	pos = libc.telldir(d)
	ent = libc.readdir(d)
	if not ent:
		break
	positions.append(pos)
	names.append(ent.contents.d_name.decode())
problems = []
if len(names) != len(set(names)):
	problems.append("duplicates")
expected = {".", "..", "created"} | {"lower-%d" % i for i in range(250)} | \
	{"upper-%d" % i for i in range(250)}
expected -= {"lower-100", "upper-100"}
if set(names) != expected:
	problems.append("listing: missing %s, extra %s" % (sorted(expected - set(names))[:5],
							    sorted(set(names) - expected)[:5]))
for k in (0, 1, 2, 137, 250, 251, 400, len(names) - 1):
	libc.seekdir(d, positions[k])
	if rest(d) != names[k:]:
		problems.append("after seekdir to entry %d" % k)
for k in (len(names) - 1, 300, 10, 0):
	libc.seekdir(d, positions[k])
	ent = libc.readdir(d)
	if not ent or ent.contents.d_name.decode() != names[k]:
		problems.append("single readdir after seekdir to entry %d" % k)
libc.rewinddir(d)
if rest(d) != names:
	problems.append("after rewinddir")
libc.closedir(d)
print("%d entries; %s" % (len(names), "; ".join(problems) or "ok"))
EOF
) || true
assert_eq "$got" "501 entries; ok" "telldir/seekdir over 500 entries from two layers"

finish
