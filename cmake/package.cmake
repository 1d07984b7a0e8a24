# The Debian package, built by `cd build && cpack -G DEB`: jobfs_VERSION_ARCH.deb, installing under
# /usr with the example policy in /etc/jobfs. The library dependencies come from dpkg-shlibdeps
# over what the two programs link (libfuse3-3, libyaml-0-2, libc6; xxhash is compiled in). Added by hand:
# fuse3 for fusermount3, which unprivileged mounts and unmounts go through, and libsqlite3-0,
# which jobfs opens with dlopen (cli/sqlite_lazy.c: libsqlite3.so.0, 3.37 or later) when promote
# merges a pnpm index.
set(CPACK_PACKAGE_NAME jobfs)
set(CPACK_PACKAGE_VENDOR "jobfs")
set(CPACK_PACKAGE_CONTACT "jobfs maintainers <jobfs@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "copy-on-write overlay views of shared caches for CI jobs")
set(CPACK_PACKAGE_DESCRIPTION
    "jobfs gives each CI job private copy-on-write views of shared caches and workspaces (a FUSE\n\
overlay over read-only lower directories), with a YAML policy per runner host, job records,\n\
garbage collection and promotion of what a successful job added into the shared base.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# install with DESTDIR, so the prefix the install code sees is /usr: the example policy lands in
# /etc/jobfs and the units' ExecStart names /usr/bin/jobfs
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3, libsqlite3-0 (>= 3.37.0), python3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/scripts/host/deb/conffiles
    ${PROJECT_SOURCE_DIR}/scripts/host/deb/postinst
    ${PROJECT_SOURCE_DIR}/scripts/host/deb/prerm
    ${PROJECT_SOURCE_DIR}/scripts/host/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
