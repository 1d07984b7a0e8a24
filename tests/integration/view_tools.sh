#!/usr/bin/env bash
# Real tools in a view: git over a source tree and over a repository from the lower, and an offline
# npm install from an npm cache that sits in the lower. No network: the package is made here.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || skip "needs git"
command -v npm >/dev/null || skip "needs npm"
command -v node >/dev/null || skip "needs node"

export HOME=$IT_DIR/home
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=jobfs GIT_AUTHOR_EMAIL=jobfs@localhost
export GIT_COMMITTER_NAME=jobfs GIT_COMMITTER_EMAIL=jobfs@localhost
export npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
# Nothing may leave the machine: the registry is a closed local port.
export npm_config_registry=http://127.0.0.1:9/
mkdir -p "$HOME"

L1=$IT_DIR/l1
mkdir -p "$L1/src/lib" "$L1/repo"
printf '#include <stdio.h>\nint main(void) { return 0; }\n' >"$L1/src/main.c"
printf 'int add(int a, int b) { return a + b; }\n' >"$L1/src/lib/add.c"
printf 'all:\n\tcc -o main main.c lib/add.c\n' >"$L1/src/Makefile"
printf 'demo\n' >"$L1/src/README"
printf 'one\n' >"$L1/repo/file"
git -C "$L1/repo" init -q
git -C "$L1/repo" add file
git -C "$L1/repo" commit -q -m "first"

step "building an npm cache in a plain dir"
prep=$IT_DIR/prep
mkdir -p "$prep/pkg" "$L1/app"
printf '{"name": "jobfs-demo-dep", "version": "1.0.0", "main": "index.js"}\n' \
	>"$prep/pkg/package.json"
printf "module.exports = 'hello from dep';\n" >"$prep/pkg/index.js"
(cd "$prep/pkg" && npm pack --silent --pack-destination "$prep" >/dev/null)
tarball=$prep/jobfs-demo-dep-1.0.0.tgz
npm cache add "$tarball" --cache "$L1/npm-cache" >/dev/null
integrity=sha512-$(python3 -c 'import base64, hashlib, sys
digest = hashlib.sha512(open(sys.argv[1], "rb").read()).digest()
print(base64.b64encode(digest).decode())' "$tarball")
printf '{"name": "app", "version": "1.0.0", "dependencies": {"jobfs-demo-dep": "1.0.0"}}\n' \
	>"$L1/app/package.json"
cat >"$L1/app/package-lock.json" <<EOF
{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0", "dependencies": {"jobfs-demo-dep": "1.0.0"}},
    "node_modules/jobfs-demo-dep": {
      "version": "1.0.0",
      "resolved": "http://127.0.0.1:9/jobfs-demo-dep/-/jobfs-demo-dep-1.0.0.tgz",
      "integrity": "$integrity"
    }
  }
}
EOF
snapshot_lower "$L1"
new_view v "$L1"

step "git init, add, commit, status over a source tree"
cd "$MNT/src"
check "git init" git init -q
check "git add" git add -A
check "git commit" git commit -q -m "import"
assert_eq "$(git status --porcelain)" "" "git status after the first commit"
printf 'int sub(int a, int b) { return a - b; }\n' >>lib/add.c
rm README
printf 'new\n' >NEWS
assert_eq "$(git status --porcelain | tr '\n' ' ')" " D README  M lib/add.c ?? NEWS " \
	"git status after changes"
check "git add -A" git add -A
check "git commit" git commit -q -m "change"
assert_eq "$(git status --porcelain)" "" "git status after the second commit"
assert_eq "$(git log --format=%s | tr '\n' ' ')" "change import " "git log"
check "git fsck" git fsck --strict
assert_eq "$(git show HEAD:lib/add.c | wc -l)" 2 "lines of lib/add.c at HEAD"
assert_exists "$UPPER/src/.git/HEAD"
assert_content "$UPPER/src/NEWS" new

step "git on a repository from the lower"
cd "$MNT/repo"
assert_eq "$(git status --porcelain)" "" "git status of the lower repository"
printf 'two\n' >>file
check "git commit -a" git commit -q -a -m "second"
assert_eq "$(git log --format=%s | tr '\n' ' ')" "second first " "git log of the lower repository"
check "git gc" git gc -q
check "git fsck after gc" git fsck --strict
assert_eq "$(git -C "$L1/repo" log --format=%s | tr '\n' ' ')" "first " \
	"git log of the lower itself"

step "offline npm ci from a cache in the lower"
cd "$MNT/app"
check "npm ci --offline" npm ci --offline --cache "$MNT/npm-cache"
assert_content "$MNT/app/node_modules/jobfs-demo-dep/index.js" "module.exports = 'hello from dep';"
assert_eq "$(node -e "console.log(require('jobfs-demo-dep'))")" "hello from dep" \
	"requiring the installed package"
assert_exists "$UPPER/app/node_modules/jobfs-demo-dep/package.json"
assert_missing "$L1/app/node_modules"
rm -rf node_modules
check "npm install --offline" npm install --offline --cache "$MNT/npm-cache"
assert_eq "$(node -e "console.log(require('jobfs-demo-dep'))")" "hello from dep" \
	"requiring the package after npm install"
cd /

finish
