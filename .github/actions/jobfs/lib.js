// What main.js and post.js share: inputs, the runner's environment files, workflow commands, and
// running jobfs. Node's standard library only: the action is checked in as it runs, without a
// build step or node_modules.
'use strict';

const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');

// An input as the runner passes it: INPUT_ and the name upper-cased, spaces as underscores.
function input(name) {
	const value = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`];
	return value === undefined ? '' : value.trim();
}

// Workflow command data: %, CR and LF escaped, so a message stays one command.
function escapeData(text) {
	return String(text).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(text) {
	return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function command(name, message) {
	process.stdout.write(`::${name} title=${escapeProperty('jobfs')}::${escapeData(message)}\n`);
}

const warning = (message) => command('warning', message);
const error = (message) => command('error', message);
const notice = (message) => command('notice', message);

// Appends NAME=VALUE to one of the runner's files (GITHUB_ENV, GITHUB_OUTPUT, GITHUB_STATE) in
// the delimited form, which holds any value; the delimiter is random, so a value cannot end it.
function appendFileCommand(variable, name, value) {
	const file = process.env[variable];
	const text = String(value);
	if (!file)
		throw new Error(`${variable} is not set: not running in a GitHub Actions runner?`);
	const delimiter = `ghadelimiter_${crypto.randomUUID()}`;
	if (name.includes(delimiter) || text.includes(delimiter))
		throw new Error(`value of ${name} holds the delimiter`);
	fs.appendFileSync(file, `${name}<<${delimiter}\n${text}\n${delimiter}\n`);
}

const setEnv = (name, value) => appendFileCommand('GITHUB_ENV', name, value);
const setOutput = (name, value) => appendFileCommand('GITHUB_OUTPUT', name, value);
const saveState = (name, value) => appendFileCommand('GITHUB_STATE', name, value);
// What main saved, given back to post as STATE_name.
const getState = (name) => process.env[`STATE_${name}`] || '';

// Runs jobfs with ARGS, never through a shell; returns {status, stdout, stderr}. A program that
// cannot be started is status 127 with the reason in stderr.
function runJobfs(program, args, timeoutSeconds) {
	const r = childProcess.spawnSync(program, args, {
		encoding: 'utf8',
		stdio: ['ignore', 'pipe', 'pipe'],
		timeout: (timeoutSeconds || 120) * 1000,
		killSignal: 'SIGTERM',
	});
	if (r.error)
		return {status: 127, stdout: '', stderr: `cannot run '${program}': ${r.error.message}`};
	if (r.status === null)
		return {status: 128, stdout: r.stdout, stderr: `'${program}' ended by ${r.signal}`};
	return {status: r.status, stdout: r.stdout, stderr: r.stderr};
}

// The last line jobfs wrote to stderr: its one-line error.
function reason(result) {
	const lines = (result.stderr || '').split('\n').filter((l) => l && !l.startsWith('try '));
	return lines.length ? lines[lines.length - 1] : `exit status ${result.status}`;
}

function policyArgs(policy) {
	return policy ? ['--policy', policy] : [];
}

module.exports = {
	input, warning, error, notice, setEnv, setOutput, saveState, getState, runJobfs, reason,
	policyArgs, escapeData,
};
