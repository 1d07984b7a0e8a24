#!/usr/bin/env bash
# Rename: files from the lower and the upper, lower-only and merged directories (the whole subtree
# moves, nothing stays behind at the old name), RENAME_NOREPLACE, RENAME_EXCHANGE, and renames over
# existing names.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

# renameat2 FLAG OLD NEW: FLAG is noreplace or exchange; prints OK or the errno name.
renameat2()
{
	python3 - "$@" <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
			   ctypes.c_uint]
AT_FDCWD = -100
flags = {"noreplace": 1, "exchange": 2}[sys.argv[1]]
if libc.renameat2(AT_FDCWD, os.fsencode(sys.argv[2]), AT_FDCWD, os.fsencode(sys.argv[3]),
		  flags) == 0:
	print("OK")
else:
	print(errno.errorcode[ctypes.get_errno()])
EOF
}

# rename_sys OLD NEW: rename(2) itself (mv would fall back to copying on EXDEV); prints OK or the
# errno name.
rename_sys()
{
	python3 - "$@" <<'EOF'
import errno, os, sys
try:
	os.rename(sys.argv[1], sys.argv[2])
	print("OK")
except OSError as e:
	print(errno.errorcode[e.errno])
EOF
}

# tree DIR: relative paths, types and contents under DIR, one per line.
tree()
{
	(
		cd "$1" 2>/dev/null || {
			echo "cannot enter $1"
			exit 0
		}
		find . -mindepth 1 -printf '%P %y\n' | LC_ALL=C sort
		find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -r sha256sum
	)
}

L1=$IT_DIR/l1
L2=$IT_DIR/l2
mkdir -p "$L2/ldir/sub/subsub" "$L2/merged/sub" "$L1/merged/sub" "$L2/emptydir" "$L2/fulldir"
mkdir -p "$L2/mergedempty" "$L1/mergedempty" "$L2/target"
for f in lf.txt lf3.txt over-src over-dst x.txt y.txt nr-src nr-dst ldir/a ldir/sub/b \
	ldir/sub/subsub/c merged/m2 merged/sub/x2 fulldir/f mergedempty/e2; do
	printf 'lower %s\n' "$f" >"$L2/$f"
done
printf 'upper layer merged/m1\n' >"$L1/merged/m1"
printf 'upper layer merged/sub/x1\n' >"$L1/merged/sub/x1"
printf 'l1 mergedempty/e1\n' >"$L1/mergedempty/e1"
ln -s a "$L2/ldir/link-to-a"
snapshot_lower "$L1" "$L2"
new_view v "$L1" "$L2"
tree "$MNT/ldir" >"$IT_DIR/ldir.tree"
tree "$MNT/merged" >"$IT_DIR/merged.tree"

step "renaming files"
assert_eq "$(rename_sys "$MNT/lf.txt" "$MNT/lf2.txt")" OK "rename(2) of a lower file"
assert_missing "$MNT/lf.txt"
assert_content "$MNT/lf2.txt" "lower lf.txt"
assert_copied_up "$UPPER/lf2.txt" "$L2/lf.txt" /lf.txt
printf 'made in the view\n' >"$MNT/u1"
assert_eq "$(rename_sys "$MNT/u1" "$MNT/u2")" OK "rename(2) of an upper file"
assert_missing "$MNT/u1"
assert_missing "$UPPER/u1"
assert_content "$MNT/u2" "made in the view"
assert_eq "$(rename_sys "$MNT/lf3.txt" "$MNT/target/moved.txt")" OK \
	"rename(2) of a lower file to another dir"
assert_missing "$MNT/lf3.txt"
assert_content "$MNT/target/moved.txt" "lower lf3.txt"
assert_listing "$MNT/target" moved.txt
mv "$MNT/lf2.txt" "$MNT/lf.txt"
assert_content "$MNT/lf.txt" "lower lf.txt"
assert_missing "$MNT/lf2.txt"

step "renaming over an existing file"
mv -f "$MNT/over-src" "$MNT/over-dst"
assert_missing "$MNT/over-src"
assert_content "$MNT/over-dst" "lower over-src"
printf 'one\n' >"$MNT/up-a"
printf 'two\n' >"$MNT/up-b"
mv -f "$MNT/up-a" "$MNT/up-b"
assert_content "$MNT/up-b" one
assert_missing "$MNT/up-a"

step "renaming a lower-only directory"
assert_eq "$(rename_sys "$MNT/ldir" "$MNT/ldir2")" OK "rename(2) of a lower-only dir"
assert_missing "$MNT/ldir"
tree "$MNT/ldir2" >"$IT_DIR/ldir2.tree"
assert_same_content "$IT_DIR/ldir2.tree" "$IT_DIR/ldir.tree"
printf 'changed\n' >"$MNT/ldir2/sub/b"
assert_content "$MNT/ldir2/sub/b" changed
assert_eq "$(readlink "$MNT/ldir2/link-to-a")" a "a symlink inside the moved dir"
mkdir "$MNT/ldir"
assert_listing "$MNT/ldir"
printf 'new\n' >"$MNT/ldir/n"
assert_listing "$MNT/ldir" n

step "renaming a merged directory"
assert_eq "$(rename_sys "$MNT/merged" "$MNT/target/merged2")" OK "rename(2) of a merged dir"
assert_missing "$MNT/merged"
tree "$MNT/target/merged2" >"$IT_DIR/merged2.tree"
assert_same_content "$IT_DIR/merged2.tree" "$IT_DIR/merged.tree"
assert_content "$MNT/target/merged2/m1" "upper layer merged/m1"
assert_content "$MNT/target/merged2/sub/x2" "lower merged/sub/x2"
rm "$MNT/target/merged2/m2"
assert_listing "$MNT/target/merged2" m1 sub
mkdir "$MNT/merged"
assert_listing "$MNT/merged"
assert_eq "$(rename_sys "$MNT/target/merged2" "$MNT/merged2")" OK "rename(2) of a moved dir"
assert_listing "$MNT/merged2" m1 sub
assert_listing "$MNT/merged2/sub" x1 x2

step "renaming directories over directories"
mkdir "$MNT/newdir"
printf 'n\n' >"$MNT/newdir/f"
assert_eq "$(rename_sys "$MNT/newdir" "$MNT/emptydir")" OK "rename(2) over an empty lower dir"
assert_listing "$MNT/emptydir" f
assert_missing "$MNT/newdir"
mkdir "$MNT/newdir2"
assert_eq "$(rename_sys "$MNT/newdir2" "$MNT/fulldir")" ENOTEMPTY "rename(2) over a non-empty dir"
assert_listing "$MNT/fulldir" f
rm "$MNT/mergedempty/e1" "$MNT/mergedempty/e2"
assert_eq "$(rename_sys "$MNT/newdir2" "$MNT/mergedempty")" OK \
	"rename(2) over a dir holding only whiteouts"
assert_listing "$MNT/mergedempty"

step "RENAME_NOREPLACE"
assert_eq "$(renameat2 noreplace "$MNT/nr-src" "$MNT/nr-dst")" EEXIST "noreplace over a lower file"
assert_content "$MNT/nr-src" "lower nr-src"
assert_content "$MNT/nr-dst" "lower nr-dst"
rm "$MNT/nr-dst"
assert_eq "$(renameat2 noreplace "$MNT/nr-src" "$MNT/nr-dst")" OK "noreplace over a deleted name"
assert_content "$MNT/nr-dst" "lower nr-src"
assert_missing "$MNT/nr-src"
assert_eq "$(renameat2 noreplace "$MNT/nr-dst" "$MNT/nr-fresh")" OK "noreplace to a new name"
assert_content "$MNT/nr-fresh" "lower nr-src"

step "RENAME_EXCHANGE"
assert_eq "$(renameat2 exchange "$MNT/x.txt" "$MNT/y.txt")" OK "exchange of two lower files"
assert_content "$MNT/x.txt" "lower y.txt"
assert_content "$MNT/y.txt" "lower x.txt"
printf 'upper file\n' >"$MNT/z.txt"
assert_eq "$(renameat2 exchange "$MNT/x.txt" "$MNT/z.txt")" OK \
	"exchange of a lower and an upper file"
assert_content "$MNT/x.txt" "upper file"
assert_content "$MNT/z.txt" "lower y.txt"
assert_eq "$(renameat2 exchange "$MNT/x.txt" "$MNT/ldir2")" OK "exchange of a file and a dir"
assert_type "$MNT/x.txt" directory
assert_content "$MNT/ldir2" "upper file"
assert_content "$MNT/x.txt/sub/b" changed
assert_eq "$(renameat2 exchange "$MNT/x.txt" "$MNT/missing")" ENOENT "exchange with a missing name"

step "the result survives a remount"
unmount_view "$MNT"
mount_view "$MNT" "$UPPER" "$WORK" "$L1" "$L2"
assert_listing "$MNT" emptydir fulldir ldir lf.txt merged merged2 mergedempty nr-fresh over-dst \
	target u2 up-b x.txt y.txt z.txt ldir2
assert_listing "$MNT/merged"
assert_listing "$MNT/merged2/sub" x1 x2
assert_listing "$MNT/x.txt" a link-to-a sub
assert_content "$MNT/x.txt/sub/subsub/c" "lower ldir/sub/subsub/c"

finish
