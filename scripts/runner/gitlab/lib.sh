# shellcheck shell=bash
# Shared by the jobfs driver for GitLab Runner's custom executor (config, prepare, run, cleanup):
# the job ID, the exit codes of the executor contract, and the driver's small per-job state.
#
# Every job gets the views of the jobfs policy in a mount namespace of its own, held by its jobfs
# daemon; each stage script runs inside it through `jobfs exec`, so it sees the views at the
# policy's targets (canonical paths, the same for every job) while the host and other jobs see
# their own. Environment (the runner's, not the job's):
#   JOBFS                      the jobfs program (default: jobfs from PATH)
#   JOBFS_POLICY               the policy (default: jobfs's own choice, /etc/jobfs/policy.yaml)
#   JOBFS_GITLAB_BUILDS_DIR    builds_dir given to the runner (default /builds)
#   JOBFS_GITLAB_CACHE_DIR     cache_dir given to the runner (default /cache)
#   JOBFS_GITLAB_BUILDS_DIR_IS_SHARED  true when no view covers builds_dir (default false)
#   JOBFS_GITLAB_PROMOTE       protected (default: promote only jobs of protected refs), always,
#                              never
#   JOBFS_GITLAB_KILL_TIMEOUT  seconds between SIGTERM and SIGKILL at cleanup (default 10)
#   JOBFS_GITLAB_RUN_DIR       the driver's per-job state (default /run/jobfs/gitlab)
#   JOBFS_GITLAB_JOB_PREFIX    prefix of the jobfs job ID (default gitlab-; the ID is the prefix
#                              and CI_JOB_ID)

set -euo pipefail

JOBFS=${JOBFS:-jobfs}
GL_RUN_DIR=${JOBFS_GITLAB_RUN_DIR:-/run/jobfs/gitlab}
# the runner sets both; the fallbacks only matter when a person runs a script by hand
GL_BUILD_FAILURE=${BUILD_FAILURE_EXIT_CODE:-1}
GL_SYSTEM_FAILURE=${SYSTEM_FAILURE_EXIT_CODE:-2}

gl_log() {
	printf 'jobfs-gitlab: %s\n' "$*" >&2
}

gl_system_failure() {
	gl_log "$*"
	exit "$GL_SYSTEM_FAILURE"
}

# Sets GL_JOB (the jobfs job ID) and GL_STATE (the driver's dir for the job) from CI_JOB_ID.
gl_job() {
	local id=${CUSTOM_ENV_CI_JOB_ID:-}

	if ! [[ $id =~ ^[0-9]{1,20}$ ]]; then
		gl_system_failure "CUSTOM_ENV_CI_JOB_ID is '${id}', expected a job number"
	fi
	GL_JOB=${JOBFS_GITLAB_JOB_PREFIX-gitlab-}$id
	GL_STATE=$GL_RUN_DIR/$GL_JOB
}

# The job's CI variables a policy may use in its targets (${CI_PROJECT_DIR}, ...), without the
# CUSTOM_ENV_ prefix. Only these: the job's author sets the others, and must not pick paths.
gl_export_ci_vars() {
	local name value

	for name in CI_JOB_ID CI_BUILDS_DIR CI_PROJECT_DIR CI_PROJECT_PATH_SLUG \
		CI_CONCURRENT_PROJECT_ID CI_RUNNER_ID; do
		value=CUSTOM_ENV_$name
		if [ -n "${!value+x}" ]; then
			export "$name=${!value}"
		fi
	done
}

# JSON string of $1 (paths from the runner's admin: control characters are refused).
gl_json_string() {
	local s=$1

	if [[ $s =~ [[:cntrl:]] ]]; then
		gl_system_failure "control character in '$s'"
	fi
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}
