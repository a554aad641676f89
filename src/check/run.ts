// Runs the checks: here (the kernel this process runs on), or in a
// throwaway VM booted like the scenario VMs.  Inside, each finished check
// is written to the results file at once, so a guest that crashes mid-way
// still gives the checks done so far; the host parses the crash from the
// console and marks the rest as not run.
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { parseKernelLog, parseRecords } from '../kmsg/parse.js';
import { startCapture } from '../kmsg/reader.js';
import { findPoisonReports } from '../evidence/page-poison.js';
import { withReusedTraces } from '../evidence/pfn-trace.js';
import { guestProgram, PACKAGE_ROOT } from '../setup/paths.js';
import { chooseKernel } from '../vm/kernels.js';
import { cachePath, hashKey } from '../vm/cache.js';
import { runInVm } from '../vm/runner.js';
import { EVIDENCE_BOOT } from '../scenarios/run.js';
import { batchResultFile, writeTargets } from './batch.js';
import { CHECKS } from './catalog.js';
import { judgeKernelLog, readTaint } from './checks/kernel-log.js';
import { resolveTarget, type TargetSpec } from './target.js';
import type { Category, CheckReport, CheckResult, TargetDescription } from './types.js';

export const HELPER_SOURCE = path.join(PACKAGE_ROOT, 'src', 'check', 'helper', 'hm-map-probe.c');

/**
 * The built helper, in the per-user cache (the package directory may be
 * read-only), named by its source's content: the guest, which sees the cache,
 * finds the same file the host built.
 */
export function helperBinary(): string {
	const key = hashKey(existsSync(HELPER_SOURCE) ? readFileSync(HELPER_SOURCE) : '');
	return path.join(cachePath(), 'check', 'helper', key, 'hm-map-probe');
}

export interface CheckOptions {
	only?: Category[];
	/** Where each finished check is written (the inner run of a VM). */
	resultsFile?: string;
	onResult?: (r: CheckResult) => void;
	onProgress?: (m: string) => void;
}

/** Builds the C helper unless it is up to date (it needs only a C compiler). */
export async function buildHelper(): Promise<string | undefined> {
	const src = existsSync(HELPER_SOURCE) ? HELPER_SOURCE : undefined;
	if (!src) return undefined;
	const binary = helperBinary();
	if (existsSync(binary)) return binary;
	mkdirSync(path.dirname(binary), { recursive: true });
	// Built beside its place and renamed into it: a concurrent run sees the whole binary or none.
	const work = `${binary}.${process.pid}.tmp`;
	const r = await execa('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', work, src], { reject: false, all: true });
	if (r.exitCode !== 0) throw Object.assign(new Error(`building the check helper failed:\n${r.all ?? ''}`), { code: 'ERR_BUILD' });
	renameSync(work, binary);
	return binary;
}

function writeAtomically(file: string, data: unknown): void {
	writeFileSync(`${file}.tmp`, JSON.stringify(data, null, 2));
	renameSync(`${file}.tmp`, file);
}

function selected(only: Category[] | undefined, c: Category): boolean {
	return !only?.length || only.includes(c);
}

/** Runs the checks against a target in this kernel. */
export async function runChecksHere(spec: TargetSpec, opts: CheckOptions = {}): Promise<CheckReport> {
	const pageSize = (await import('../device/index.js')).loadBinding().pageSize;
	const capture = await startCapture();
	const taintBefore = readTaint();
	const report: CheckReport = { target: describeSpec(spec, pageSize), kernel: os.release(), checks: [], passed: false };
	const save = () => opts.resultsFile && writeAtomically(opts.resultsFile, report);
	const add = (r: CheckResult) => {
		report.checks.push(r);
		opts.onResult?.(r);
		save();
	};
	let target;
	try {
		target = await resolveTarget(spec, pageSize);
	} catch (err) {
		await capture.stop();
		// A driver this kernel does not have: every check is a skip that says so (kselftest's KSFT_SKIP).
		if ((err as NodeJS.ErrnoException).code !== 'ERR_TARGET_UNAVAILABLE') throw err;
		const why = (err as Error).message;
		for (const check of CHECKS) if (selected(opts.only, check.category)) add({ name: check.name, category: check.category, status: 'skip', summary: `not in this kernel: ${why}`, evidence: [why] });
		if (selected(opts.only, 'kernel-log')) add({ name: 'kernel-log-clean', category: 'kernel-log', status: 'skip', summary: `not in this kernel: ${why}`, evidence: [why] });
		report.passed = true;
		save();
		return report;
	}
	report.target = target.description;
	save();
	const t0 = performance.now();
	const since = () => `+${Math.round(performance.now() - t0)} ms`;
	// Where the time goes, on the console: bench/check.mjs reads these lines.
	process.stdout.write(`hybridmem check: target ready (${Math.round(performance.now())} ms after start)\n`);
	const helperFile = helperBinary();
	const helper = existsSync(helperFile) ? helperFile : undefined;
	try {
		const ordered = [...CHECKS.filter((c) => !c.last), ...CHECKS.filter((c) => c.last)];
		// One PFN trace for the target's checks, emptied between uses; freed before the guest's free-page proof.
		await withReusedTraces(async () => {
			for (const check of ordered) {
				if (!selected(opts.only, check.category)) continue;
				opts.onProgress?.(`running ${check.name}`);
				// The name on the console tells the host which check a crash interrupted.
				process.stdout.write(`hybridmem check: running ${check.name} (${since()})\n`);
				try {
					const dataTrusted = report.checks.find((c) => c.name === 'data-round-trip')?.status === 'pass';
					const out = await check.run(target, { ...(helper ? { helper } : {}), emit: add, dataTrusted });
					for (const r of Array.isArray(out) ? out : [out]) if (selected(opts.only, r.category)) add(r);
				} catch (err) {
					// A refused mmap is data-round-trip's failure to report; the other checks had nothing to look at.
					const e = err as NodeJS.ErrnoException;
					if (e.syscall === 'mmap') add({ name: check.name, category: check.category, status: 'skip', summary: `not run: the target's mmap failed (${e.code ?? e.message})`, evidence: [e.message] });
					else add({ name: check.name, category: check.category, status: 'fail', summary: `the check could not complete: ${e.message}`, evidence: [String(e.stack ?? err).split('\n').slice(0, 3).join(' | ')] });
				}
			}
		});
	} finally {
		await target.cleanup();
	}
	process.stdout.write(`hybridmem check: checks done (${since()})\n`);
	const { records, lost } = await capture.stop();
	const lines = records.map((r) => r.text);
	const poison = findPoisonReports(lines).map((p) => `${p.headline} (pfn ${p.pfn !== undefined ? `0x${p.pfn.toString(16)}` : '?'}, ${p.bytes.length} bytes)`);
	const reports = parseRecords(records).reports.filter((r) => r.kind !== 'trace' && !/^pagealloc:/.test(r.headline));
	if (selected(opts.only, 'kernel-log')) add(judgeKernelLog(reports, poison, taintBefore, readTaint(), lost));
	report.passed = report.checks.every((c) => c.status !== 'fail');
	save();
	return report;
}

function describeSpec(spec: TargetSpec, pageSize: number): TargetDescription {
	const label = spec.recipe ? `recipe ${spec.recipe}` : spec.chrdev ? `chrdev ${spec.chrdev}` : (spec.device ?? '?');
	return {
		label: spec.module ? `${label} (module ${path.basename(spec.module)})` : label,
		...(spec.module ? { module: spec.module } : {}),
		...(spec.params ? { params: spec.params } : {}),
		...(spec.device ? { device: spec.device } : {}),
		...(spec.chrdev ? { chrdev: spec.chrdev } : {}),
		...(spec.recipe ? { recipe: spec.recipe } : {}),
		offset: `0x${(spec.offset ?? 0n).toString(16)}`,
		length: spec.length ?? 16 * pageSize,
	};
}

/** The CLI arguments that describe `spec` to the inner run. */
export function specArgs(spec: TargetSpec): string[] {
	const a: string[] = [];
	if (spec.module) a.push('--module', spec.module);
	for (const [k, v] of Object.entries(spec.params ?? {})) a.push('--param', `${k}=${v}`);
	if (spec.device) a.push('--device', spec.device);
	if (spec.chrdev) a.push('--chrdev', spec.chrdev);
	if (spec.minor !== undefined) a.push('--minor', String(spec.minor));
	if (spec.recipe) a.push('--recipe', path.isAbsolute(spec.recipe) || !spec.recipe.includes('/') ? spec.recipe : path.resolve(spec.recipe));
	if (spec.length !== undefined) a.push('--length', String(spec.length));
	if (spec.maxLength !== undefined) a.push('--max-length', String(spec.maxLength));
	if (spec.offset !== undefined) a.push('--offset', String(spec.offset));
	return a;
}

/**
 * Builds a kbuild source directory for kernel `kver` in a copy of its own
 * (the per-user cache, kmodDirBuildPath), so several kernels and the user's tree
 * stay apart; returns the .ko it produced (the one named `want`, if several).
 */
/** Where buildKmodDir builds `dir` for `kver`: the per-user cache, by the directory's name and path. */
export function kmodDirBuildPath(dir: string, kver: string): string {
	const abs = path.resolve(dir);
	return path.join(cachePath(), 'check', 'kmod', `${path.basename(abs)}-${hashKey(abs)}`, kver);
}

export async function buildKmodDir(dir: string, kver: string, want?: string): Promise<string> {
	const headers = `/lib/modules/${kver}/build`;
	if (!existsSync(path.join(headers, 'Makefile'))) throw Object.assign(new Error(`no headers for kernel ${kver} at ${headers}`), { code: 'ERR_BUILD' });
	const out = kmodDirBuildPath(dir, kver);
	rmSync(out, { recursive: true, force: true });
	mkdirSync(out, { recursive: true });
	cpSync(dir, out, { recursive: true, filter: (src) => !/\.(o|ko|mod|mod\.c|cmd|order|symvers)$/.test(src) });
	const r = await execa('make', ['-C', headers, `M=${out}`, 'modules'], { reject: false, all: true });
	const kos = existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.ko')) : [];
	if (r.exitCode !== 0 || !kos.length) throw Object.assign(new Error(`building ${dir} for ${kver} failed:\n${(r.all ?? '').split('\n').slice(-20).join('\n')}`), { code: 'ERR_BUILD' });
	const pick = want ? kos.find((k) => k === want || k === `${want}.ko`) : kos.length === 1 ? kos[0] : undefined;
	if (!pick) throw Object.assign(new Error(`${dir} built ${kos.join(', ')} for ${kver}: say which with --module NAME.ko`), { code: 'ERR_BUILD' });
	return path.join(out, pick);
}

/** Check VMs boot like the scenario VMs, without a framebuffer console: it would draw into a framebuffer under test (vfb). */
export const CHECK_BOOT = { ...EVIDENCE_BOOT, extraKernelArgs: [...EVIDENCE_BOOT.extraKernelArgs, 'fbcon=map:9'] };

const CRASH_START = /(Oops|kernel BUG at|BUG: unable to handle|general protection fault|Kernel panic - not syncing)/;
const END_OF_OOPS = /---\[ end (trace|Kernel panic)/;

export interface VmCheckOptions extends CheckOptions {
	kernel?: string;
	kmodDir?: string;
	signal?: AbortSignal;
}

/** Runs the checks in a throwaway VM on `kernel` (booted with page_poison=1, one vCPU). */
export async function runChecksInVm(spec: TargetSpec, opts: VmCheckOptions = {}): Promise<{ report: CheckReport; crashed: boolean }> {
	return (await runTargetsInVm([spec], opts))[0]!;
}

/**
 * Checks several targets on `kernel` with as few boots as the kernel allows:
 * one VM takes them in order and goes on to the next target only after the
 * clean proof of batch.ts; after a target that left the guest dirty or
 * crashed it, the rest get a fresh VM.  With more than one target each
 * report says which VM checked it and carries the proof made after it.
 */
export async function runTargetsInVm(specs: TargetSpec[], opts: VmCheckOptions = {}): Promise<{ report: CheckReport; crashed: boolean }[]> {
	const kernel = chooseKernel(opts.kernel).version;
	await buildHelper();
	const targets = specs.map((s) => ({ ...s }));
	if (opts.kmodDir) {
		opts.onProgress?.(`building ${opts.kmodDir} for ${kernel}`);
		const built = new Map<string | undefined, string>();
		for (const t of targets) {
			if (!built.has(t.module)) built.set(t.module, await buildKmodDir(opts.kmodDir, kernel, t.module));
			t.module = built.get(t.module)!;
		}
	}
	const out: { report: CheckReport; crashed: boolean }[] = [];
	for (let vm = 1; out.length < targets.length; vm++) {
		const rest = targets.slice(out.length);
		const got = await oneVm(rest, kernel, opts);
		for (const r of got) out.push(specs.length > 1 ? { ...r, report: { ...r.report, guest: { ...r.report.guest, vm } } } : r);
	}
	return out;
}

/** One VM: the targets it checked before it ended (at least one), in order. */
async function oneVm(targets: TargetSpec[], kernel: string, opts: VmCheckOptions): Promise<{ report: CheckReport; crashed: boolean }[]> {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-check-'));
	const targetsFile = path.join(dir, 'targets.json');
	writeTargets(targetsFile, targets);
	const controller = new AbortController();
	const abort = () => controller.abort();
	opts.signal?.addEventListener('abort', abort);
	let crashing = false;
	let crashed = false;
	try {
		opts.onProgress?.(`booting ${kernel}`);
		const vm = await runInVm({
			kernel,
			command: ['node', guestProgram('cli'), 'check', '--native', '--targets-file', targetsFile, ...(opts.only?.length ? ['--only', opts.only.join(',')] : [])],
			cwd: process.cwd(),
			rw: [dir],
			...CHECK_BOOT,
			stdout: 'pipe',
			stderr: 'pipe',
			timeoutMs: 600_000 * targets.length,
			signal: controller.signal,
			onConsoleLine: (line) => {
				if (CRASH_START.test(line)) crashing = true;
				// A WARN ends with the same marker: only an oops, BUG or panic ends the VM.
				else if (crashing && END_OF_OOPS.test(line)) {
					crashed = true;
					controller.abort();
				}
			},
		});
		// Which target, and which of its checks, was running last.
		let index = 0;
		let current: string | undefined;
		for (const l of (vm.stdout ?? '').split('\n')) {
			const t = /^hybridmem check: target (\d+)$/.exec(l);
			if (t) {
				index = Number(t[1]);
				current = undefined;
			}
			const m = /^hybridmem check: running (\S+)/.exec(l);
			if (m) current = m[1];
		}
		const read = (i: number): CheckReport | undefined => {
			const f = batchResultFile(targetsFile, i);
			return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as CheckReport) : undefined;
		};
		const done: { report: CheckReport; crashed: boolean }[] = [];
		for (let i = 0; i < index; i++) done.push({ report: read(i)!, crashed: false });
		const partial = read(index);
		const consoleText = existsSync(vm.consoleLog) ? readFileSync(vm.consoleLog, 'utf8') : '';
		if (crashed || vm.outcome === 'crashed' || vm.outcome === 'timeout') {
			const spec = targets[index]!;
			const bug = parseKernelLog(consoleText).reports.find((r) => r.kind !== 'WARNING' && r.kind !== 'trace' && r.kind !== 'page-poison');
			const report: CheckReport = partial ?? { target: { label: spec.recipe ?? spec.device ?? spec.chrdev ?? '?', offset: '0x0', length: spec.length ?? 0 }, kernel, checks: [], passed: false };
			const ran = new Set(report.checks.map((c) => c.name));
			report.crash = {
				headline: bug?.headline ?? `the VM ${vm.outcome}`,
				...(bug?.function ? { function: bug.function } : {}),
				...(bug?.module ? { module: bug.module } : {}),
				frames: (bug?.frames ?? []).slice(0, 8).map((f) => `${f.fn}+0x${f.offset.toString(16)}/0x${f.size.toString(16)}${f.module ? ` [${f.module}]` : ''}`),
				...(current ? { afterCheck: current } : {}),
			};
			report.checks.push({
				name: 'kernel-log-clean',
				category: 'kernel-log',
				status: 'fail',
				summary: `the guest kernel crashed${current ? ` during ${current}` : ''}: ${report.crash.headline}`,
				evidence: [report.crash.headline, ...report.crash.frames, `console log: ${vm.consoleLog}`],
			});
			for (const c of CHECKS) if (!ran.has(c.name) && selected(opts.only, c.category)) report.checks.push({ name: c.name, category: c.category, status: 'skip', summary: `not run: the guest kernel crashed during ${current ?? 'the run'}`, evidence: [] });
			report.passed = false;
			done.push({ report, crashed: true });
			return done;
		}
		// The inner run exits 0 or 1 (a check failed) after its last target, or 3 after a proof found the guest dirty.
		if (!partial || vm.exitCode > 3 || vm.exitCode === 2) {
			const why = `the check run in the VM failed (${vm.outcome}, exit ${vm.exitCode}): ${(vm.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`;
			throw Object.assign(new Error(why), { code: 'ERR_CHECK_RUN' });
		}
		done.push({ report: partial, crashed: false });
		rmSync(vm.consoleLog, { force: true });
		return done;
	} finally {
		opts.signal?.removeEventListener('abort', abort);
		rmSync(dir, { recursive: true, force: true });
	}
}
