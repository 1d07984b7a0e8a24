#!/usr/bin/env bash
# jobfs runner install --github DIR, in a temp root (--root): the drop-in it writes for the
# runner's service (found in DIR/.service, or --service), PrivateMounts=yes and the hook variables
# pointing at the real hooks; idempotent (a second run changes nothing, not even the inode);
# --mode host; --dry-run writes nothing; --uninstall removes exactly what install added (the file,
# and its dir only when install made it); a drop-in jobfs did not write is never replaced or
# removed; a hook set in DIR/.env is warned about; bad arguments are one-line usage errors (exit 1).
# The drop-in passes `systemd-analyze verify` next to a runner unit as svc.sh writes it, and a
# deliberately broken copy does not, so the check reads the drop-in.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
hooks=$(cd "$here/../../scripts/runner/github" && pwd)
root=$CT_DIR/root
units=$root/etc/systemd/system
runner=$CT_DIR/actions-runner
service=actions.runner.octo-app.runner-1.service
dropin=$units/$service.d/jobfs.conf

mkdir -p "$units" "$runner"
echo "$service" >"$runner/.service"
printf '#!/bin/bash\nexit 0\n' >"$runner/runsvc.sh"
chmod 755 "$runner/runsvc.sh"
# the unit svc.sh makes from the runner's actions.runner.service.template
cat >"$units/$service" <<EOF
[Unit]
Description=GitHub Actions Runner (octo-app.runner-1)
After=network-online.target

[Service]
ExecStart=$runner/runsvc.sh
User=root
WorkingDirectory=$runner
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=5min

[Install]
WantedBy=multi-user.target
EOF
install_cmd=(runner install --github "$runner" --root "$root" --hooks-dir "$hooks")

step "usage errors"
run runner install --help
expect_rc 0 "--help"
expect_grep "$CT_DIR/out" "--uninstall" "help lists --uninstall"
for args in "runner install" "runner install --github" "runner install --github $runner --mode both" \
	"runner install --github $runner --hooks-dir relative/dir" \
	"runner install --github $runner --hooks-dir /a\$b" \
	"runner install --github $runner --service bad/name.service" \
	"runner install --github $runner --service noservice" \
	"runner install --github $runner --root relative" \
	"runner install --github $CT_DIR/nosuch" "runner install --github $runner/.service" \
	"runner install --github $runner extra"; do
	# shellcheck disable=SC2086
	run $args
	expect_rc 1 "jobfs $args"
	check "jobfs $args: no stdout" test ! -s "$CT_DIR/out"
	check "jobfs $args: an error line" test "$(grep -c '^jobfs: ' "$CT_DIR/err")" -ge 1
done
run runner install --github "$runner" --mode both
expect_grep "$CT_DIR/err" "invalid mode 'both'" "names the bad mode"
run runner install --github "$CT_DIR/nosuch"
expect_grep "$CT_DIR/err" "$CT_DIR/nosuch" "names the missing dir"
mkdir -p "$CT_DIR/bare"
run runner install --github "$CT_DIR/bare" --root "$root"
expect_rc 1 "a runner dir without .service"
expect_grep "$CT_DIR/err" "$CT_DIR/bare/.service" "names DIR/.service"
echo "not a unit" >"$CT_DIR/bare/.service"
run runner install --github "$CT_DIR/bare" --root "$root"
expect_rc 1 "a .service naming no unit"
check "nothing written by the failures" test -z "$(find "$units" -mindepth 1 -not -path "$units/$service")"

step "--dry-run writes nothing"
run "${install_cmd[@]}" --dry-run
expect_rc 0 "install --dry-run"
expect_grep "$CT_DIR/out" "would write $dropin" "says what it would write"
check "no drop-in dir" test ! -e "$units/$service.d"

step "install writes the drop-in"
run "${install_cmd[@]}"
expect_rc 0 "install"
expect_grep "$CT_DIR/out" "wrote $dropin" "says what it wrote"
expect_grep "$CT_DIR/out" "systemctl daemon-reload && systemctl restart $service" "says what to run"
expect_grep "$dropin" "PrivateMounts=yes" "private mount namespace"
expect_grep "$dropin" "Environment=ACTIONS_RUNNER_HOOK_JOB_STARTED=$hooks/job-started.sh" "started hook"
expect_grep "$dropin" "Environment=ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$hooks/job-completed.sh" "completed hook"
expect_grep "$dropin" "Environment=JOBFS_RUNNER_MODE=canonical" "mode"
for h in job-started.sh job-completed.sh; do
	check "$h is an executable the runner accepts (*.sh)" test -x "$(sed -n "s/^Environment=ACTIONS_RUNNER_HOOK_JOB_[A-Z]*=\(.*$h\)$/\1/p" "$dropin")"
done

step "systemd-analyze verify reads the drop-in and passes it"
if command -v systemd-analyze >/dev/null; then
	# the temp root's units first, then the system's (sysinit.target and the rest)
	verify() { SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify "$service" >"$CT_DIR/verify" 2>&1; }
	check "verify passes" verify
	check "verify says nothing" test ! -s "$CT_DIR/verify"
	[ -s "$CT_DIR/verify" ] && cat "$CT_DIR/verify" >&2
	cp "$dropin" "$CT_DIR/dropin.good"
	echo "PrivateMountz=yes" >>"$dropin"
	verify
	expect_grep "$CT_DIR/verify" "Unknown key 'PrivateMountz'" "verify reads the drop-in (a broken copy is reported)"
	cp "$CT_DIR/dropin.good" "$dropin"
else
	echo "--- $CT_NAME: no systemd-analyze, verify skipped"
fi

step "idempotent"
ino=$(stat -c %i:%Y "$dropin")
run "${install_cmd[@]}"
expect_rc 0 "install again"
expect_grep "$CT_DIR/out" "unchanged $dropin" "says unchanged"
check "file not rewritten" test "$(stat -c %i:%Y "$dropin")" = "$ino"
run "${install_cmd[@]}" --json
expect_rc 0 "install --json"
check "json: unchanged" test "$(json 'd["action"], d["service"], d["mode"], d["dry_run"]')" = "unchanged $service canonical False"

step "--mode host: no private namespace, the hooks still run"
run "${install_cmd[@]}" --mode host
expect_rc 0 "install --mode host"
expect_grep "$CT_DIR/out" "updated $dropin" "says updated"
expect_no_grep "$dropin" "PrivateMounts" "no PrivateMounts in host mode"
expect_grep "$dropin" "Environment=JOBFS_RUNNER_MODE=host" "host mode"
expect_grep "$dropin" "ACTIONS_RUNNER_HOOK_JOB_STARTED" "hooks still set"

step "a hook in the runner's .env overrides the drop-in: warned"
echo "ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/other.sh" >"$runner/.env"
run "${install_cmd[@]}"
expect_rc 0 "install with .env"
expect_grep "$CT_DIR/err" "warning: '$runner/.env' sets ACTIONS_RUNNER_HOOK_JOB_STARTED" "warns naming .env"
rm "$runner/.env"

step "--uninstall removes exactly what install added"
run "${install_cmd[@]}" --uninstall --dry-run
expect_rc 0 "uninstall --dry-run"
expect_grep "$CT_DIR/out" "would remove $dropin" "says what it would remove"
check "dry run kept it" test -f "$dropin"
run "${install_cmd[@]}" --uninstall
expect_rc 0 "uninstall"
expect_grep "$CT_DIR/out" "removed $dropin" "says removed"
check "drop-in and the dir install made gone" test ! -e "$units/$service.d"
check "the unit itself kept" test -f "$units/$service"
run "${install_cmd[@]}" --uninstall
expect_rc 0 "uninstall again"
expect_grep "$CT_DIR/out" "absent $dropin" "says absent"

step "an admin's own drop-in dir and files are kept"
mkdir -p "$units/$service.d"
printf '[Service]\nNice=5\n' >"$units/$service.d/override.conf"
run runner install --github "$runner" --root "$root" --hooks-dir "$hooks" --service "$service"
expect_rc 0 "install next to override.conf (--service)"
run "${install_cmd[@]}" --uninstall
expect_rc 0 "uninstall"
check "override.conf kept" test -f "$units/$service.d/override.conf"
check "jobfs.conf gone" test ! -e "$dropin"

step "a jobfs.conf that jobfs did not write is neither replaced nor removed"
printf '[Service]\nPrivateMounts=no\n' >"$dropin"
run "${install_cmd[@]}"
expect_rc 6 "install over a foreign jobfs.conf"
expect_grep "$CT_DIR/err" "not written by jobfs" "says why"
run "${install_cmd[@]}" --uninstall
expect_rc 6 "uninstall of a foreign jobfs.conf"
check "foreign file intact" test "$(cat "$dropin")" = "$(printf '[Service]\nPrivateMounts=no')"
