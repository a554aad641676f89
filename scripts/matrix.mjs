#!/usr/bin/env node
// npm run test:matrix: every scenario (the crash included) and the device
// suite on every usable kernel, installed or fetched, and a kernel-by-scenario
// table of the results (scripts/matrix-table.mjs) printed and written as
// markdown and JSON.  scripts/test.mjs runs it under CI for the fetched
// kernels (bullseye's 5.10, sid's 7.2), fetching them first.
//
// Usage: node scripts/matrix.mjs [--fetch SPEC ...] [--kernels V,V] [--arch A,A] [--prepare-only]
//                                [--no-device] [--jobs N] [--markdown FILE] [--json FILE]
//   --fetch SPEC     hybridmem kernels --fetch SPEC first (repeatable); with
//                    --fetch and no --kernels the matrix is the fetched kernels
//   --kernels V,V    these kernels (default: every usable one the VM runner
//                    boots: this machine's architecture's, and on amd64 the
//                    fetched arm64 ones, under qemu-system-aarch64)
//   --arch A,A       only kernels of these Debian architectures (amd64, arm64);
//                    a kernel's comes from its metadata (hybridmem kernels --json)
//   --prepare-only   fetch and build (module, hm_warn.ko), run nothing; with
//                    --json, writes the kernels it prepared
//   --no-device      scenarios only
//   --jobs N         kernels run at once, each in its own one-vCPU VMs (default 1)
//   --keep FILE      a matrix JSON of an earlier run: its kernels not run now
//                    stay in the table (to run one kernel again)
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleDeviceTests } from './device-bundle.mjs';
import { buildClients } from './fixtures.mjs';
import { ensureGuestModules } from './guest-modules.mjs';
import { matrixMarkdown, matrixTable, matrixText } from './matrix-table.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const reports = path.join(root, 'reports');

const argv = process.argv.slice(2);
const opt = { fetch: [], kernels: undefined, arch: undefined, prepareOnly: false, device: true, jobs: 1, markdown: path.join(reports, 'matrix.md'), json: path.join(reports, 'matrix.json') };
for (let i = 0; i < argv.length; i++) {
	const a = argv[i];
	const value = () => {
		if (i + 1 >= argv.length) usage(`${a} needs a value`);
		return argv[++i];
	};
	if (a === '--fetch') opt.fetch.push(value());
	else if (a === '--kernels') opt.kernels = value().split(',').filter(Boolean);
	else if (a === '--arch') opt.arch = value().split(',').filter(Boolean);
	else if (a === '--prepare-only') opt.prepareOnly = true;
	else if (a === '--no-device') opt.device = false;
	else if (a === '--jobs') opt.jobs = Number(value());
	else if (a === '--markdown') opt.markdown = path.resolve(value());
	else if (a === '--json') opt.json = path.resolve(value());
	else if (a === '--keep') opt.keep = path.resolve(value());
	else usage(`unknown argument ${a}`);
}
if (!Number.isInteger(opt.jobs) || opt.jobs < 1) usage('--jobs takes a whole number of at least 1');

function usage(why) {
	console.error(`matrix: ${why}\nusage: node scripts/matrix.mjs [--fetch SPEC ...] [--kernels V,V] [--arch A,A] [--prepare-only] [--no-device] [--jobs N] [--markdown FILE] [--json FILE]`);
	process.exit(2);
}

const started = Date.now();
const secs = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const log = (m) => console.log(`matrix [${secs()}]: ${m}`);

function runSync(cmd, args, opts = {}) {
	const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: root, maxBuffer: 256 * 1024 * 1024, ...opts });
	return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** An asynchronous child, its output into `logFile`, stdout also kept when asked. */
function runAsync(cmd, args, logFile, keepStdout = false) {
	return new Promise((resolve) => {
		const out = createWriteStream(logFile, { flags: 'a' });
		const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
		let stdout = '';
		child.stdout.on('data', (d) => {
			if (keepStdout) stdout += d;
			else out.write(d);
		});
		child.stderr.on('data', (d) => out.write(d));
		child.on('close', (code) => {
			if (keepStdout) out.write(stdout);
			out.end();
			resolve({ status: code ?? 1, stdout });
		});
	});
}

mkdirSync(reports, { recursive: true });
const timings = {};

// 1. Fetch.
const fetched = [];
for (const spec of opt.fetch) {
	const t = Date.now();
	const r = runSync('node', [cli, 'kernels', '--fetch', spec, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
	timings[`fetch ${spec}`] = Date.now() - t;
	if (r.status !== 0) {
		console.error(`matrix: hybridmem kernels --fetch ${spec} failed (exit ${r.status})`);
		process.exit(1);
	}
	for (const f of JSON.parse(r.stdout)) fetched.push(f.kernel.release);
	log(`fetched ${spec}: ${fetched.slice(-1)[0]} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
}

// 2. Which kernels.
const all = JSON.parse(runSync('node', [cli, 'kernels', '--json']).stdout);
// A kernel's architecture from its metadata (fetched ones carry it; installed ones are this machine's).
const debianArch = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
const archOf = (k) => k.arch ?? debianArch;
// What the VM runner boots here: this machine's kernels, and arm64 ones from amd64 (src/vm/arm64.ts).
const bootable = new Set([debianArch, ...(debianArch === 'amd64' ? ['arm64'] : [])]);
for (const a of opt.arch ?? []) if (!bootable.has(a)) usage(`--arch ${a}: the VM runner boots ${[...bootable].join(' and ')} kernels here`);
const archWanted = (k) => (opt.arch ? opt.arch.includes(archOf(k)) : bootable.has(archOf(k)));
const wanted = opt.kernels ?? (opt.fetch.length ? fetched : all.filter((k) => k.usable && archWanted(k)).map((k) => k.version));
const kernels = wanted.map((v) => {
	const k = all.find((x) => x.version === v);
	if (!k) usage(`no kernel ${v} (hybridmem kernels lists them)`);
	if (!k.usable) usage(`kernel ${v} is not usable: ${k.reason}`);
	return k;
});
if (!kernels.length) usage('no usable kernel');
// This machine's architecture first, then by version, oldest first: the order of the table's columns.
const archRank = (k) => (archOf(k) === debianArch ? 0 : 1);
if (!opt.kernels) kernels.sort((a, b) => archRank(a) - archRank(b) || a.version.localeCompare(b.version, 'en', { numeric: true }));
/** Node's name for a kernel's architecture: the C clients' directory (scripts/fixtures.mjs). */
const nodeArch = (k) => ({ amd64: 'x64', arm64: 'arm64' })[archOf(k)] ?? archOf(k);
log(`kernels: ${kernels.map((k) => `${k.version} (${archOf(k)}${k.features?.pageSize ? ` ${k.features.pageSize}` : ''})`).join(', ')}`);

// 3. Builds, one at a time (the chroot of a suite is made once): the module with W=1, and hm_warn.ko for the device suite.
const builds = new Map();
const hmWarnDir = (v) => path.join(root, 'build', 'fixtures', 'warn', v);
async function buildWarn(k) {
	const dir = hmWarnDir(k.version);
	mkdirSync(dir, { recursive: true });
	for (const f of ['hm_warn.c', 'Kbuild']) if (!existsSync(path.join(dir, f))) symlinkSync(path.join(root, 'test', 'fixtures', 'warn-module', f), path.join(dir, f));
	if (existsSync(path.join(dir, 'hm_warn.ko'))) return true;
	const headers = k.origin === 'fetched' ? realpathSync(k.headersDir) : `/lib/modules/${k.version}/build`;
	// A cross-built kernel (arm64) goes straight to the chroot, as the module does (src/setup/build.ts): the host's gcc makes amd64 code.
	if (archOf(k) === debianArch) {
		const host = runSync('make', ['-s', '-C', headers, `M=${dir}`, ...(k.origin === 'fetched' ? ['CC=gcc'] : []), 'modules']);
		if (host.status === 0) return true;
	}
	if (k.origin !== 'fetched') return false;
	// A kernel whose kbuild this machine cannot run (sid's 7.2, trixie's arm64): its suite's chroot, as for the module.
	const { buildInChroot } = await import(path.join(root, 'dist', 'setup', 'chroot.js'));
	const { kernelCompiler } = await import(path.join(root, 'dist', 'setup', 'build.js'));
	const { findKernel } = await import(path.join(root, 'dist', 'vm', 'kernels.js'));
	const r = await buildInChroot(findKernel(k.version), dir, false, kernelCompiler(headers), undefined, { sourceDir: path.join(root, 'test', 'fixtures', 'warn-module'), name: 'hm_warn' });
	if (!r.ok) console.log(r.output.split('\n').slice(-15).join('\n'));
	return r.ok;
}
for (const k of kernels) {
	const t = Date.now();
	const r = runSync('node', [cli, 'build', '--strict', '--no-addon', '--kernel', k.version], { stdio: ['ignore', 'pipe', 'pipe'] });
	const warnOk = opt.device ? await buildWarn(k) : true;
	timings[`build ${k.version}`] = Date.now() - t;
	const last = (r.stdout + r.stderr).trim().split('\n').slice(-1)[0] ?? '';
	builds.set(k.version, { ok: r.status === 0, detail: r.status === 0 ? undefined : last.slice(0, 200), warnOk });
	log(`built for ${k.version}: ${r.status === 0 ? 'ok' : 'FAILED'}${warnOk ? '' : ' (hm_warn.ko failed)'} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
	if (r.status !== 0) console.log((r.stdout + r.stderr).trim().split('\n').slice(-20).join('\n'));
}
// The device suite's setup test loads another installed kernel's module (the vermagic message).
if (opt.device)
	for (const k of all.filter((x) => x.usable && x.origin === 'boot' && !kernels.includes(x)))
		if (runSync('node', [cli, 'build', '--no-addon', '--kernel', k.version]).status !== 0) log(`module build for ${k.version} (installed) FAILED: the setup test on the others will miss it`);
if (opt.prepareOnly) {
	writeFileSync(opt.json, `${JSON.stringify({ prepared: kernels.map((k) => k.version), builds: Object.fromEntries(builds), timings }, null, 2)}\n`);
	log(`prepared ${kernels.length} kernel(s)`);
	process.exit([...builds.values()].every((b) => b.ok && b.warnOk) ? 0 : 1);
}

// 4. Runs: per kernel the scenarios, then the device suite; up to --jobs kernels at once.
// Not while preparing: scripts/test.mjs builds the clients then, meanwhile.
const clients = opt.device ? buildClients(root, [...new Set(kernels.map(nodeArch))]) : [];
for (const c of clients) if (!c.ok) log(`${c.name} FAILED: the device suites will miss it`);
// The device suite as guests run it (scripts/device-suite.mjs --bundled).
if (opt.device) await bundleDeviceTests(root);
// vitest's native bindings for a guest of another architecture (npm installed this machine's only).
if (opt.device)
	for (const arch of new Set(kernels.map(nodeArch).filter((a) => a !== process.arch))) {
		const g = ensureGuestModules(root, arch);
		for (const line of g.lines) log(line);
		if (!g.ok) log(`vitest's ${arch} bindings missing: the ${arch} device suites will fail`);
	}
async function runKernel(k) {
	const kernel = { version: k.version, origin: k.origin, ...(k.suite ? { suite: k.suite } : {}), ...(k.flavour ? { flavour: k.flavour } : {}), arch: archOf(k), ...(k.features?.pageSize ? { pageSize: k.features.pageSize } : {}) };
	const run = { kernel, build: builds.get(k.version) };
	const logFile = path.join(reports, `matrix-${k.version}.log`);
	writeFileSync(logFile, '');
	let t = Date.now();
	const s = await runAsync('node', [cli, 'run', '--all', '--kernel', k.version, '--json'], logFile, true);
	timings[`scenarios ${k.version}`] = Date.now() - t;
	try {
		const parsed = JSON.parse(s.stdout);
		run.scenarios = parsed.results.map((r) => ({ name: r.name, passed: r.passed, summary: r.summary, ...(r.finding ? { finding: r.finding } : {}), ...(r.crash ? { crash: { file: r.crash.file, line: r.crash.line } } : {}), ...(r.error ? { error: r.error } : {}), failed: r.checks.filter((c) => !c.ok).map((c) => c.name) }));
	} catch {
		run.scenariosError = `hybridmem run gave no JSON (exit ${s.status}; see ${path.relative(root, logFile)})`;
	}
	log(`${k.version}: scenarios ${run.scenarios ? `${run.scenarios.filter((r) => r.passed).length}/${run.scenarios.length} passed` : 'FAILED'} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
	if (opt.device) {
		t = Date.now();
		const file = path.join(reports, `device-${k.version}.json`);
		// As scripts/test.mjs: one vCPU and page poisoning, like the scenario VMs; arm64 under TCG is slower.
		const timeout = archOf(k) === debianArch ? '900' : '2400';
		const d = await runAsync('node', [cli, 'vm', '--kernel', k.version, '--cpus', '1', '--append', 'page_poison=1', '--rw', reports, '--timeout', timeout, '--', 'node', 'scripts/device-suite.mjs', '--report', file, '--bundled'], logFile);
		timings[`device ${k.version}`] = Date.now() - t;
		if (existsSync(file)) {
			const r = JSON.parse(readFileSync(file, 'utf8'));
			run.device = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests, report: path.relative(root, file) };
			if (r.success === false && r.numFailedTests === 0) run.deviceError = 'suite errors';
		} else run.deviceError = `no report (exit ${d.status}; see ${path.relative(root, logFile)})`;
		log(`${k.version}: device suite ${run.device ? `${run.device.passed} passed, ${run.device.failed} failed, ${run.device.skipped} skipped` : 'FAILED'} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
	}
	return run;
}

const runs = new Array(kernels.length);
let next = 0;
await Promise.all(
	Array.from({ length: Math.min(opt.jobs, kernels.length) }, async () => {
		while (next < kernels.length) {
			const i = next++;
			runs[i] = await runKernel(kernels[i]);
		}
	}),
);

// 5. The table, with an earlier run's other kernels when asked.
if (opt.keep) {
	const earlier = JSON.parse(readFileSync(opt.keep, 'utf8')).runs.filter((r) => !runs.some((n) => n.kernel.version === r.kernel.version));
	runs.push(...earlier);
	runs.sort((a, b) => archRank(a.kernel) - archRank(b.kernel) || a.kernel.version.localeCompare(b.kernel.version, 'en', { numeric: true }));
}
const table = matrixTable(runs);
const date = new Date().toISOString().slice(0, 10);
console.log(`\n${matrixText(table)}\n`);
writeFileSync(opt.markdown, matrixMarkdown(table, { date }));
writeFileSync(opt.json, `${JSON.stringify({ date, passed: table.passed, runs, findings: table.findings, timings, tookMs: Date.now() - started }, null, 2)}\n`);
log(`table in ${path.relative(root, opt.markdown)}, results in ${path.relative(root, opt.json)}; ${table.counts.passed} scenario runs passed, ${table.counts.failed} failed; took ${secs()}`);
process.exit(table.passed ? 0 : 1);
