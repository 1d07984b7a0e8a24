#!/usr/bin/env bash
# Ownership and permissions in a view shared with other users (allow_other): new entries belong to
# the caller and honour its umask, other users cannot change root's files, set-ID bits are cleared
# on write, truncate and chown as on a plain directory, and the mount is nosuid and nodev.
# shellcheck disable=SC2016 # the sh -c scripts take the path as "$1"
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || skip "needs setpriv"

# as_nobody CMD...: runs CMD as 65534:65534 without supplementary groups.
as_nobody()
{
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}

# The view must be reachable by uid 65534.
chmod 0755 "$IT_DIR"
L1=$IT_DIR/l1
mkdir -p "$L1/pub" "$L1/priv"
chmod 1777 "$L1/pub"
chmod 0755 "$L1/priv"
printf 'root only\n' >"$L1/priv/root.txt"
chmod 0644 "$L1/priv/root.txt"
printf 'root in pub\n' >"$L1/pub/rootfile"
printf 'data\n' >"$L1/pub/setid-lower"
chown 65534:65534 "$L1/pub/setid-lower"
chmod 4755 "$L1/pub/setid-lower"
snapshot_lower "$L1"
new_view v -o allow_other "$L1"

step "files made by another user belong to it and honour its umask"
check "nobody creates a file" as_nobody sh -c 'umask 027 && echo hi >"$1"' _ "$MNT/pub/n.txt"
assert_stat "$MNT/pub/n.txt" '%u:%g %a' '65534:65534 640'
assert_stat "$UPPER/pub/n.txt" '%u:%g %a' '65534:65534 640'
assert_content "$MNT/pub/n.txt" hi
check "nobody makes a dir" as_nobody sh -c 'umask 027 && mkdir "$1"' _ "$MNT/pub/ndir"
assert_stat "$MNT/pub/ndir" '%u:%g %a' '65534:65534 750'
assert_stat "$UPPER/pub/ndir" '%u:%g %a' '65534:65534 750'
check "nobody makes a symlink" as_nobody ln -s n.txt "$MNT/pub/nlink"
assert_stat "$UPPER/pub/nlink" '%u:%g' '65534:65534'
check "nobody makes a fifo" as_nobody sh -c 'umask 077 && mkfifo "$1"' _ "$MNT/pub/nfifo"
assert_stat "$UPPER/pub/nfifo" '%u:%g %a' '65534:65534 600'
check "nobody writes its own file" as_nobody sh -c 'echo more >>"$1"' _ "$MNT/pub/n.txt"
assert_content "$MNT/pub/n.txt" "$(printf 'hi\nmore')"
(
	umask 077
	: >"$MNT/pub/root-new"
)
assert_stat "$UPPER/pub/root-new" '%u:%g %a' '0:0 600'
assert_stat "$UPPER/pub" '%u:%g %a' '0:0 1777'

step "root's new entries in a set-group-ID dir take its group"
mkdir "$MNT/pub/sg"
chgrp 65534 "$MNT/pub/sg"
chmod 2777 "$MNT/pub/sg"
(
	umask 022
	echo x >"$MNT/pub/sg/file"
	mkdir "$MNT/pub/sg/dir"
	ln -s file "$MNT/pub/sg/link"
	mkfifo "$MNT/pub/sg/fifo"
)
assert_stat "$MNT/pub/sg/file" '%u:%g %a' '0:65534 644'
assert_stat "$UPPER/pub/sg/file" '%u:%g %a' '0:65534 644'
assert_stat "$UPPER/pub/sg/dir" '%u:%g %a' '0:65534 2755'
assert_stat "$UPPER/pub/sg/link" '%u:%g' '0:65534'
assert_stat "$UPPER/pub/sg/fifo" '%u:%g %a' '0:65534 644'
check "nobody creates in the set-group-ID dir" as_nobody sh -c 'umask 022 && echo y >"$1"' _ \
	"$MNT/pub/sg/nfile"
assert_stat "$UPPER/pub/sg/nfile" '%u:%g %a' '65534:65534 644'

step "another user cannot change root's files"
check_fails "nobody writes a root 0644 file" as_nobody sh -c 'echo x >>"$1"' _ "$MNT/priv/root.txt"
check_fails "nobody creates in a root 0755 dir" as_nobody sh -c ': >"$1"' _ "$MNT/priv/new"
check_fails "nobody deletes a root file in a root dir" as_nobody rm -f "$MNT/priv/root.txt"
check_fails "nobody deletes root's file in a sticky dir" as_nobody rm -f "$MNT/pub/rootfile"
check_fails "nobody chmods a root file" as_nobody chmod 0666 "$MNT/priv/root.txt"
check_fails "nobody chowns its file to root" as_nobody chown 0 "$MNT/pub/n.txt"
assert_content "$MNT/priv/root.txt" "root only"
assert_content "$MNT/pub/rootfile" "root in pub"
assert_missing "$MNT/priv/new"
check "nobody reads a root 0644 file" as_nobody cat "$MNT/priv/root.txt"

step "set-ID bits are cleared exactly as on a plain directory"
# The daemon clears them itself (the kernel leaves it to it, fs/inode.c kill_setid): each case
# makes a file of MODE owned by nobody in the view and in a plain directory, runs CMD on both
# ({} is the path) as root or nobody, and the modes must both be the expected one.
REF=$IT_DIR/setid-ref
mkdir -p "$REF" "$MNT/pub/setid"
chmod 0777 "$REF" "$MNT/pub/setid"
setid_n=0
setid_case()
{
	local desc=$1 mode=$2 who=$3 want=$4 dir f
	shift 4
	setid_n=$((setid_n + 1))
	for dir in "$REF" "$MNT/pub/setid"; do
		f=$dir/f$setid_n
		printf 'data\n' >"$f"
		chown 65534:65534 "$f"
		chmod "$mode" "$f"
		local cmd=("${@//\{\}/$f}")
		if [ "$who" = nobody ]; then
			check "$desc" as_nobody "${cmd[@]}"
		else
			check "$desc" "${cmd[@]}"
		fi
	done
	assert_eq "$(stat -c %a "$REF/f$setid_n")" "$want" "$desc, plain directory"
	assert_eq "$(stat -c %a "$MNT/pub/setid/f$setid_n")" "$want" "$desc, view"
	assert_eq "$(stat -c %a "$UPPER/pub/setid/f$setid_n")" "$want" "$desc, upper"
}
append=(sh -c 'echo more >>"$1"' _ {})
setid_case "nobody appends to its setuid file" 4755 nobody 755 "${append[@]}"
setid_case "nobody appends to its setgid g+x file" 2755 nobody 755 "${append[@]}"
setid_case "nobody appends to its setgid g-x file" 2745 nobody 2745 "${append[@]}"
setid_case "nobody appends to its setuid+setgid file" 6755 nobody 755 "${append[@]}"
setid_case "root appends to a setuid file" 4755 root 4755 "${append[@]}"
setid_case "nobody truncates its setuid file" 4755 nobody 755 truncate -s 1 {}
setid_case "root truncates a setuid file" 4755 root 4755 truncate -s 1 {}
# the kernel stops asking about set-ID bits once it has seen a file without them (fs/super.c,
# HANDLE_KILLPRIV_V2): a chmod through the view must make it ask again
setid_case "nobody writes its file, sets setuid, writes again" 755 nobody 755 \
	sh -c 'echo a >>"$1"; chmod 4755 "$1"; echo b >>"$1"' _ {}
setid_case "nobody opens its setgid file with O_TRUNC" 2755 nobody 755 sh -c ': >"$1"' _ {}
setid_case "nobody fallocates in its setuid file" 4755 nobody 755 fallocate -l 8192 {}
setid_case "root chowns a setuid file" 4755 root 755 chown 65534:65534 {}
setid_case "root chowns a setgid g+x file" 2755 root 755 chown 65534:65534 {}
setid_case "root chowns a setgid g-x file" 2745 root 2745 chown 65534:65534 {}
setid_case "root chowns a setuid file to -1:-1" 4755 root 755 \
	python3 -c 'import os, sys; os.chown(sys.argv[1], -1, -1)' {}
setid_case "root chmods a setuid file" 4755 root 4711 chmod 4711 {}
mkdir -m 2755 "$MNT/pub/setid/dir"
check "root chowns a setgid dir" chown 65534:65534 "$MNT/pub/setid/dir"
assert_stat "$MNT/pub/setid/dir" '%a' 2755
check "nobody appends to its setuid base file" as_nobody sh -c 'echo more >>"$1"' _ \
	"$MNT/pub/setid-lower"
assert_stat "$MNT/pub/setid-lower" '%a' 755
assert_stat "$UPPER/pub/setid-lower" '%a' 755
assert_stat "$L1/pub/setid-lower" '%a' 4755

step "file capabilities go with a write, as on a plain directory"
# security.capability (a v2 blob: CAP_NET_BIND_SERVICE, effective), set on a file in the view
# and on one in a plain directory; every case must leave both without it
fcaps_case()
{
	local desc=$1 dir f
	shift
	for dir in "$REF" "$MNT/pub/setid"; do
		f=$dir/caps$setid_n
		printf 'data\n' >"$f"
		chown 65534:65534 "$f"
		chmod 0755 "$f"
		check "$desc: setcap" python3 -c "$fcaps_py" set "$f"
		check "$desc: the capability is there" python3 -c "$fcaps_py" has "$f"
		local cmd=("${@//\{\}/$f}")
		check "$desc" "${cmd[@]}"
		check "$desc: no capability left" python3 -c "$fcaps_py" none "$f"
	done
	setid_n=$((setid_n + 1))
}
fcaps_py='
import os, struct, sys
what, path = sys.argv[1:]
if what == "set":
    os.setxattr(path, "security.capability", struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0))
    sys.exit(0)
try:
    os.getxattr(path, "security.capability")
    sys.exit(0 if what == "has" else 1)
except OSError:
    sys.exit(1 if what == "has" else 0)'
write2_py='import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"a"); os.write(fd, b"b"); os.close(fd)'
fcaps_case "root appends twice to a file with capabilities" python3 -c "$write2_py" {}
fcaps_case "nobody appends to a file with capabilities" as_nobody sh -c 'echo x >>"$1"' _ {}
fcaps_case "root writes, sets capabilities, writes again" \
	sh -c 'echo a >>"$1"; python3 -c "$2" set "$1"; echo b >>"$1"' _ {} "$fcaps_py"
fcaps_case "root truncates a file with capabilities" truncate -s 1 {}

step "the mount is nosuid and nodev"
mount_opts=$(mount_options "$MNT")
for opt in nosuid nodev; do
	case ",$mount_opts," in
	*",$opt,"*) ;;
	*) fail "mount options '$mount_opts' lack $opt" ;;
	esac
done

finish
