#!/usr/bin/env bash
# kill -9 at random points of `jobfs promote` and of gc's flattening. A job of a few thousand
# small files and some larger ones is promoted again and again, each attempt killed after a
# random delay spread over a whole promote; after each kill the base is what it was (jobfs verify
# against the manifest taken before, the published generations byte for byte, the stack as it
# was), or, when the kill came too late, the promote is complete. The next gc leaves nothing
# behind (tmp/, trash, unnamed generations) and the next promote lands everything (verify
# against a manifest of a plain copy of base and jobs). Then gc flattens a deep stack while being
# killed the same way: the manifest never changes. A job mounted before all this still sees its
# own generations at the end.
#
# JOBFS_PFAULTS_SEED picks the delays (printed; empty: a new seed), JOBFS_PFAULTS_KILLS and
# JOBFS_PFAULTS_FLATTEN_KILLS how many kills of each at most, JOBFS_PFAULTS_BUDGET the seconds
# they may take (at least 6 of each run whatever the time).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"

seed=${JOBFS_PFAULTS_SEED:-}
[ -n "$seed" ] || seed=$(($(date +%s%N) % 1000000007))
RANDOM=$seed
kills=${JOBFS_PFAULTS_KILLS:-16}
flatten_kills=${JOBFS_PFAULTS_FLATTEN_KILLS:-12}
# on a loaded machine the loops stop after budget seconds (the gc loop after half of it), once
# min_kills kills of each are done
budget=${JOBFS_PFAULTS_BUDGET:-60}
min_kills=6
echo "--- $CT_NAME: seed $seed ($kills promote kills, $flatten_kills gc kills;" \
	"JOBFS_PFAULTS_SEED=$seed repeats the delays)"

state=$CT_DIR/state
bases=$state/bases/cache
m=$CT_DIR/mnt
N_SMALL=3000 # small files per big job, in dirs of 100
N_LARGE=4    # and 6 MiB files

mkdir -p "$CT_DIR/base/pkg"
echo "base content" >"$CT_DIR/base/pkg/a.txt"
echo "keep me" >"$CT_DIR/base/keep.txt"
policy_views="  - name: cache
    lower: [$CT_DIR/base]
    target: $CT_DIR/mnt/\${JOB_ID}/cache
    promote: add-only"
write_policy "$CT_DIR/policy.yaml" "$state" "$policy_views"
# the same view over a plain copy of what the base should hold, for the expected manifests
write_policy "$CT_DIR/ref.yaml" "$CT_DIR/state-ref" "  - name: cache
    lower: [$CT_DIR/ref]
    target: $CT_DIR/mnt-ref/\${JOB_ID}/cache"
# gc flattens any stack deeper than 2
sed 's/^gc:$/gc:\n  max_generations: 2/' "$CT_DIR/policy.yaml" >"$CT_DIR/flat.yaml"
CT_POLICIES+=("$CT_DIR/flat.yaml")
mkdir "$CT_DIR/ref"
cp -dR --preserve=mode,ownership,timestamps "$CT_DIR/base/." "$CT_DIR/ref/"

# tree DIR...: every path, type, mode, size, mtime, link target and content hash
tree() {
	local d
	for d in "$@"; do
		(cd "$d" && find . -printf '%p %y %m %s %T@ %l\n' | sort &&
			find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
	done
}
lower_before=$(tree "$CT_DIR/base")
stack() { { tail -n +2 "$bases/stack" 2>/dev/null || true; } | tr '\n' ' '; }
# listing GEN...: the generations' entries by name, inode, type, mode, size and mtime (content:
# jobfs verify)
listing() {
	local g
	for g in "$@"; do
		(cd "$bases/gens/$g" && find . -printf "$g %p %i %y %m %s %T@ %l\n" | sort)
	done
}
n_gens() { find "$bases/gens" -mindepth 1 -maxdepth 1 | wc -l; }
# tmp_ids: what tmp/ holds, by name and inode (a new attempt's dir has a new inode)
tmp_ids() { (cd "$bases/tmp" && stat -c '%n %i' -- * 2>/dev/null | sort) || true; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# rand_below N: 0 <= R < N from the seeded generator, in R (never in a subshell: that would not
# advance the sequence)
rand_below() { R=$((((RANDOM << 15) | RANDOM) % $1)); }
# msleep MS
msleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# A job's tree, made once on local disk and extracted into each job's view as TAG/: N_SMALL
# files of 0 to 3 KiB in dNN/ (100 a dir), N_LARGE random 6 MiB ones
mkdir -p "$CT_DIR/tpl/T"
for ((i = 0; i < N_SMALL; i++)); do
	((i % 100)) || mkdir -p "$CT_DIR/tpl/T/d$((i / 100))"
	printf '%*d\n' $(((i * 37) % 3000)) "$i" >"$CT_DIR/tpl/T/d$((i / 100))/f$i"
done
for ((i = 0; i < N_LARGE; i++)); do
	head -c $((6 << 20)) /dev/urandom >"$CT_DIR/tpl/T/large$i"
done
tar -C "$CT_DIR/tpl" -cf "$CT_DIR/tpl.tar" T
rm -rf "$CT_DIR/tpl"

# fill DIR TAG: the tree as TAG/, and a file in the base's pkg/
fill() {
	tar -C "$1" -xf "$CT_DIR/tpl.tar" --transform "s|^T|$2|"
	echo "$2 was here" >"$1/pkg/$2.txt"
}
# umount_ok ID: unmounts a successful job; a few tries while busy (a machine-wide directory
# walker, stress-ng's getdent say, may pass through the view just then)
umount_ok() {
	local i
	for ((i = 0; i < 10; i++)); do
		run umount --job "$1" --outcome success
		[ "$rc" = 4 ] || break
		sleep 0.5
	done
	expect_rc 0 "umount $1"
}
# big_job ID: a successful job that adds a tree of its own
big_job() {
	jmount "$1"
	fill "$m/$1/cache" "$1"
	umount_ok "$1"
}
# small_job ID: a successful job that adds a few files, promoted, its layer collected
small_job() {
	local i
	jmount "$1"
	mkdir -p "$m/$1/cache/small/$1"
	for ((i = 0; i < 20; i++)); do echo "$1 $i" >"$m/$1/cache/small/$1/f$i"; done
	umount_ok "$1"
	run promote --job "$1"
	expect_rc 0 "promote $1"
	add_to_ref "$1"
	run umount --job "$1" --collect
	expect_rc 0 "collect $1"
}
# add_to_ref ID: the job's additions join the plain copy
add_to_ref() {
	cp -dR --preserve=mode,ownership,timestamps "$state/jobs/$1/views/cache/upper/." "$CT_DIR/ref/"
}
# expect_manifest FILE: what the base should now hold, as jobfs manifest lists it
expect_manifest() {
	run manifest --policy "$CT_DIR/ref.yaml" --view cache --output "$1"
	expect_rc 0 "manifest of the plain copy"
}
# verify_base FILE WHAT: jobfs verify passes against FILE
verify_base() {
	run verify --view cache --manifest "$1"
	expect_rc 0 "$2: jobfs verify (stdout: $(head -c 300 "$CT_DIR/out"))"
}
# clean_after_gc WHAT: nothing left over once gc ran: tmp/ and the trash empty, no stack.tmp,
# and only generations the stack or a job record names
clean_after_gc() {
	local g named
	check "$1: tmp/ empty" test -z "$(ls -A "$bases/tmp")"
	check "$1: trash empty" test -z "$(ls -A "$state/trash")"
	check "$1: no stack.tmp" test ! -e "$bases/stack.tmp"
	named=" $(stack) $({ cat "$state"/jobs/*/record 2>/dev/null || true; } | sed -n "s|^lower=$bases/gens/||p" | tr '\n' ' ') "
	for g in "$bases"/gens/*; do
		[ -e "$g" ] || continue
		g=${g##*/}
		case "$named" in *" $g "*) ok ;; *) bad "$1: $g left in gens/, named by nobody" ;; esac
	done
}

step "a first generation, timed"
big_job w
t0=$(now_ms)
run promote --job w --json
promote_ms=$(($(now_ms) - t0))
expect_rc 0 "promote w"
expect_no_grep "$CT_DIR/err" "jobfs: promote: view" "no progress without --progress or a tty"
check "w: every file added" test "$(json 'd["views"][0]["totals"]["added"]["count"]')" = \
	$((N_SMALL + N_LARGE + 1))
add_to_ref w
expect_manifest "$CT_DIR/expected.m"
verify_base "$CT_DIR/expected.m" "after w"
echo "--- $CT_NAME: a promote of $((N_SMALL + N_LARGE + 1)) files takes ${promote_ms} ms"

step "a job mounted now keeps its generation"
jmount early
early_large=$(sha256sum <"$m/early/cache/w/large0")

step "kill -9 at random points of a promote: the old base stays, or the promote is whole"
big_job v
run manifest --view cache --output "$CT_DIR/before.m"
expect_rc 0 "manifest before"
check "jobfs manifest equals the plain copy's" cmp -s "$CT_DIR/before.m" "$CT_DIR/expected.m"
add_to_ref v
expect_manifest "$CT_DIR/after.m"
span=$((promote_ms * 115 / 100)) # past the end too: a kill after the last rename is a case
declare -A phases=()
victim=v
building="building (or syncing) the generation in tmp/"
# kill_promote K [DELAY]: starts a promote of $victim and kills it after DELAY ms or, without
# one, as soon as its generation appears in tmp/; then checks the base
kill_promote() {
	local k=$1 delay=${2:-} stack_before top top_before n_gens tmp_before tmp_files pid prc phase when
	stack_before=$(stack)
	top=$bases/gens/${stack_before%% *} # the previous generation, byte for byte
	top_before=$(tree "$top")
	n_gens=$(n_gens)
	tmp_before=$(tmp_ids)
	tmp_files=$(find "$bases/tmp" | wc -l)
	bg "${JOBFS_CMD[@]}" promote --job "$victim" >"$CT_DIR/bg.out" 2>&1
	pid=$BG_PID
	if [ -n "$delay" ]; then
		msleep "$delay"
		when="after $delay ms"
	else
		while pid_running "$pid" && [ -z "$(comm -13 <(echo "$tmp_before") <(tmp_ids))" ]; do
			sleep 0.01
		done
		when="once its generation appeared in tmp/"
	fi
	kill -KILL "$pid" 2>/dev/null || true # the promote this test started
	wait "$pid" 2>/dev/null && prc=0 || prc=$?
	unset 'CT_PIDS[-1]' # waited for: its PID may be reused, never signal it again
	if [ "$(stack)" != "$stack_before" ]; then
		phase="completed"
	elif [ "$(n_gens)" != "$n_gens" ]; then
		phase="published, stack not written"
	elif [ -n "$(comm -13 <(echo "$tmp_before") <(tmp_ids))" ]; then
		phase=$building
	elif [ "$(find "$bases/tmp" | wc -l)" != "$tmp_files" ] && [ -z "$(ls -A "$bases/tmp")" ]; then
		phase="planning (the last attempt's tmp/ cleaned)"
	elif [ "$(find "$bases/tmp" | wc -l)" != "$tmp_files" ]; then
		phase="cleaning the last attempt's tmp/"
	else
		phase="starting or planning"
	fi
	phases[$phase]=$((${phases[$phase]:-0} + 1))
	echo "    kill $k $when: $phase (exit $prc)"
	if [ "$phase" = completed ]; then
		check "kill $k: completed: exit 0 or killed" test "$prc" = 0 -o "$prc" = 137
		check "kill $k: one generation more" test "$(stack)" = "$(sed -n 2p "$bases/stack") $stack_before"
		check "kill $k: the previous generation unchanged" test "$(tree "$top")" = "$top_before"
		verify_base "$CT_DIR/after.m" "kill $k (completed)"
		# later kills come a little earlier: a loaded machine may have made the timed promote
		# slow; and the next attempts need something to promote: a new job
		span=$((span * 85 / 100))
		victim=v$k
		big_job "$victim"
		run manifest --view cache --output "$CT_DIR/before.m"
		expect_rc 0 "manifest before $victim"
		add_to_ref "$victim"
		expect_manifest "$CT_DIR/after.m"
		return
	fi
	check "kill $k: killed (exit $prc)" test "$prc" = 137
	check "kill $k: the previous generation unchanged" test "$(tree "$top")" = "$top_before"
	verify_base "$CT_DIR/before.m" "kill $k"
}
deadline=$((SECONDS + budget))
for ((k = 0; k < kills && (k < min_kills || SECONDS < deadline); k++)); do
	rand_below "$span"
	kill_promote "$k" "$R"
done
echo "    $k kills in $((SECONDS - deadline + budget)) s"
# one more, sure to land while the generation is being built, whatever the timing did
kill_promote "$k"
for phase in "${!phases[@]}"; do echo "    ${phases[$phase]} kill(s): $phase"; done
check "a kill landed while the generation was being built" test "${phases[$building]:-0}" -gt 0

step "gc leaves nothing of the killed promotes"
# what a kill between writing stack.tmp and renaming it leaves (too short a window to hit)
printf 'jobfs-stack 1\nG999999\n' >"$bases/stack.tmp"
run gc --json
expect_rc 0 "gc"
clean_after_gc "after the killed promotes"
# (gc may flatten the stack when enough promotes completed: compare names, not the whole file)
check "stack.tmp was never read" bash -c "! grep -q G999999 '$bases/stack'"
check "stack.tmp is gone" test ! -e "$bases/stack.tmp"
verify_base "$CT_DIR/before.m" "after gc"

step "the next promote lands everything, with progress on stderr and JSON on stdout"
rc=0
"${JOBFS_CMD[@]}" promote --job "$victim" --json --progress >"$CT_DIR/out" 2>"$CT_DIR/err" || rc=$?
expect_rc 0 "promote $victim"
check "every file added" test "$(json 'd["views"][0]["totals"]["added"]["count"]')" = \
	$((N_SMALL + N_LARGE + 1))
check "nothing in conflict" test "$(json 'd["views"][0]["totals"]["conflict"]["count"]')" = 0
expect_grep "$CT_DIR/err" "jobfs: promote: view cache:" "progress lines on stderr"
expect_grep "$CT_DIR/err" "syncing generation G" "progress: the sync is announced"
expect_grep "$CT_DIR/err" "published: $((N_SMALL + N_LARGE + 1 + N_SMALL / 100 + 2)) entries planned, $((N_SMALL + N_LARGE + 1)) files copied" \
	"the last progress line says what was done"
check "tmp/ empty" test -z "$(ls -A "$bases/tmp")"
verify_base "$CT_DIR/after.m" "after the last promote"

step "kill -9 at random points of gc's flattening: the manifest never changes"
run gc --older-than 0s
expect_rc 0 "gc of the layers"
for i in 1 2; do small_job "s$i"; done
run manifest --view cache --output "$CT_DIR/before.m"
expect_rc 0 "manifest before flattening"
expect_manifest "$CT_DIR/expected.m"
check "the manifest is the plain copy's" cmp -s "$CT_DIR/before.m" "$CT_DIR/expected.m"
depth=$(stack | wc -w)
t0=$(now_ms)
run gc --policy "$CT_DIR/flat.yaml" --json
gc_ms=$(($(now_ms) - t0))
expect_rc 0 "gc flattens"
check "flattened" test "$(json '[g["action"] for g in d["generations"]].count("flattened")')" = 1
check "one generation" test "$(stack | wc -w)" = 1
verify_base "$CT_DIR/before.m" "a whole flatten of $depth generations"
echo "--- $CT_NAME: a gc flattening $depth generations takes ${gc_ms} ms"
span=$((gc_ms * 115 / 100))
phases=()
n_small=2
deadline=$((SECONDS + budget / 2))
for ((k = 0; k < flatten_kills && (k < min_kills || SECONDS < deadline); k++)); do
	while [ "$(stack | wc -w)" -le 2 ]; do
		n_small=$((n_small + 1))
		small_job "s$n_small"
	done
	run manifest --view cache --output "$CT_DIR/before.m"
	expect_rc 0 "manifest before gc kill $k"
	stack_before=$(stack)
	read -ra gens_before <<<"$stack_before"
	named_before=$(listing "${gens_before[@]}")
	rand_below "$span"
	delay=$R
	bg "${JOBFS_CMD[@]}" gc --policy "$CT_DIR/flat.yaml" >"$CT_DIR/bg.out" 2>&1
	pid=$BG_PID
	msleep "$delay"
	kill -KILL "$pid" 2>/dev/null || true # the gc this test started
	wait "$pid" 2>/dev/null && prc=0 || prc=$?
	unset 'CT_PIDS[-1]'
	if [ "$(stack)" != "$stack_before" ]; then
		phase="flattened"
		span=$((span * 85 / 100))
		check "gc kill $k: one generation" test "$(stack | wc -w)" = 1
	else
		phase="not flattened yet"
		check "gc kill $k: the stack's generations unchanged" test "$(listing "${gens_before[@]}")" = "$named_before"
	fi
	phases[$phase]=$((${phases[$phase]:-0} + 1))
	echo "    gc kill $k after ${delay} ms: $phase (exit $prc)"
	check "gc kill $k: exit 0 or killed" test "$prc" = 0 -o "$prc" = 137
	verify_base "$CT_DIR/before.m" "gc kill $k"
done
echo "    $k kills in $((SECONDS - deadline + budget / 2)) s:"
for phase in "${!phases[@]}"; do echo "    ${phases[$phase]} kill(s): $phase"; done

step "the next gc finishes the job and leaves nothing behind"
run gc --policy "$CT_DIR/flat.yaml"
expect_rc 0 "gc"
check "at most 2 generations" test "$(stack | wc -w)" -le 2
clean_after_gc "after the killed flattens"
verify_base "$CT_DIR/before.m" "after the last gc"
expect_manifest "$CT_DIR/expected.m"
check "the base is the plain copy" cmp -s "$CT_DIR/before.m" "$CT_DIR/expected.m"

step "on a terminal, progress is one line rewritten in place"
jmount tty
echo "from a terminal" >"$m/tty/cache/tty.txt"
umount_ok tty
# script(1) gives the promote a terminal for stdout and stderr
script -qec "$JOBFS promote --job tty --dry-run" /dev/null >"$CT_DIR/tty.out" 2>&1 && rc=0 || rc=$?
expect_rc 0 "promote --dry-run on a terminal"
expect_grep "$CT_DIR/tty.out" $'\r\e[Kjobfs: promote: view cache: dry run: 1 entries planned' \
	"the last progress line rewrites the line in place"
run umount --job tty --collect
expect_rc 0 "collect tty"

step "the job mounted before all this still sees its own generation"
check "early: w's file" test "$(sha256sum <"$m/early/cache/w/large0")" = "$early_large"
check "early: w's pkg file" test "$(cat "$m/early/cache/pkg/w.txt")" = "w was here"
check "early: no v" test ! -e "$m/early/cache/v"
check "early: no small jobs" test ! -e "$m/early/cache/small"
umount_ok early
run umount --job early --collect
expect_rc 0 "collect early"
run gc --policy "$CT_DIR/flat.yaml"
expect_rc 0 "gc once nobody uses the old generations"
clean_after_gc "at the end"
check "the policy's lower dir unchanged" test "$(tree "$CT_DIR/base")" = "$lower_before"
