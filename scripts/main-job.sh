#!/usr/bin/env bash
# The main job: installs what the build needs, builds jobfs, then runs a CI job the way a runner
# would, with the job CLI on the built-in default policy: `jobfs mount --job ID` gives the job a
# private scratch workspace at /run/jobfs/ID/workspace (its layer under /var/lib/jobfs), a real
# workload runs in it (a git repository is created, committed to, changed), `jobfs inspect` shows
# what the job changed, read from the layer, `jobfs umount` unmounts it, `jobfs gc` runs, and the
# demo's layer is collected. A trap unmounts the job and removes its layer even on failure.
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
jobfs=$build_dir/cli/jobfs

if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/fuse ]; then
	echo "main-job.sh: the demo needs root and /dev/fuse" >&2
	exit 1
fi

# The built-in default policy: no --policy, no $JOBFS_POLICY. A host policy wins if there is one.
unset JOBFS_POLICY
if [ -e /etc/jobfs/policy.yaml ]; then
	echo "main-job.sh: note: using the host policy /etc/jobfs/policy.yaml" >&2
fi
job=demo-$(date +%Y%m%d-%H%M%S)-$$
mounted=0

cleanup()
{
	local status=$?
	set +e
	cd /
	if [ "$mounted" = 1 ]; then
		echo "main-job.sh: unmounting job $job" >&2
		"$jobfs" umount --job "$job" --kill --timeout 5 || status=1
	fi
	# the demo's layer: collected here unless the job was never created
	if "$jobfs" ls --json | grep -q "\"id\": \"$job\""; then
		"$jobfs" umount --job "$job" --collect || status=1
	fi
	if grep -q " /run/jobfs/$job/" /proc/self/mountinfo; then
		echo "main-job.sh: /run/jobfs/$job is still mounted" >&2
		status=1
	fi
	if [ "$status" -ne 0 ]; then
		echo "main-job.sh: FAILED (status $status)" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section()
{
	printf '\n== %s\n' "$*"
}

section "the policy: jobfs policy show --job $job"
"$jobfs" policy show --job "$job"

section "jobfs mount --job $job"
mounted=1
"$jobfs" mount --job "$job"
workspace=$("$jobfs" ls --json | python3 -c '
import json, sys
job = sys.argv[1]
print([v["target"] for j in json.load(sys.stdin) if j["id"] == job for v in j["views"]][0])' "$job")
grep " $workspace " /proc/self/mountinfo

section "the job runs in $workspace"
cd "$workspace"
git init -q -b main app
cd app
git config user.email ci@example.invalid
git config user.name "CI job"
mkdir -p src docs
printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' >src/main.c
printf '# app\n' >README.md
printf 'notes\n' >docs/notes.txt
git add -A
git commit -q -m "first commit"
printf 'int helper(void) { return 42; }\n' >>src/main.c
git rm -q docs/notes.txt
head -c 65536 /dev/urandom >build.bin
git add -A
git commit -q -m "second commit"
git log --oneline
git status --short
cd /

section "jobfs ls"
"$jobfs" ls

section "jobfs inspect $job (read from the layer, not through the view; .git/ left out here)"
"$jobfs" inspect "$job" | grep -v '/\.git/'
"$jobfs" inspect --json "$job" | python3 -c '
import json, sys
d = json.load(sys.stdin)
paths = {c["path"] for v in d["views"] for c in v["changes"]}
# the work tree as the job left it: notes.txt was created and deleted again, so never in the layer
for p in ("app/src/main.c", "app/README.md", "app/build.bin", "app/.git/HEAD"):
	assert p in paths, p
assert "app/docs/notes.txt" not in paths
print("inspect found the files of the job and not the one it deleted")'


section "jobfs umount --job $job"
"$jobfs" umount --job "$job"
mounted=0
if grep -q " $workspace " /proc/self/mountinfo; then
	echo "main-job.sh: $workspace is still mounted" >&2
	exit 1
fi
"$jobfs" ls

section "the layer stays for inspection until gc"
"$jobfs" inspect --json "$job" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("state:", d["state"], "summary:", d["summary"])'

section "jobfs gc (policy retention: the demo layer is kept)"
"$jobfs" gc

section "jobfs umount --job $job --collect (removes the demo's layer now)"
"$jobfs" umount --job "$job" --collect
"$jobfs" ls
echo "done: job $job mounted, used, inspected, unmounted and collected"
