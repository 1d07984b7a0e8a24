#!/usr/bin/env bash
# The main job: installs what the build needs, builds jobfs, then demonstrates a view. It makes an
# example lower dir, mounts a view over it with the jobfs daemon, writes, changes and deletes files
# through the view, and shows that every change landed in the upper while the lower stayed
# byte-identical. The view is unmounted and the temp dir removed even on failure.
#
# usage: scripts/main-job.sh [--build-dir DIR]   (default build/)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$root/build
if [ "${1:-}" = --build-dir ] && [ $# -ge 2 ]; then
	build_dir=$2
elif [ $# -gt 0 ]; then
	echo "main-job.sh: unknown argument '$1'; usage: scripts/main-job.sh [--build-dir DIR]" >&2
	exit 2
fi

bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build_dir"
cmake --build "$build_dir" --parallel "$(nproc)"
daemon=$build_dir/fs/jobfs-fs

if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/fuse ]; then
	echo "main-job.sh: the demo needs root and /dev/fuse" >&2
	exit 1
fi

demo=$(mktemp -d "${TMPDIR:-/tmp}/jobfs-demo.XXXXXX")
demo=$(realpath "$demo")
lower=$demo/lower
upper=$demo/upper
work=$demo/work
view=$demo/view
daemon_pid=""

is_mounted()
{
	awk -v m="$view" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# True while our daemon exists and is not a zombie (it stays one until we wait for it).
daemon_running()
{
	local state
	state=$(cat "/proc/$daemon_pid/stat" 2>/dev/null) || return 1
	state=${state##*) }
	[ "${state:0:1}" != Z ]
}

cleanup()
{
	local status=$? try
	set +e
	cd /
	if is_mounted; then
		for ((try = 0; try < 50; try++)); do
			fusermount3 -u "$view" 2>/dev/null && break
			sleep 0.1
		done
		if is_mounted; then
			echo "main-job.sh: $view busy, detaching it lazily" >&2
			umount -l "$view"
			status=1
		fi
	fi
	if [ -n "$daemon_pid" ]; then
		for ((try = 0; try < 100; try++)); do
			daemon_running || break
			sleep 0.1
		done
		if daemon_running; then
			echo "main-job.sh: daemon $daemon_pid outlived the unmount, stopping it" >&2
			kill -TERM "$daemon_pid"
			status=1
		fi
		wait "$daemon_pid" 2>/dev/null
	fi
	if is_mounted; then
		echo "main-job.sh: $view still mounted, leaving $demo in place" >&2
	else
		rm -rf --one-file-system "$demo"
	fi
	if [ "$status" -ne 0 ]; then
		echo "main-job.sh: FAILED (status $status)" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# checksum DIR: one hash over every entry's path, type, mode, owner, size, mtime, symlink target and
# content.
checksum()
{
	(
		cd "$1"
		find . -printf '%p %y %m %U:%G %s %T@ %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	) | sha256sum | cut -d' ' -f1
}

section()
{
	printf '\n== %s\n' "$*"
}

section "example lower dir $lower"
mkdir -p "$lower/src" "$lower/config" "$lower/docs" "$lower/data"
printf '# demo project\nBuilt by CI.\n' >"$lower/README.md"
printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' >"$lower/src/main.c"
printf '[build]\njobs = 2\n' >"$lower/config/settings.ini"
printf 'outdated notes\n' >"$lower/docs/old.txt"
head -c 65536 /dev/urandom >"$lower/data/blob.bin"
ln -s src/main.c "$lower/main-link"
(cd "$lower" && find . -printf '%y %m %6s %p\n' | LC_ALL=C sort -k4)
before=$(checksum "$lower")
echo "lower checksum before: $before"

section "mounting a view at $view"
mkdir -p "$upper" "$work" "$view"
"$daemon" --lower "$lower" --upper "$upper" --work "$work" -f "$view" </dev/null &
daemon_pid=$!
for ((i = 0; i < 200; i++)); do
	is_mounted && break
	daemon_running || {
		echo "main-job.sh: the daemon exited before mounting" >&2
		exit 1
	}
	sleep 0.05
done
is_mounted || {
	echo "main-job.sh: $view not mounted after 10 s" >&2
	exit 1
}
grep " $view " /proc/self/mountinfo

section "writing through the view"
printf 'new file written in the job\n' >"$view/NEW.txt"
echo "created  NEW.txt"
printf 'int helper(void) { return 42; }\n' >>"$view/src/main.c"
echo "appended src/main.c"
printf '[build]\njobs = 8\n' >"$view/config/settings.ini"
echo "rewrote  config/settings.ini"
rm "$view/docs/old.txt"
echo "deleted  docs/old.txt"
mv "$view/README.md" "$view/README"
echo "renamed  README.md -> README"
mkdir -p "$view/out"
cp "$view/data/blob.bin" "$view/out/blob.copy"
echo "copied   data/blob.bin -> out/blob.copy"
chmod 0600 "$view/data/blob.bin"
echo "chmod    data/blob.bin 0600"

section "what the job sees in the view"
(cd "$view" && find . -printf '%y %m %6s %p\n' | LC_ALL=C sort -k4)
echo "--- src/main.c in the view:"
cat "$view/src/main.c"

section "what landed in the upper $upper (c = whiteout, a char device 0:0)"
(cd "$upper" && find . -mindepth 1 -printf '%y %m %6s %p\n' | LC_ALL=C sort -k4)
for f in "$upper/docs/old.txt" "$upper/README.md"; do
	if [ "$(stat -c '%F %t:%T' "$f")" != "character special file 0:0" ]; then
		echo "main-job.sh: $f is not a whiteout" >&2
		exit 1
	fi
done
cmp "$upper/src/main.c" "$view/src/main.c"
cmp "$upper/out/blob.copy" "$lower/data/blob.bin"

section "the lower after the job"
after=$(checksum "$lower")
echo "lower checksum before: $before"
echo "lower checksum after:  $after"
if [ "$before" != "$after" ]; then
	echo "main-job.sh: the lower changed" >&2
	exit 1
fi
echo "lower unchanged: yes"
cmp <(printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n') \
	"$lower/src/main.c"

section "unmounting"
fusermount3 -u "$view"
wait "$daemon_pid"
daemon_pid=""
echo "unmounted; the daemon exited cleanly"
