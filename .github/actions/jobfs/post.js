// The action's post step: unmounts the views main.js mounted, with --kill (background servers a
// job started still hold them) and the job's outcome when a step exported it (JOBFS_OUTCOME
// success or failure; the mark-ok action records success by itself). Nothing to do when main did
// not mount. A failure to unmount fails the step unless fail-open, which warns instead.
'use strict';

const lib = require('./lib.js');

function post() {
	const job = lib.getState('job');
	const program = lib.getState('jobfs') || 'jobfs';
	const policy = lib.getState('policy');
	const open = lib.getState('fail_open') !== 'false';
	const outcome = process.env.JOBFS_OUTCOME || '';

	if (!job) {
		console.log('jobfs: no views were mounted; nothing to unmount');
		return 0;
	}
	const args = ['umount', '--job', job, '--kill', ...lib.policyArgs(policy)];
	if (outcome === 'success' || outcome === 'failure')
		args.push('--outcome', outcome);
	else if (outcome)
		lib.warning(`JOBFS_OUTCOME='${outcome}' is neither success nor failure; not recorded`);
	const r = lib.runJobfs(program, args);
	if (r.status === 0) {
		console.log(`jobfs: job ${job} unmounted`);
		return 0;
	}
	const message = `cannot unmount the views of job ${job}: ${lib.reason(r)}`;
	if (open) {
		lib.warning(`${message} (jobfs gc detaches them later)`);
		return 0;
	}
	lib.error(message);
	return 1;
}

process.exitCode = post();
