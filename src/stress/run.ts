// Runs `hybridmem stress`: in this kernel (the inner run of a VM, or
// --native), programs from the generator one after another until the time
// is up, each checked against the invariants; on a failure the program is
// shrunk and written as a reproducer.  In a VM: booted with page_poison=1
// and two vCPUs (threads of one program really run at once).
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseKernelLog } from '../kmsg/parse.js';
import { startCapture, type KernelLogCapture } from '../kmsg/reader.js';
import { buildModule } from '../setup/build.js';
import { guestProgram, CHRDEV_NAME, DEFAULT_NODE, MODULE_NAME, SYSFS_COUNTERS } from '../setup/paths.js';
import { chrdevMajor, type TargetSpec } from '../check/target.js';
import { buildKmodDir, specArgs } from '../check/run.js';
import { loadBinding } from '../device/index.js';
import { chooseKernel } from '../vm/kernels.js';
import { runInVm } from '../vm/runner.js';
import { residentPages } from '../evidence/free-pages.js';
import { sweepFreedPages } from '../evidence/page-poison.js';
import { addCounts, buildExecutor, executorBinary, runProgramFile, type ExecResult } from './executor.js';
import { generateProgram } from './generate.js';
import { executorViolations, judgeFreePages, kernelLogViolations, livePagesViolation, readCounter, rmmodViolation, settledFreePages, type FreePagesVerdict, type Violation } from './invariants.js';
import { formatProgram, MODULE_OPS, parseProgram, type Op, type OpContext, type Program } from './program.js';
import { reproducerCommand, writeReproducer, type Reproducer, type ReproducerHow } from './reproducer.js';
import { resolveStressTarget, type StressDriver } from './target.js';
import { initialShrinkState, nextCandidate, recordOutcome, shrink, type ShrinkState } from './shrink.js';

export interface StressOptions {
	seconds: number;
	procs: number;
	threads: number;
	seed: number;
	opsPerWorker: number;
	/** The module to load (default: the one `hybridmem build` made for this kernel). */
	module?: string;
	/**
	 * Another driver than hybridmem_test, as `hybridmem check` takes it (a
	 * --module with --device/--chrdev, or a recipe): generic operations only,
	 * and its invariants (no live_pages; free pages judged per program).
	 */
	target?: TargetSpec;
	/** With target: a kbuild directory built for each guest kernel (target.module names its .ko, if several). */
	kmodDir?: string;
	/** Run this program (a reproducer) instead of generated ones. */
	replay?: string;
	/** Go on with the shrink saved in outDir (the last boot's test took the kernel down). */
	resume?: boolean;
	/** Times a replayed program runs (a race may need more than one). */
	repeat: number;
	/** Time the shrinker may take (ms). */
	shrinkMs: number;
	dStateBoundMs: number;
	/** Free pages the run may leave missing (see judgeFreePages). */
	freePagesThreshold: number;
	/** Another driver: free pages one program may leave missing (its fds closed, its processes gone). */
	programFreePagesThreshold: number;
	/** Where the reproducer and the results go (the host reads them). */
	outDir: string;
	onProgress?: (m: string) => void;
}

export const STRESS_DEFAULTS = { shrinkBoots: 12, seconds: 60, procs: 2, threads: 3, seed: 1, opsPerWorker: 60, repeat: 5, shrinkMs: 90_000, dStateBoundMs: 10_000, freePagesThreshold: 2048, programFreePagesThreshold: 128 } as const;

export interface StressReport {
	kernel: string;
	module: string;
	/** What ran: "hybridmem_test (/dev/devKex)", or the driver as hybridmem check describes it. */
	target?: string;
	/** Another driver: how the reproducer reads its operations (open, the length mmap keeps to). */
	targetOps?: OpContext;
	seed: number;
	procs: number;
	threads: number;
	/** Programs run (generated rounds, or replays), and their operations. */
	programs: number;
	operations: number;
	/** op -> outcome -> count, over every program. */
	counts: Record<string, Record<string, number>>;
	durationMs: number;
	violations: Violation[];
	/** The round whose program failed first. */
	failedRound?: number;
	reproducer?: Reproducer;
	/** A shrinking test oopsed the kernel: the shrink goes on in a fresh boot. */
	shrinkPending?: boolean;
	/** Boots the shrink took (the host's count). */
	boots?: number;
	shrink?: { tests: number; exhausted: boolean; ms: number };
	livePages?: number;
	freePages?: FreePagesVerdict;
	/** Another driver: free pages each program left missing (generated or replayed, not shrink tests), and the threshold. */
	programFreePages?: { missing: number[]; threshold: number };
	/** rmmod worked; null: no module of ours to unload (a recipe's in-tree driver, a node alone). */
	rmmod: boolean | null;
	/** Module counters at the end (before rmmod). */
	counters: Record<string, number | undefined>;
	passed: boolean;
	crash?: { headline: string; frames: string[] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dropCaches(): Promise<void> {
	try {
		writeFileSync('/proc/sys/vm/drop_caches', '3');
	} catch {
		/* not root: the measure is noisier */
	}
	await sleep(50);
}

/**
 * One program, checked: the violations it caused (kernel log, D state,
 * executor, and live_pages for hybridmem_test; for another driver, which
 * has no such counter, the free pages it left missing once its fds are
 * closed and its processes gone).
 */
async function runChecked(program: Program, file: string, binary: string, capture: KernelLogCapture, opts: StressOptions, driver?: StressDriver): Promise<{ result: ExecResult; violations: Violation[]; missing?: number }> {
	writeFileSync(file, formatProgram(program));
	await capture.take();
	const before = driver ? 0 : (readCounter(SYSFS_COUNTERS, 'live_pages') ?? 0);
	let free: { before: number; resident: number } | undefined;
	if (driver) {
		await dropCaches();
		free = { before: await settledFreePages(), resident: residentPages() };
	}
	const timeoutMs = 30_000 + program.ops.length * 200;
	const sources = await driver?.sources();
	let result: ExecResult;
	try {
		result = await runProgramFile(binary, file, {
			dStateBoundMs: opts.dStateBoundMs,
			timeoutMs,
			watchOops: true,
			...(sources ? { env: sources.env, fds: sources.fds, onSpawn: sources.dropCopies } : {}),
		});
	} finally {
		sources?.release();
	}
	const live: { violation?: Violation } = driver ? {} : await livePagesViolation(SYSFS_COUNTERS, before);
	// A freed page written to is only reported when it is allocated again: now, while this program is the suspect.
	sweepFreedPages(64 * 1024 * 1024);
	await capture.poll();
	const violations = [...kernelLogViolations(await capture.take()), ...executorViolations(result), ...(live.violation ? [live.violation] : [])];
	if (free) {
		await dropCaches();
		const v = judgeFreePages(free.before, await settledFreePages(), residentPages() - free.resident, opts.programFreePagesThreshold);
		if (v.violation) violations.push({ ...v.violation, summary: `this program left ${v.missing} pages fewer free than before it (threshold ${v.threshold} per program)` });
		return { result, violations, missing: v.missing };
	}
	return { result, violations };
}

/** The reproducer's words for the target. */
function reproducerHow(opts: Pick<StressOptions, 'target' | 'kmodDir' | 'module'>, driver?: StressDriver, kernel = os.release()): ReproducerHow {
	if (!opts.target) return { kernel, ...(opts.module ? { module: opts.module } : {}) };
	const args = opts.kmodDir ? ['--kmod-dir', opts.kmodDir, ...specArgs({ ...opts.target, ...(opts.target.module ? { module: path.basename(opts.target.module) } : {}) })] : specArgs(opts.target);
	return { kernel, target: { args, label: driver?.description.label ?? args.join(' '), ops: driver?.context ?? { open: 'open', maxPages: 32, offset: '0x0' } } };
}

/** A replayed program for another driver must not carry hybridmem_test's ioctls. */
export function checkReplayFor(program: Program, target: TargetSpec | undefined): void {
	const bad = target ? [...new Set(program.ops.filter((o) => MODULE_OPS.includes(o.op)).map((o) => o.op))] : [];
	if (bad.length) throw Object.assign(new Error(`the program uses ${bad.join(', ')}, hybridmem_test's own ioctls, which are never sent to another driver: replay it without --device/--chrdev/--recipe, or remove those lines`), { code: 'ERR_INVALID_ARG_VALUE' });
}

/** What a shrink in progress keeps between boots (in the results directory). */
interface ShrinkFile {
	program: Omit<Program, 'ops'>;
	violation: Violation;
	originalOps: number;
	state: ShrinkState;
	/** The candidate being tested when this was written. */
	inFlight?: Op[];
}

/** A violation after which this kernel cannot judge another program: a kernel report, a task stuck. */
const damaging = (v: Violation) => !!v.fatal || v.invariant === 'kernel-log' || v.invariant === 'd-state';

const shrinkFile = (dir: string) => path.join(dir, 'shrink-state.json');

/**
 * Shrinks in this kernel until done, out of budget, or a candidate oopses the
 * kernel (then report.shrinkPending: the host boots again with --resume);
 * the reproducer is the smallest failing program so far.
 */
async function shrinkHere(saved: ShrinkFile, report: StressReport, binary: string, capture: KernelLogCapture, opts: StressOptions, driver?: StressDriver): Promise<void> {
	const started = performance.now();
	const base = saved.program;
	const want = saved.violation.invariant;
	const candidate = path.join(opts.outDir, 'candidate-program.txt');
	// A candidate still fails when it breaks the same invariant in one of up to 2 runs (a race may need more than one).
	const fails = async (ops: Op[]): Promise<boolean | 'stop'> => {
		// A leak is no race: a free-pages candidate runs once.
		for (let i = 0; i < (want === 'free-pages' ? 1 : 2); i++) {
			const { violations } = await runChecked({ ...base, ops }, candidate, binary, capture, opts, driver);
			if (violations.some(damaging)) return 'stop';
			if (violations.some((v) => v.invariant === want)) return true;
		}
		return false;
	};
	const all = saved.state.current;
	const workers = [...new Set(all.map((x) => x.worker))];
	const procsOf = [...new Set(workers.map((w) => Math.floor(w / base.threads)))];
	// A leak grows with the operations: one thread's alone rarely leaks past the threshold, so ddmin starts at once.
	const groups = want === 'free-pages' ? undefined : (ops: Op[]) => [...workers.map((w) => ops.filter((x) => x.worker === w)), ...procsOf.map((p) => ops.filter((x) => Math.floor(x.worker / base.threads) === p))];
	const persist = (inFlight?: Op[]) => writeFileSync(shrinkFile(opts.outDir), JSON.stringify({ ...saved, ...(inFlight ? { inFlight } : {}) }));
	const s = await shrink(saved.state, fails, {
		...(groups ? { groups } : {}),
		budgetMs: opts.shrinkMs,
		beforeTest: (_, c) => persist(c),
		onProgress: (n, t) => opts.onProgress?.(`shrinking: ${n} operations after ${t} tests`),
	});
	persist();
	report.shrinkPending = s.stopped;
	const ms = Math.round(performance.now() - started);
	report.shrink = { tests: s.tests, exhausted: s.exhausted, ms: (report.shrink?.ms ?? 0) + ms };
	report.reproducer = writeReproducer(path.join(opts.outDir, 'reproducer.txt'), { ...base, ops: s.ops }, saved.violation, saved.originalOps, reproducerHow(opts, driver));
}

/** The warm-up program: every worker forks 20 times (children that touch nothing and exit). */
function writeWarmUp(opts: StressOptions): string {
	const ops: Op[] = [];
	for (let w = 0; w < opts.procs * opts.threads; w++) for (let i = 0; i < 20; i++) ops.push({ worker: w, op: 'fork', a: 0, b: i % 3, c: 0 });
	const file = path.join(opts.outDir, 'warm-up-program.txt');
	writeFileSync(file, formatProgram({ procs: opts.procs, threads: opts.threads, ops, comment: ['warm-up: forks only, the driver untouched'] }));
	return file;
}

/** Loads hybridmem_test and makes its node; the free-page baseline is taken before insmod. */
async function loadReferenceModule(opts: StressOptions): Promise<string> {
	const module = opts.module ?? (await buildModule(os.release())).file;
	if (existsSync(`/sys/module/${MODULE_NAME}`)) await execa('rmmod', [MODULE_NAME], { reject: false });
	const ins = await execa('insmod', [module], { reject: false, all: true });
	if (ins.exitCode !== 0) throw Object.assign(new Error(`insmod ${module} failed: ${(ins.all ?? '').trim()}`), { code: 'ERR_INSMOD' });
	// register_chrdev(): no node by itself; made as `hybridmem setup` makes it (0660).
	const major = chrdevMajor(CHRDEV_NAME);
	if (major === undefined) throw Object.assign(new Error(`${module} did not register the "${CHRDEV_NAME}" character device`), { code: 'ERR_INSMOD' });
	rmSync(DEFAULT_NODE, { force: true });
	const mk = await execa('mknod', ['-m', '0660', DEFAULT_NODE, 'c', String(major), '0'], { reject: false, all: true });
	if (mk.exitCode !== 0) throw Object.assign(new Error(`mknod ${DEFAULT_NODE} failed: ${(mk.all ?? '').trim()}`), { code: 'ERR_MKNOD' });
	return module;
}

/** Runs stress in this kernel: loads the module (or resolves the target), runs, unloads it. */
export async function runStressHere(opts: StressOptions): Promise<StressReport> {
	const started = performance.now();
	const binary = existsSync(executorBinary()) ? executorBinary() : await buildExecutor();
	if (opts.replay) checkReplayFor(parseProgram(readFileSync(opts.replay, 'utf8')), opts.target);
	let driver: StressDriver | undefined;
	let baseline = 0;
	let residentBefore = 0;
	const measureBaseline = async () => {
		await dropCaches();
		baseline = await settledFreePages();
		residentBefore = residentPages();
	};
	// Before insmod of our module or a --module; after a recipe's modprobes (those modules stay loaded).
	if (!opts.target || opts.target.module) await measureBaseline();
	let module: string;
	if (opts.target) {
		driver = await resolveStressTarget(opts.target, loadBinding().pageSize);
		module = opts.target.module ?? '';
		if (!opts.target.module) await measureBaseline();
	} else module = await loadReferenceModule(opts);
	// The first burst of processes grows the kernel's slab caches for good (~100 pages
	// measured): a program of forks alone, which never opens the driver, takes that first.
	if (driver) await runProgramFile(binary, writeWarmUp(opts), { dStateBoundMs: opts.dStateBoundMs, timeoutMs: 60_000 });
	const capture = await startCapture();
	const report: StressReport = {
		kernel: os.release(),
		module,
		target: driver ? driver.description.label : `hybridmem_test (${DEFAULT_NODE})`,
		...(driver ? { targetOps: driver.context, programFreePages: { missing: [], threshold: opts.programFreePagesThreshold } } : {}),
		seed: opts.seed,
		procs: opts.procs,
		threads: opts.threads,
		programs: 0,
		operations: 0,
		counts: {},
		durationMs: 0,
		violations: [],
		rmmod: false,
		counters: {},
		passed: false,
	};
	const current = path.join(opts.outDir, 'current-program.txt');
	const save = () => writeFileSync(path.join(opts.outDir, 'report.json'), JSON.stringify(report, null, 2));
	let failing: Program | undefined;
	let firstViolation: Violation | undefined;
	try {
		if (opts.resume) {
			/* below */
		} else if (opts.replay) {
			const program = parseProgram(readFileSync(opts.replay, 'utf8'));
			for (let i = 0; i < opts.repeat && !firstViolation; i++) {
				const { result, violations, missing } = await runChecked(program, current, binary, capture, opts, driver);
				report.programs++;
				report.operations += program.ops.length;
				addCounts(report.counts, result.counts);
				if (missing !== undefined) report.programFreePages?.missing.push(missing);
				if (violations.length) {
					report.violations.push(...violations);
					firstViolation = violations[0];
				}
				save();
			}
		} else {
			const deadline = performance.now() + opts.seconds * 1000;
			for (let round = 0; performance.now() < deadline; round++) {
				const program = generateProgram({ seed: opts.seed, round, procs: opts.procs, threads: opts.threads, opsPerWorker: opts.opsPerWorker, ...(driver ? { generic: true } : {}) });
				const { result, violations, missing } = await runChecked(program, current, binary, capture, opts, driver);
				if (missing !== undefined) report.programFreePages?.missing.push(missing);
				report.programs++;
				report.operations += program.ops.length;
				addCounts(report.counts, result.counts);
				if (round % 20 === 0) opts.onProgress?.(`round ${round}: ${report.operations} operations so far`);
				if (violations.length) {
					report.violations.push(...violations);
					report.failedRound = round;
					failing = program;
					firstViolation = violations[0];
					save();
					break;
				}
				save();
			}
		}
		if (failing && firstViolation) {
			const saved: ShrinkFile = { program: { procs: failing.procs, threads: failing.threads, comment: failing.comment ?? [] }, violation: firstViolation, originalOps: failing.ops.length, state: initialShrinkState(failing.ops) };
			writeFileSync(shrinkFile(opts.outDir), JSON.stringify(saved));
			// The whole program is the reproducer until a shorter one is found.
			report.reproducer = writeReproducer(path.join(opts.outDir, 'reproducer.txt'), failing, firstViolation, failing.ops.length, reproducerHow(opts, driver));
			save();
			if (report.violations.some(damaging)) {
				// A kernel report means damage (an oops killed a task holding locks,
				// freed pages were written): tests in this kernel would judge the
				// damage, not the candidate.  The next boot shrinks (--resume).
				opts.onProgress?.(`round ${report.failedRound} oopsed the kernel (${firstViolation.summary}); shrinking goes on in a fresh boot`);
				report.shrinkPending = true;
			} else {
				opts.onProgress?.(`round ${report.failedRound} failed (${firstViolation.invariant}: ${firstViolation.summary}); shrinking its ${failing.ops.length} operations`);
				await shrinkHere(saved, report, binary, capture, opts, driver);
			}
			save();
		} else if (opts.resume) {
			const saved = JSON.parse(readFileSync(shrinkFile(opts.outDir), 'utf8')) as ShrinkFile;
			// The test running when the last boot ended took the kernel down: it fails.
			if (saved.inFlight) recordOutcome(saved.state, saved.inFlight, true);
			delete saved.inFlight;
			report.failedRound = undefined;
			await shrinkHere(saved, report, binary, capture, opts, driver);
			save();
		}
	} finally {
		await capture.stop();
		if (!driver) {
			for (const n of ['live_pages', 'live_mappings', 'maps', 'map_failures', 'zaps', 'faults', 'remaps', 'frees']) report.counters[n] = readCounter(SYSFS_COUNTERS, n);
			const live = await livePagesViolation(SYSFS_COUNTERS);
			report.livePages = live.live;
			if (live.violation && !report.violations.some((v) => v.invariant === 'live-pages')) report.violations.push(live.violation);
		}
		const unload = driver ? driver.moduleName : MODULE_NAME;
		const rm = !unload
			? undefined
			: report.violations.some((v) => v.fatal)
				? { invariant: 'rmmod' as const, summary: 'rmmod not tried: the kernel oopsed', evidence: [] }
				: await rmmodViolation(unload);
		report.rmmod = unload ? !rm : null;
		// The node resolving made, and the module if rmmod failed (tried again: it stays if it cannot go).
		if (driver && !report.violations.some((v) => v.fatal)) await driver.cleanup();
		if (rm) report.violations.push(rm);
		else {
			await dropCaches();
			// What this process's own heap took meanwhile is not the kernel's.
			report.freePages = judgeFreePages(baseline, await settledFreePages(), residentPages() - residentBefore, opts.freePagesThreshold);
			if (report.freePages.violation) report.violations.push(report.freePages.violation);
		}
		report.durationMs = Math.round(performance.now() - started);
		report.passed = report.violations.length === 0;
		save();
	}
	return report;
}

/** The CLI arguments that give `o` to the inner run (`target`: the driver, its kbuild directory already built). */
function innerArgs(o: StressOptions, module: string, target?: TargetSpec): string[] {
	return [
		'--seconds', String(o.seconds), '--procs', String(o.procs), '--threads', String(o.threads), '--seed', String(o.seed),
		'--ops', String(o.opsPerWorker), '--repeat', String(o.repeat), '--shrink-seconds', String(Math.round(o.shrinkMs / 1000)),
		...(target ? specArgs(target) : ['--module', module]), ...(o.replay ? ['--replay', path.resolve(o.replay)] : []), ...(o.resume ? ['--resume'] : []),
	];
}

/*
 * The guest's detectors (Debian's kernels have no KASAN, lockdep or
 * DEBUG_VM; both have PAGE_POISONING and SLUB_DEBUG): freed pages poisoned
 * and checked when allocated again; slab objects poisoned when freed (0x6b:
 * a use after free dereferences a non-canonical pointer and oopses),
 * redzoned and checked (F: consistency, Z: redzones, P: poison).
 */
export const STRESS_KERNEL_ARGS = ['page_poison=1', 'slub_debug=FZP', 'log_buf_len=4M', 'hung_task_timeout_secs=10'];

const PANIC = /Kernel panic - not syncing/;
const OOPS = /(Oops|kernel BUG at|BUG: unable to handle|general protection fault)/;
/** How long a guest that oopsed may still take to write its report. */
const OOPS_GRACE_MS = 90_000;
const END_OF_PANIC = /---\[ end Kernel panic/;

/** Runs stress in a throwaway VM on `kernel`; the reproducer is copied to `reproducerDir` (default: the current directory). */
export async function runStressInVm(o: Omit<StressOptions, 'outDir'> & { kernel?: string; reproducerDir?: string; signal?: AbortSignal; shrinkBoots?: number }): Promise<StressReport> {
	const kernel = chooseKernel(o.kernel).version;
	await buildExecutor();
	if (o.replay) checkReplayFor(parseProgram(readFileSync(o.replay, 'utf8')), o.target);
	const target = o.target ? { ...o.target } : undefined;
	if (target && o.kmodDir) {
		o.onProgress?.(`building ${o.kmodDir} for ${kernel}`);
		target.module = await buildKmodDir(o.kmodDir, kernel, o.target?.module);
	}
	const module = target ? (target.module ?? '') : o.module ? path.resolve(o.module) : (await buildModule(kernel, { onProgress: o.onProgress })).file;
	const how = reproducerHow(o, undefined, kernel);
	// The inner run resolved the target: its label and operation words are in its report.
	const withOps = (r: StressReport): Partial<ReproducerHow> => (how.target ? { target: { ...how.target, label: r.target ?? how.target.label, ops: r.targetOps ?? how.target.ops } } : {});
	const dir = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-stress-'));
	const outDir = o.reproducerDir ?? process.cwd();
	let controller = new AbortController();
	const abort = () => controller.abort();
	o.signal?.addEventListener('abort', abort);
	const blank = (): StressReport => ({ kernel, module, seed: o.seed, procs: o.procs, threads: o.threads, programs: 0, operations: 0, counts: {}, durationMs: 0, violations: [], rmmod: false, counters: {}, passed: false });
	/** One boot: the inner run's report, and how the VM ended. */
	const boot = async (resume: boolean): Promise<{ report: StressReport | undefined; crash?: StressReport['crash']; consoleLog: string }> => {
		let crashing = false;
		let watchdog: NodeJS.Timeout | undefined;
		// Each boot its own: a watchdog that ended the last one must not end this one.
		controller = new AbortController();
		if (o.signal?.aborted) controller.abort();
		rmSync(path.join(dir, 'report.json'), { force: true });
		const inner = { ...o, outDir: dir, ...(resume ? { resume: true } : {}) };
		try {
			const vm = await runInVm({
				kernel,
				command: ['node', guestProgram('cli'), 'stress', '--native', '--results', dir, ...innerArgs(inner, module, target)],
				cwd: process.cwd(),
				rw: [dir],
				cpus: 2,
				extraKernelArgs: STRESS_KERNEL_ARGS,
				stdout: 'pipe',
				stderr: 'pipe',
				timeoutMs: ((resume ? 0 : o.seconds) + o.shrinkMs / 1000 + 240) * 1000,
				signal: controller.signal,
				onStdoutLine: (line) => {
					const m = /^hybridmem stress: (.*)$/.exec(line);
					if (m) o.onProgress?.(`${kernel}: ${m[1]}`);
				},
				// An oops in process context kills that task and the kernel goes on; the
				// inner run sees it and stops.  A panic ends the VM; a task that oopsed
				// holding a lock can wedge the rest: the guest gets a bounded time.
				onConsoleLine: (line) => {
					if (PANIC.test(line)) crashing = true;
					else if (crashing && END_OF_PANIC.test(line)) controller.abort();
					if (OOPS.test(line) && !watchdog) watchdog = setTimeout(() => ((crashing = true), controller.abort()), OOPS_GRACE_MS);
				},
			});
			clearTimeout(watchdog);
			const file = path.join(dir, 'report.json');
			const report = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StressReport) : undefined;
			// The inner run killed by a signal: the kernel handed it corrupt memory (a freed page still mapped elsewhere); like an oops, the boot is over.
			const killed = vm.outcome === 'exited' && vm.exitCode >= 128;
			if (crashing || killed || vm.outcome === 'crashed' || vm.outcome === 'timeout') {
				const consoleText = existsSync(vm.consoleLog) ? readFileSync(vm.consoleLog, 'utf8') : vm.consoleTail.join('\n');
				const bug = parseKernelLog(consoleText).reports.find((r) => r.kind !== 'trace');
				return { report, crash: { headline: bug?.headline ?? (killed ? `the stress run in the guest was killed by signal ${vm.exitCode - 128}` : `the VM ${vm.outcome}`), frames: (bug?.frames ?? []).slice(0, 8).map((f) => `${f.fn}+0x${f.offset.toString(16)}${f.module ? ` [${f.module}]` : ''}`) }, consoleLog: vm.consoleLog };
			}
			if (!report || vm.exitCode > 1) throw Object.assign(new Error(`the stress run in the VM failed (${vm.outcome}, exit ${vm.exitCode}): ${(vm.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`), { code: 'ERR_STRESS_RUN' });
			rmSync(vm.consoleLog, { force: true });
			return { report, consoleLog: vm.consoleLog };
		} finally {
			clearTimeout(watchdog);
		}
	};
	try {
		o.onProgress?.(`booting ${kernel}`);
		const first = await boot(false);
		const report = first.report ?? blank();
		if (first.crash) {
			report.crash = first.crash;
			report.violations.push({ invariant: 'kernel-log', fatal: true, summary: `the guest kernel crashed: ${first.crash.headline}`, evidence: [first.crash.headline, ...first.crash.frames, `console log: ${first.consoleLog}`] });
			report.passed = false;
			// Died in the middle of a generated program: that program is the one to shrink.
			const running = path.join(dir, 'current-program.txt');
			if (!existsSync(shrinkFile(dir)) && existsSync(running) && !o.replay) {
				const program = parseProgram(readFileSync(running, 'utf8'));
				const saved: ShrinkFile = { program: { procs: program.procs, threads: program.threads, comment: program.comment ?? [] }, violation: report.violations.at(-1)!, originalOps: program.ops.length, state: initialShrinkState(program.ops) };
				writeFileSync(shrinkFile(dir), JSON.stringify(saved));
				report.failedRound = report.programs;
			}
		}
		// Shrinking across boots: each boot ends when a test takes its kernel down.
		let boots = 0;
		let last = report;
		while (!o.replay && existsSync(shrinkFile(dir)) && (first.crash || last.shrinkPending) && boots < (o.shrinkBoots ?? STRESS_DEFAULTS.shrinkBoots) && !o.signal?.aborted) {
			boots++;
			o.onProgress?.(`${kernel}: shrinking in a fresh boot (${boots})`);
			let next: Awaited<ReturnType<typeof boot>>;
			try {
				next = await boot(true);
			} catch (err) {
				// Aborted, or the boot failed: the smallest failing program so far is the reproducer.
				o.onProgress?.(`${kernel}: shrinking stopped: ${(err as Error).message}`);
				break;
			}
			if (next.report?.reproducer) report.reproducer = next.report.reproducer;
			if (next.report?.shrink) report.shrink = { ...next.report.shrink, ms: (report.shrink?.ms ?? 0) + next.report.shrink.ms };
			if (!next.crash && !next.report?.shrinkPending) {
				last = next.report ?? last;
				break;
			}
			last = next.report ?? { ...blank(), shrinkPending: true };
			last.shrinkPending = true;
		}
		if (boots) {
			report.boots = boots;
			// The smallest failing program known: the saved state's (a boot that crashed wrote no reproducer).
			const saved = JSON.parse(readFileSync(shrinkFile(dir), 'utf8')) as ShrinkFile;
			if (saved.inFlight) recordOutcome(saved.state, saved.inFlight, true);
			const unfinished = last.shrinkPending || nextCandidate({ ...saved.state, current: [...saved.state.current] }) !== undefined;
			report.reproducer = writeReproducer(path.join(dir, 'reproducer.txt'), { ...saved.program, ops: saved.state.current }, saved.violation, saved.originalOps, { ...how, ...withOps(report) });
			report.shrink = { tests: saved.state.tests, exhausted: unfinished, ms: report.shrink?.ms ?? 0 };
		} else if (first.crash && existsSync(shrinkFile(dir))) {
			const saved = JSON.parse(readFileSync(shrinkFile(dir), 'utf8')) as ShrinkFile;
			report.reproducer = writeReproducer(path.join(dir, 'reproducer.txt'), { ...saved.program, ops: saved.state.current }, saved.violation, saved.originalOps, { ...how, ...withOps(report) });
		}
		if (report.reproducer && existsSync(report.reproducer.file)) {
			const to = path.join(outDir, `hybridmem-stress-repro-${kernel}-seed${o.seed}.txt`);
			writeFileSync(to, readFileSync(report.reproducer.file));
			// The host's words for the target (a kbuild directory, not the .ko built from it).
			report.reproducer = { ...report.reproducer, file: to, command: reproducerCommand(to, how) };
		}
		delete report.shrinkPending;
		return report;
	} finally {
		o.signal?.removeEventListener('abort', abort);
		rmSync(dir, { recursive: true, force: true });
	}
}
