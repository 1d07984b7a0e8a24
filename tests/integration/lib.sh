# shellcheck shell=bash
# The harness every integration test sources: a temp dir per test, views mounted with the jobfs
# daemon (or fuse-overlayfs when JOBFS_PEER=fuse-overlayfs), a trap that unmounts them newest first
# and reaps only the daemons it started, byte-exact manifests of lower trees, and assertions.
#
# Environment:
#   JOBFS_FS             the daemon binary (set by CTest; default: build/fs/jobfs-fs of this tree)
#   JOBFS_TEST_WRAPPER   a program the daemon is started through, the daemon's command line its
#                        arguments (scripts/memcheck.sh sets it to a valgrind wrapper); it must
#                        exec the daemon so that the PID stays the daemon's
#   JOBFS_PEER           "jobfs" (default) or "fuse-overlayfs" to run the same checks against it
#   JOBFS_IT_KEEP_GOING  1: report every failed assertion, fail at the end rather than at the first
#   JOBFS_IT_KEEP        1: keep the temp dir (the views are still unmounted)

set -euo pipefail
set -o errtrace

export TZ=UTC LC_ALL=C
IT_NAME=$(basename "$0" .sh)
IT_SRC=$(cd "$(dirname "$0")" && pwd)
IT_PEER=${JOBFS_PEER:-jobfs}
IT_KEEP_GOING=${JOBFS_IT_KEEP_GOING:-0}
IT_FAILS=0
IT_DIR=""
IT_MOUNTS=()	# mount points, oldest first
IT_PIDS=()	# the daemon serving IT_MOUNTS[i]; reaped by PID only
IT_LOGS=()	# the daemon's stdout and stderr
IT_REAPED=()	# 1 once the daemon of IT_MOUNTS[i] has been waited for
IT_MANIFEST_DIRS=()
IT_MANIFEST_FILES=()

# The xattr that marks an opaque directory. Tests run as root, so the trusted.* namespace.
OPAQUE_XATTR=trusted.overlay.opaque

# --- reporting ------------------------------------------------------------------------------------

step()
{
	echo "--- $IT_NAME: $*"
}

skip()
{
	echo "SKIP: $IT_NAME: $*"
	exit 77
}

fail()
{
	echo "FAIL: $IT_NAME: $*" >&2
	IT_FAILS=$((IT_FAILS + 1))
	if [ "$IT_KEEP_GOING" != 1 ]; then
		exit 1
	fi
}

it_on_err()
{
	echo "FAIL: $IT_NAME: line $1: command exited $2: $3" >&2
}

# --- processes and mounts -------------------------------------------------------------------------

# True while PID exists and is not a zombie. Our daemons are our children, so their PIDs cannot be
# reused before we wait for them.
it_pid_running()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat:0:1}" != Z ]
}

is_mounted()
{
	local mnt
	mnt=$(realpath -m "$1")
	awk -v m="$mnt" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# The per-mount options (field 6 of mountinfo) of the mount at $1.
mount_options()
{
	local mnt
	mnt=$(realpath -m "$1")
	awk -v m="$mnt" '$5 == m { o = $6 } END { print o }' /proc/self/mountinfo
}

# mount_view [-o OPTS] MNT UPPER WORK LOWER... : mounts a view, lowers listed topmost first, with
# the daemon in the foreground as our background child, and waits until MNT is a mount point.
mount_view()
{
	local opts=""
	if [ "$1" = -o ]; then
		opts=$2
		shift 2
	fi
	local mnt=$1 upper=$2 work=$3
	shift 3
	local lowers
	lowers=$(
		IFS=:
		echo "$*"
	)
	mkdir -p "$mnt" "$upper" "$work"
	mnt=$(realpath "$mnt")
	local n=${#IT_MOUNTS[@]}
	local log="$IT_DIR/daemon.$n.log"
	case $IT_PEER in
	jobfs)
		local args=(--lower "$lowers" --upper "$upper" --work "$work" -f)
		if [ -n "$opts" ]; then
			args+=(-o "$opts")
		fi
		${JOBFS_TEST_WRAPPER:+"$JOBFS_TEST_WRAPPER"} "$JOBFS_FS" "${args[@]}" "$mnt" \
			</dev/null >"$log" 2>&1 &
		;;
	fuse-overlayfs)
		local all="lowerdir=$lowers,upperdir=$upper,workdir=$work${opts:+,$opts}"
		fuse-overlayfs -f -o "$all" "$mnt" </dev/null >"$log" 2>&1 &
		;;
	esac
	IT_MOUNTS+=("$mnt")
	IT_PIDS+=("$!")
	IT_LOGS+=("$log")
	IT_REAPED+=(0)
	local pid=$! i
	for ((i = 0; i < 200; i++)); do
		if is_mounted "$mnt"; then
			return 0
		fi
		if ! it_pid_running "$pid"; then
			echo "FAIL: $IT_NAME: the $IT_PEER daemon exited before mounting $mnt" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "FAIL: $IT_NAME: $mnt not mounted after 10 s" >&2
	exit 1
}

# mount_kernel_view OPTS MNT UPPER WORK LOWER... : mounts a kernel overlay over the same layers
# (extra mount options OPTS, may be empty), so a test can check that the kernel reads what the
# daemon wrote; unmounted like the others, even on failure.
mount_kernel_view()
{
	local opts=$1 mnt=$2 upper=$3 work=$4
	shift 4
	local lowers
	lowers=$(
		IFS=:
		echo "$*"
	)
	mkdir -p "$mnt" "$work"
	mnt=$(realpath "$mnt")
	mount -t overlay overlay -o "lowerdir=$lowers,upperdir=$upper,workdir=$work${opts:+,$opts}" \
		"$mnt" || fail "the kernel refused to mount the layers of $mnt with '$opts'"
	IT_MOUNTS+=("$mnt")
	IT_PIDS+=("")
	IT_LOGS+=("")
	IT_REAPED+=(0)
}

# mount_tmpfs DIR SIZE: a size-limited tmpfs at DIR (for a filesystem that fills up), unmounted
# with the views, newest first.
mount_tmpfs()
{
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0755" jobfs-it "$1" || fail "cannot mount a tmpfs on $1"
	IT_MOUNTS+=("$(realpath "$1")")
	IT_PIDS+=("")
	IT_LOGS+=("")
	IT_REAPED+=(0)
}

# it_live_index MNT: prints the index of the newest mount of MNT this test made and has not
# unmounted yet; fails when there is none.
it_live_index()
{
	local mnt i
	mnt=$(realpath -m "$1")
	for ((i = ${#IT_MOUNTS[@]} - 1; i >= 0; i--)); do
		if [ "${IT_MOUNTS[$i]}" = "$mnt" ] && [ "${IT_REAPED[$i]}" = 0 ]; then
			echo "$i"
			return 0
		fi
	done
	return 1
}

# kill_view_daemon MNT: SIGKILLs the daemon this test started for MNT (by its PID), reaps it and
# detaches the dead mount: a crash on purpose, which the exit check must not count as a failure.
kill_view_daemon()
{
	local i pid
	i=$(it_live_index "$1") || {
		fail "kill_view_daemon: $1 was not mounted by this test"
		return 0
	}
	pid=${IT_PIDS[$i]}
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	IT_REAPED[i]=1
	fusermount3 -u "${IT_MOUNTS[$i]}" 2>/dev/null || umount -l "${IT_MOUNTS[$i]}"
}

# view_daemon_pid MNT: the PID of the daemon serving MNT.
view_daemon_pid()
{
	local i
	i=$(it_live_index "$1") || return 1
	echo "${IT_PIDS[$i]}"
}

# new_view NAME [-o OPTS] LOWER... : mounts $IT_DIR/NAME/mnt over the lowers with upper and work
# dirs beside it; sets MNT, UPPER and WORK.
new_view()
{
	local name=$1
	shift
	local opts=()
	if [ "$1" = -o ]; then
		opts=(-o "$2")
		shift 2
	fi
	MNT=$IT_DIR/$name/mnt
	UPPER=$IT_DIR/$name/upper
	WORK=$IT_DIR/$name/work
	mount_view "${opts[@]}" "$MNT" "$UPPER" "$WORK" "$@"
	MNT=$(realpath "$MNT")
}

# Unmounts mount i (if still mounted) and reaps its daemon. Returns non-zero if the daemon did not
# exit cleanly, which catches crashes and sanitizer reports.
it_unmount_index()
{
	local i=$1 mnt=${IT_MOUNTS[$1]} pid=${IT_PIDS[$1]} try rc=0
	if [ "${IT_REAPED[$i]}" = 1 ]; then
		return 0
	fi
	if is_mounted "$mnt"; then
		for ((try = 0; try < 50; try++)); do
			if [ -z "$pid" ]; then
				umount "$mnt" 2>/dev/null && break
			else
				fusermount3 -u "$mnt" 2>/dev/null && break
			fi
			sleep 0.1
		done
		if is_mounted "$mnt"; then
			echo "FAIL: $IT_NAME: $mnt busy, detaching it lazily" >&2
			umount -l "$mnt" || true
			rc=1
		fi
	fi
	if [ -z "$pid" ]; then # a kernel overlay: no daemon
		IT_REAPED[i]=1
		return "$rc"
	fi
	for ((try = 0; try < 100; try++)); do
		it_pid_running "$pid" || break
		sleep 0.1
	done
	if it_pid_running "$pid"; then
		echo "FAIL: $IT_NAME: daemon $pid still running 10 s after unmount, killing it" >&2
		kill -TERM "$pid" 2>/dev/null || true
		sleep 1
		kill -KILL "$pid" 2>/dev/null || true
		rc=1
	fi
	local status=0
	wait "$pid" 2>/dev/null || status=$?
	IT_REAPED[i]=1
	if [ "$status" -ne 0 ]; then
		echo "FAIL: $IT_NAME: daemon of $mnt exited with status $status" >&2
		rc=1
	fi
	return "$rc"
}

# Unmounts every view, newest first.
unmount_all()
{
	local i rc=0
	for ((i = ${#IT_MOUNTS[@]} - 1; i >= 0; i--)); do
		it_unmount_index "$i" || rc=1
	done
	return "$rc"
}

# Unmounts the newest mount of MNT (to remount it or to inspect the layers at rest).
unmount_view()
{
	local i
	if i=$(it_live_index "$1"); then
		it_unmount_index "$i" || fail "unmounting $1"
	else
		fail "unmount_view: $1 was not mounted by this test"
	fi
}

it_print_logs()
{
	local log
	for log in "${IT_LOGS[@]}"; do
		if [ -s "$log" ]; then
			echo "--- $IT_NAME: $(basename "$log") (last 40 lines)" >&2
			tail -n 40 "$log" >&2
		fi
	done
}

it_on_exit()
{
	local status=$?
	trap - ERR
	set +e
	cd / || true
	if ! unmount_all && [ "$status" -eq 0 ]; then
		status=1
	fi
	if [ "$IT_FAILS" -gt 0 ] && [ "$status" -eq 0 ]; then
		status=1
	fi
	if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
		it_print_logs
	fi
	if [ -n "$IT_DIR" ] && [ -d "$IT_DIR" ]; then
		if awk -v d="$IT_DIR/" 'index($5, d) == 1 { found = 1 } END { exit !found }' \
			/proc/self/mountinfo; then
			echo "FAIL: $IT_NAME: still mounted under $IT_DIR, not removing it" >&2
			status=1
		elif [ "${JOBFS_IT_KEEP:-0}" = 1 ]; then
			echo "--- $IT_NAME: kept $IT_DIR"
		else
			rm -rf --one-file-system "$IT_DIR"
		fi
	fi
	exit "$status"
}

# --- manifests ------------------------------------------------------------------------------------

# manifest DIR: one line per entry under DIR (itself included), sorted: path, type, mode, owner,
# size, mtime and ctime in ns, inode, link count, device number, symlink target, xattrs of every
# namespace and the SHA-256 of the content. Walks with directory descriptors, so trees deeper than
# PATH_MAX work.
manifest()
{
	python3 - "$1" <<'EOF'
import hashlib, os, stat, sys

def xattrs(dfd, name):
	path = "/proc/self/fd/%d/%s" % (dfd, name)
	out = []
	for key in sorted(os.listxattr(path, follow_symlinks=False)):
		out.append("%s=%s" % (key, os.getxattr(path, key, follow_symlinks=False).hex()))
	return ",".join(out)

def describe(rel, dfd, name):
	st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
	mode = st.st_mode
	fields = [repr(rel), stat.filemode(mode), "%04o" % stat.S_IMODE(mode),
		  "%d:%d" % (st.st_uid, st.st_gid), str(st.st_size), str(st.st_mtime_ns),
		  str(st.st_ctime_ns), "ino=%d" % st.st_ino, "nlink=%d" % st.st_nlink]
	if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
		fields.append("rdev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
	if stat.S_ISLNK(mode):
		fields.append("target=%r" % os.readlink(name, dir_fd=dfd))
	fields.append("xattrs=" + xattrs(dfd, name))
	if stat.S_ISREG(mode):
		fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
		h = hashlib.sha256()
		with os.fdopen(fd, "rb") as f:
			for chunk in iter(lambda: f.read(1 << 20), b""):
				h.update(chunk)
		fields.append("sha256=" + h.hexdigest())
	print(" ".join(fields))
	return mode

def walk(rel, dfd):
	for name in sorted(os.listdir(dfd)):
		sub = rel + "/" + name
		mode = describe(sub, dfd, name)
		if stat.S_ISDIR(mode):
			fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
			try:
				walk(sub, fd)
			finally:
				os.close(fd)

root = sys.argv[1]
parent = os.open(os.path.dirname(os.path.abspath(root)) or "/", os.O_RDONLY | os.O_DIRECTORY)
describe(".", parent, os.path.basename(os.path.abspath(root)))
top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
walk(".", top)
EOF
}

# snapshot_lower DIR...: records the manifest of each lower; finish checks them.
snapshot_lower()
{
	local dir file
	for dir in "$@"; do
		file="$IT_DIR/manifest.${#IT_MANIFEST_DIRS[@]}"
		manifest "$dir" >"$file"
		IT_MANIFEST_DIRS+=("$dir")
		IT_MANIFEST_FILES+=("$file")
	done
}

assert_lowers_unchanged()
{
	local i now
	for i in "${!IT_MANIFEST_DIRS[@]}"; do
		now="${IT_MANIFEST_FILES[$i]}.now"
		manifest "${IT_MANIFEST_DIRS[$i]}" >"$now"
		if ! diff -u "${IT_MANIFEST_FILES[$i]}" "$now" >&2; then
			fail "lower ${IT_MANIFEST_DIRS[$i]} changed (diff above: - before, + after)"
		fi
	done
}

# finish: unmounts every view (so the daemons flush and exit), checks the daemons exited cleanly and
# the lowers are byte-identical to their snapshots, and reports the result.
finish()
{
	step "unmounting and checking the lowers"
	cd /
	unmount_all || fail "unmounting the views"
	assert_lowers_unchanged
	if [ "$IT_FAILS" -gt 0 ]; then
		echo "FAIL: $IT_NAME: $IT_FAILS failed checks" >&2
		exit 1
	fi
	echo "PASS: $IT_NAME"
}

# --- assertions -----------------------------------------------------------------------------------

# check DESC CMD...: CMD must succeed.
check()
{
	local desc=$1
	shift
	local out
	if ! out=$("$@" 2>&1); then
		fail "$desc: '$*' failed: $out"
	fi
}

# check_fails DESC CMD...: CMD must fail.
check_fails()
{
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		fail "$desc: '$*' succeeded, expected failure"
	fi
}

assert_eq()
{
	if [ "$1" != "$2" ]; then
		fail "$3: got '$1', expected '$2'"
	fi
}

assert_ne()
{
	if [ "$1" = "$2" ]; then
		fail "$3: got '$1', expected anything else"
	fi
}

# assert_content PATH TEXT: the file holds exactly TEXT (trailing newlines ignored on both sides).
assert_content()
{
	local got
	if ! got=$(cat -- "$1" 2>&1); then
		fail "cannot read $1: $got"
		return 0
	fi
	if [ "$got" != "$2" ]; then
		fail "content of $1: got '$got', expected '$2'"
	fi
}

# assert_same_content A B: byte-identical files.
assert_same_content()
{
	if ! cmp -- "$1" "$2" >&2; then
		fail "$1 and $2 differ"
	fi
}

assert_exists()
{
	if ! [ -e "$1" ] && ! [ -L "$1" ]; then
		fail "$1 should exist"
	fi
}

assert_missing()
{
	if [ -e "$1" ] || [ -L "$1" ]; then
		fail "$1 should not exist, it is a $(stat -c %F -- "$1")"
	fi
}

# assert_type PATH TYPE: TYPE as stat -c %F prints it ("regular file", "directory", "fifo", ...).
assert_type()
{
	local got
	got=$(stat -c %F -- "$1" 2>&1) || true
	assert_eq "$got" "$2" "type of $1"
}

assert_whiteout()
{
	local got
	got=$(stat -c '%F %t:%T' -- "$1" 2>&1) || true
	assert_eq "$got" "character special file 0:0" "$1 should be a whiteout"
}

assert_opaque()
{
	assert_eq "$(xattr_of "$1" "$OPAQUE_XATTR")" y "$OPAQUE_XATTR of $1"
}

# assert_listing DIR NAME...: the directory lists exactly these names (order ignored).
assert_listing()
{
	local dir=$1 got want
	shift
	got=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>&1 | LC_ALL=C sort |
		tr '\n' ' ') || true
	want=$(printf '%s\n' "$@" | LC_ALL=C sort | tr '\n' ' ')
	if [ $# -eq 0 ]; then
		want=""
	fi
	assert_eq "$got" "$want" "listing of $dir"
}

# assert_stat PATH FORMAT WANT: stat -c FORMAT PATH prints WANT.
assert_stat()
{
	local got
	got=$(stat -c "$2" -- "$1" 2>&1) || true
	assert_eq "$got" "$3" "stat -c '$2' $1"
}

# xattr_of PATH NAME: prints the value of xattr NAME of PATH (not following a final symlink), or the
# error getfattr gives.
# assert_copied_up UPPER_FILE LOWER_FILE REDIRECT: the upper holds a copy of the lower file: its
# data, or (a metacopy) its size and a redirect to it.
assert_copied_up()
{
	local up=$1 low=$2 redirect=$3
	if getfattr -h -n trusted.overlay.metacopy -- "$up" >/dev/null 2>&1; then
		assert_eq "$(stat -c %s "$up")" "$(stat -c %s "$low")" "size of the metacopy $up"
		assert_eq "$(xattr_of "$up" trusted.overlay.redirect)" "$redirect" "redirect of $up"
	else
		assert_same_content "$up" "$low"
	fi
}

xattr_of()
{
	getfattr -h --absolute-names --only-values -n "$2" -- "$1" 2>&1 || true
}

# hole_map PATH: prints "HOLE DATA": where the first hole starts (SEEK_HOLE from 0) and where data
# starts again after it (SEEK_DATA from there), or the error.
hole_map()
{
	python3 - "$1" <<'EOF'
import errno, os, sys
try:
	fd = os.open(sys.argv[1], os.O_RDONLY)
	hole = os.lseek(fd, 0, os.SEEK_HOLE)
	print(hole, os.lseek(fd, hole, os.SEEK_DATA))
except OSError as e:
	print(errno.errorcode.get(e.errno, e.errno))
EOF
}

# --- set-up ---------------------------------------------------------------------------------------

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root"
fi
if ! [ -c /dev/fuse ]; then
	skip "needs /dev/fuse"
fi
command -v fusermount3 >/dev/null || skip "needs fusermount3"
case $IT_PEER in
jobfs)
	JOBFS_FS=${JOBFS_FS:-$IT_SRC/../../build/fs/jobfs-fs}
	[ -x "$JOBFS_FS" ] || {
		echo "FAIL: $IT_NAME: daemon '$JOBFS_FS' not found; build first or set JOBFS_FS" >&2
		exit 1
	}
	;;
fuse-overlayfs)
	command -v fuse-overlayfs >/dev/null || skip "needs fuse-overlayfs"
	;;
*)
	echo "FAIL: $IT_NAME: unknown JOBFS_PEER '$IT_PEER'" >&2
	exit 1
	;;
esac

IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jobfs-it-$IT_NAME.XXXXXX")
IT_DIR=$(realpath "$IT_DIR")
trap it_on_exit EXIT
trap 'echo "FAIL: $IT_NAME: terminated" >&2; exit 143' TERM
trap 'echo "FAIL: $IT_NAME: interrupted" >&2; exit 130' INT
trap 'it_on_err "$LINENO" "$?" "$BASH_COMMAND"' ERR
echo "--- $IT_NAME: peer $IT_PEER, temp dir $IT_DIR"
