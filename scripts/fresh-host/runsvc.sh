#!/bin/bash
# Stand-in for a GitHub Actions runner's runsvc.sh around one job (there is no GitHub here): sets
# what the runner gives its hooks, runs ACTIONS_RUNNER_HOOK_JOB_STARTED, a job that writes into
# ~/.npm, the pnpm store and the workspace and leaves a background server, then
# ACTIONS_RUNNER_HOOK_JOB_COMPLETED; then idles like a runner waiting for its next job.
# The job waits for the file "go" in the runner dir, so its views can be inspected meanwhile.
set -u
dir=$(pwd)
log=$dir/fake-job.log
exec >>"$log" 2>&1
run_id=$(cat "$dir/next-run-id")
export RUNNER_NAME
RUNNER_NAME=$(cat "$dir/.runner-name")
export GITHUB_RUN_ID=$run_id GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=build GITHUB_REPOSITORY=acme/app
export GITHUB_REF=refs/heads/main GITHUB_WORKFLOW=ci GITHUB_EVENT_NAME=push
export RUNNER_TRACKING_ID=github_$(cat /proc/sys/kernel/random/uuid)
export RUNNER_TEMP=$dir/_work/_temp RUNNER_WORKSPACE=$dir/_work/app
export GITHUB_WORKSPACE=$dir/_work/app/app
mkdir -p "$RUNNER_TEMP/_runner_file_commands" "$GITHUB_WORKSPACE"
export GITHUB_ENV=$RUNNER_TEMP/_runner_file_commands/set_env_$run_id
: >"$GITHUB_ENV"
echo "=== $(date -u +%T) $RUNNER_NAME run $run_id: job started hook ($ACTIONS_RUNNER_HOOK_JOB_STARTED)"
bash -e "$ACTIONS_RUNNER_HOOK_JOB_STARTED"
echo "hook rc=$?"
key=$(jobfs job-key --github)
echo "=== job $key"
echo "$RUNNER_NAME" >~/.npm/who
echo "$RUNNER_NAME" >~/.local/share/pnpm/store/from-$RUNNER_NAME
echo "$RUNNER_NAME" >"$RUNNER_WORKSPACE/$key/built-by"
(cd ~/.npm && exec sleep 1000) &
echo $! >"$dir/server.pid"
echo running >"$dir/state"
while [ ! -e "$dir/go" ]; do sleep 0.2; done
rm -f "$dir/go"
echo "=== $(date -u +%T) job sees: ~/.npm: $(ls ~/.npm | tr '\n' ' ') who=$(cat ~/.npm/who) store: $(ls ~/.local/share/pnpm/store | tr '\n' ' ')"
echo "=== job completed hook"
bash -e "$ACTIONS_RUNNER_HOOK_JOB_COMPLETED"
echo "hook rc=$?"
if kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then echo "server: still running"; else echo "server: gone"; fi
echo "after: ~/.npm: $(ls ~/.npm 2>&1 | tr '\n' ' ')"
echo done >"$dir/state"
exec sleep infinity
