#!/usr/bin/env bash
# Ownership and permissions in a view shared with other users (allow_other): new entries belong to
# the caller and honour its umask, other users cannot change root's files, and the mount is nosuid
# and nodev.
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

step "the mount is nosuid and nodev"
mount_opts=$(mount_options "$MNT")
for opt in nosuid nodev; do
	case ",$mount_opts," in
	*",$opt,"*) ;;
	*) fail "mount options '$mount_opts' lack $opt" ;;
	esac
done

finish
