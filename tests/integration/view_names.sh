#!/usr/bin/env bash
# Names and paths: 255-byte names work and 256-byte names give ENAMETOOLONG for every kind of call;
# trees deeper than PATH_MAX work, in the lower (read, copy-up, delete) and in the upper.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
mkdir -p "$L1"
n255=$(printf 'n%.0s' {1..255})
n254=$(printf 'm%.0s' {1..254})
printf 'long lower name\n' >"$L1/$n255"
mkdir "$L1/$n254"
printf 'inside\n' >"$L1/$n254/$n255"
# A lower tree 40 levels of 200-byte names deep (over 8000 bytes, twice PATH_MAX), built with
# relative opens.
python3 - "$L1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for i in range(40):
	name = "%03d" % i + "d" * 197
	os.mkdir(name, dir_fd=fd)
	sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
	os.close(fd)
	fd = sub
f = os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
os.write(f, b"lower bottom\n")
os.close(f)
f = os.open("doomed", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
os.close(f)
EOF
snapshot_lower "$L1"
new_view v "$L1"

step "255-byte names work"
assert_content "$MNT/$n255" "long lower name"
assert_content "$MNT/$n254/$n255" inside
printf 'changed\n' >"$MNT/$n254/$n255"
assert_content "$UPPER/$n254/$n255" changed
rm "$MNT/$n255"
assert_missing "$MNT/$n255"
assert_whiteout "$UPPER/$n255"
got=$(
	python3 - "$MNT" <<'EOF'
import errno, os, sys
mnt = sys.argv[1]
ok, long = "a" * 255, "b" * 256
res = []
def attempt(what, fn):
	try:
		fn()
		res.append(what + ":OK")
	except OSError as e:
		res.append(what + ":" + errno.errorcode[e.errno])
# 255 bytes: every call works.
attempt("create255", lambda: os.close(os.open(os.path.join(mnt, ok), os.O_CREAT | os.O_WRONLY)))
attempt("stat255", lambda: os.stat(os.path.join(mnt, ok)))
attempt("listed255", lambda: None if ok in os.listdir(mnt) else os.stat("/nonexistent"))
attempt("rename255", lambda: os.rename(os.path.join(mnt, ok), os.path.join(mnt, "c" * 255)))
attempt("mkdir255", lambda: os.mkdir(os.path.join(mnt, "d" * 255)))
attempt("symlink255", lambda: os.symlink("x", os.path.join(mnt, "e" * 255)))
attempt("unlink255", lambda: os.unlink(os.path.join(mnt, "c" * 255)))
# 256 bytes: ENAMETOOLONG, whatever the call.
p = os.path.join(mnt, long)
attempt("create256", lambda: os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
attempt("stat256", lambda: os.stat(p))
attempt("mkdir256", lambda: os.mkdir(p))
attempt("symlink256", lambda: os.symlink("x", p))
attempt("mkfifo256", lambda: os.mkfifo(p))
attempt("link256", lambda: os.link(os.path.join(mnt, "e" * 255), p, follow_symlinks=False))
attempt("rename256", lambda: os.rename(os.path.join(mnt, "e" * 255), p))
print(" ".join(res))
EOF
) || true
assert_eq "$got" "create255:OK stat255:OK listed255:OK rename255:OK mkdir255:OK symlink255:OK\
 unlink255:OK create256:ENAMETOOLONG stat256:ENAMETOOLONG mkdir256:ENAMETOOLONG\
 symlink256:ENAMETOOLONG mkfifo256:ENAMETOOLONG link256:ENAMETOOLONG rename256:ENAMETOOLONG" \
	"calls with 255- and 256-byte names"

step "paths longer than PATH_MAX"
got=$(
	python3 - "$MNT" "$UPPER" <<'EOF'
import errno, os, sys

def descend(root, names, create):
	fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
	for name in names:
		if create:
			os.mkdir(name, dir_fd=fd)
		sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
		os.close(fd)
		fd = sub
	return fd

def read(fd, name):
	f = os.open(name, os.O_RDONLY, dir_fd=fd)
	try:
		return os.read(f, 100).decode().strip()
	finally:
		os.close(f)

mnt, upper = sys.argv[1], sys.argv[2]
res = []
lower_names = ["%03d" % i + "d" * 197 for i in range(40)]
try:
	# The deep lower tree: read, write (copy-up of 40 parents), delete, create.
	fd = descend(mnt, lower_names, False)
	res.append(read(fd, "bottom"))
	f = os.open("bottom", os.O_WRONLY | os.O_APPEND, dir_fd=fd)
	os.write(f, b"appended\n")
	os.close(f)
	res.append(read(fd, "bottom").replace("\n", "+"))
	os.unlink("doomed", dir_fd=fd)
	res.append(str(sorted(os.listdir(fd))))
	os.close(fd)
	up = descend(upper, lower_names, False)
	res.append(read(up, "bottom").replace("\n", "+"))
	os.close(up)
	# A new deep tree in the view.
	new_names = ["%03d" % i + "n" * 197 for i in range(40)]
	fd = descend(mnt, new_names, True)
	f = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
	os.write(f, b"new leaf\n")
	os.close(f)
	res.append(read(fd, "leaf"))
	os.close(fd)
	up = descend(upper, new_names, False)
	res.append(read(up, "leaf"))
	os.close(up)
except OSError as e:
	res.append("error " + errno.errorcode[e.errno] + " " + str(e)[:200])
print("|".join(res))
EOF
) || true
assert_eq "$got" \
	"lower bottom|lower bottom+appended|['bottom']|lower bottom+appended|new leaf|new leaf" \
	"reading, writing, deleting and creating 40 levels deep"

finish
