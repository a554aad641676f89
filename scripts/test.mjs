#!/usr/bin/env node
// npm test, after bootstrap and build: type-check and lint, the module's W=1
// build for each kernel, then two workers of one VM each (a 2-core machine)
// on one queue: the host tests with the VM test files that boot one VM at a
// time, and the device suite inside the VM runner for each kernel (or
// natively with HYBRIDMEM_NATIVE=1); then the VM test files that run two
// VMs at a time, started as soon as one worker has nothing left.
// Ends with one line "N passed, N failed, N skipped" totalling everything;
// each check (typecheck, lint, a module build) counts as one test.
// Under CI (or with --fetched) also the kernel matrix's ends, fetched from
// Debian's archive: bullseye's 5.10 and sid's 7.2, fetched and built (sid's
// in a chroot) in the background while the checks above run, then every
// scenario on both (scripts/matrix.mjs), in the same queue; each build and
// scenario counts.
// Usage: node scripts/test.mjs [--all-kernels] [--fetched] [--native] [--only host|device]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleDeviceTests } from './device-bundle.mjs';
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
/** Every test file some vitest report names: the host and VM files must all be in one. */
const filesRun = new Set();
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
	for (const t of r.testResults ?? []) filesRun.add(path.relative(root, t.name));
	totals.passed += r.numPassedTests;
	totals.failed += r.numFailedTests;
	totals.skipped += r.numPendingTests + r.numTodoTests;
	if (r.numFailedTests > 0 || r.success === false) failures.push(name);
	if (r.numFailedTests === 0 && r.success === false && r.numTotalTests >= 0) check(`${name} (suite errors)`, false);
	console.log(`${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
}

/** Runs a command with its output in a log file; resolves when it ends. */
function runLogged(cmd, args, logFile) {
	const fd = openSync(logFile, 'w');
	const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', fd, fd] });
	closeSync(fd);
	const t = Date.now();
	return new Promise((resolve) => child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), ms: Date.now() - t })));
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
	// Both at once: two cores, and neither needs the other.
	section('type-check (tsc --noEmit) and lint (eslint)');
	const [tsc, lint] = await Promise.all([
		runLogged(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'], path.join(reports, 'tsc.log')),
		runLogged(bin('eslint'), ['.'], path.join(reports, 'eslint.log')),
	]);
	for (const [name, r, log] of [['typecheck', tsc, 'tsc.log'], ['lint', lint, 'eslint.log']]) {
		const out = readFileSync(path.join(reports, log), 'utf8').trimEnd();
		if (out) console.log(out);
		check(name, r.status === 0);
	}
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
// The device suite as the guests run it: bundled, so vitest under TCG transforms 8 files, not about 100.
if (!native && only !== 'host') {
	try {
		await bundleDeviceTests(root);
		check('device suite bundle (scripts/device-bundle.mjs)', true);
	} catch (err) {
		console.log(err);
		check('device suite bundle (scripts/device-bundle.mjs)', false);
	}
}

/**
 * Jobs of one VM of one vCPU each, `width` at a time, each job's output
 * printed whole when it ends.  A job runs a command into its log, or is a
 * function (`run`), or adds more jobs to the queue when a worker reaches it
 * (`more`: the fetched kernels, once their fetch is done).
 */
async function runJobs(queue, width, onIdle) {
	const adding = new Set(); // `more` jobs being resolved: a worker with nothing to do waits for them
	const next = async () => {
		while (!queue.length && adding.size) await Promise.race(adding);
		return queue.shift();
	};
	await Promise.all(
		Array.from({ length: width }, async () => {
			for (let job = await next(); job; job = await next()) {
				if (job.more) {
					const p = job.more().then((more) => {
						queue.push(...more);
						adding.delete(p);
					});
					adding.add(p);
					await p;
					continue;
				}
				const t = Date.now();
				if (job.run) {
					await job.run();
					section(`${job.title}: ended after ${((Date.now() - t) / 1000).toFixed(0)} s`);
					continue;
				}
				const r = await runLogged(job.cmd, job.args, job.log);
				section(`${job.title}: ended after ${(r.ms / 1000).toFixed(0)} s`);
				console.log(readFileSync(job.log, 'utf8').trimEnd());
				job.done(r);
			}
			// Nothing left for this worker: what comes after the queue may start beside the other's last job.
			onIdle?.();
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
				args: [cli, 'vm', '--kernel', k, '--cpus', '1', '--append', 'page_poison=1', '--rw', reports, '--timeout', '900', '--', 'node', 'scripts/device-suite.mjs', '--report', file, '--bundled'],
				done: (r) => {
					addReport(`device tests in VM on ${k}`, file);
					if (r.status !== 0 && !failures.some((f) => f.includes(k))) check(`device suite on ${k} (exit ${r.status})`, false);
				},
			});
		}
		if (kernels.length === 0) check('device suite (no usable kernel: run scripts/bootstrap.sh)', false);
	}
}

/** The fetched kernels' scenario jobs, once their fetch and builds (in the background since the start) are done. */
async function fetchedJobs() {
	if (!prepared) return [];
	const p = await prepared;
	section(`fetched kernels (${FETCHED.join(', ')}): their fetch and builds ended`);
	console.log(readFileSync(path.join(reports, 'matrix-prepare.log'), 'utf8').trimEnd());
	console.log(`fetch and builds took ${(p.ms / 1000).toFixed(0)} s in the background`);
	const file = path.join(reports, 'matrix-prepare.json');
	const prep = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
	check(`fetch of ${FETCHED.join(', ')} and the module builds for them (kernels --fetch; sid's in a chroot)`, p.status === 0 && !!prep);
	for (const [k, b] of Object.entries(prep?.builds ?? {})) check(`module build for ${k}`, b.ok && b.warnOk);
	return (prep?.prepared ?? []).map((v) => {
		// Scenarios only: the device suite on these two would add about 4 more minutes
		// of VM time, and on 5.10 it differs where the kernel does (README, Kernel
		// matrix: memory.current of insert_pages); npm run test:matrix runs it on every kernel.
		const json = path.join(reports, `matrix-fetched-${v}.json`);
		return {
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
		};
	});
}

/** One vitest run with a JSON report; resolves when it ends. */
function vitest(name, args) {
	const file = path.join(reports, `${name}.json`);
	const child = spawn(bin('vitest'), ['run', ...args, '--reporter=default', '--reporter=json', `--outputFile.json=${file}`], { cwd: root, stdio: 'inherit' });
	return new Promise((resolve) => child.on('close', () => resolve(addReport(`${name} tests`, file))));
}

// One queue, two workers of one VM each (a 2-core machine): the host tests
// with the VM test files that boot one VM at a time (one vitest run), the
// device suites, then the fetched kernels' scenarios, each taken by the
// worker that is free; then the VM test files that keep two VMs busy
// themselves (vitest.config.ts maxConcurrency).
const TWO_VM_FILES = ['test/vm/check.test.ts', 'test/vm/stress.test.ts', 'test/vm/stress-targets.test.ts', 'test/vm/arm64.test.ts'];
// Positional filters apply to every project: the host tests need theirs.
const ONE_VM_FILES = readdirSync(path.join(root, 'test', 'vm'))
	.filter((f) => f.endsWith('.test.ts'))
	.map((f) => `test/vm/${f}`)
	.filter((f) => !TWO_VM_FILES.includes(f));
if (only !== 'device') jobs.unshift({ title: 'host tests, and the VM tests of one VM at a time (vitest)', run: () => vitest('host+vm-one', ['--project', 'host', '--project', 'vm', 'test/host/', ...ONE_VM_FILES]) });
const queue = [...jobs, { title: 'the fetched kernels', more: fetchedJobs }];
section(`${jobs.map((j) => j.title).join('; ')}${prepared ? '; then every scenario on the fetched kernels' : ''}: two at a time`);
let twoVm;
const startTwoVm = () =>
	(twoVm ??= only === 'device' ? Promise.resolve() : (section('VM tests of two VMs at a time (vitest), from when one worker has nothing left'), vitest('vm-two', ['--project', 'vm', ...TWO_VM_FILES])));
await runJobs(queue, 2, startTwoVm);
await startTwoVm();
if (only !== 'device') {
	const all = ['host', 'vm'].flatMap((d) => readdirSync(path.join(root, 'test', d)).filter((f) => f.endsWith('.test.ts')).map((f) => `test/${d}/${f}`));
	const missed = all.filter((f) => !filesRun.has(f));
	check(`every host and VM test file ran (${all.length - missed.length} of ${all.length}${missed.length ? `; not run: ${missed.join(', ')}` : ''})`, missed.length === 0);
}

section('summary');
if (failures.length) console.log(`failed: ${failures.join('; ')}`);
console.log(`took ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || failures.length ? 1 : 0);
