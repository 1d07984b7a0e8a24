# shellcheck shell=bash
# What the GitHub Actions runner hooks (job-started, job-completed) share: the jobfs command, the
# job key, the mode (canonical paths in a private mount namespace, or per-job paths in the host's),
# the policy switches, the runner's own jobfs dir, and how a hook tells the job what happened
# (workflow commands on stdout, which the runner shows as annotations).
#
# Environment the hooks read (set by the runner, or by `jobfs runner install` in the service):
#   JOBFS                 the jobfs program (default: jobfs on PATH)
#   JOBFS_POLICY          the policy (default: jobfs's own search: /etc/jobfs/policy.yaml, ...)
#   JOBFS_RUNNER_MODE     canonical, host or auto (default auto: canonical in a private mount
#                         namespace, host otherwise; canonical is never used in the host's)
#   JOBFS_HOOK_TIMEOUT    seconds one jobfs command may take before the hook gives up (120)
#   RUNNER_NAME GITHUB_RUN_ID GITHUB_RUN_ATTEMPT GITHUB_JOB   the job key (jobfs job-key --github)
#   RUNNER_TEMP           the runner's temp dir; its parent is the runner's work dir
#   GITHUB_ENV            host mode writes the per-job paths there
#   GITHUB_REPOSITORY GITHUB_REF GITHUB_WORKFLOW GITHUB_JOB GITHUB_EVENT_NAME   the job's context

# shellcheck disable=SC2034 # hook_err, mode, job_state, job_key, targets: set here, read by the hooks
JOBFS=${JOBFS:-jobfs}
hook_timeout=${JOBFS_HOOK_TIMEOUT:-120}
hook_out=""

# The runner runs a hook as `bash -e FILE`; the hooks decide themselves what fails the job.
set +e
set -uo pipefail

hook_log() { printf 'jobfs: %s\n' "$*"; }
# A workflow command: ::warning:: and ::error:: lines become annotations on the run. Their text
# must not hold a newline (it would end the command), so each message is one line.
hook_annotate() { # LEVEL MESSAGE
	local msg=${2//$'\n'/ }
	printf '::%s title=jobfs::%s\n' "$1" "${msg//%/%25}"
}

# jfs ARGS...: runs jobfs with a timeout; its stdout in $hook_out, its stderr shown in the job log
# and kept in $hook_err; returns its exit status (124 on timeout).
jfs() {
	local errfile rc
	errfile=$(mktemp) || return 6
	hook_out=$(timeout --kill-after=10 "$hook_timeout" "$JOBFS" "$@" 2>"$errfile")
	rc=$?
	hook_err=$(head -c 2000 "$errfile")
	rm -f "$errfile"
	[ -z "$hook_err" ] || [ -n "${jfs_quiet:-}" ] || printf '%s\n' "$hook_err"
	[ "$rc" -ne 124 ] || hook_err="jobfs $1 timed out after ${hook_timeout}s"
	return "$rc"
}

# hook_job_key: sets job_key from `jobfs job-key --github`, the one derivation of it.
hook_job_key() {
	job_key=""
	if ! jfs job-key --github; then
		return 1
	fi
	job_key=$hook_out
	[ -n "$job_key" ]
}

# hook_policy_bool KEY DEFAULT: true or false, from `jobfs policy get KEY`; DEFAULT when the
# policy cannot be read (mount then says why).
hook_policy_bool() {
	local value
	value=$(timeout "$hook_timeout" "$JOBFS" policy get "$1" 2>/dev/null) || value=$2
	case $value in
	true | false) echo "$value" ;;
	*) echo "$2" ;;
	esac
}

# The runner's own jobfs dir: in its work dir (the parent of RUNNER_TEMP), which only this runner
# registration uses and which the runner does not empty between jobs. Holds "current-job", the job
# this runner mounted and has not yet unmounted, and in host mode the per-job home.
hook_runner_dir() {
	local temp=${RUNNER_TEMP:?RUNNER_TEMP is not set}
	echo "${JOBFS_RUNNER_DIR:-$(dirname "$temp")/_jobfs}"
}

# hook_ns: sets ns to "private" when this process runs in a mount namespace of its own, "host" when
# in the host's, "unknown" when it cannot tell. PID 1's namespace tells when we may read it (root
# here may not, without CAP_SYS_PTRACE); else the propagation of the root mount: a private namespace
# made by systemd's PrivateMounts= (or `unshare --propagation slave` on a host whose root is
# shared) receives the host's mounts, "master:N"; the host's own root under systemd is "shared:N"
# and a slave of nothing. A host whose root is private shows neither.
hook_ns() {
	local self init root_fields
	ns=unknown
	self=$(stat -L -c %d:%i /proc/self/ns/mnt 2>/dev/null) || return 0
	if init=$(stat -L -c %d:%i /proc/1/ns/mnt 2>/dev/null); then
		if [ "$self" != "$init" ]; then ns=private; else ns=host; fi
		return 0
	fi
	root_fields=$(awk '$5 == "/" { line = $0 } END { print line }' /proc/self/mountinfo)
	case $root_fields in
	*master:*) ns=private ;;
	*shared:*) ns=host ;;
	esac
	return 0
}

# hook_mode: sets mode to canonical or host. Canonical paths are never mounted where we know we
# share the host's namespace: there they would cover ~/.npm for every runner of the user. Where we
# cannot tell, JOBFS_RUNNER_MODE=canonical (which `jobfs runner install` sets together with
# PrivateMounts=yes) is trusted; auto then means host.
hook_mode() {
	local want=${JOBFS_RUNNER_MODE:-auto}
	hook_ns
	case $want in
	canonical | host | auto) ;;
	*)
		hook_annotate warning "JOBFS_RUNNER_MODE='$want' is not canonical, host or auto; using auto"
		want=auto
		;;
	esac
	case $want/$ns in
	canonical/host)
		hook_annotate warning "JOBFS_RUNNER_MODE=canonical, but this runner shares the host's mount namespace (no PrivateMounts=yes: see 'jobfs runner install'); using host mode"
		mode=host
		;;
	canonical/* | auto/private) mode=canonical ;;
	*) mode=host ;;
	esac
}

# hook_job_state ID: sets job_state to the job's state in `jobfs ls` (mounted, stale, unmounted,
# orphan, mounting), "" when there is no such job.
hook_job_state() {
	job_state=""
	jfs ls >/dev/null || return 1
	job_state=$(printf '%s\n' "$hook_out" | awk -v id="$1" 'NR > 1 && $1 == id { print $2 }')
	return 0
}

# hook_targets KEY: sets targets to the views' targets as the policy expands them for job KEY, one
# a line (python3 reads `jobfs policy show --json`); returns 1 with hook_err when it cannot, so a
# missing python3 is an error and not a silently empty list.
hook_targets() {
	targets=""
	jfs policy show --job "$1" --json >/dev/null || return 1
	if ! targets=$(printf '%s' "$hook_out" | python3 -c '
import json, sys
for v in json.load(sys.stdin)["views"]:
    print(v["target"])' 2>&1); then
		hook_err="cannot read the views' targets: ${targets:-python3 failed}"
		targets=""
		return 1
	fi
}
# hook_job_pid ID: the PID of the job's daemon, from `jobfs ls --json` (python3 reads it).
hook_job_pid() {
	jfs ls --json >/dev/null || return 1
	printf '%s' "$hook_out" | python3 -c '
import json, sys
for j in json.load(sys.stdin):
    if j["id"] == sys.argv[1] and j["pid"]:
        print(j["pid"])' "$1"
}
