# What `cmake --install` puts on a runner host, besides the two programs (cli/, fs/): the man
# pages, bash completion, the example policy, the runner hook scripts and the systemd units.
# Paths below are relative to the install prefix, except the example policy: jobfs reads
# /etc/jobfs/policy.yaml, so a system prefix (/usr, /usr/local) puts the example in /etc/jobfs and
# any other prefix (a test's temp dir) in PREFIX/etc/jobfs.

set(JOBFS_HOST_DIR ${PROJECT_SOURCE_DIR}/scripts/host)

install(FILES ${PROJECT_SOURCE_DIR}/docs/jobfs.1 ${PROJECT_SOURCE_DIR}/docs/jobfs-fs.1
	DESTINATION share/man/man1)
install(FILES ${JOBFS_HOST_DIR}/jobfs.bash DESTINATION share/bash-completion/completions
	RENAME jobfs)
# The documented example (README, docs/policy.md); the policy tests keep it valid.
set(JOBFS_POLICY_EXAMPLE ${PROJECT_SOURCE_DIR}/tests/policy/valid/github-actions.yaml)
install(FILES ${JOBFS_POLICY_EXAMPLE} DESTINATION share/jobfs RENAME policy.yaml.example)
# scripts/runner/ (the CI runner hooks), when the tree has it: looked at when installing
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scripts/runner DESTINATION share/jobfs
	USE_SOURCE_PERMISSIONS OPTIONAL)

# Resolved when installing, not when configuring: `cmake --install --prefix P` and CPack's /usr
# both give units whose ExecStart names the jobfs they were installed with.
install(CODE "
	if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\" OR CMAKE_INSTALL_PREFIX STREQUAL \"/usr/local\")
		set(jobfs_etc /etc/jobfs)
	else()
		set(jobfs_etc \"\${CMAKE_INSTALL_PREFIX}/etc/jobfs\")
	endif()
	# the example only: an admin's policy.yaml is never written
	file(INSTALL DESTINATION \"\${jobfs_etc}\" TYPE FILE
		FILES \"${JOBFS_POLICY_EXAMPLE}\" RENAME policy.yaml.example)
	set(JOBFS_BINDIR \"\${CMAKE_INSTALL_PREFIX}/bin\")
	foreach(unit jobfs-gc.service jobfs-recover.service)
		configure_file(\"${JOBFS_HOST_DIR}/\${unit}.in\"
			\"${PROJECT_BINARY_DIR}/units/\${unit}\" @ONLY)
	endforeach()
	file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\" TYPE FILE FILES
		\"${PROJECT_BINARY_DIR}/units/jobfs-gc.service\"
		\"${PROJECT_BINARY_DIR}/units/jobfs-recover.service\"
		\"${JOBFS_HOST_DIR}/jobfs-gc.timer\")
")
