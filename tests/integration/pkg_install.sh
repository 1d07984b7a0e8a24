#!/usr/bin/env bash
# Installing jobfs: `cmake --install --prefix` gives the expected tree and the installed programs
# run (version, help, the installed example policy, a real mount); the bash completion completes
# verbs, flags, choices and the IDs of real jobs; every systemd unit passes `systemd-analyze verify`
# (its ExecStart and man page resolved in the tree it ships in); the units' command, under their
# capability bounding set and no_new_privs, recovers jobs whose daemon died (a crash) or whose PID
# was reused (a reboot), killing nothing else. The .deb from CPack: control fields, a Depends that
# names the package of every library the programs link, the conffile, the maintainer scripts, the
# file list, and the same checks on the tree `dpkg -x` extracts.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
src=$(cd "$here/../.." && pwd)
build=$JOBFS_BUILD
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
prefix=$CT_DIR/prefix

# the files an install puts in ROOT, relative, for PREFIX-relative dirs BIN/SHARE/UNITS and ETC
expected_tree() { # PREFIX ETC
	local p=$1 etc=$2
	{
		printf '%s\n' "$p/bin/jobfs" "$p/bin/jobfs-fs" "$p/share/man/man1/jobfs.1" \
			"$p/share/man/man1/jobfs-fs.1" \
			"$p/share/bash-completion/completions/jobfs" \
			"$p/share/jobfs/policy.yaml.example" "$etc/jobfs/policy.yaml.example" \
			"$p/lib/systemd/system/jobfs-gc.service" \
			"$p/lib/systemd/system/jobfs-gc.timer" \
			"$p/lib/systemd/system/jobfs-recover.service" \
			"$p/libexec/jobfs/runner/github/job-started.sh" \
			"$p/libexec/jobfs/runner/github/job-completed.sh" \
			"$p/libexec/jobfs/runner/github/github_hook.sh"
		if [ -d "$src/scripts/runner" ]; then
			(cd "$src/scripts" && find runner \( -type f -o -type l \)) | sed "s|^|$p/share/jobfs/|"
		fi
	} | sed 's|^/||' | sort
}
files_under() { # ROOT: every file and symlink below ROOT, relative
	(cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
}
expect_same() { # GOT EXPECTED WHAT
	if [ "$1" = "$2" ]; then ok; else bad "$3: got
$1
expected
$2"; fi
}

# verify_units ROOT [--root]: systemd-analyze verify of the three units in ROOT/usr or ROOT, with
# man pages looked up in the tree; passes only with exit 0 and no message at all
verify_units() {
	local root=$1 units=$2 mode=${3:-} out rc=0
	if [ "$mode" = --root ]; then
		# the units' dependencies (sysinit.target, ...) come from the host's own systemd
		cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
		out=$(cd / && MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" \
			/usr/lib/systemd/system/jobfs-gc.service /usr/lib/systemd/system/jobfs-gc.timer \
			/usr/lib/systemd/system/jobfs-recover.service 2>&1) || rc=$?
	else
		out=$(cd / && MANPATH=$root/share/man systemd-analyze verify "$units/jobfs-gc.service" \
			"$units/jobfs-gc.timer" "$units/jobfs-recover.service" 2>&1) || rc=$?
	fi
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then ok; else bad "systemd-analyze verify ($root): exit $rc: $out"; fi
}

step "cmake --install --prefix: the tree"
rc=0
cmake --install "$build" --prefix "$prefix" >"$CT_DIR/install.log" 2>&1 || rc=$?
expect_rc 0 "cmake --install"
expect_same "$(files_under "$prefix")" "$(expected_tree "" etc)" "installed tree"
for f in bin/jobfs bin/jobfs-fs; do
	check "$f is 0755" test "$(stat -c %a "$prefix/$f")" = 755
done
for f in share/man/man1/jobfs.1 share/man/man1/jobfs-fs.1 share/bash-completion/completions/jobfs etc/jobfs/policy.yaml.example \
	lib/systemd/system/jobfs-gc.service lib/systemd/system/jobfs-gc.timer; do
	check "$f is 0644" test "$(stat -c %a "$prefix/$f")" = 644
done
# the runner hooks keep their source modes: an executable hook stays executable
if [ -d "$src/scripts/runner" ]; then
	while IFS= read -r f; do
		want=$(stat -c %a "$src/scripts/$f")
		check "share/jobfs/$f is $want" test "$(stat -c %a "$prefix/share/jobfs/$f")" = "$want"
	done < <(cd "$src/scripts" && find runner -type f)
	while IFS= read -r f; do # symlinks stay symlinks, to the same target
		check "share/jobfs/$f links to $(readlink "$src/scripts/$f")" test \
			"$(readlink "$prefix/share/jobfs/$f")" = "$(readlink "$src/scripts/$f")"
	done < <(cd "$src/scripts" && find runner -type l)
fi
check "the example policy is the documented one" cmp -s "$prefix/etc/jobfs/policy.yaml.example" \
	"$src/tests/policy/valid/github-actions.yaml"
for unit in jobfs-gc.service jobfs-recover.service; do
	expect_grep "$prefix/lib/systemd/system/$unit" "ExecStart=$prefix/bin/jobfs gc" \
		"$unit runs the installed jobfs"
done

step "the installed programs run"
JOBFS_CMD=("$prefix/bin/jobfs")
run --version
expect_rc 0 "jobfs --version"
expect_same "$(cat "$CT_DIR/out")" "jobfs $version" "jobfs --version"
run --help
expect_rc 0 "jobfs --help"
for verb in "policy check" mount umount mark-ok promote ls inspect gc manifest verify; do
	expect_grep "$CT_DIR/out" "  $verb " "--help lists $verb"
done
rc=0
"$prefix/bin/jobfs-fs" --version >"$CT_DIR/out" 2>&1 || rc=$?
expect_rc 0 "jobfs-fs --version"
expect_same "$(cat "$CT_DIR/out")" "jobfs-fs $version" "jobfs-fs --version"
run policy check "$prefix/etc/jobfs/policy.yaml.example"
expect_rc 0 "the installed example policy is valid"

step "runner install finds the hooks beside the installed jobfs, whatever prefix it was built for"
hooks=$prefix/libexec/jobfs/runner/github
built_hooks=$(sed -n 's/^JOBFS_GITHUB_HOOKS_DIR:PATH=//p' "$build/CMakeCache.txt")
mkdir -p "$CT_DIR/runner" "$CT_DIR/sysroot/etc/systemd/system"
echo actions.runner.acme-app.r1.service >"$CT_DIR/runner/.service"
run runner install --github "$CT_DIR/runner" --root "$CT_DIR/sysroot" --json
expect_rc 0 "runner install from the installed tree"
expect_same "$(json 'd["hooks_dir"]')" "$hooks" "the default hooks dir is PREFIX/libexec/jobfs/runner/github"
dropin=$CT_DIR/sysroot/etc/systemd/system/actions.runner.acme-app.r1.service.d/jobfs.conf
for hook in job-started.sh job-completed.sh; do
	line=$(grep "=$hooks/$hook\$" "$dropin")
	check "the drop-in names the installed $hook" test -n "$line"
	check "the drop-in's $hook is executable" test -x "${line##*=}"
done
# a symlink to the program (an admin's /usr/local/bin/jobfs): /proc/self/exe resolves it
mkdir "$CT_DIR/linkbin"
ln -s "$prefix/bin/jobfs" "$CT_DIR/linkbin/jobfs"
JOBFS_CMD=("$CT_DIR/linkbin/jobfs")
run runner install --github "$CT_DIR/runner" --root "$CT_DIR/sysroot" --dry-run --json
expect_same "$(json 'd["hooks_dir"]')" "$hooks" "a symlinked jobfs finds the hooks of the real one"
JOBFS_CMD=("$prefix/bin/jobfs")
run runner install --github "$CT_DIR/runner" --root "$CT_DIR/sysroot" --dry-run --json \
	--hooks-dir /opt/hooks
expect_same "$(json 'd["hooks_dir"]')" /opt/hooks "--hooks-dir overrides the default"
# a jobfs outside PREFIX/bin, or without hooks beside it, falls back to the build's prefix
mkdir -p "$CT_DIR/nohooks/bin"
cp "$prefix/bin/jobfs" "$CT_DIR/nohooks/bin/jobfs"
JOBFS_CMD=("$CT_DIR/nohooks/bin/jobfs")
run runner install --github "$CT_DIR/runner" --root "$CT_DIR/sysroot" --dry-run --json
expect_same "$(json 'd["hooks_dir"]')" "$built_hooks" "no hooks beside jobfs: the build's hooks dir"
JOBFS_CMD=("$build/cli/jobfs")
run runner install --github "$CT_DIR/runner" --root "$CT_DIR/sysroot" --dry-run --json
expect_same "$(json 'd["hooks_dir"]')" "$built_hooks" "the build tree's jobfs: the build's hooks dir"
JOBFS_CMD=("$prefix/bin/jobfs")
rc=0
MANPATH=$prefix/share/man man -w jobfs >"$CT_DIR/out" 2>&1 || rc=$?
expect_same "$(cat "$CT_DIR/out")" "$prefix/share/man/man1/jobfs.1" "man finds the installed page"
rc=0
MANPATH=$prefix/share/man MANWIDTH=100 man jobfs 2>"$CT_DIR/err" >"$CT_DIR/out" </dev/null || rc=$?
expect_rc 0 "man jobfs"
expect_grep "$CT_DIR/out" "jobfs umount --job ID" "the page renders"
rc=0
MANPATH=$prefix/share/man MANWIDTH=100 man jobfs-fs 2>"$CT_DIR/err" >"$CT_DIR/out.fs" </dev/null || rc=$?
expect_rc 0 "man jobfs-fs"
# every -o option jobfs-fs --help lists is described in jobfs-fs(1)
for opt in $("$prefix/bin/jobfs-fs" --help | python3 -c '
import re, sys
t = sys.stdin.read()
seg = " ".join(t[t.index("jobfs options:") + 14:t.index("; anything else")].split())
while "(" in seg:
    seg = re.sub(r"\([^()]*\)", "", seg)
print(" ".join(x.strip() for x in seg.split(",")))'); do
	check "jobfs-fs(1) describes -o $opt" grep -qE "^ {7}$opt( |\$)" "$CT_DIR/out.fs"
done
jmount inst1
check "the installed jobfs mounted a view" is_mounted "$CT_DIR/mnt/inst1/ws"
check "the view shows the lower" test "$(cat "$CT_DIR/mnt/inst1/ws/file")" = "lower file"

step "bash completion"
# complete WORDS...: the completions for the last word, space-separated, from the installed script
complete_words() {
	PATH=$prefix/bin:$PATH bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_jobfs; echo "${COMPREPLY[*]}"' complete "$prefix/share/bash-completion/completions/jobfs" "$@"
}
check "the script registers _jobfs for jobfs" bash -c \
	". '$prefix/share/bash-completion/completions/jobfs'; complete -p jobfs | grep -q -- '-F _jobfs jobfs'"
got=$(complete_words jobfs "")
for verb in policy mount umount mark-ok promote ls inspect gc manifest verify --help --version; do
	check "verbs include $verb" grep -qw -- "$verb" <<<"$got"
done
expect_same "$(complete_words jobfs m)" "manifest mark-ok mount" "verbs starting with m"
# policy's subverbs as `jobfs --help` lists them (check, show, get, ...)
expect_same "$(complete_words jobfs policy "")" \
	"$("$prefix/bin/jobfs" --help | awk '$1 == "policy" { printf "%s%s", sep, $2; sep = " " }')" \
	"policy's subverbs"
check "policy's subverbs include check and show" bash -c \
	"grep -qw check <<<'$(complete_words jobfs policy "")' && grep -qw show <<<'$(complete_words jobfs policy "")'"
expect_same "$(complete_words jobfs umount --)" \
	"--collect --job --kill --outcome --policy --timeout --help" "umount's flags"
expect_same "$(complete_words jobfs gc --d)" "--dry-run" "gc --d"
expect_same "$(complete_words jobfs umount --outcome "")" "success failure" "--outcome's values"
expect_same "$(complete_words jobfs umount --job "")" "inst1" "--job: the mounted job"
expect_same "$(complete_words jobfs inspect "")" "inst1" "inspect's ID"
expect_same "$(complete_words jobfs inspect --view "")" "ws tmp" "--view: the policy's views"
expect_same "$(complete_words jobfs gc "")" "" "gc takes no argument"
mkdir "$CT_DIR/comp" && touch "$CT_DIR/comp/policy-a.yaml"
expect_same "$(complete_words jobfs ls --policy "$CT_DIR/comp/pol")" "$CT_DIR/comp/policy-a.yaml" \
	"--policy: files"
# another state dir through --policy on the command line: its jobs, not $JOBFS_POLICY's
write_policy "$CT_DIR/other.yaml" "$CT_DIR/state-other"
mkdir -p "$CT_DIR/state-other/jobs/other-job"
expect_same "$(complete_words jobfs inspect --policy "$CT_DIR/other.yaml" "")" "other-job" \
	"job IDs of the policy named on the line"
rm -rf "$CT_DIR/state-other"

step "systemd units: systemd-analyze verify"
verify_units "$prefix" "$prefix/lib/systemd/system"
# a unit whose ExecStart is missing fails, so the check above is real
cp -r "$prefix" "$CT_DIR/broken"
rm "$CT_DIR/broken/bin/jobfs"
sed -i "s|=$prefix/|=$CT_DIR/broken/|" "$CT_DIR/broken/lib/systemd/system/jobfs-gc.service"
rc=0
(cd / && MANPATH=$CT_DIR/broken/share/man systemd-analyze verify \
	"$CT_DIR/broken/lib/systemd/system/jobfs-gc.service" >"$CT_DIR/out" 2>&1) || rc=$?
check "verify fails without the binary" test "$rc" -ne 0
expect_grep "$CT_DIR/out" "is not executable" "verify names the missing binary"
rm -rf "$CT_DIR/broken"
for unit in jobfs-gc.service jobfs-recover.service; do
	# each option that would give the unit a mount namespace of its own, where gc's unmounts
	# would not reach the host's stale mounts
	for opt in ProtectSystem ProtectHome PrivateTmp PrivateDevices PrivateMounts ReadWritePaths \
		ReadOnlyPaths InaccessiblePaths ProtectKernelTunables ProtectKernelModules \
		ProtectKernelLogs ProtectControlGroups ProtectProc ProcSubset BindPaths \
		TemporaryFileSystem PrivateNetwork MountFlags RootDirectory; do
		check "$unit has no $opt=" bash -c "! grep -q '^$opt=' '$prefix/lib/systemd/system/$unit'"
	done
done
# systemd's own exposure score (0 safest, 10 worst; 4.2 when written): a root gc in the host's
# mount namespace with CAP_SYS_ADMIN cannot go much lower, and must not drift higher
for unit in jobfs-gc.service jobfs-recover.service; do
	rc=0
	(cd / && systemd-analyze security --offline=yes --threshold=45 \
		"$prefix/lib/systemd/system/$unit" >"$CT_DIR/out" 2>&1) || rc=$?
	check "$unit: exposure at most 4.5 ($(tail -1 "$CT_DIR/out"))" test "$rc" -eq 0
done
expect_grep "$prefix/lib/systemd/system/jobfs-gc.timer" "WantedBy=timers.target" "timer is enabled by timers.target"
expect_grep "$prefix/lib/systemd/system/jobfs-recover.service" "WantedBy=multi-user.target" \
	"recovery runs at boot"

step "the units' command recovers crashed and rebooted jobs, with the units' capabilities"
# run_unit UNIT: the unit's ExecStart under its CapabilityBoundingSet and NoNewPrivileges
run_unit() {
	local unit=$prefix/lib/systemd/system/$1 caps cmd
	caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr '[:upper:]' '[:lower:]' | sed 's/cap_/+/g; s/ /,/g')
	read -r -a cmd <<<"$(sed -n 's/^ExecStart=//p' "$unit")"
	grep -qx NoNewPrivileges=yes "$unit" || bad "$1: no NoNewPrivileges=yes"
	rc=0
	setpriv --no-new-privs --inh-caps=-all --bounding-set="-all,$caps" -- "${cmd[@]}" --json \
		>"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
}
# a job mounted in a runner's private mount namespace: its views are invisible here, yet it lives
CT_JOBS+=(ns1)
rc=0
unshare --mount --propagation private "${JOBFS_CMD[@]}" mount --job ns1 >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
expect_rc 0 "mount ns1 in a private mount namespace"
ns_daemon=$(record_field ns1 pid)
ct_track "$ns_daemon" # the trap ends it, and its namespace with it, if the test stops early
check "ns1's views are not in this namespace" bash -c "! grep -q ' $CT_DIR/mnt/ns1/' /proc/self/mountinfo"
run ls --json
check "ls calls ns1 mounted, not stale" test "$(json '[x["state"] for x in d if x["id"] == "ns1"][0]')" = mounted
run_unit jobfs-gc.service
expect_rc 0 "jobfs-gc.service's command with ns1 mounted elsewhere"
check "gc skipped ns1 as mounted" test "$(json '[x["reason"] for x in d["skipped"] if x["id"] == "ns1"]')" = "['mounted']"
check "gc detached nothing of ns1" test "$(json '[x for x in d["detached"] if x["id"] == "ns1"]')" = "[]"
sleep 0.5
check "ns1's daemon lives" pid_running "$ns_daemon"
check "ns1's view still serves in its namespace" test \
	"$(nsenter --mount="/proc/$ns_daemon/ns/mnt" cat "$CT_DIR/mnt/ns1/ws/file")" = "lower file"
check "ns1's record says mounted" test "$(record_field ns1 state)" = mounted
rc=0
nsenter --mount="/proc/$ns_daemon/ns/mnt" "${JOBFS_CMD[@]}" umount --job ns1 >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
expect_rc 0 "umount ns1 inside its namespace"
check "ns1's daemon exited" wait_gone "$ns_daemon" 50

jmount crash1
daemon=$(record_field crash1 pid)
kill -KILL "$daemon" # the job's daemon, started by this test through jobfs mount
check "crash1's daemon died" wait_gone "$daemon" 50
check "crash1's view is a dead mount" is_mounted "$CT_DIR/mnt/crash1/ws"
run_unit jobfs-gc.service
expect_rc 0 "jobfs-gc.service's command"
check "it detached crash1's views" test \
	"$(json 'sorted(x["view"] for x in d["detached"] if x["id"] == "crash1")')" = "['tmp', 'ws']"
check "crash1's targets are no mount points" bash -c "! grep -q ' $CT_DIR/mnt/crash1/' /proc/self/mountinfo"
check "crash1's layer is kept" test -d "$CT_DIR/state/jobs/crash1/views/ws/upper"
check "inst1 (live) was left alone" is_mounted "$CT_DIR/mnt/inst1/ws"
check "inst1 still serves" test "$(cat "$CT_DIR/mnt/inst1/ws/file")" = "lower file"

# a reboot: the mounts are gone, and the recorded PID now belongs to another process
jmount boot1
daemon=$(record_field boot1 pid)
kill -KILL "$daemon"
check "boot1's daemon died" wait_gone "$daemon" 50
umount -l "$CT_DIR/mnt/boot1/tmp"
umount -l "$CT_DIR/mnt/boot1/ws"
sleep 0.1 # a start time at least one clock tick after the daemon's: PID and start tell them apart
bg sleep 300
check "the new process's start time differs from the daemon's" test \
	"$(awk '{ print $22 }' "/proc/$BG_PID/stat")" != "$(record_field boot1 pid_start)"
sed -i "s/^pid=.*/pid=$BG_PID/" "$CT_DIR/state/jobs/boot1/record"
run ls --json
check "ls calls boot1 stale" test "$(json '[x["state"] for x in d if x["id"] == "boot1"][0]')" = stale
run_unit jobfs-recover.service
expect_rc 0 "jobfs-recover.service's command"
run ls --json
check "boot1 is unmounted after recovery" \
	test "$(json '[x["state"] for x in d if x["id"] == "boot1"][0]')" = unmounted
check "crash1 is unmounted" test "$(json '[x["state"] for x in d if x["id"] == "crash1"][0]')" = unmounted
check "inst1 is still mounted" test "$(json '[x["state"] for x in d if x["id"] == "inst1"][0]')" = mounted
check "the process that reused boot1's PID lives" pid_running "$BG_PID"
check "boot1's targets are gone" test ! -e "$CT_DIR/mnt/boot1/ws"
run umount --job inst1
expect_rc 0 "umount inst1"

step "the .deb: cpack -G DEB"
rc=0
(cd "$CT_DIR" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$CT_DIR/cpack") \
	>"$CT_DIR/cpack.log" 2>&1 || rc=$?
expect_rc 0 "cpack -G DEB ($(tail -3 "$CT_DIR/cpack.log"))"
deb=$(find "$CT_DIR/cpack" -maxdepth 1 -name 'jobfs_*.deb')
check "one .deb, named jobfs_VERSION_ARCH" test "$deb" = \
	"$CT_DIR/cpack/jobfs_${version}_$(dpkg --print-architecture).deb"
field() { dpkg-deb -f "$deb" "$1"; }
expect_same "$(field Package)" jobfs "Package"
expect_same "$(field Version)" "$version" "Version"
expect_same "$(field Architecture)" "$(dpkg --print-architecture)" "Architecture"
depends=$(field Depends)
# every shared library the two programs link, or name for dlopen (libsqlite3.so.0), comes from a
# package named in Depends
libs=$({
	objdump -p "$prefix/bin/jobfs" "$prefix/bin/jobfs-fs" | awk '/NEEDED/ { print $2 }'
	# (-o: strings joins a name to printable bytes before it, as xxhash's inlined constants are)
	strings "$prefix/bin/jobfs" "$prefix/bin/jobfs-fs" | grep -oE 'lib[A-Za-z0-9_.+-]+\.so\.[0-9]+$'
} | sort -u)
check "the programs need libsqlite3.so.0 (linked or opened)" grep -qx libsqlite3.so.0 <<<"$libs"
for lib in $libs; do
	# (awk reads to the end: an early exit would fail the pipeline with SIGPIPE)
	path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !p { p = $NF } END { print p }')
	# merged /usr: a package may have registered it under /lib or /usr/lib
	pkg=$({ dpkg -S "$path" || dpkg -S "/usr${path#/usr}" || dpkg -S "${path#/usr}"; } 2>/dev/null |
		sed -n '1s/:.*//p') || true
	check "Depends names $pkg (for $lib): $depends" grep -qE "(^|, )$pkg( |,|$)" <<<"$depends"
done
# python3: the GitHub runner hooks read `jobfs policy show --json` with it (a fresh Debian 12
# has none: the hooks then could not make the views' targets)
for pkg in fuse3 libfuse3-3 libyaml-0-2 libsqlite3-0 python3; do
	check "Depends names $pkg" grep -qE "(^|, )$pkg( |,|$)" <<<"$depends"
done
mkdir "$CT_DIR/control"
dpkg-deb -e "$deb" "$CT_DIR/control"
expect_same "$(cat "$CT_DIR/control/conffiles")" /etc/jobfs/policy.yaml.example "conffiles"
for s in postinst prerm postrm; do
	check "$s is executable" test -x "$CT_DIR/control/$s"
	check "$s parses" sh -n "$CT_DIR/control/$s"
done
# postinst with a stand-in systemctl, on a host where systemd does not run (no /run/systemd/system)
mkdir "$CT_DIR/stub"
printf '#!/bin/sh\necho "$*" >>%s\n' "$CT_DIR/systemctl.log" >"$CT_DIR/stub/systemctl"
chmod +x "$CT_DIR/stub/systemctl"
if [ ! -d /run/systemd/system ]; then
	check "postinst configure" env PATH="$CT_DIR/stub:$PATH" "$CT_DIR/control/postinst" configure
	expect_same "$(cat "$CT_DIR/systemctl.log")" "enable jobfs-gc.timer jobfs-recover.service" \
		"postinst enables the timer and the recovery unit, starts nothing without systemd"
	: >"$CT_DIR/systemctl.log"
	check "prerm remove" env PATH="$CT_DIR/stub:$PATH" "$CT_DIR/control/prerm" remove
	expect_same "$(cat "$CT_DIR/systemctl.log")" "disable jobfs-gc.timer jobfs-recover.service" \
		"prerm disables them"
	: >"$CT_DIR/systemctl.log"
	check "prerm upgrade" env PATH="$CT_DIR/stub:$PATH" "$CT_DIR/control/prerm" upgrade
	expect_same "$(cat "$CT_DIR/systemctl.log")" "" "an upgrade disables nothing"
fi
check "postinst without systemctl" env PATH=/nonexistent /bin/sh "$CT_DIR/control/postinst" configure
expect_same "$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' | sort)" \
	"$(expected_tree /usr /etc)" "dpkg-deb -c"
check "no file in the .deb is owned by anyone but root" bash -c \
	"! dpkg-deb -c '$deb' | awk '{ print \$2 }' | grep -v '^root/root$'"

step "the .deb extracted with dpkg -x"
root=$CT_DIR/root
dpkg-deb -x "$deb" "$root"
expect_same "$(files_under "$root")" "$(expected_tree /usr /etc)" "extracted tree"
rc=0
"$root/usr/bin/jobfs" --version >"$CT_DIR/out" 2>&1 || rc=$?
expect_same "$(cat "$CT_DIR/out")" "jobfs $version" "the packaged jobfs runs"
rc=0
"$root/usr/bin/jobfs-fs" --version >"$CT_DIR/out" 2>&1 || rc=$?
expect_same "$(cat "$CT_DIR/out")" "jobfs-fs $version" "the packaged jobfs-fs runs"
for unit in jobfs-gc.service jobfs-recover.service; do
	expect_grep "$root/usr/lib/systemd/system/$unit" "ExecStart=/usr/bin/jobfs gc" "$unit in the .deb"
done
verify_units "$root" "" --root
