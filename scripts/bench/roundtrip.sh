#!/usr/bin/env bash
# What one FUSE request costs on this machine, by where the daemon's thread runs: the mean time of
# a getxattr of a missing name (a request the daemon answers from memory, so nearly all of it is
# the round trip through /dev/fuse: the caller's wake-up of a daemon thread and the daemon's of the
# caller) on a jobfs-fs view, with the daemon and the caller
#   free        where the scheduler puts them (as in the benchmark)
#   same CPU    both pinned to CPU 0
#   other CPUs  the daemon pinned to CPU 1, the caller to CPU 0
# and, for scale, the same call on kernel overlayfs (no daemon). docs/performance.md uses it to
# explain the rows whose every step is a request (extract, delete). Needs root and 2 CPUs.
#
# usage: scripts/bench/roundtrip.sh [--build DIR] [--calls N] [--runs N] [--json]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
calls=20000
runs=3
json=0

usage() {
	cat <<'EOF'
usage: scripts/bench/roundtrip.sh [--build DIR] [--calls N] [--runs N] [--json]

Mean time of one getxattr request on a jobfs-fs view (the daemon answers it from memory), with
the daemon and the caller free, on the same CPU, and on different CPUs; and of the same call on
kernel overlayfs. Prints microseconds per call, the median of --runs runs of --calls calls.

  --build DIR   the jobfs build (default build/)
  --calls N     calls per run (default 20000)
  --runs N      runs per placement (default 3)
  --json        one JSON object on stdout: {"free": US, "same_cpu": US, "other_cpus": US,
                "overlay": US} (what the benchmark records before and after its runs)
exit status: 0 measured, 1 usage error, 2 cannot run here (not root, one CPU, no build)
EOF
}

die() {
	echo "roundtrip: $2" >&2
	exit "$1"
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?}; shift 2 ;;
	--calls) calls=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--json) json=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "roundtrip: unknown argument '$1'" >&2; echo "try 'scripts/bench/roundtrip.sh --help'" >&2; exit 1 ;;
	esac
done
for n in "$calls" "$runs"; do
	case $n in '' | *[!0-9]* | 0) die 1 "not a positive count: '$n'" ;; esac
done
[ "$(id -u)" -eq 0 ] || die 2 "needs root (it mounts a view and kernel overlayfs)"
[ "$(nproc)" -ge 2 ] || die 2 "needs 2 CPUs to place the daemon and the caller apart"
jobfs_fs=$build/fs/jobfs-fs
[ -x "$jobfs_fs" ] || die 2 "no jobfs-fs in '$build' (--build)"

tmp=$(mktemp -d /var/tmp/jobfs-roundtrip.XXXXXX)
mounted=()
cleanup() {
	local m
	for m in "${mounted[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/lower" "$tmp/upper" "$tmp/work" "$tmp/mnt"
echo data >"$tmp/lower/f"

# The caller: N getxattr calls of a name nobody set, timed in-process; prints microseconds per call.
calls_py='
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for _ in range(n):
    try:
        os.getxattr(path, "user.jobfs-roundtrip")
    except OSError:
        pass
print("%.2f" % ((time.perf_counter() - t) / n * 1e6))'

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# measure KEY LABEL CALLER_PIN: runs the caller --runs times against $tmp/mnt/f
results=()
measure() {
	local key=$1 label=$2 pin=$3 i us
	us=$(for ((i = 0; i < runs; i++)); do
		$pin python3 -c "$calls_py" "$tmp/mnt/f" "$calls"
	done | median)
	results+=("\"$key\": $us")
	[ "$json" = 1 ] || printf '%-28s %8.2f us per call\n' "$label" "$us"
}

# view DAEMON_PIN: a fresh jobfs-fs view of $tmp/lower at $tmp/mnt, the daemon pinned as given
view() {
	rm -rf "$tmp/upper" "$tmp/work"
	mkdir -p "$tmp/upper" "$tmp/work"
	$1 "$jobfs_fs" -l "$tmp/lower" -u "$tmp/upper" -w "$tmp/work" "$tmp/mnt" ||
		die 2 "jobfs-fs could not mount a view"
	mounted=("$tmp/mnt")
}

unview() {
	umount "$tmp/mnt"
	mounted=()
}

[ "$json" = 1 ] || echo "one FUSE request (getxattr, answered from memory), $calls calls, median of $runs runs"
view ""
measure free "jobfs, free" ""
unview
view "taskset -c 0"
measure same_cpu "jobfs, same CPU" "taskset -c 0"
unview
view "taskset -c 1"
measure other_cpus "jobfs, other CPUs" "taskset -c 0"
unview
mount -t overlay overlay -o "lowerdir=$tmp/lower,upperdir=$tmp/upper,workdir=$tmp/work" "$tmp/mnt"
mounted=("$tmp/mnt")
measure overlay "kernel overlayfs (no daemon)" ""
if [ "$json" = 1 ]; then
	(IFS=,; echo "{${results[*]}}")
fi
