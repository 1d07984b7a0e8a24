/* The built-in default policy, used when no --policy, $JOBFS_POLICY or /etc/jobfs/policy.yaml is
 * there. It needs nothing set up: one empty scratch view per job, mounted under /run (a tmpfs that
 * is always there), its data under the state dir. docs/policy.md shows it; keep the two alike. */
#include "policy.h"

const char policy_builtin_yaml[] = "# jobfs built-in default policy\n"
				   "version: 1\n"
				   "state_dir: /var/lib/jobfs\n"
				   "views:\n"
				   "  - name: workspace\n"
				   "    lower: []\n"
				   "    target: /run/jobfs/${JOB_ID}/workspace\n"
				   "gc:\n"
				   "  keep_unmounted: 24h\n";
