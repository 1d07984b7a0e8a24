/* The exit codes of the jobfs program, in one table: the enum below and the "exit codes" part of
 * `jobfs --help` are both made from it. docs/jobfs.1 lists the same; keep them alike. */
#pragma once

#define JOBFS_EXIT_CODES(X)                                                                        \
	X(JOBFS_EXIT_OK, 0, "success")                                                             \
	X(JOBFS_EXIT_USAGE, 1,                                                                     \
	  "usage error: unknown verb or option, wrong arguments, invalid job ID")                  \
	X(JOBFS_EXIT_POLICY, 2,                                                                    \
	  "the policy cannot be read, is invalid, or cannot be expanded for the job")              \
	X(JOBFS_EXIT_NO_JOB, 3, "no such job")                                                     \
	X(JOBFS_EXIT_BUSY, 4,                                                                      \
	  "the job is busy: a view is in use, or another jobfs holds its lock")                    \
	X(JOBFS_EXIT_MOUNTED, 5, "the job is already mounted, or its layer still exists")          \
	X(JOBFS_EXIT_SYSTEM, 6,                                                                    \
	  "system error: a view could not be mounted or unmounted, out of memory, or output "      \
	  "could not be written")                                                                  \
	X(JOBFS_EXIT_DIFFERENT, 7,                                                                 \
	  "verify found differences: a changed, missing or extra path in the base")                \
	X(JOBFS_EXIT_MANIFEST, 8, "the manifest given to verify cannot be read or is malformed")   \
	X(JOBFS_EXIT_NOT_OK, 9,                                                                    \
	  "promote refused: the job is not marked successful (mark-ok, umount --outcome), or not " \
	  "trusted for a view (promote.trust)")                                                    \
	X(JOBFS_EXIT_NOT_MOUNTED, 10,                                                              \
	  "exec: the job is not mounted (unmounted, or its daemon and namespace are gone)")

enum jobfs_exit {
#define JOBFS_EXIT_ENUM(name, code, help) name = code,
	JOBFS_EXIT_CODES(JOBFS_EXIT_ENUM)
#undef JOBFS_EXIT_ENUM
};
