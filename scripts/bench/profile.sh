#!/usr/bin/env bash
# Profiles one benchmark workload in a fresh view of the bench data: the FUSE requests it sends
# (counted per opcode by the kernel's fuse:fuse_request_send tracepoint), a CPU profile of the
# whole machine while it runs (perf record -a -g; the daemon's share and its top symbols, the
# workload's kernel side), and the workload's syscalls (strace -f -c). Needs root, perf, strace.
# The data comes from scripts/bench/data.py (run the benchmark once, or `bench.py --only` a cell).
# docs/performance.md says what the numbers mean.
#
# usage: scripts/bench/profile.sh [options] WORKLOAD      (--help for the list)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
data=${JOBFS_BENCH_DATA:-/var/tmp/jobfs-bench}
set_name=full
build=${JOBFS_PROFILE_BUILD:-$root/build-prof}
contender=jobfs
modes=count,perf
direct_opts=
top=25
out=
dwarf=0

usage() {
	cat <<'EOF'
usage: scripts/bench/profile.sh [options] WORKLOAD

Mounts a fresh view of the bench data, prepares the workload as the benchmark does (drops caches
for a cold cell, runs it once first for a warm one), then runs it once per mode and prints what
that mode measured. Every view, process and temp dir it made is gone when it exits.

workloads (the benchmark's cells; docs/bench.md):
  mount-cold   jobfs mount (or the contender's mount) right after dropping caches
  find-cold    find VIEW -printf '%s %p\n', caches dropped      find-warm   the same, again
  read-cold    every file of store/ and app/ read once (cat)    read-warm   the same, again
  large-cold   cat large/big (256 MiB)                          large-warm  the same, again
  pnpm-cold    pnpm install --offline --frozen-lockfile in seed/, caches dropped
  pnpm-warm    the same in seed2/ right after the one in seed/ (the benchmark's second project)
  append       4 KiB appended to each of the 100 large lower files (copy-up), caches dropped
  randwrite    4096 random 4 KiB writes into large/big, then fsync, caches dropped
  extract      tar -xf of the 10,000 small files (small.tar) into VIEW/extract
  delete       rm -rf of them, right after their extraction

options:
  -c, --contender NAME  jobfs (default: through `jobfs mount`, as the benchmark), jobfs-fs (the
                        daemon started by hand: -o takes its options), overlay (kernel
                        overlayfs), fuse-overlayfs
  -o, --opts OPTS       jobfs-fs options for -c jobfs-fs (e.g. volatile, open_files)
  -m, --modes LIST      comma-separated, run in this order, each in a fresh view:
                          time    the workload alone, timed
                          count   FUSE requests per opcode (fuse:fuse_request_send), timed
                          perf    perf record -a -g: share per process, the daemon's top
                                  symbols, the workload's top kernel symbols
                          strace  strace -f -c of the workload (its syscalls, and their time)
                        default: count,perf
  -n, --top N           lines of each perf report (default 25)
      --dwarf           perf --call-graph dwarf (user-space stacks through libfuse and libc,
                        which have no frame pointers; larger data)
      --quick           the quick data set (DATA/quick)
      --data DIR        bench data (default $JOBFS_BENCH_DATA or /var/tmp/jobfs-bench)
      --build DIR       a jobfs build (default $JOBFS_PROFILE_BUILD or build-prof/: cmake -S . -B
                        build-prof -DCMAKE_C_FLAGS=-fno-omit-frame-pointer)
      --out DIR         keep perf.data, the perf scripts and strace output there
  -h, --help            this help

exit status: 0 done, 1 usage error, 2 the data, a tool or the build is missing, 3 a mount or the
workload failed
EOF
}

die() {
	echo "profile: $2" >&2
	exit "$1"
}

while [ $# -gt 0 ]; do
	case $1 in
	-c | --contender) contender=${2:?}; shift 2 ;;
	-o | --opts) direct_opts=${2:?}; shift 2 ;;
	-m | --modes) modes=${2:?}; shift 2 ;;
	-n | --top) top=${2:?}; shift 2 ;;
	--dwarf) dwarf=1; shift ;;
	--quick) set_name=quick; shift ;;
	--data) data=${2:?}; shift 2 ;;
	--build) build=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "profile: unknown option '$1'" >&2; echo "try 'scripts/bench/profile.sh --help'" >&2; exit 1 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "profile: one WORKLOAD expected" >&2; echo "try 'scripts/bench/profile.sh --help'" >&2; exit 1; }
workload=$1
case $workload in
mount-cold | find-cold | find-warm | read-cold | read-warm | large-cold | large-warm | pnpm-cold | pnpm-warm | \
	append | randwrite | extract | delete) ;;
*) echo "profile: unknown workload '$workload'" >&2; echo "try 'scripts/bench/profile.sh --help'" >&2; exit 1 ;;
esac
case $contender in
jobfs | jobfs-fs | overlay | fuse-overlayfs) ;;
*) echo "profile: unknown contender '$contender'" >&2; echo "try 'scripts/bench/profile.sh --help'" >&2; exit 1 ;;
esac
case $top in '' | *[!0-9]*) echo "profile: bad value '$top' for --top" >&2; exit 1 ;; esac
for m in ${modes//,/ }; do
	case $m in
	time | count | perf | strace) ;;
	*) echo "profile: unknown mode '$m' in --modes" >&2; echo "try 'scripts/bench/profile.sh --help'" >&2; exit 1 ;;
	esac
done

[ "$(id -u)" -eq 0 ] || die 2 "needs root (it mounts views and drops caches)"
base=$data/$set_name/base
[ -d "$base/store" ] || die 2 "no bench data in '$data/$set_name' (build it with scripts/bench/bench.py)"
jobfs=$build/cli/jobfs
jobfs_fs=$build/fs/jobfs-fs
pnpm=$data/tools/node_modules/.bin/pnpm
for t in perf strace python3; do
	command -v $t >/dev/null || die 2 "'$t' is not installed"
done
case $contender in
jobfs) [ -x "$jobfs" ] || die 2 "no jobfs in '$build' (--build)" ;;
jobfs-fs) [ -x "$jobfs_fs" ] || die 2 "no jobfs-fs in '$build' (--build)" ;;
fuse-overlayfs) command -v fuse-overlayfs >/dev/null || die 2 "fuse-overlayfs is not installed" ;;
esac
case $workload in pnpm-*) ;; *) false ;; esac || [ -x "$pnpm" ] || [ -x "$pnpm" ] || die 2 "no pnpm in '$data/tools'"
# the interpreter itself, not a version manager's shim (a shell script that would be profiled too)
py=$(python3 -c 'import sys; print(sys.executable)')
[ -z "$out" ] || mkdir -p "$out"

# Our temp dir sits on the base's filesystem, as every contender's upper does in the benchmark.
tmp=$(mktemp -d "$(dirname "$data")/jobfs-profile.XXXXXX")
view=
daemon_pid=     # a daemon we started ourselves (jobfs-fs, fuse-overlayfs)
helper_pid=     # a perf or strace we started
job=prof
policy=$tmp/policy.yaml

cleanup() {
	local rc=$?
	set +e
	if [ -n "$helper_pid" ]; then
		kill -INT "$helper_pid" 2>/dev/null
		wait "$helper_pid" 2>/dev/null
	fi
	unmount_view
	rm -rf --one-file-system -- "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

loadavg() {
	cut -d' ' -f1-3 /proc/loadavg
}

now_ms() {
	date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'
}

# The mount command of the contender; sets view (and daemon_pid for daemons we start).
mount_view() {
	rm -rf --one-file-system -- "$tmp/v"
	mkdir -p "$tmp/v/upper" "$tmp/v/work" "$tmp/v/mnt"
	view=$tmp/v/mnt
	case $contender in
	jobfs)
		"$jobfs" mount --job "$job" --policy "$policy" >/dev/null
		daemon_pid=
		;;
	jobfs-fs)
		"$jobfs_fs" -l "$base" -u "$tmp/v/upper" -w "$tmp/v/work" -f \
			${direct_opts:+-o "$direct_opts"} "$view" 2>"$tmp/daemon.log" &
		daemon_pid=$!
		wait_mounted
		;;
	overlay)
		mount -t overlay overlay -o \
			"lowerdir=$base,upperdir=$tmp/v/upper,workdir=$tmp/v/work" "$view"
		;;
	fuse-overlayfs)
		fuse-overlayfs -f -o "lowerdir=$base,upperdir=$tmp/v/upper,workdir=$tmp/v/work" \
			"$view" 2>"$tmp/daemon.log" &
		daemon_pid=$!
		wait_mounted
		;;
	esac
}

wait_mounted() {
	for _ in $(seq 3000); do
		mountpoint -q "$view" && return 0
		kill -0 "$daemon_pid" 2>/dev/null || { cat "$tmp/daemon.log" >&2; die 3 "the daemon exited before mounting"; }
		sleep 0.01
	done
	die 3 "the view did not mount within 30 s"
}

unmount_view() {
	[ -n "$view" ] || return 0
	case $contender in
	jobfs)
		mountpoint -q "$view" && "$jobfs" umount --job "$job" --policy "$policy" --kill \
			--timeout 10 --collect >/dev/null
		;;
	*)
		mountpoint -q "$view" && umount "$view"
		if [ -n "$daemon_pid" ]; then
			wait "$daemon_pid" 2>/dev/null
		fi
		;;
	esac
	daemon_pid=
	view=
}

# The PID of the process serving the view (none for kernel overlayfs).
server_pid() {
	case $contender in
	jobfs) "$jobfs" ls --json --policy "$policy" |
		python3 -c 'import json,sys; print(next(j["pid"] for j in json.load(sys.stdin) if j["id"] == sys.argv[1]))' "$job" ;;
	overlay) echo "" ;;
	*) echo "$daemon_pid" ;;
	esac
}

# pnpm install of the project in $view/$1 from the view's store, as the benchmark runs it.
pnpm_install() {
	(cd "$view/$1" && env -u XDG_CONFIG_HOME -u XDG_CACHE_HOME -u XDG_DATA_HOME \
		HOME="$view/home" CI=true "$pnpm" install --offline --frozen-lockfile \
		--store-dir "$view/store" --reporter=silent)
}

# The workload itself, as scripts/bench/workloads.py runs it, on $view.
run_workload() {
	case $workload in
	mount-cold) mount_view ;;
	find-*) find "$view" -printf '%s %p\n' >/dev/null ;;
	read-*)
		find "$view/store" "$view/app" -type f -printf '%i %p\0' |
			awk -v RS='\0' -v ORS='\0' '!seen[$1]++ { sub(/^[0-9]+ /, ""); print }' |
			xargs -0 -r cat >/dev/null
		;;
	large-*) cat "$view/large/big" >/dev/null ;;
	extract) mkdir -p "$view/extract" && tar -xf "$data/$set_name/small.tar" -C "$view/extract" ;;
	delete) rm -rf "$view/extract" ;;
	pnpm-cold) pnpm_install seed ;;
	pnpm-warm) pnpm_install seed2 ;;
	append)
		"$py" - "$view/large" <<'EOF'
import os, sys
large = sys.argv[1]
for name in sorted(os.listdir(large)):
    if name.startswith("f"):
        fd = os.open(os.path.join(large, name), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"a" * 4096)
        os.close(fd)
EOF
		;;
	randwrite)
		"$py" - "$view/large/big" <<'EOF'
import os, random, sys
path = sys.argv[1]
size = os.path.getsize(path)
rng = random.Random(4096)
block = bytes(rng.getrandbits(8) for _ in range(4096))
fd = os.open(path, os.O_RDWR)
for _ in range(4096):
    os.pwrite(fd, block, rng.randrange(size // 4096) * 4096)
os.fsync(fd)
os.close(fd)
EOF
		;;
	esac
}

# The workload as a script of its own, to run under perf or strace.
workload_script() {
	{
		echo 'set -euo pipefail'
		declare -p workload view pnpm py data set_name
		declare -f pnpm_install run_workload
		echo run_workload
	} >"$tmp/workload.sh"
}

# mount-cold under perf or strace: mount_argv, the contender's mount command (jobfs, overlay).
mount_cmd() {
	mkdir -p "$tmp/v/upper" "$tmp/v/work" "$tmp/v/mnt"
	case $contender in
	jobfs) mount_argv=("$jobfs" mount --job "$job" --policy "$policy") ;;
	overlay) mount_argv=(mount -t overlay overlay -o
		"lowerdir=$base,upperdir=$tmp/v/upper,workdir=$tmp/v/work" "$tmp/v/mnt") ;;
	*) die 1 "mount-cold under perf or strace: -c jobfs or -c overlay" ;;
	esac
}

# Everything before the measured run: a fresh view, warmed or cold as the cell is.
prepare() {
	case $workload in
	mount-cold) unmount_view; drop_caches; return ;;
	esac
	mount_view
	case $workload in
	pnpm-warm) pnpm_install seed ;;
	*-warm) run_workload ;;
	# as the benchmark: the tarball in the page cache, the view not dropped
	extract) cat "$data/$set_name/small.tar" >/dev/null ;;
	delete) (workload=extract && run_workload) ;;
	*) drop_caches ;;
	esac
}

# Runs the workload, timed; with arguments, under that command (perf record ... --).
measured() {
	local t0 t1
	echo "load average before: $(loadavg)"
	t0=$(now_ms)
	if [ $# -eq 0 ]; then
		run_workload || die 3 "the workload '$workload' failed"
	elif [ "$workload" = mount-cold ]; then
		mount_cmd
		"$@" "${mount_argv[@]}" >/dev/null || die 3 "the mount failed"
		view=$tmp/v/mnt
	else
		workload_script
		"$@" bash "$tmp/workload.sh" || die 3 "the workload '$workload' failed"
	fi
	t1=$(now_ms)
	echo "wall time: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f ms", b - a }')" \
		"(load average after: $(loadavg))"
}

# Starts a background helper and waits until it is ready (perf and strace print nothing then).
start_helper() {
	"$@" &
	helper_pid=$!
	sleep 0.5
	kill -0 "$helper_pid" 2>/dev/null || die 2 "'$1' did not start"
}

stop_helper() {
	kill -INT "$helper_pid" 2>/dev/null || true
	wait "$helper_pid" 2>/dev/null || true
	helper_pid=
}

fuse_conn() {
	# the connection's number is the mount's minor device number (major 0)
	mountpoint -d "$view" | cut -d: -f2
}

mode_time() {
	prepare
	measured
}

mode_count() {
	local conn trace=$tmp/requests.data
	[ "$contender" != overlay ] || { echo "(kernel overlayfs sends no FUSE requests)"; return; }
	prepare
	start_helper perf record -q -a -e fuse:fuse_request_send -o "$trace"
	measured
	stop_helper
	conn=$(fuse_conn)
	echo "FUSE requests on connection $conn, by opcode:"
	perf script -i "$trace" -F trace 2>/dev/null |
		awk -v c="$conn" '$2 == c { n[$7]++; t++ }
			END { for (k in n) printf "  %-22s %9d\n", k, n[k]; printf "  %-22s %9d\n", "(all)", t }' |
		sort -k2 -n -r || true
	[ -z "$out" ] || cp "$trace" "$out/$workload-$contender-requests.data"
}

# Top of a perf report: $1 the data, the rest perf report's options.
report_top() {
	local data=$1
	shift
	perf report -i "$data" --no-children --stdio -g none -n "$@" 2>/dev/null |
		grep -v -e '^#' -e '^$' | head -n "$top" || true
}

# The CPU time in a perf data file (cpu-clock counts nanoseconds).
samples() {
	perf report -i "$1" --stdio --no-children --sort comm -g none 2>/dev/null |
		awk '/^# Event count/ { printf "%.0f ms of CPU", $NF / 1e6; exit }'
}

# The workload and its children under perf record -g, and the daemon's threads at the same time
# (perf record -p): the machine runs other work too, so neither is recorded system-wide.
mode_perf() {
	local pid wdata=$tmp/work.data ddata=$tmp/daemon.data g=-g
	[ "$dwarf" = 0 ] || g=--call-graph=dwarf
	prepare
	pid=
	[ "$workload" = mount-cold ] || pid=$(server_pid)
	[ -z "$pid" ] || start_helper perf record -q -F 4000 $g -p "$pid" -o "$ddata"
	measured perf record -q -F 4000 $g -o "$wdata" --
	[ -z "$pid" ] || stop_helper
	echo
	echo "== the workload ($(samples "$wdata")): top symbols, all its processes =="
	report_top "$wdata" --sort comm,dso,sym
	echo
	echo "== the workload: by shared object =="
	report_top "$wdata" --sort dso
	if [ -n "$pid" ]; then
		echo
		echo "== the daemon, pid $pid ($(samples "$ddata")): top symbols =="
		report_top "$ddata" --sort dso,sym
		echo
		echo "== the daemon: by shared object =="
		report_top "$ddata" --sort dso
	fi
	if [ -n "$out" ]; then
		cp "$wdata" "$out/$workload-$contender-work.data"
		[ -z "$pid" ] || cp "$ddata" "$out/$workload-$contender-daemon.data"
	fi
}

# strace -f -c of the workload (for mount-cold: the mount command, not the daemon it leaves).
mode_strace() {
	local log=$tmp/strace.txt
	prepare
	if [ "$workload" = mount-cold ]; then
		measured strace -c -o "$log" --
	else
		measured strace -f -c -o "$log" --
	fi
	echo "(the wall time above is under strace)"
	echo "syscalls of the workload (strace -f -c):"
	head -n $((top + 4)) "$log"
	[ -z "$out" ] || cp "$log" "$out/$workload-$contender-strace.txt"
}

cat >"$policy" <<EOF
version: 1
state_dir: $tmp/state
views:
  - name: base
    lower: [$base]
    target: $tmp/v/mnt
EOF
echo "profile: $workload on $contender ($base), $(nproc) cores, $(date -u '+%F %T UTC')"
for m in ${modes//,/ }; do
	echo
	echo "=== mode $m ==="
	"mode_$m"
	unmount_view
done
