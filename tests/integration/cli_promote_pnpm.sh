#!/usr/bin/env bash
# Promotion with the real tools, online from the npm registry (skipped, exit 77, only when the
# registry is unreachable). pnpm 12.21.0: jobs A and B install disjoint package sets X and Y from
# pinned lockfiles (tests/integration/projects) into their views of the store (pnpm-store) and of
# pnpm's cache (pnpm-cache), both mounted before either is promoted; both promoted; job C, mounted
# after, installs X and Y together with --offline --frozen-lockfile in a network namespace of its
# own, and `pnpm store status` finds nothing modified; without the lockfile too, resolving from
# the promoted metadata. Controls: a job mounted before the promotes, and C's install from an
# empty store, both fail. Then again on a fresh state dir with B's promote started while A's
# holds the view's lock (strace delays A's renames, its publish among them). A job that rewrites
# a store file through a hard link, deletes one and changes an index row promotes none of it. A
# job whose pnpm died with rows only in index.db-wal gets a conflict, not a silent drop. npm: two
# jobs `npm install` different packages (and one shared) into their ~/.npm; both promoted; a
# third job's `npm ci --offline` of both succeeds. About a minute on an idle machine.
#
# pnpm is installed once per version into JOBFS_TEST_TOOLS (default /var/tmp/jobfs-test-tools).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"
projects=$here/projects
PNPM_VERSION=12.21.0 # the version scripts/bench/data.py pins: store v11 with index.db
registry=https://registry.npmjs.org/
tools=${JOBFS_TEST_TOOLS:-/var/tmp/jobfs-test-tools}

for tool in node npm python3 strace unshare; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $CT_NAME: needs $tool (scripts/setup.sh installs it)" >&2
		exit 1
	}
done
# Jobs see none of the runner's configuration: their HOME is theirs, and so is everything under it.
unset XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME XDG_STATE_HOME PNPM_HOME
while read -r var; do unset "$var"; done < <(env | sed -n 's/^\(npm_config_[^=]*\)=.*/\1/ip')
export CI=true npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false

if ! timeout 30 npm ping --registry "$registry" >/dev/null 2>&1; then
	echo "SKIP: $CT_NAME: the npm registry $registry is unreachable"
	exit 77
fi

# pnpm, installed once per version; a half-done install is never the one used
pnpm_dir=$tools/pnpm-$PNPM_VERSION
PNPM=$pnpm_dir/node_modules/.bin/pnpm
pnpm_install_cleanup() {
	local st=$?
	rm -rf "$tools_tmp"
	(exit "$st")
	ct_on_exit
}
if ! [ -x "$PNPM" ] || [ "$("$PNPM" --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
	step "installing pnpm $PNPM_VERSION into $pnpm_dir"
	mkdir -p "$tools"
	tools_tmp=$(mktemp -d "$tools/.pnpm-$PNPM_VERSION.XXXXXX")
	chmod 755 "$tools_tmp"
	trap pnpm_install_cleanup EXIT
	npm install --prefix "$tools_tmp" --no-audit --no-fund --loglevel=error \
		"pnpm@$PNPM_VERSION" >/dev/null
	rm -rf "$pnpm_dir"
	mv -T "$tools_tmp" "$pnpm_dir"
	trap ct_on_exit EXIT
	check "pnpm $PNPM_VERSION installed" test "$("$PNPM" --version)" = "$PNPM_VERSION"
fi

# views_yaml HOMES: the runner's three caches, each below a job's own home
views_yaml() {
	echo "  - name: store
    lower: []
    target: $1/\${JOB_ID}/.local/share/pnpm/store
    promote: pnpm-store
  - name: pnpm-cache
    lower: []
    target: $1/\${JOB_ID}/.cache/pnpm
    promote: pnpm-cache
  - name: npm
    lower: []
    target: $1/\${JOB_ID}/.npm
    promote: npm-cache"
}
write_policy "$CT_DIR/policy.yaml" "$CT_DIR/state" "$(views_yaml "$CT_DIR/home")"
state=$CT_DIR/state

# project ID NAME: a copy of tests/integration/projects/NAME as job ID's checkout
project() {
	mkdir -p "$CT_DIR/work"
	rm -rf "$CT_DIR/work/$1"
	cp -r "$projects/$2" "$CT_DIR/work/$1"
}
# in_job ID CMD...: CMD in job ID's checkout with the job's HOME (so its caches are its views);
# output in $CT_DIR/ID.log, exit status in rc
in_job() {
	local id=$1
	shift
	rc=0
	(cd "$CT_DIR/work/$id" && HOME=$CT_DIR/home/$id "$@") >"$CT_DIR/$id.log" 2>&1 || rc=$?
}
# offline CMD...: CMD in a network namespace of its own (only a loopback that is down)
offline() { unshare --net -- "$@"; }
log_tail() { tail -n 15 "$CT_DIR/$1.log"; }
# expect_log ID TEXT WHAT: TEXT in the job's log, which pnpm wraps at 80 columns anywhere
expect_log() {
	if tr -s ' \n' '  ' <"$CT_DIR/$1.log" | grep -qF -- "$2"; then
		ok
	else
		bad "$3: '$2' not in: $(log_tail "$1")"
	fi
}
expect_job_rc() { # CODE ID WHAT
	if [ "$rc" -eq "$1" ]; then ok; else bad "$3: exit $rc, expected $1: $(log_tail "$2")"; fi
}
# index_keys DB: every key of pnpm's index, "TABLE KEY" per line, sorted; the file is only read
index_keys() {
	python3 - "$1" <<'EOF'
import sqlite3, sys, urllib.parse
db = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[1]) + "?mode=ro&immutable=1", uri=True)
for table in ("package_index", "package_index_alias"):
    for (key,) in db.execute(f"SELECT key FROM {table} ORDER BY key"):
        print(table, key)
EOF
}
# item FIELD PATH: FIELD of the promote --json item at PATH of the view in $VIEW
item() {
	json "[i.get('$1') for v in d['views'] if v['view'] == '$VIEW' for i in v['items'] if i['path'] == '$2'][0]"
}
total() { json "[v['totals']['$1']['count'] for v in d['views'] if v['view'] == '$VIEW'][0]"; }
upper() { echo "$state/jobs/$1/views/$2/upper"; }
top_gen() { echo "$state/bases/$1/gens/$(sed -n 2p "$state/bases/$1/stack")"; }
# requires ID PKG...: node in the job's checkout loads each package
requires() {
	local id=$1 p
	shift
	for p in "$@"; do
		in_job "$id" node -e "require('$p')"
		expect_job_rc 0 "$id" "$id: require('$p')"
	done
}
X_PKGS=(chalk debug minimist)
Y_PKGS=(commander is-number kleur semver uuid)

no_registry() {
	! offline npm ping --registry "$registry" --fetch-retries=0 --fetch-timeout=5000 \
		>/dev/null 2>&1
}
check "a job's network namespace reaches no registry" no_registry

# pnpm_jobs A B: mounts A and B, installs X in A and Y in B online, unmounts both successful
pnpm_jobs() {
	jmount "$1"
	jmount "$2"
	project "$1" pnpm-x
	project "$2" pnpm-y
	in_job "$1" "$PNPM" install --frozen-lockfile --reporter=append-only
	expect_job_rc 0 "$1" "$1: online pnpm install of X"
	in_job "$2" "$PNPM" install --frozen-lockfile --reporter=append-only
	expect_job_rc 0 "$2" "$2: online pnpm install of Y"
	requires "$1" "${X_PKGS[@]}"
	requires "$2" "${Y_PKGS[@]}"
	run mark-ok --job "$1"
	expect_rc 0 "mark-ok $1"
	run umount --job "$1"
	expect_rc 0 "umount $1"
	run umount --job "$2" --outcome success
	expect_rc 0 "umount $2 --outcome success"
	check "$1 added store files" test -n "$(find "$(upper "$1" store)/v11/files" -type f)"
	check "$1 changed the index" test -f "$(upper "$1" store)/v11/index.db"
	check "$1 fetched registry metadata" \
		test -n "$(find "$(upper "$1" pnpm-cache)/v12/metadata-full" -type f)"
}

# pnpm_offline_c C: mounts C and installs X and Y together, offline; the store is all it used
pnpm_offline_c() {
	local c=$1
	jmount "$c"
	project "$c" pnpm-xy
	in_job "$c" offline "$PNPM" install --offline --frozen-lockfile --reporter=append-only
	expect_job_rc 0 "$c" "$c: offline pnpm install of X and Y together"
	expect_log "$c" "Packages: +16" "$c: all 16 packages installed"
	expect_log "$c" "downloaded 0" "$c: nothing downloaded"
	requires "$c" "${X_PKGS[@]}" "${Y_PKGS[@]}"
	in_job "$c" node -e "process.stdout.write(require('semver').inc('1.2.3', 'minor'))"
	check "$c: semver from the store works" test "$(cat "$CT_DIR/$c.log")" = 1.3.0
	in_job "$c" offline "$PNPM" store status --offline
	expect_job_rc 0 "$c" "$c: pnpm store status"
	expect_log "$c" "Packages in the store are untouched" "$c: store untouched"
	check "$c fetched no store file" test ! -e "$(upper "$c" store)/v11/files"
	check "$c did not change the index" test ! -e "$(upper "$c" store)/v11/index.db"
}

step "pnpm: jobs A (X) and B (Y) install online, both mounted before any promote"
jmount cold # mounted on the empty base: the control
pnpm_jobs a b
keys_a=$(index_keys "$(upper a store)/v11/index.db")
keys_b=$(index_keys "$(upper b store)/v11/index.db")
check "A's and B's index rows are disjoint" \
	test -z "$(comm -12 <(echo "$keys_a") <(echo "$keys_b"))"

step "pnpm: promote A, then B: B's index merged onto A's"
run promote --job a --json
expect_rc 0 "promote a"
VIEW=store
check "A: index.db merged" test "$(item action v11/index.db)" = merged
check "A: all its rows added" \
	test "$(item rows v11/index.db)" = "{'added': $(echo "$keys_a" | wc -l), 'identical': 0, 'conflicts': 0}"
check "A: store files added" test "$(total added)" = "$(find "$(upper a store)/v11/files" -type f | wc -l)"
check "A: projects/ ignored" test "$(item action "v11/projects")" = ignored
VIEW=pnpm-cache
check "A: metadata added" test "$(total added)" -gt 0
check "A: lockfile-verified.jsonl merged" test "$(item action lockfile-verified.jsonl)" = merged
run promote --job b --json
expect_rc 0 "promote b"
VIEW=store
check "B: all its rows added onto A's" \
	test "$(item rows v11/index.db)" = "{'added': $(echo "$keys_b" | wc -l), 'identical': 0, 'conflicts': 0}"
check "B: no conflict" test "$(total conflict)" = 0
check "the top generation's index holds A's and B's rows" \
	test "$(index_keys "$(top_gen store)/v11/index.db")" = "$(sort <(echo "$keys_a") <(echo "$keys_b"))"
check "no SQLite side files in the generations" \
	test -z "$(find "$state/bases/store/gens" -name '*-wal' -o -name '*-shm' -o -name '*-journal')"
VIEW=pnpm-cache
check "B: lockfile-verified.jsonl merged, one record added" \
	test "$(item rows lockfile-verified.jsonl)" = "{'added': 1, 'identical': 0, 'conflicts': 0}"
check "the cache's record lists A's and B's lockfiles" \
	test "$(wc -l <"$(top_gen pnpm-cache)/lockfile-verified.jsonl")" = 2

step "pnpm: job C, mounted after, installs X and Y offline"
pnpm_offline_c c
# pnpm skips checking a lockfile the merged record already covers
project c-x pnpm-x
(cd "$CT_DIR/work/c-x" && HOME=$CT_DIR/home/c offline "$PNPM" install --offline \
	--frozen-lockfile --reporter=append-only) >"$CT_DIR/c-x.log" 2>&1 && rc=0 || rc=$?
expect_job_rc 0 c-x "c: offline install of X alone"
expect_log c-x "Lockfile passes supply-chain policies (verified" \
	"c: A's lockfile found verified in the promoted record"
# without a lockfile, pnpm resolves offline from the promoted metadata, to the same packages
project c-nolock pnpm-xy
rm "$CT_DIR/work/c-nolock/pnpm-lock.yaml"
(cd "$CT_DIR/work/c-nolock" && HOME=$CT_DIR/home/c offline "$PNPM" install --offline \
	--reporter=append-only) >"$CT_DIR/c-nolock.log" 2>&1 && rc=0 || rc=$?
expect_job_rc 0 c-nolock "c: offline install of X and Y without a lockfile"
lock_packages() { awk '/^packages:/ { p = 1; next } /^snapshots:/ { p = 0 } p && /^  [^ ]/' "$1"; }
check "the lockfile pins 16 packages" \
	test "$(lock_packages "$projects/pnpm-xy/pnpm-lock.yaml" | wc -l)" = 16
check "c: resolved to the packages the lockfile pins" test \
	"$(lock_packages "$CT_DIR/work/c-nolock/pnpm-lock.yaml" | sed 's/ *$//')" = \
	"$(lock_packages "$projects/pnpm-xy/pnpm-lock.yaml" | sed 's/ *$//')"
# the controls: the same install with the promoted cache but an empty store fails
project c-empty pnpm-xy
(cd "$CT_DIR/work/c-empty" && HOME=$CT_DIR/home/c offline "$PNPM" install --offline \
	--frozen-lockfile --store-dir "$CT_DIR/empty-store" --reporter=append-only) \
	>"$CT_DIR/c-empty.log" 2>&1 && rc=0 || rc=$?
check "c: the same install from an empty store fails ($(log_tail c-empty | tail -n 2))" \
	test "$rc" -ne 0
expect_log c-empty "not present in local store" "c: for want of the packages"
check "pnpm store status fails on a changed package (the check is real)" bash -c '
	f=$0/node_modules/.pnpm/kleur@4.1.5/node_modules/kleur/index.js
	cp "$f" "$f.orig" && echo "/* changed */" >>"$f"
	cd "$0" && ! HOME=$1 unshare --net -- "$2" store status --offline >/dev/null 2>&1
	st=$?; mv "$f.orig" "$f"; exit $st' "$CT_DIR/work/c" "$CT_DIR/home/c" "$PNPM"

step "pnpm: the job mounted before the promotes cannot do the same"
project cold pnpm-xy
in_job cold offline "$PNPM" install --offline --frozen-lockfile --reporter=append-only
check "cold: offline install fails ($(log_tail cold | tail -n 3))" test "$rc" -ne 0
expect_log cold ERR_PNPM_NO_OFFLINE_META "cold: for want of registry metadata"
run umount --job cold --outcome failure
expect_rc 0 "umount cold"

step "pnpm: a job rewrites a store file through a hard link, deletes one, changes index rows"
run umount --job c --outcome success
expect_rc 0 "umount c"
run manifest --view store
expect_rc 0 "manifest of the store's base"
mv "$CT_DIR/out" "$CT_DIR/store.manifest"
run manifest --view pnpm-cache
expect_rc 0 "manifest of pnpm's cache base"
mv "$CT_DIR/out" "$CT_DIR/cache.manifest"
jmount t
store_t=$CT_DIR/home/t/.local/share/pnpm/store/v11
mapfile -t victims < <(cd "$store_t" && find files -type f | sort | head -n 2)
check "the store has files to tamper with" test "${#victims[@]}" = 2
# a new name in files/, where new files are promoted
hardlink=$(dirname "${victims[0]}")/jobfs-hardlink
ln "$store_t/${victims[0]}" "$store_t/$hardlink"
echo "/* tampered */" >>"$store_t/$hardlink"
rm "$store_t/${victims[1]}"
python3 - "$store_t/index.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
keys = [k for (k,) in db.execute("SELECT key FROM package_index ORDER BY key LIMIT 2")]
db.execute("UPDATE package_index SET data = x'00' WHERE key = ?", (keys[0],))
db.execute("DELETE FROM package_index WHERE key = ?", (keys[1],))
db.commit()
db.close()
EOF
echo '{"tampered":true}' >>"$CT_DIR/home/t/.cache/pnpm/lockfile-verified.jsonl"
mkdir -p "$CT_DIR/home/t/.cache/pnpm/dlx"
echo junk >"$CT_DIR/home/t/.cache/pnpm/dlx/junk"
meta=$(cd "$CT_DIR/home/t/.cache/pnpm" && find v12/metadata-full -type f | sort | head -n 1)
echo '{}' >"$CT_DIR/home/t/.cache/pnpm/$meta"
run umount --job t --outcome success
expect_rc 0 "umount t"
run promote --job t --json
expect_rc 0 "promote t"
VIEW=store
check "the rewritten store file is a conflict" test "$(item action "v11/${victims[0]}")" = conflict
check "its new name is not added" test "$(item action "v11/$hardlink")" = ignored
check "because it is that file" \
	test "$(item reason "v11/$hardlink")" = "a hard link to a base file the job changed"
check "the deletion is ignored" test "$(item action "v11/${victims[1]}")" = ignored
n_rows=$(sort <(echo "$keys_a") <(echo "$keys_b") | wc -l)
check "index.db: the changed row a conflict, the deleted one not taken away" \
	test "$(item rows v11/index.db)" = "{'added': 0, 'identical': $((n_rows - 2)), 'conflicts': 1}"
VIEW=pnpm-cache
check "a rewritten metadata file is a conflict" test "$(item action "$meta")" = conflict
check "what is not metadata is ignored" test "$(item action dlx)" = ignored
run manifest --view store
expect_rc 0 "manifest of the store's base after"
check "the store's files are as they were" \
	test "$(grep -v ' v11/index.db$' "$CT_DIR/out")" = "$(grep -v ' v11/index.db$' "$CT_DIR/store.manifest")"
check "the store's index has the same rows" \
	test "$(index_keys "$(top_gen store)/v11/index.db")" = "$(sort <(echo "$keys_a") <(echo "$keys_b"))"
run manifest --view pnpm-cache
check "the cache's metadata is as it was" \
	test "$(grep -v ' lockfile-verified.jsonl$' "$CT_DIR/out")" = "$(grep -v ' lockfile-verified.jsonl$' "$CT_DIR/cache.manifest")"
pnpm_offline_c e

step "pnpm: a job whose pnpm died with rows only in the write-ahead log"
jmount w
store_w=$CT_DIR/home/w/.local/share/pnpm/store/v11
# a writer killed after its commit, before the close that checkpoints
python3 - "$store_w/index.db" <<'EOF'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA wal_autocheckpoint = 0")
db.execute("INSERT INTO package_index (key, data) VALUES ('jobfs-wal-only', x'01')")
db.commit()
os._exit(0)
EOF
check "the log holds the row" test -s "$(upper w store)/v11/index.db-wal"
run umount --job w --outcome success
expect_rc 0 "umount w"
run promote --job w --json
expect_rc 0 "promote w"
VIEW=store
check "the log is a conflict, not silently dropped" test "$(item action v11/index.db-wal)" = conflict
run promote --job w
expect_grep "$CT_DIR/out" "conflict: v11/index.db-wal (an uncheckpointed SQLite write-ahead log" \
	"the report names the log"

step "pnpm, again on a fresh base: B's promote starts while A's holds the view's lock"
write_policy "$CT_DIR/policy2.yaml" "$CT_DIR/state2" "$(views_yaml "$CT_DIR/home")"
export JOBFS_POLICY=$CT_DIR/policy2.yaml
state=$CT_DIR/state2
pnpm_jobs a2 b2
keys_a=$(index_keys "$(upper a2 store)/v11/index.db")
keys_b=$(index_keys "$(upper b2 store)/v11/index.db")
# A sleeps in every rename, its publish included, with the lock held (LeakSanitizer cannot run
# under ptrace: an ASan build's leak check stays off for this one process)
bg env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
	-e inject=rename,renameat,renameat2:delay_enter=1500000 \
	"$JOBFS" promote --job a2 --view store >"$CT_DIR/pa.out" 2>&1
pa=$BG_PID
for ((i = 0; i < 300; i++)); do
	[ -d "$state/bases/store/tmp/G000001" ] && break
	sleep 0.05
done
check "A is building its generation" test -d "$state/bases/store/tmp/G000001"
check "A holds the view's lock" bash -c '! flock -n "$0" true' "$state/bases/store/lock"
bg "$JOBFS" promote --job b2 --view store >"$CT_DIR/pb.out" 2>&1
pb=$BG_PID
sleep 1
check "B waits for the lock" pid_running "$pb"
check "nothing of B built yet" test ! -e "$state/bases/store/tmp/G000002"
wait "$pa" && ra=0 || ra=$?
wait "$pb" && rb=0 || rb=$?
check "A's promote succeeded ($(cat "$CT_DIR/pa.out"))" test "$ra" = 0
check "B's promote succeeded ($(cat "$CT_DIR/pb.out"))" test "$rb" = 0
check "two generations, B's on top" test "$(tail -n +2 "$state/bases/store/stack" | tr '\n' ' ')" = "G000002 G000001 "
check "B's generation holds A's and B's rows" \
	test "$(index_keys "$(top_gen store)/v11/index.db")" = "$(sort <(echo "$keys_a") <(echo "$keys_b"))"
for id in a2 b2; do
	run promote --job "$id" --view pnpm-cache
	expect_rc 0 "promote $id's pnpm cache"
done
pnpm_offline_c c2

step "npm: jobs P and Q npm install different packages (and one shared) into their ~/.npm"
export JOBFS_POLICY=$CT_DIR/policy.yaml
state=$CT_DIR/state
jmount ncold
for id in np nq; do
	jmount "$id"
done
project np npm-p
project nq npm-q
for id in np nq; do
	in_job "$id" npm install --no-audit --no-fund
	expect_job_rc 0 "$id" "$id: online npm install"
	check "$id: npm wrote its cache" test -n "$(find "$(upper "$id" npm)/_cacache/content-v2" -type f)"
	run umount --job "$id" --outcome success
	expect_rc 0 "umount $id"
done
requires np escape-html is-odd ms
requires nq escape-html left-pad yocto-queue
run promote --job np --json
expect_rc 0 "promote np"
VIEW=npm
check "np: content added" test "$(total added)" -gt 0
check "np: index buckets merged" test "$(total merged)" -gt 0
run promote --job nq --json
expect_rc 0 "promote nq"
check "nq: the shared tarball is identical" test "$(total identical)" -ge 1
check "nq: no conflict" test "$(total conflict)" = 0
# the shared tarball's bucket: P's entry from the base, then Q's
check "nq: a bucket both jobs wrote has both entries" bash -c '
	for f in $(find "$0" -path "*index-v5*" -type f); do
		[ "$(grep -c . "$f")" -ge 2 ] && grep -q escape-html "$f" && exit 0
	done
	exit 1' "$(top_gen npm)"

step "npm: job R, mounted after, runs npm ci --offline of both"
jmount nr
project nr npm-pq
in_job nr offline npm ci --offline --no-audit --no-fund
expect_job_rc 0 nr "nr: npm ci --offline of both"
requires nr escape-html is-odd ms left-pad yocto-queue
in_job nr node -e "process.stdout.write(require('left-pad')('x', 3) + require('ms')(60000))"
check "nr: the packages work" test "$(cat "$CT_DIR/nr.log")" = "  x1m"
check "nr fetched nothing into its cache" test ! -e "$(upper nr npm)/_cacache/content-v2"
project ncold npm-pq
in_job ncold offline npm ci --offline --no-audit --no-fund
check "the job mounted before the promotes cannot ($(log_tail ncold | tail -n 2))" test "$rc" -ne 0
expect_log ncold ENOTCACHED "ncold: for want of the cache"
for id in nr ncold; do
	run umount --job "$id"
	expect_rc 0 "umount $id"
done
