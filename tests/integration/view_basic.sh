#!/usr/bin/env bash
# Basic view behaviour: reading the merged lowers, creating and changing files, directories,
# symlinks, a fifo and a unix socket, statfs; every write lands in the upper.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

L1=$IT_DIR/l1
L2=$IT_DIR/l2
mkdir -p "$L1/dir" "$L2/dir" "$L2/empty" "$L2/full"
printf 'lower2 a\n' >"$L2/a.txt"
printf 'from L2\n' >"$L2/shared.txt"
printf 'from L1\n' >"$L1/shared.txt"
printf 'x2\n' >"$L2/dir/x"
printf 'x1\n' >"$L1/dir/x"
printf 'o2\n' >"$L2/dir/only2"
printf 'o1\n' >"$L1/dir/only1"
printf 'top\n' >"$L1/top.txt"
printf 'keep\n' >"$L2/full/keep"
head -c 300000 /dev/urandom >"$L2/bin.dat"
ln -s a.txt "$L2/lnk"
snapshot_lower "$L1" "$L2"
new_view v "$L1" "$L2"

step "reading the lowers through the view"
assert_content "$MNT/a.txt" "lower2 a"
assert_content "$MNT/shared.txt" "from L1"
assert_content "$MNT/dir/x" "x1"
assert_content "$MNT/dir/only2" "o2"
assert_listing "$MNT/dir" only1 only2 x
assert_listing "$MNT" a.txt bin.dat dir empty full lnk shared.txt top.txt
assert_same_content "$MNT/bin.dat" "$L2/bin.dat"
assert_eq "$(readlink "$MNT/lnk")" "a.txt" "readlink of a lower symlink"
assert_content "$MNT/lnk" "lower2 a"

step "creating and writing files"
printf 'brand new\n' >"$MNT/new.txt"
assert_content "$MNT/new.txt" "brand new"
assert_content "$UPPER/new.txt" "brand new"
printf 'overwritten\n' >"$MNT/a.txt"
assert_content "$MNT/a.txt" "overwritten"
assert_content "$UPPER/a.txt" "overwritten"
assert_content "$L2/a.txt" "lower2 a"
printf 'more\n' >>"$MNT/top.txt"
assert_content "$MNT/top.txt" "$(printf 'top\nmore')"
assert_content "$UPPER/top.txt" "$(printf 'top\nmore')"
truncate -s 3 "$MNT/shared.txt"
assert_content "$MNT/shared.txt" "fro"
assert_stat "$MNT/shared.txt" %s 3
assert_stat "$UPPER/shared.txt" %s 3
truncate -s 20 "$MNT/new.txt"
assert_stat "$MNT/new.txt" %s 20
assert_eq "$(od -An -tx1 -j 15 -N 1 "$MNT/new.txt" | tr -d ' ')" 00 \
	"byte 15 after an extending truncate"
dd if=/dev/zero of="$MNT/bin.dat" bs=1 count=4 seek=1000 conv=notrunc status=none
head -c 1000 "$L2/bin.dat" >"$IT_DIR/expect.dat"
head -c 4 /dev/zero >>"$IT_DIR/expect.dat"
tail -c +1005 "$L2/bin.dat" >>"$IT_DIR/expect.dat"
assert_same_content "$MNT/bin.dat" "$IT_DIR/expect.dat"
assert_same_content "$UPPER/bin.dat" "$IT_DIR/expect.dat"
printf 'via symlink\n' >"$MNT/lnk"
assert_content "$MNT/a.txt" "via symlink"
assert_type "$MNT/lnk" "symbolic link"

step "directories"
mkdir "$MNT/newdir"
mkdir -p "$MNT/newdir/sub/deeper"
printf 'deep\n' >"$MNT/newdir/sub/deeper/f"
assert_content "$MNT/newdir/sub/deeper/f" "deep"
assert_content "$UPPER/newdir/sub/deeper/f" "deep"
assert_type "$UPPER/newdir/sub" directory
check_fails "rmdir of a non-empty dir" rmdir "$MNT/newdir/sub"
check_fails "rmdir of a non-empty lower dir" rmdir "$MNT/full"
mkdir "$MNT/newdir/gone"
check "rmdir of an empty new dir" rmdir "$MNT/newdir/gone"
assert_missing "$MNT/newdir/gone"
check "rmdir of an empty lower dir" rmdir "$MNT/empty"
assert_missing "$MNT/empty"
assert_exists "$L2/empty"
mkdir "$MNT/dir/sub"
assert_listing "$MNT/dir" only1 only2 x sub
assert_type "$UPPER/dir/sub" directory

step "symlinks"
ln -s "../a.txt" "$MNT/dir/up-link"
assert_eq "$(readlink "$MNT/dir/up-link")" "../a.txt" "readlink of a new symlink"
assert_eq "$(readlink "$UPPER/dir/up-link")" "../a.txt" "the upper symlink target"
assert_content "$MNT/dir/up-link" "via symlink"
ln -s "/nonexistent/target/$(printf 'x%.0s' {1..200})" "$MNT/dangling"
assert_eq "$(readlink "$MNT/dangling")" "/nonexistent/target/$(printf 'x%.0s' {1..200})" \
	"readlink of a long dangling symlink"

step "fifo"
mkfifo "$MNT/fifo"
assert_type "$MNT/fifo" fifo
assert_type "$UPPER/fifo" fifo
# shellcheck disable=SC2016 # the script takes the path as "$1"
got=$(timeout 10 sh -c 'echo ping >"$1" & read -r line <"$1"; wait; echo "$line"' _ "$MNT/fifo")
assert_eq "$got" ping "a line through the fifo"

step "unix socket"
got=$(
	timeout 10 python3 - "$MNT/sock" <<'EOF'
import os, socket, stat, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cli.connect(path)
conn, _ = srv.accept()
cli.sendall(b"hello")
print(stat.S_ISSOCK(os.lstat(path).st_mode), conn.recv(5).decode())
EOF
) || true
assert_eq "$got" "True hello" "bind, connect and send on a socket in the view"
assert_type "$UPPER/sock" socket

step "statfs"
check "df on the view" df "$MNT"
check "stat -f on the view" stat -f "$MNT"
blocks=$(stat -f -c %b "$MNT")
assert_ne "$blocks" 0 "total blocks of the view"
assert_eq "$(stat -f -c %l "$MNT")" 255 "maximum name length"

step "deleting new files"
rm "$MNT/new.txt"
assert_missing "$MNT/new.txt"
assert_listing "$MNT/newdir" sub
rm -r "$MNT/newdir"
assert_missing "$MNT/newdir"

finish
