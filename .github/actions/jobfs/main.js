// The action's main step: derives the job ID (`jobfs job-key --github`), detaches what crashed
// jobs left stale, mounts the job's views (`jobfs mount --job ID`, with the job's context when
// this jobfs takes --context), exports the targets, and saves what post.js needs. Fail-open: when the views cannot be mounted, a warning
// annotation and the job runs without them; fail-closed fails the step instead.
'use strict';

const lib = require('./lib.js');

// GitHub's variable behind each --context key
const CONTEXT = [
	['repository', 'GITHUB_REPOSITORY'],
	['ref', 'GITHUB_REF'],
	['workflow', 'GITHUB_WORKFLOW'],
	['job', 'GITHUB_JOB'],
	['event', 'GITHUB_EVENT_NAME'],
];

function parseBool(text, what) {
	if (/^(true|yes|on|1)$/i.test(text))
		return true;
	if (/^(false|no|off|0)$/i.test(text))
		return false;
	throw new Error(`${what}: expected true or false, got '${text}'`);
}

// fail-open: the input, else the policy's hooks.fail_open (a jobfs that has `policy get`), else true
function failOpen(program, policy) {
	const given = lib.input('fail-open');
	if (given)
		return parseBool(given, "input 'fail-open'");
	const r = lib.runJobfs(program, ['policy', 'get', 'hooks.fail_open', ...lib.policyArgs(policy)]);
	if (r.status === 0 && /^(true|false)$/.test(r.stdout.trim()))
		return r.stdout.trim() === 'true';
	return true;
}

// The views input: "NAME=VARIABLE" entries, one a line or comma-separated.
function parseViews(text) {
	const pairs = [];
	for (const entry of text.split(/[\n,]/).map((e) => e.trim()).filter(Boolean)) {
		const m = /^([A-Za-z0-9_.-]+)=([A-Za-z_][A-Za-z0-9_]*)$/.exec(entry);
		if (!m)
			throw new Error(`input 'views': '${entry}' is not NAME=VARIABLE`);
		pairs.push({view: m[1], variable: m[2]});
	}
	return pairs;
}

function contextArgs(program) {
	const help = lib.runJobfs(program, ['mount', '--help']);
	if (help.status !== 0 || !help.stdout.includes('--context'))
		return [];
	const args = [];
	for (const [key, variable] of CONTEXT) {
		const value = process.env[variable];
		if (value)
			args.push('--context', `${key}=${value}`);
	}
	return args;
}

// What an earlier job that crashed left: a job whose daemon died, or whose views no longer answer,
// still holds its targets. `jobfs umount` detaches them (the layer stays for gc). A job mounted
// in another runner's private mount namespace counts as mounted, never stale, and is left alone.
function recoverStale(program, policy) {
	const ls = lib.runJobfs(program, ['ls', '--json', ...lib.policyArgs(policy)]);
	let jobs = [];
	if (ls.status !== 0)
		return;
	try {
		jobs = JSON.parse(ls.stdout);
	} catch (e) {
		lib.warning(`cannot read 'jobfs ls --json': ${e.message}`);
		return;
	}
	for (const job of jobs.filter((j) => j && j.state === 'stale')) {
		const r = lib.runJobfs(program, ['umount', '--job', job.id, ...lib.policyArgs(policy)]);
		if (r.status === 0)
			console.log(`jobfs: recovered job ${job.id}, left stale by a crashed job`);
		else
			lib.warning(`cannot recover stale job ${job.id}: ${lib.reason(r)}`);
	}
}

// The names of every view of the policy, mounted for this job or not.
function policyViews(program, policy) {
	const r = lib.runJobfs(program, ['policy', 'show', '--json', ...lib.policyArgs(policy)]);
	if (r.status !== 0)
		throw new Error(`cannot read the policy: ${lib.reason(r)}`);
	return (JSON.parse(r.stdout).views || []).map((v) => v.name);
}

// `jobfs mount` prints "NAME<TAB>TARGET" per view.
function parseTargets(stdout) {
	const targets = {};
	for (const line of stdout.split('\n')) {
		const tab = line.indexOf('\t');
		if (tab > 0)
			targets[line.slice(0, tab)] = line.slice(tab + 1);
	}
	return targets;
}

function main() {
	const program = lib.input('jobfs') || 'jobfs';
	const policy = lib.input('policy');
	let open = true, mounted = false;

	try {
		open = failOpen(program, policy);
		const views = parseViews(lib.input('views'));
		const key = lib.runJobfs(program, ['job-key', '--github']);
		if (key.status !== 0)
			throw new Error(`cannot derive the job ID: ${lib.reason(key)}`);
		const job = key.stdout.trim();
		lib.saveState('jobfs', program);
		lib.saveState('policy', policy);
		lib.saveState('fail_open', String(open));
		lib.setOutput('job-id', job);

		recoverStale(program, policy);
		const mount = lib.runJobfs(program, ['mount', '--job', job, ...lib.policyArgs(policy),
						     ...contextArgs(program)]);
		if (mount.status !== 0)
			throw new Error(`cannot mount the views of job ${job}: ${lib.reason(mount)}`);
		// from here on the job is mounted: post unmounts it whatever happens next
		lib.saveState('job', job);
		mounted = true;
		lib.setOutput('mounted', 'true');
		// the job's marker: every later step gets it, and whatever they start inherits it, so
		// post's `umount --kill` also ends what holds none of the views (README, "Runner
		// integration")
		lib.setEnv('JOBFS_JOB_ID', job);
		const targets = parseTargets(mount.stdout);
		for (const [name, target] of Object.entries(targets)) {
			console.log(`jobfs: view ${name} at ${target}`);
			lib.setOutput(`target-${name}`, target);
		}
		lib.setOutput('targets', JSON.stringify(targets));
		let known = null;
		for (const {view, variable} of views) {
			if (view in targets) {
				lib.setEnv(variable, targets[view]);
				continue;
			}
			known = known || policyViews(program, policy);
			// a view of the policy whose selectors ('when') leave this job out
			if (known.includes(view)) {
				lib.notice(`view '${view}' is not mounted for job ${job}; ${variable} not set`);
				continue;
			}
			throw new Error(`input 'views': the policy has no view '${view}' (it has: ${
				known.join(', ') || 'none'})`);
		}
		console.log(`jobfs: job ${job} mounted ${Object.keys(targets).length} view(s)`);
	} catch (e) {
		try {
			if (!mounted)
				lib.setOutput('mounted', 'false');
		} catch (ignored) {
			// no GITHUB_OUTPUT: the message below says what is wrong
		}
		if (open) {
			lib.warning(`${e.message}; the job runs without jobfs isolation`);
			return 0;
		}
		lib.error(e.message);
		return 1;
	}
	return 0;
}

process.exitCode = main();
