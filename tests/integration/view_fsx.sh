#!/usr/bin/env bash
# fsx (integration/fsx.c) on a view: seeded random reads, writes, truncates, fallocate, hole
# punches, mmap reads and writes and copy_file_range, every byte read checked against a model, on a
# lower file (copied up by its first write), on a file created in the view and on a small lower
# file with a check after every op. Then the upper must hold what the view showed and the lower
# must be untouched.
# Long mode: JOBFS_FSX_OPS=N sets the op count of each run; JOBFS_FSX_SEED=S the first seed.
# JOBFS_FSX_VIEW_OPTS=OPTS mounts the view with -o OPTS (CTest runs it with open_files too).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

FSX=${JOBFS_BUILD:-$IT_SRC/../../build}/tests/fsx
if ! [ -x "$FSX" ]; then
	echo "FAIL: $IT_NAME: '$FSX' not found; build the fsx target or set JOBFS_BUILD" >&2
	exit 1
fi
OPS=${JOBFS_FSX_OPS:-6000}
SEED=${JOBFS_FSX_SEED:-1}

# random_file PATH SIZE SEED: SIZE pseudo-random bytes, the same for a SEED on every run.
random_file()
{
	python3 -c 'import random, sys
random.seed(int(sys.argv[2]))
sys.stdout.buffer.write(random.randbytes(int(sys.argv[1])))' "$2" "$3" >"$1"
}

# run_fsx NAME ARGS...: runs fsx ARGS and shows its output. A mismatch fails the test, and so does
# an op kind the view turns out not to offer: every kind must have been exercised.
run_fsx()
{
	local name=$1 log=$IT_DIR/fsx-$1.log rc=0
	shift
	step "fsx $name: fsx $*"
	"$FSX" "$@" >"$log" 2>&1 || rc=$?
	cat "$log"
	if [ "$rc" -ne 0 ]; then
		fail "fsx $name exited $rc: the report is above"
	elif grep -q "^fsx: warning:" "$log"; then
		fail "fsx $name: the view does not offer an op fsx needs"
	fi
}

L=$IT_DIR/lower
mkdir -p "$L/dir"
random_file "$L/dir/data.bin" 1048576 1
random_file "$L/src.bin" 300000 2
random_file "$L/src2.bin" 150000 3
random_file "$L/small.bin" 20000 4
random_file "$L/small-src.bin" 9000 5
snapshot_lower "$L"
if [ -n "${JOBFS_FSX_VIEW_OPTS:-}" ]; then
	new_view v -o "$JOBFS_FSX_VIEW_OPTS" "$L"
else
	new_view v "$L"
fi
for f in dir/data.bin src.bin src2.bin small.bin small-src.bin; do
	assert_same_content "$MNT/$f" "$L/$f"
done

run_fsx lower -N "$OPS" -S "$SEED" -l 2M -o 64K "$MNT/dir/data.bin" "$MNT/src.bin"
assert_exists "$UPPER/dir/data.bin"

mkdir "$MNT/new"
run_fsx new -N "$OPS" -S "$((SEED + 1))" -l 1M -o 128K "$MNT/new/fresh.bin" "$MNT/src2.bin"

# Small files and short ops keep every op near page edges and the end of file; -v 1 checks the
# whole file after each op, so a failure names the op that caused it.
run_fsx small -N "$((OPS / 2))" -S "$((SEED + 2))" -l 64K -o 12K -v 1 "$MNT/small.bin" \
	"$MNT/small-src.bin"

step "the upper holds what the view showed"
declare -A seen
files=(dir/data.bin src.bin new/fresh.bin src2.bin small.bin small-src.bin)
for f in "${files[@]}"; do
	seen[$f]=$(sha256sum <"$MNT/$f")
done
unmount_view "$MNT"
for f in "${files[@]}"; do
	if [ -e "$UPPER/$f" ]; then
		assert_eq "$(sha256sum <"$UPPER/$f")" "${seen[$f]}" "content of upper/$f"
	else
		assert_eq "$(sha256sum <"$L/$f")" "${seen[$f]}" "content of $f, never copied up"
	fi
done

finish
