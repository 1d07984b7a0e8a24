#!/usr/bin/env bash
# Load: eight jobs at once over one base, each in its own view (its own daemon and upper). In every
# view, for JOBFS_LOAD_SECONDS, two fsx runs check their data against a model as they go (one on a
# base file that its first write copies up, one on a file created in the view) while stress-ng's
# filesystem stressors run with --verify in a scratch dir. Afterwards: every fsx verified, stress-ng
# clean, every daemon alive throughout, the base unchanged (manifest) and still seen whole through
# every view, each daemon's RSS under a bound during the load, and forget honoured: once the kernel
# drops its caches the daemons close the descriptors of forgotten inodes and their RSS falls.
#
# Environment:
#   JOBFS_LOAD_SECONDS  how long the load runs (default 60, CI); the long mode is 600
#   JOBFS_LOAD_JOBS     views and jobs (default 8)
#   JOBFS_LOAD_SEED     first seed of fsx and stress-ng (default 1); job i uses SEED + 10 * i...
#   JOBFS_LOAD_RSS_MB   bound on each daemon's RSS during the load (default 128 MiB: idle a daemon
#                       holds ~5 MiB, ~22 MiB after 60 s of this load and ~42 MiB after 600 s,
#                       mostly per-thread buffers and malloc arenas; the bound catches a leak that
#                       grows with the ops done, it does not measure)
#   JOBFS_LOAD_CHECK_RSS 0 skips the RSS bound and the fall after forget (scripts/test.sh
#                       --sanitize: ASan's shadow memory and quarantine are not the daemon's);
#                       descriptors are still checked
# A failed fsx prints its seed and op number; rerun it alone (view_fsx.sh shows how) with -S and -N.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

FSX=${JOBFS_BUILD:-$IT_SRC/../../build}/tests/fsx
if ! [ -x "$FSX" ]; then
	echo "FAIL: $IT_NAME: '$FSX' not found; build the fsx target or set JOBFS_BUILD" >&2
	exit 1
fi
command -v stress-ng >/dev/null || skip "needs stress-ng"
[ -w /proc/sys/vm/drop_caches ] || skip "needs a writable /proc/sys/vm/drop_caches"

LOAD_SECONDS=${JOBFS_LOAD_SECONDS:-60}
NJOBS=${JOBFS_LOAD_JOBS:-8}
SEED=${JOBFS_LOAD_SEED:-1}
RSS_MAX_KB=$((${JOBFS_LOAD_RSS_MB:-128} * 1024))
CHECK_RSS=${JOBFS_LOAD_CHECK_RSS:-1}
SAMPLE_EVERY=2 # seconds between RSS samples

# Every job runs these stressors, one worker each: data checked by --verify (hdd reads back what it
# wrote, mmap checks its file-backed pages) and the namespace churn of a build (dir, rename).
COMMON_STRESSORS=(--hdd 1 --hdd-opts "wr-rnd,rd-rnd" --hdd-bytes 8M --mmap 1 --mmap-file
	--mmap-bytes 4M --dir 1 --rename 1)
# ...and two of these each, so eight jobs cover them all without sixteen workers per job. Left
# out: fiemap (FUSE has no FS_IOC_FIEMAP, stress-ng skips it) and dirdeep (its clean-up outlasts
# the timeout by far).
ROTATING_STRESSORS=(link symlink dentry seek fallocate fpunch xattr copy-file getdent iomix utime
	chmod touch fsize lockf flock)

LOAD_PIDS=() # the timeout(1) processes in front of every fsx and stress-ng; ended by PID only

# Ends the load (if a failure cut it short) before lib.sh unmounts: a busy view cannot be unmounted.
load_on_exit()
{
	local status=$? pid
	trap - ERR
	set +e
	for pid in "${LOAD_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${LOAD_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	(exit "$status")
	it_on_exit
}
trap load_on_exit EXIT

# rss_kb PID: the resident set of a process in KiB.
rss_kb()
{
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

# cached_fds PID: the descriptors a daemon holds, less the /dev/fuse channel and splice pipes of
# every worker thread (which come and go with the threads): the layer roots, the log and the
# descriptor cache of live inodes.
cached_fds()
{
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
		grep -Ecv '^(/dev/fuse|pipe:\[[0-9]+\])$' || true
}

# wchar_of PID: bytes the process and its reaped children passed to write(2), pwrite(2),
# copy_file_range(2) and the like (mmap stores are not counted).
wchar_of()
{
	awk '$1 == "wchar:" { print $2 }' "/proc/$1/io"
}

# tree_digest DIR [SKIP...]: one sorted line per entry under DIR (path, type, mode, size, symlink
# target, SHA-256 of a file's content), top-level names SKIP left out. No times or inode numbers:
# those legitimately differ between a lower and a view of it.
tree_digest()
{
	python3 - "$@" <<'EOF'
import hashlib, os, stat, sys

root, skip = sys.argv[1], set(sys.argv[2:])
out = []
for top, dirs, files in os.walk(root):
	rel = os.path.relpath(top, root)
	if rel == ".":
		dirs[:] = [d for d in dirs if d not in skip]
		files = [f for f in files if f not in skip]
	for name in dirs + files:
		path = os.path.join(top, name)
		st = os.lstat(path)
		line = "%s %s %04o %d" % (os.path.join(rel, name), stat.filemode(st.st_mode),
					 stat.S_IMODE(st.st_mode), st.st_size)
		if stat.S_ISLNK(st.st_mode):
			line += " -> " + os.readlink(path)
		elif stat.S_ISREG(st.st_mode):
			h = hashlib.sha256()
			with open(path, "rb") as f:
				for chunk in iter(lambda: f.read(1 << 20), b""):
					h.update(chunk)
			line += " " + h.hexdigest()
		out.append(line)
out.sort()
sys.stdout.write("\n".join(out) + "\n")
EOF
}

# digest_views SKIP SUFFIX: the tree_digest of every view, all at once, into view<i>SUFFIX; SKIP is
# a space-separated list of top-level names to leave out. (A bare wait would wait for the daemons.)
digest_views()
{
	local i pids=() skip
	read -ra skip <<<"$1"
	for ((i = 0; i < NJOBS; i++)); do
		tree_digest "${MNTS[i]}" "${skip[@]}" >"$IT_DIR/view$i$2" &
		pids+=("$!")
	done
	for i in "${!pids[@]}"; do
		wait "${pids[i]}" || fail "cannot walk view $i (the error is above)"
	done
}

step "building the base"
L=$IT_DIR/base
python3 - "$L" "$SEED" <<'EOF'
import os, random, sys

root = sys.argv[1]
rng = random.Random(int(sys.argv[2]))
modes = [0o644, 0o600, 0o755, 0o444, 0o640]

def put(path, size, mode=0o644):
	os.makedirs(os.path.dirname(path), exist_ok=True)
	with open(path, "wb") as f:
		f.write(rng.randbytes(size))
	os.chmod(path, mode)

# a source tree: 55 packages of 100 files, small and a few up to 256 KiB
for d in range(55):
	for f in range(100):
		size = rng.choice([0, 1, 100, 4095, 4096, 4097]) if f % 10 == 0 else rng.randrange(16384)
		if f == 99 and d % 5 == 0:
			size = 256 << 10
		put("%s/src/pkg%02d/file%03d.c" % (root, d, f), size, modes[(d + f) % len(modes)])
# a deep chain, a file at every level
path = root + "/deep"
for level in range(40):
	path += "/level%02d" % level
	put(path + "/leaf", rng.randrange(1, 2048))
# large files: random data, and a sparse one with data at both ends and in the middle
put(root + "/big/blob0.bin", 24 << 20)
put(root + "/big/blob1.bin", 8 << 20, 0o600)
with open(root + "/big/sparse.bin", "wb") as f:
	for off in (0, 31 << 20, (64 << 20) - 5000):
		f.seek(off)
		f.write(rng.randbytes(5000))
# the files fsx works on, one copy per view: each view copies them up on its own
put(root + "/data/fsx-base.bin", 1 << 20)
put(root + "/data/fsx-src.bin", 256 << 10)
put(root + "/data/fsx-src2.bin", 128 << 10)
# links
os.symlink("pkg00/file001.c", root + "/src/link-to-file")
os.symlink("../deep/level00", root + "/src/link-to-dir")
os.symlink("nowhere", root + "/src/dangling")
os.link(root + "/src/pkg01/file001.c", root + "/src/hardlink")
EOF
nentries=$(find "$L" | wc -l)
step "base: $nentries entries, $(du -sm --apparent-size "$L" | cut -f1) MiB; recording its manifest"
snapshot_lower "$L"
tree_digest "$L" >"$IT_DIR/base.digest"
tree_digest "$L" data >"$IT_DIR/base-nodata.digest"

step "mounting $NJOBS views over the base"
MNTS=()
DAEMONS=()
FDS_MOUNTED=()
for ((i = 0; i < NJOBS; i++)); do
	new_view "job$i" "$L"
	MNTS+=("$MNT")
	DAEMONS+=("$(view_daemon_pid "$MNT")")
	FDS_MOUNTED+=("$(cached_fds "${DAEMONS[i]}")")
done

step "every view shows the whole base"
digest_views "" .digest
for ((i = 0; i < NJOBS; i++)); do
	if ! diff -q "$IT_DIR/base.digest" "$IT_DIR/view$i.digest" >/dev/null; then
		diff -u "$IT_DIR/base.digest" "$IT_DIR/view$i.digest" | head -n 40 >&2 || true
		fail "view $i does not show the base (diff above: - base, + view)"
	fi
done
rss_idle=()
for ((i = 0; i < NJOBS; i++)); do
	rss_idle+=("$(rss_kb "${DAEMONS[i]}")")
done

step "load: $NJOBS jobs for $LOAD_SECONDS s (2 fsx + stress-ng each), seed $SEED"
# A run that outlasts its time by this much is hung; timeout(1) ends it and it counts as failed.
grace=$((LOAD_SECONDS / 2 + 120))
wchar_before=$(wchar_of $$)
t_start=$(date +%s)
nrot=${#ROTATING_STRESSORS[@]}
for ((i = 0; i < NJOBS; i++)); do
	m=${MNTS[i]}
	mkdir "$m/load" "$m/stress"
	s=$((SEED + 10 * i))
	timeout -k 10 $((LOAD_SECONDS + grace)) "$FSX" -T "$LOAD_SECONDS" -S "$s" -l 2M -o 128K \
		"$m/data/fsx-base.bin" "$m/data/fsx-src.bin" >"$IT_DIR/fsx-base.$i.log" 2>&1 &
	LOAD_PIDS+=("$!")
	timeout -k 10 $((LOAD_SECONDS + grace)) "$FSX" -T "$LOAD_SECONDS" -S "$((s + 1))" -l 1M \
		-o 64K "$m/load/fresh.bin" "$m/data/fsx-src2.bin" >"$IT_DIR/fsx-new.$i.log" 2>&1 &
	LOAD_PIDS+=("$!")
	stressors=("${COMMON_STRESSORS[@]}"
		"--${ROTATING_STRESSORS[$((2 * i % nrot))]}" 1
		"--${ROTATING_STRESSORS[$(((2 * i + 1) % nrot))]}" 1)
	(cd "$m/stress" && exec timeout -k 10 $((LOAD_SECONDS + grace)) stress-ng \
		--temp-path "$m/stress" --timeout "${LOAD_SECONDS}s" --verify --seed "$((s + 2))" \
		--metrics-brief --yaml "$IT_DIR/stress.$i.yaml" "${stressors[@]}") \
		>"$IT_DIR/stress.$i.log" 2>&1 &
	LOAD_PIDS+=("$!")
done

# Sample every daemon while the load runs: alive, and its RSS.
rss_peak=()
for ((i = 0; i < NJOBS; i++)); do
	rss_peak+=(0)
done
dead=()
while :; do
	running=0
	for pid in "${LOAD_PIDS[@]}"; do
		if it_pid_running "$pid"; then
			running=1
			break
		fi
	done
	line="$(($(date +%s) - t_start))s"
	for ((i = 0; i < NJOBS; i++)); do
		if ! it_pid_running "${DAEMONS[i]}"; then
			if [ -z "${dead[i]:-}" ]; then
				dead[i]=1
				fail "the daemon of job $i (PID ${DAEMONS[i]}) died during the load"
			fi
			line+=" dead"
			continue
		fi
		rss=$(rss_kb "${DAEMONS[i]}")
		if [ "$rss" -gt "${rss_peak[i]}" ]; then
			rss_peak[i]=$rss
		fi
		line+=" $rss"
	done
	echo "$line" >>"$IT_DIR/rss.log"
	if [ "$running" = 0 ]; then
		break
	fi
	sleep "$SAMPLE_EVERY"
done
t_load=$(($(date +%s) - t_start))
statuses=()
for pid in "${LOAD_PIDS[@]}"; do
	rc=0
	wait "$pid" || rc=$?
	statuses+=("$rc")
done
LOAD_PIDS=()
bytes_written=$(($(wchar_of $$) - wchar_before))
step "load done in $t_load s; daemon RSS in KiB every ${SAMPLE_EVERY} s (job 0..$((NJOBS - 1))):"
awk 'NR == 1 || NR % 5 == 0 { print "  " $0 } END { print "  " $0 }' "$IT_DIR/rss.log"

step "fsx: every byte read matched the model"
fsx_ops=0
for ((i = 0; i < NJOBS; i++)); do
	for kind in base new; do
		log=$IT_DIR/fsx-$kind.$i.log
		if [ "$kind" = new ]; then
			rc=${statuses[$((3 * i + 1))]}
		else
			rc=${statuses[$((3 * i))]}
		fi
		ops=$(sed -n 's/^fsx: \([0-9]*\) ops verified:.*/\1/p' "$log")
		if [ "$rc" -ne 0 ] || [ -z "$ops" ]; then
			cat "$log" >&2
			fail "fsx ($kind file) of job $i exited $rc: the report is above"
			continue
		fi
		if grep -q "^fsx: warning:" "$log"; then
			grep "^fsx: warning:" "$log" >&2
			fail "fsx ($kind file) of job $i: the view does not offer an op fsx needs"
		fi
		fsx_ops=$((fsx_ops + ops))
		echo "  job $i $kind: $(grep "ops verified" "$log")"
	done
done

step "stress-ng: every stressor passed its run and its --verify checks"
bogo_ops=0
for ((i = 0; i < NJOBS; i++)); do
	log=$IT_DIR/stress.$i.log
	rc=${statuses[$((3 * i + 2))]}
	if [ "$rc" -ne 0 ] || grep -q '^stress-ng: fail:' "$log" ||
		grep -Eq 'failed: [1-9]|untrustworthy: [1-9]' "$log"; then
		grep -v '^stress-ng: metrc:' "$log" | tail -n 40 >&2
		fail "stress-ng of job $i exited $rc or reported a failure: its log is above"
	fi
	# a stressor FUSE cannot serve skips itself; say so, it is not a failure
	grep -E 'skipped: [1-9]|not supported|not implemented' "$log" | sed 's/^/  job '"$i"': /' ||
		true
	ops=$(awk '$1 == "bogo-ops:" { s += $2 } END { print s + 0 }' "$IT_DIR/stress.$i.yaml" \
		2>/dev/null || echo 0)
	bogo_ops=$((bogo_ops + ops))
	echo "  job $i: $ops bogo ops ($(awk '$2 == "stressor:" { printf "%s ", $3 }' \
		"$IT_DIR/stress.$i.yaml" 2>/dev/null))"
	left=$(find "${MNTS[i]}/stress" -mindepth 1 | wc -l)
	if [ "$left" -ne 0 ]; then
		echo "  job $i: stress-ng left $left entries in its scratch dir"
	fi
done

step "the base is still whole in every view (data/ aside: fsx changed it)"
digest_views "data load stress" .after.digest
for ((i = 0; i < NJOBS; i++)); do
	if ! diff -q "$IT_DIR/base-nodata.digest" "$IT_DIR/view$i.after.digest" >/dev/null; then
		diff -u "$IT_DIR/base-nodata.digest" "$IT_DIR/view$i.after.digest" | head -n 40 >&2 ||
			true
		fail "after the load view $i no longer shows the base (diff above: - base, + view)"
	fi
done

step "forget: the kernel drops its caches, the daemons let go of the inodes"
# drop_caches is global: another test dropping the caches between our walk and our measurement
# would leave nothing to forget, so walk again until every daemon holds most of the base.
for ((attempt = 1; ; attempt++)); do
	pids=()
	# files are read too: a stat alone no longer costs the daemon a descriptor (GETATTR of an
	# evicted or never opened inode stats it by name), a read caches one
	for ((i = 0; i < NJOBS; i++)); do
		{
			find "${MNTS[i]}" -ls >/dev/null &&
				find "${MNTS[i]}" -type f -print0 | xargs -0 cat >/dev/null
		} &
		pids+=("$!")
	done
	for i in "${!pids[@]}"; do
		wait "${pids[i]}" || fail "cannot walk view $i (the error is above)"
	done
	rss_before=()
	fds_before=()
	warm=1
	for ((i = 0; i < NJOBS; i++)); do
		rss_before+=("$(rss_kb "${DAEMONS[i]}")")
		fds_before+=("$(cached_fds "${DAEMONS[i]}")")
		if [ "${fds_before[i]}" -lt $((nentries / 2)) ]; then
			warm=0
		fi
	done
	if [ "$warm" = 1 ]; then
		break
	fi
	if [ "$attempt" = 5 ]; then
		fail "after walking every view, a daemon holds fewer than $((nentries / 2))" \
			"descriptors (${fds_before[*]}): the inodes were forgotten before the drop"
		break
	fi
	echo "  the caches were dropped under us (by another process?): walking again"
done
sync
echo 2 >/proc/sys/vm/drop_caches
# FORGETs arrive asynchronously; a daemon that keeps more than a handful of descriptors beyond what
# it held right after mounting has not forgotten the inodes.
slack=8
for ((try = 0; try < 40; try++)); do
	settled=1
	for ((i = 0; i < NJOBS; i++)); do
		if [ "$(cached_fds "${DAEMONS[i]}")" -gt $((FDS_MOUNTED[i] + slack)) ]; then
			settled=0
		fi
	done
	if [ "$settled" = 1 ]; then
		break
	fi
	sleep 0.5
done
printf '  %-4s %9s %9s %9s %9s %8s %13s\n' job "idle" "load peak" "before" "after" "fall" \
	"fds mnt/bef/aft"
for ((i = 0; i < NJOBS; i++)); do
	pid=${DAEMONS[i]}
	if ! it_pid_running "$pid"; then
		continue
	fi
	rss_after=$(rss_kb "$pid")
	fds_after=$(cached_fds "$pid")
	printf '  %-4s %9s %9s %9s %9s %8s %13s\n' "$i" "${rss_idle[i]}" "${rss_peak[i]}" \
		"${rss_before[i]}" "$rss_after" "$((rss_before[i] - rss_after))" \
		"${FDS_MOUNTED[i]}/${fds_before[i]}/$fds_after"
	if [ "$CHECK_RSS" = 1 ] && [ "${rss_peak[i]}" -gt "$RSS_MAX_KB" ]; then
		fail "the daemon of job $i peaked at ${rss_peak[i]} KiB, over the bound of $RSS_MAX_KB KiB"
	fi
	if [ "$fds_after" -gt $((FDS_MOUNTED[i] + slack)) ]; then
		fail "the daemon of job $i still holds $fds_after descriptors after the kernel dropped" \
			"its caches (${FDS_MOUNTED[i]} after mounting): forget not honoured"
	fi
	if [ "$CHECK_RSS" = 1 ] && [ "$rss_after" -ge "${rss_before[i]}" ]; then
		fail "the RSS of the daemon of job $i did not fall when the kernel dropped its caches" \
			"(${rss_before[i]} KiB before, $rss_after KiB after)"
	fi
done

step "unmounting; nothing may be left"
cd /
unmount_all || fail "unmounting the views (a daemon exited with an error or a view was busy)"
if awk -v d="$IT_DIR/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
then
	fail "still mounted under $IT_DIR"
fi
for pid in "${DAEMONS[@]}"; do
	if [ -e "/proc/$pid" ]; then
		fail "daemon $pid still exists after unmounting"
	fi
done
assert_lowers_unchanged
upper_mb=$(du -scm "$IT_DIR"/job*/upper | tail -n 1 | cut -f1)

echo "--- $IT_NAME: $NJOBS jobs x $LOAD_SECONDS s (load took $t_load s): $fsx_ops fsx ops verified," \
	"$bogo_ops stress-ng bogo ops, $bytes_written bytes written (write calls; mmap stores" \
	"aside), $upper_mb MiB left in the uppers"
if [ "$IT_FAILS" -gt 0 ]; then
	echo "FAIL: $IT_NAME: $IT_FAILS failed checks" >&2
	exit 1
fi
echo "PASS: $IT_NAME"
