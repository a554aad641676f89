#!/usr/bin/env node
// npm test, after bootstrap and build: type-check, lint, the module's W=1
// build for each kernel, the host and VM test projects, then the device suite
// inside the VM runner for each kernel (or natively with HYBRIDMEM_NATIVE=1),
// two VMs at a time.
// Ends with one line "N passed, N failed, N skipped" totalling everything;
// each check (typecheck, lint, a module build) counts as one test.
// Under CI (or with --fetched) also the kernel matrix's ends, fetched from
// Debian's archive: bullseye's 5.10 and sid's 7.2, fetched and built (sid's
// in a chroot) in the background while the checks above run, then every
// scenario on both (scripts/matrix.mjs), in the same two-at-a-time queue as
// the device suites; each build and scenario counts.
// Usage: node scripts/test.mjs [--all-kernels] [--fetched] [--native] [--only host|device]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClients } from './fixtures.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const argv = process.argv.slice(2);
// The same rule as test/env.ts isCi(): CI unset, '', '0' or 'false' is not CI.
const ci = !['', '0', 'false'].includes(process.env.CI ?? '');
const allKernels = argv.includes('--all-kernels') || ci;
const native = argv.includes('--native') || process.env.HYBRIDMEM_NATIVE === '1';
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const cli = path.join(root, 'dist', 'cli', 'main.js');
const reports = path.join(root, 'reports');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

const totals = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
const started = Date.now();

function section(title) {
	console.log(`\n=== ${title} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

function run(cmd, args, opts = {}) {
	const r = spawnSync(cmd, args, { stdio: opts.capture ? 'pipe' : 'inherit', encoding: 'utf8', cwd: root, env: { ...process.env, ...opts.env } });
	return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function check(name, ok) {
	if (ok) totals.passed++;
	else {
		totals.failed++;
		failures.push(name);
	}
	console.log(`check ${name}: ${ok ? 'ok' : 'FAILED'}`);
}

/** Adds a vitest JSON report to the totals; a missing report is one failure. */
function addReport(name, file) {
	if (!existsSync(file)) {
		check(`${name} (no report: the run died)`, false);
		return;
	}
	const r = JSON.parse(readFileSync(file, 'utf8'));
	totals.passed += r.numPassedTests;
	totals.failed += r.numFailedTests;
	totals.skipped += r.numPendingTests + r.numTodoTests;
	if (r.numFailedTests > 0 || r.success === false) failures.push(name);
	if (r.numFailedTests === 0 && r.success === false && r.numTotalTests >= 0) check(`${name} (suite errors)`, false);
	console.log(`${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
}

function usableKernels() {
	const r = run('node', [cli, 'kernels', '--json'], { capture: true });
	// Installed kernels only: fetched ones (hybridmem kernels --fetch) have their own test (test/vm/fetch.test.ts).
	return JSON.parse(r.stdout).filter((k) => k.usable && k.origin === 'boot').map((k) => k.version);
}

function canLoadModulesHere() {
	return process.getuid?.() === 0 && existsSync('/proc/modules') && existsSync(`/lib/modules/${os.release()}/build/Makefile`);
}

rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

// The fetched kernels: fetch and build now, in the background (network,
// dpkg-deb, mmdebstrap), so only their VM runs add to the wall time.
const FETCHED = ['bullseye', 'sid'];
const withFetched = !native && only !== 'host' && (ci || argv.includes('--fetched'));
let prepared;
if (withFetched) {
	const logFd = openSync(path.join(reports, 'matrix-prepare.log'), 'w');
	const child = spawn('node', ['scripts/matrix.mjs', '--prepare-only', '--no-device', ...FETCHED.flatMap((s) => ['--fetch', s]), '--json', path.join(reports, 'matrix-prepare.json')], {
		cwd: root,
		stdio: ['ignore', logFd, logFd],
	});
	closeSync(logFd);
	const t = Date.now();
	prepared = new Promise((resolve) => child.on('close', (code) => resolve({ status: code ?? 1, ms: Date.now() - t })));
}

if (only !== 'device') {
	section('type-check (tsc --noEmit)');
	check('typecheck', run(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']).status === 0);
	section('lint (eslint)');
	check('lint', run(bin('eslint'), ['.']).status === 0);
}

const kernels = native ? [os.release()] : allKernels ? usableKernels() : usableKernels().slice(0, 1);
section(`module build, W=1, for ${kernels.join(', ')}`);
for (const k of usableKernels()) {
	// Every installed kernel gets a module (the setup tests load the other
	// kernel's to check the vermagic message); W=1 warnings fail the check.
	const r = run('node', [cli, 'build', '--strict', '--no-addon', '--kernel', k]);
	check(`module build for ${k}`, r.status === 0);
	// hm_warn.ko gives the device suite a real WARN to capture and parse;
	// its sources are linked, not copied, so kbuild sees them unchanged.
	const warn = path.join(root, 'build', 'fixtures', 'warn', k);
	mkdirSync(warn, { recursive: true });
	for (const f of ['hm_warn.c', 'Kbuild']) if (!existsSync(path.join(warn, f))) symlinkSync(path.join(root, 'test', 'fixtures', 'warn-module', f), path.join(warn, f));
	const made = run('make', ['-s', '-C', `/lib/modules/${k}/build`, `M=${warn}`, 'modules'], { capture: true });
	if (made.status !== 0) {
		console.log(made.stdout + made.stderr);
		check(`hm_warn.ko for ${k}`, false);
	}
}

// The device suite's C clients (fork_munmap, hm_review: scripts/fixtures.mjs).
for (const c of buildClients(root)) check(c.name, c.ok);

if (only !== 'device') {
	section('host and VM tests (vitest: host, vm)');
	run(bin('vitest'), ['run', '--project', 'host', '--project', 'vm', '--reporter=default', '--reporter=json', `--outputFile.json=${path.join(reports, 'host.json')}`]);
	addReport('host+vm tests', path.join(reports, 'host.json'));
}

/** Runs a command with its output in a log file; resolves when it ends. */
function runLogged(cmd, args, logFile) {
	const fd = openSync(logFile, 'w');
	const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', fd, fd] });
	closeSync(fd);
	const t = Date.now();
	return new Promise((resolve) => child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), ms: Date.now() - t })));
}

/** The jobs after vitest, each a VM of one vCPU: run two at a time (one per core of a CI machine), each job's output printed whole when it ends. */
async function runJobs(jobs, width) {
	const queue = [...jobs];
	await Promise.all(
		Array.from({ length: Math.min(width, queue.length) }, async () => {
			for (let job = queue.shift(); job; job = queue.shift()) {
				const r = await runLogged(job.cmd, job.args, job.log);
				section(`${job.title}: ended after ${(r.ms / 1000).toFixed(0)} s`);
				console.log(readFileSync(job.log, 'utf8').trimEnd());
				job.done(r);
			}
		}),
	);
}

const jobs = [];
if (only !== 'host') {
	if (native) {
		if (!canLoadModulesHere()) check('device suite (native: this machine cannot load modules, or not root)', false);
		else {
			section(`device suite, native, ${os.release()}`);
			const file = path.join(reports, `device-${os.release()}.json`);
			run('node', ['scripts/device-suite.mjs', '--report', file]);
			addReport(`device tests on ${os.release()} (native)`, file);
		}
	} else {
		for (const k of kernels) {
			const file = path.join(reports, `device-${k}.json`);
			jobs.push({
				title: `device suite in the VM runner, kernel ${k}`,
				log: path.join(reports, `device-${k}.log`),
				// One vCPU and page poisoning, like the scenario VMs (src/scenarios/run.ts EVIDENCE_BOOT): the suite enables kprobes.
				cmd: 'node',
				args: [cli, 'vm', '--kernel', k, '--cpus', '1', '--append', 'page_poison=1', '--rw', reports, '--timeout', '900', '--', 'node', 'scripts/device-suite.mjs', '--report', file],
				done: (r) => {
					addReport(`device tests in VM on ${k}`, file);
					if (r.status !== 0 && !failures.some((f) => f.includes(k))) check(`device suite on ${k} (exit ${r.status})`, false);
				},
			});
		}
		if (kernels.length === 0) check('device suite (no usable kernel: run scripts/bootstrap.sh)', false);
	}
}

if (prepared) {
	// Their fetch and builds ran in the background since the start; they end long before vitest does.
	section(`fetched kernels (${FETCHED.join(', ')}): waiting for their fetch and builds`);
	const p = await prepared;
	console.log(readFileSync(path.join(reports, 'matrix-prepare.log'), 'utf8').trimEnd());
	console.log(`fetch and builds took ${(p.ms / 1000).toFixed(0)} s in the background`);
	const file = path.join(reports, 'matrix-prepare.json');
	const prep = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
	check(`fetch of ${FETCHED.join(', ')} and the module builds for them (kernels --fetch; sid's in a chroot)`, p.status === 0 && !!prep);
	for (const [k, b] of Object.entries(prep?.builds ?? {})) check(`module build for ${k}`, b.ok && b.warnOk);
	for (const v of prep?.prepared ?? []) {
		// Scenarios only: the device suite on these two would add about 4 more minutes
		// of VM time, and on 5.10 it differs where the kernel does (README, Kernel
		// matrix: memory.current of insert_pages); npm run test:matrix runs it on every kernel.
		const json = path.join(reports, `matrix-fetched-${v}.json`);
		jobs.push({
			title: `every scenario on ${v}`,
			log: path.join(reports, `matrix-fetched-${v}.log`),
			cmd: 'node',
			args: ['scripts/matrix.mjs', '--kernels', v, '--jobs', '1', '--no-device', '--json', json, '--markdown', path.join(reports, `matrix-fetched-${v}.md`)],
			done: () => {
				const m = existsSync(json) ? JSON.parse(readFileSync(json, 'utf8')) : undefined;
				if (!m) check(`kernel matrix on ${v} (no results: the run died)`, false);
				for (const r of m?.runs ?? []) {
					if (!r.scenarios) check(`scenarios on ${r.kernel.version} (${r.scenariosError})`, false);
					for (const s of r.scenarios ?? []) check(`scenario ${s.name} on ${r.kernel.version}`, s.passed);
				}
			},
		});
	}
}

if (jobs.length) {
	section(`${jobs.map((j) => j.title).join('; ')}: two one-vCPU VMs at a time`);
	await runJobs(jobs, 2);
}

section('summary');
if (failures.length) console.log(`failed: ${failures.join('; ')}`);
console.log(`took ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || failures.length ? 1 : 0);
