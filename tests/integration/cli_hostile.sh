#!/usr/bin/env bash
# Hostile input, through the real CLI: two jobs over one base; from inside job a's view, symlinks,
# `..`, hard links, renames across views and private xattrs reach neither job b's layer, nor the
# state dir, nor the base; a crafted upper (redirects with `..`, devices, setuid files) escapes
# nothing; set-id bits take no effect (nosuid); another user gets exactly what the modes allow
# (default_permissions). Races: gc and umount --collect while a hostile process swaps directories
# of the layer with symlinks to sentinels, and with bind mounts of sentinels inside the upper:
# every sentinel survives, mount points are never entered.
# shellcheck disable=SC2016 # the sh -c scripts take their paths as "$1"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/cli_lib.sh
. "$here/cli_lib.sh"

command -v setpriv >/dev/null || {
	echo "SKIP: $CT_NAME: needs setpriv"
	exit 77
}
state=$CT_DIR/state
n=0
attacks=0 # escape attempts made; each is also a check
swaps=0   # directory/symlink swaps made by the racing attackers
refusals=0 # racing rounds where gc or umount --collect reported an error instead of finishing

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
attack() { # WHAT COMMAND...: an escape attempt that must fail
	local what=$1
	shift
	attacks=$((attacks + 1))
	if "$@" >/dev/null 2>&1; then bad "attack succeeded: $what"; else ok; fi
}
# snapshot DIR: path, type, size, mode, owner, link target, content hash and xattrs below DIR
snapshot() {
	(cd "$1" && find . -printf '%p %y %s %m %U:%G %n %l %T@\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum &&
		{ getfattr -R -h -d -m - --absolute-names . 2>/dev/null || true; } | sed '/^#/d' | sort)
}
quiet() { "$@" >/dev/null 2>&1; }
check_fails() { if "$@" >/dev/null 2>&1; then bad "succeeded: $*"; else ok; fi; }
# errno_of OP ARGS...: what the syscall gives: OK or the errno name
errno_of() { /usr/bin/python3 "$CT_DIR/hostile.py" "$@"; }
nobody_errno() { as_nobody /usr/bin/python3 "$CT_DIR/hostile.py" "$@"; }
expect_errno() { # WANT WHAT OP ARGS... (NOBODY=1: as 65534)
	local want=$1 what=$2 got
	shift 2
	attacks=$((attacks + 1))
	if [ "${NOBODY:-0}" = 1 ]; then got=$(nobody_errno "$@"); else got=$(errno_of "$@"); fi
	if [ "$got" = "$want" ]; then ok; else bad "$what: $got, expected $want"; fi
}
# unmount_under DIR: unmounts what this test bind-mounted below DIR, newest first
unmount_under() {
	local mnt
	for mnt in $(awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | tac); do
		umount -l "$mnt"
	done
}
trap_extra() {
	unmount_under "$state"
	unmount_under "$CT_DIR/crafted"
}
on_exit() {
	local s=$?
	set +e
	trap_extra
	(exit "$s")
	ct_on_exit
}
trap on_exit EXIT

cat >"$CT_DIR/hostile.py" <<'EOF'
import ctypes, errno, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2

def exchange(a, b):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), RENAME_EXCHANGE) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def op(name, args):
    if name == "link": os.link(args[0], args[1], follow_symlinks=False)
    elif name == "rename": os.rename(args[0], args[1])
    elif name == "exchange": exchange(args[0], args[1])
    elif name == "write": os.close(os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    elif name == "read": os.close(os.open(args[0], os.O_RDONLY))
    elif name == "xattr": os.setxattr(args[0], args[1], args[2].encode(), follow_symlinks=False)
    elif name == "openat-dotdot":
        fd = os.open(args[0], os.O_RDONLY | os.O_DIRECTORY)
        st = os.stat(args[1], dir_fd=fd, follow_symlinks=False)
        print(st.st_ino, end=" ")
    else: raise SystemExit("unknown op " + name)

# swap ROOT COUNTFILE TARGET...: from inside ROOT (its cwd, so it follows ROOT when ROOT is renamed
# into the trash), forever: make dN a real dir with files, lN a symlink to a target, exchange them.
def swap(root, countfile, targets):
    done = [0]
    def stop(*_):
        open(countfile, "w").write(str(done[0]))
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    os.chdir(root)
    i = 0
    while True:
        d, l = "d%d" % (i % 16), "l%d" % (i % 16)
        try:
            if not os.path.lexists(d):
                os.makedirs(d + "/sub", exist_ok=True)
                for k in range(4):
                    open("%s/sub/f%d" % (d, k), "w").write("bait")
            if not os.path.lexists(l):
                os.symlink(targets[i % len(targets)], l)
            exchange(d, l)
            done[0] += 1
        except OSError:
            time.sleep(0.0005)
        i += 1
        if i % 64 == 0:
            open(countfile, "w").write(str(done[0]))

if sys.argv[1] == "swap":
    swap(sys.argv[2], sys.argv[3], sys.argv[4:])
else:
    try:
        op(sys.argv[1], sys.argv[2:])
        print("OK")
    except OSError as e:
        print(errno.errorcode[e.errno])
EOF
chmod 0644 "$CT_DIR/hostile.py"

# The base: readable by all, a root-only file, a setuid-root and a setgid-root program, symlinks
# out of the base.
chmod 0755 "$CT_DIR" "$CT_DIR/lower" "$CT_DIR/lower/dir"
chmod 0644 "$CT_DIR/lower/file"
printf 'root only\n' >"$CT_DIR/lower/secret"
chmod 0600 "$CT_DIR/lower/secret"
cp /usr/bin/id "$CT_DIR/lower/suid-id"
chmod 4755 "$CT_DIR/lower/suid-id"
cp /usr/bin/id "$CT_DIR/lower/sgid-id"
chmod 2755 "$CT_DIR/lower/sgid-id"
mkdir -p "$CT_DIR/etc-like/sub"
printf 'root:x:0:0::/root:/bin/sh\n' >"$CT_DIR/etc-like/passwd"
printf 'nested\n' >"$CT_DIR/etc-like/sub/x"
ln -s "$CT_DIR/etc-like" "$CT_DIR/lower/etc-link"
ln -s "$CT_DIR/etc-like/passwd" "$CT_DIR/lower/passwd-link"
setfattr -n user.base -v kept "$CT_DIR/lower/file"

jmount a
jmount b
A=$CT_DIR/mnt/a/ws
B=$CT_DIR/mnt/b/ws
A_UP=$state/jobs/a/views/ws/upper
B_UP=$state/jobs/b/views/ws/upper
echo "b's own" >"$B/bfile"
mkdir "$B/bdir" && echo deep >"$B/bdir/inner"
base_before=$(snapshot "$CT_DIR/lower")
etc_before=$(snapshot "$CT_DIR/etc-like")
b_before=$(snapshot "$state/jobs/b/views")
b_view_before=$(snapshot "$B")
# the state dir minus job a's layer, which a may change
state_snap() { (cd "$state" && find . -path ./jobs/a -prune -o -path ./jobs/b/views -prune -o \
	-name daemon.log -prune -o -printf '%p %y %s %m\n' | sort); }
state_before=$(state_snap)
check_untouched() { # WHEN
	check "base unchanged $1" test "$(snapshot "$CT_DIR/lower")" = "$base_before"
	check "etc-like sentinel unchanged $1" test "$(snapshot "$CT_DIR/etc-like")" = "$etc_before"
	check "job b's layer unchanged $1" test "$(snapshot "$state/jobs/b/views")" = "$b_before"
	check "job b's view unchanged $1" test "$(snapshot "$B")" = "$b_view_before"
	check "the state dir unchanged $1" test "$(state_snap)" = "$state_before"
}

step "the mount: default_permissions, allow_other, nosuid, nodev"
opts=$(awk -v m="$A" '$5 == m { print $6 "," $NF }' /proc/self/mountinfo)
for opt in nosuid nodev default_permissions allow_other; do
	case ",$opts," in
	*",$opt,"*) ok ;;
	*) bad "mount options '$opts' lack $opt" ;;
	esac
done

step "symlinks in a's view, followed by the job user (65534)"
mkdir "$A/job" && chmod 1777 "$A/job"
for t in "$B_UP" "$B_UP/bfile" "$state" "$state/jobs/b" "$CT_DIR/lower" "$CT_DIR/lower/file" \
	"$CT_DIR/etc-like" "$CT_DIR/etc-like/passwd" "$B" "$B/bfile"; do
	n=$((n + 1))
	check "nobody makes a symlink to $t" as_nobody ln -s "$t" "$A/job/l$n"
	attack "nobody appends through a link to $t" as_nobody sh -c 'echo x >>"$1"' _ "$A/job/l$n"
	attack "nobody creates through a link to $t" as_nobody sh -c 'echo x >"$1/new"' _ "$A/job/l$n"
	attack "nobody truncates through a link to $t" as_nobody truncate -s0 "$A/job/l$n"
done
attack "nobody lists the state dir through a link" as_nobody ls "$A/job/l3/"
attack "nobody reads b's upper through a link" as_nobody cat "$A/job/l2"
check "the links live in a's upper only" test -L "$A_UP/job/l1"
check_untouched "after symlink attacks"

step "the daemon never follows a symlink it is asked to change (root in a's view)"
ln -s "$B_UP/bfile" "$A/lb"
ln -s "$CT_DIR/etc-like/passwd" "$A/le"
for l in lb le etc-link passwd-link; do
	check "chown -h $l" chown -h 65534:65534 "$A/$l"
	check "touch -h $l" touch -h -d 2001-01-01 "$A/$l"
	# under valgrind (memcheck.sh) the daemon has no *xattrat calls, so no xattrs on symlinks
	if [ -z "${JOBFS_TEST_WRAPPER:-}" ]; then
		check "trusted xattr on link $l" setfattr -h -n trusted.hostile -v 1 "$A/$l"
	fi
	check "hard link of the link $l" ln -P "$A/$l" "$A/$l.hard"
	check "rename of the link $l" mv "$A/$l.hard" "$A/$l.moved"
	check "remove of the link $l" rm "$A/$l.moved"
	check "$l is still a link" test -L "$A/$l"
	assert_owner=$(stat -c %u:%g "$A/$l")
	check "$l itself changed owner ($assert_owner)" test "$assert_owner" = 65534:65534
done
check "the base link is copied up as a link" test -L "$A_UP/etc-link"
check "its target unchanged" test "$(readlink "$A/etc-link")" = "$CT_DIR/etc-like"
check "rm of a base link" rm "$A/etc-link"
check_untouched "after no-follow changes"

step "\`..\` at the view root and below"
check "view/.. is the host dir above the mount point" \
	test "$(stat -c %d:%i "$A/..")" = "$(stat -c %d:%i "$CT_DIR/mnt/a")"
check "view/dir/.. is the view root" test "$(stat -c %d:%i "$A/dir/..")" = "$(stat -c %d:%i "$A")"
check "openat(view, \"..\") is the mount point's parent" test \
	"$(errno_of openat-dotdot "$A" ..)" = "$(stat -c %i "$CT_DIR/mnt/a") OK"
check "the root's .. never names the layer dir" test "$(stat -c %i "$A/..")" != \
	"$(stat -c %i "$state/jobs/a/views/ws")"
attacks=$((attacks + 3))
attack "nobody writes ../../b/ws/bfile from a's view" as_nobody sh -c 'echo x >>"$1"' _ "$A/../../b/ws/bfile"

step "hard links across views, into the base, out of the layers"
expect_errno EXDEV "link a -> b" link "$A/file" "$B/from-a"
expect_errno EXDEV "link b -> a" link "$B/bfile" "$A/from-b"
expect_errno EXDEV "link base -> a" link "$CT_DIR/lower/file" "$A/from-base"
expect_errno EXDEV "link a -> base" link "$A/file" "$CT_DIR/lower/from-a"
expect_errno EXDEV "link b's upper -> a" link "$B_UP/bfile" "$A/from-b-upper"
expect_errno EXDEV "link a -> state dir" link "$A/file" "$state/from-a"
expect_errno EXDEV "link etc-like -> a" link "$CT_DIR/etc-like/passwd" "$A/passwd"
if [ "$(cat /proc/sys/fs/protected_hardlinks)" = 1 ]; then
	attack "nobody hard-links root's 0600 base file" as_nobody ln "$A/secret" "$A/job/secret-link"
fi
check "a link to a base file inside the view" ln "$A/file" "$A/file.hard"
echo appended >>"$A/file.hard"
check "both names show the write" test "$(tail -n1 "$A/file")" = appended
check_untouched "after hard links"

step "renames across views and out of the view"
echo mine >"$A/mine"
expect_errno EXDEV "rename a -> b" rename "$A/mine" "$B/stolen"
expect_errno EXDEV "rename b -> a" rename "$B/bfile" "$A/stolen"
expect_errno EXDEV "rename a -> state" rename "$A/mine" "$state/jobs/b/stolen"
expect_errno EXDEV "rename a -> base" rename "$A/mine" "$CT_DIR/lower/stolen"
expect_errno EXDEV "rename base -> a" rename "$CT_DIR/lower/file" "$A/stolen"
expect_errno EXDEV "exchange a <-> b" exchange "$A/mine" "$B/bfile"
expect_errno EXDEV "exchange a dir <-> b dir" exchange "$A/dir" "$B/bdir"
check "a's file stays" test "$(cat "$A/mine")" = mine
check_untouched "after renames"

step "private xattrs are refused, ordinary ones have no layer meaning"
for x in opaque redirect metacopy whiteout origin impure nlink upper; do
	attacks=$((attacks + 2))
	got=$(errno_of xattr "$A/dir" "trusted.overlay.$x" y)
	check "trusted.overlay.$x on a dir refused ($got)" test "$got" != OK
	got=$(errno_of xattr "$A/file" "trusted.overlay.$x" "/../../etc-like/passwd")
	check "trusted.overlay.$x on a file refused ($got)" test "$got" != OK
	NOBODY=1 expect_errno EPERM "nobody sets trusted.overlay.$x" xattr "$A/job" "trusted.overlay.$x" y
done
NOBODY=1 expect_errno EPERM "nobody sets a trusted xattr" xattr "$A/job" trusted.x y
check "user.overlay.opaque is an ordinary xattr" setfattr -n user.overlay.opaque -v y "$A/dir"
check "user.overlay.redirect is an ordinary xattr" setfattr -n user.overlay.redirect -v /secret "$A/file"
check "user.overlay.metacopy is an ordinary xattr" setfattr -n user.overlay.metacopy -v '' "$A/file"
check "the dir still merges the base" test "$(cat "$A/dir/inner")" = "in a dir"
check "the file is still its own" test "$(head -n1 "$A/file")" = "lower file"
chmod 0640 "$A/secret" # a metacopy: the upper holds trusted.overlay.metacopy
check "the upper has the private xattr" quiet getfattr -n trusted.overlay.metacopy "$A_UP/secret"
check "the view hides it from listings" bash -c "! getfattr -d -m - '$A/secret' 2>/dev/null | grep -q overlay"
attack "the view refuses to read it" getfattr -n trusted.overlay.metacopy "$A/secret"
check_fails getfattr -n trusted.overlay.opaque "$A_UP/dir"
check_fails getfattr -n trusted.overlay.redirect "$A_UP/file"
check_untouched "after xattrs"

step "set-id bits in the base take no effect (nosuid)"
if [ "$(as_nobody "$CT_DIR/lower/suid-id" -u)" = 0 ]; then
	ok # the control: outside the view the bit works
	attacks=$((attacks + 2))
	check "setuid root through the view runs as the caller" test "$(as_nobody "$A/suid-id" -u)" = 65534
	check "setgid root through the view runs as the caller" test "$(as_nobody "$A/sgid-id" -g)" = 65534
	cp -a "$A/suid-id" "$A/suid-copy" # a copy in the upper keeps the bit
	chmod 4755 "$A/suid-copy"
	attacks=$((attacks + 1))
	check "setuid root in the upper runs as the caller" test "$(as_nobody "$A/suid-copy" -u)" = 65534
else
	echo "--- $CT_NAME: $CT_DIR allows no setuid: nosuid checks skipped"
fi

step "another user gets what the modes allow (default_permissions), nothing more"
attack "nobody reads a root 0600 base file" as_nobody cat "$A/secret"
attack "nobody writes a root 0644 base file" as_nobody sh -c 'echo x >>"$1"' _ "$A/file"
attack "nobody creates in the root 0755 view root" as_nobody sh -c ': >"$1"' _ "$A/nobody-was-here"
attack "nobody removes a base file" as_nobody rm -f "$A/file"
attack "nobody chmods a base file" as_nobody chmod 0666 "$A/file"
attack "nobody reads a's upper directly" as_nobody cat "$A_UP/mine"
attack "nobody lists the state dir" as_nobody ls "$state"
attack "nobody reads b's upper directly" as_nobody cat "$B_UP/bfile"
(umask 077 && echo root-private >"$A/private")
attack "nobody reads root's 0600 file made in the view" as_nobody cat "$A/private"
check "nobody reads a 0644 base file" quiet as_nobody cat "$A/dir/inner"
check "nobody creates in a 1777 dir" as_nobody sh -c 'umask 022 && echo n >"$1"' _ "$A/job/nfile"
check "it is the caller's in the upper" test "$(stat -c '%u:%g %a' "$A_UP/job/nfile")" = "65534:65534 644"
check "root's is root's in the upper" test "$(stat -c '%u:%g %a' "$A_UP/private")" = "0:0 600"
echo root >"$A/job/rootfile"
attack "nobody takes root's file in a sticky dir" as_nobody mv "$A/job/rootfile" "$A/job/mine"
check_untouched "after permission checks"

step "a crafted upper: redirects with .., devices, setuid files (mounted by jobfs-fs directly)"
C=$CT_DIR/crafted
mkdir -p "$C/upper/rd" "$C/work" "$C/mnt"
for r in "/../../etc-like/passwd" "/../secret" "../../../etc-like/passwd" "/etc-link/passwd" \
	"$CT_DIR/etc-like/passwd" "/passwd-link"; do
	n=$((n + 1))
	printf 'decoy\n' >"$C/upper/r$n"
	setfattr -n trusted.overlay.metacopy -v '' "$C/upper/r$n"
	setfattr -n trusted.overlay.redirect -v "$r" "$C/upper/r$n"
	redirects+=("r$n")
done
setfattr -n trusted.overlay.redirect -v "/../../.." "$C/upper/rd"
mkdir "$C/upper/dir"
setfattr -n trusted.overlay.redirect -v "../../../etc-like" "$C/upper/dir"
mknod "$C/upper/null" c 1 3
cp -a "$CT_DIR/lower/suid-id" "$C/upper/suid-up"
chmod 4755 "$C/upper/suid-up"
"${JOBFS_FS:?JOBFS_FS names jobfs-fs}" --lower "$CT_DIR/lower" --upper "$C/upper" --work "$C/work" \
	"$C/mnt" >"$C/log" 2>&1 || bad "jobfs-fs on the crafted upper: $(cat "$C/log")"
for r in "${redirects[@]}"; do
	attacks=$((attacks + 1))
	got=$(cat "$C/mnt/$r" 2>/dev/null || true)
	case $got in
	*root:x:0* | *"root only"*) bad "redirect $r ($(getfattr --only-values -n trusted.overlay.redirect "$C/upper/$r")) escaped: '$got'" ;;
	*) ok ;;
	esac
done
attacks=$((attacks + 4))
check "a redirect on a dir does not leave the layers" bash -c "! ls -A '$C/mnt/rd' | grep -qE 'etc-like|lower|state|proc'"
check "a dir with a bogus redirect merges only its own" test "$(cat "$C/mnt/dir/inner")" = "in a dir"
attack "a device in the upper opens (nodev)" sh -c 'echo x >"$1"' _ "$C/mnt/null"
check "setuid in the upper runs as the caller" test "$(as_nobody "$C/mnt/suid-up" -u)" = 65534
umount "$C/mnt" || bad "cannot unmount the crafted view"
check_untouched "after the crafted upper"

step "job a's writes stayed in a's layer"
check "a's file in a's upper" test "$(cat "$A_UP/mine")" = mine
check "b sees none of a's names" bash -c "! ls -A '$B' | grep -qE '^(job|mine|lb|le|private)$'"

# --- races -----------------------------------------------------------------------------------
# sentinels a racing job points its links and bind mounts at: an /etc-like dir, a copy of a
# layer, and job b's real layer (b stays mounted throughout)
cp -a "$B_UP" "$CT_DIR/layer-copy"
copy_before=$(snapshot "$CT_DIR/layer-copy")
targets=("$CT_DIR/etc-like" "$CT_DIR/layer-copy" "$B_UP" "$CT_DIR/etc-like/sub" "$B_UP/bdir")
sentinels_intact() { # WHEN
	check "etc-like intact $1" test "$(snapshot "$CT_DIR/etc-like")" = "$etc_before"
	check "the layer copy intact $1" test "$(snapshot "$CT_DIR/layer-copy")" = "$copy_before"
	check "job b's layer intact $1" test "$(snapshot "$state/jobs/b/views")" = "$b_before"
	check "job b still serves" test "$(cat "$B/bdir/inner")" = deep
}
# fill DIR: a tree for gc to walk: 30 dirs of 40 files, links to every sentinel
fill() {
	python3 - "$1" "${targets[@]}" <<'EOF'
import os, sys
root = sys.argv[1]
for i in range(30):
    d = os.path.join(root, "t%d" % i, "deeper")
    os.makedirs(d, exist_ok=True)
    for k in range(40):
        open(os.path.join(d, "f%d" % k), "w").write("x" * 64)
    for j, t in enumerate(sys.argv[2:]):
        os.symlink(t, os.path.join(d, "link%d" % j))
EOF
}
# start_swapper DIR: a hostile process swapping dirs of DIR with links to the sentinels
start_swapper() {
	rm -f "$CT_DIR/swaps"
	bg python3 "$CT_DIR/hostile.py" swap "$1" "$CT_DIR/swaps" "${targets[@]}"
	swapper=$BG_PID
	for ((w = 0; w < 100; w++)); do
		count=$(cat "$CT_DIR/swaps" 2>/dev/null || true)
		[ "${count:-0}" -ge 300 ] && break
		sleep 0.05
	done
}
stop_swapper() {
	kill -TERM "$swapper" 2>/dev/null || true
	wait "$swapper" 2>/dev/null || true
	count=$(cat "$CT_DIR/swaps" 2>/dev/null || true)
	swaps=$((swaps + ${count:-0}))
}

step "gc while a hostile process swaps dirs of the layer with symlinks (5 rounds)"
for round in 1 2 3 4 5; do
	id=g$round
	jmount "$id"
	fill "$CT_DIR/mnt/$id/ws"
	run umount --job "$id"
	expect_rc 0 "umount $id"
	start_swapper "$state/jobs/$id/views/ws/upper"
	run gc --older-than 0s --json
	gc_rc=$rc
	stop_swapper
	if [ "$gc_rc" -ne 0 ]; then
		refusals=$((refusals + 1))
		# the attacker kept writing into the walked tree: the error says so, the next gc finishes
		check "round $round: gc says why" grep -q "cannot remove job '$id'" "$CT_DIR/err"
	fi
	sentinels_intact "(gc round $round)"
	run gc --older-than 0s
	expect_rc 0 "round $round: gc after the attacker stopped"
	check "round $round: the layer is gone" test ! -e "$state/jobs/$id"
	check "round $round: the trash is empty" test -z "$(ls -A "$state/trash")"
done

step "umount --collect while a hostile process swaps dirs of the layer (3 rounds)"
for round in 1 2 3; do
	id=u$round
	jmount "$id"
	fill "$CT_DIR/mnt/$id/ws"
	start_swapper "$state/jobs/$id/views/ws/upper"
	run umount --job "$id" --collect
	stop_swapper
	if [ "$rc" -ne 0 ]; then
		refusals=$((refusals + 1))
		check "round $round: umount says why" grep -q "cannot remove the layer of job '$id'" "$CT_DIR/err"
	fi
	sentinels_intact "(umount round $round)"
	run gc --older-than 0s
	expect_rc 0 "round $round: gc after umount --collect"
	check "round $round: the layer is gone" test ! -e "$state/jobs/$id"
done

step "umount --kill --collect of a job swapping through its own view"
jmount v1
fill "$CT_DIR/mnt/v1/ws"
start_swapper "$CT_DIR/mnt/v1/ws"
run umount --job v1 --kill --collect --timeout 2
expect_rc 0 "umount --kill --collect v1"
check "the swapper was ended" wait_gone "$swapper" 50
stop_swapper
sentinels_intact "(umount --kill)"
check "v1's layer is gone" test ! -e "$state/jobs/v1"

step "bind mounts inside an upper are never entered; gc refuses them clearly"
jmount m1
fill "$CT_DIR/mnt/m1/ws"
run umount --job m1
M_UP=$state/jobs/m1/views/ws/upper
mkdir -p "$M_UP/bm-etc" "$M_UP/t3/deeper/bm-b" "$M_UP/bm-copy"
: >"$M_UP/bm-file"
mount --bind "$CT_DIR/etc-like" "$M_UP/bm-etc"
mount --bind "$B_UP" "$M_UP/t3/deeper/bm-b"
mount --bind "$CT_DIR/layer-copy" "$M_UP/bm-copy"
mount --bind "$CT_DIR/etc-like/passwd" "$M_UP/bm-file"
start_swapper "$M_UP"
# and a job that keeps bind-mounting a sentinel in and out while gc walks
(
	cd "$M_UP" && mkdir -p toggle
	for ((i = 0; i < 200; i++)); do
		mount --bind "$CT_DIR/layer-copy" toggle 2>/dev/null && umount toggle 2>/dev/null
	done
) &
toggler=$!
CT_PIDS+=("$toggler")
run gc --older-than 0s
expect_rc 6 "gc with mounts inside a layer"
expect_grep "$CT_DIR/err" "cannot remove job 'm1': something is mounted inside the layer" "gc names the mount"
wait "$toggler" 2>/dev/null || true
stop_swapper
sentinels_intact "(bind mounts)"
check "the bind mounts are still there, now in the trash" test \
	"$(awk -v d="$state/trash/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l)" -ge 4
run gc --older-than 0s
expect_rc 6 "gc again: still refuses"
expect_grep "$CT_DIR/err" "cannot empty '$state/trash': something is mounted inside the layer" "names it again"
check "everything but the mount points is gone" test "$(find "$state/trash" -type f |
	grep -c -v -E '/(bm-etc|bm-b|bm-copy)/|/bm-file$')" -eq 0
unmount_under "$state/trash"
run gc --older-than 0s
expect_rc 0 "gc once the mounts are gone"
check "the trash is empty" test -z "$(ls -A "$state/trash")"
sentinels_intact "(after gc)"
check_untouched "at the end"

step "umount finds a job's own view after its user moved the target or swapped in another's"
# the job user owns mnt/s1, the dir above s1's target: it moves its view away and puts a symlink
# to s2's target dir, then a rename of it, in its place; umount s1 must unmount s1's view only
jmount s1
jmount s2
S1=$CT_DIR/mnt/s1/ws
S2=$CT_DIR/mnt/s2/ws
echo s1 >"$S1/mark1"
echo s2 >"$S2/mark2"
mv "$CT_DIR/mnt/s1" "$CT_DIR/mnt/s1.moved"
ln -s "$CT_DIR/mnt/s2" "$CT_DIR/mnt/s1"
run umount --job s1
expect_rc 0 "umount s1 with its target dir moved and a symlink to s2's in its place"
check "s2's view is still mounted" mountpoint -q "$S2"
check "s2's view still serves its files" test "$(cat "$S2/mark2" 2>/dev/null)" = s2
check "s1's view is unmounted where it was moved" test ! -e "$CT_DIR/mnt/s1.moved/ws/mark1"
rm "$CT_DIR/mnt/s1"
mv "$CT_DIR/mnt/s2" "$CT_DIR/mnt/s2.moved"
run umount --job s2
expect_rc 0 "umount s2 after its target dir was renamed"
check "s2's view is unmounted" test ! -e "$CT_DIR/mnt/s2.moved/ws/mark2"
run ls --json
check "ls shows both unmounted" test "$(json '",".join(sorted(j["state"] for j in d if j["id"] in ("s1", "s2")))')" = "unmounted,unmounted"

echo "--- $CT_NAME: $attacks escape attempts, $swaps racing swaps, $refusals racing rounds refused"
run umount --job a
expect_rc 0 "umount a"
run umount --job b
expect_rc 0 "umount b"
