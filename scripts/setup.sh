#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need. Idempotent; run as root
# (or through sudo) on a fresh Debian 12 machine.
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake pkg-config clang
	libfuse3-dev fuse3 libyaml-dev libxxhash-dev libcmocka-dev libsqlite3-dev
	# tests
	python3 attr xxhash git npm kmod util-linux procps psmisc valgrind sqlite3 stress-ng strace
	# fuzzing: libFuzzer for clang-14 (clang only recommends it, and recommends are not installed)
	libclang-rt-14-dev
	# peers the tests and benchmarks compare against
	fuse-overlayfs unionfs-fuse
	# the benchmark's chart
	gnuplot-nox
	# packaging (pkg_install: systemd-analyze verify, man for the units' Documentation=, dpkg-shlibdeps
	# from dpkg-dev for the .deb's Depends, file, without which cpack -G DEB fails on a fresh Debian)
	# and the JavaScript action (action_js)
	systemd man-db dpkg-dev file nodejs python3-yaml
)

# Packages whose command may already come from elsewhere: Node.js from NodeSource ships its own npm,
# and Debian's npm package conflicts with it.
declare -A COMMAND_OF=([npm]=npm [nodejs]=node)

missing=()
for p in "${PACKAGES[@]}"; do
	if [ -n "${COMMAND_OF[$p]:-}" ] && command -v "${COMMAND_OF[$p]}" >/dev/null; then
		continue
	fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		SUDO=sudo
	else
		SUDO=
	fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
