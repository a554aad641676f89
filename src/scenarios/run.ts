// Runs scenarios where they can run: natively when this machine can load the
// module, else in one VM boot for all of them; the crash scenario always in
// a VM boot of its own.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../cli/errors.js';
import { findAddon } from '../device/binding.js';
import { withReusedTraces } from '../evidence/pfn-trace.js';
import { buildAddon, buildModule } from '../setup/build.js';
import { kernelLoadsModules } from '../setup/kernel-state.js';
import { DEFAULT_NODE, guestProgram, moduleFile, PACKAGE_ROOT } from '../setup/paths.js';
import { requireModuleSupport, setup } from '../setup/setup.js';
import { chooseKernel } from '../vm/kernels.js';
import { archOfRelease, type DebianArch } from '../vm/debian.js';
import { runInVm } from '../vm/runner.js';
import { runBugPfnmapInVm } from './bug-pfnmap.js';
import { loadQuick } from './quick-load.js';
import type { WarmOutcome } from './warm.js';
import { ScenarioContext } from './context.js';
import type { Scenario, ScenarioOutcome, ScenarioResult } from './types.js';

export type Where = 'auto' | 'native' | 'vm';

/**
 * How scenario VMs boot: page poisoning on (a write into a freed page is
 * reported when the page is next allocated), a log buffer that holds its hex
 * dumps, and one vCPU: enabling kprobes and tracepoints patches kernel text,
 * which QEMU's TCG gets wrong with a second vCPU running (bench/traced-vm-runs.mjs).
 */
export const EVIDENCE_BOOT: { cpus: number; extraKernelArgs: string[] } = { cpus: 1, extraKernelArgs: ['page_poison=1', 'log_buf_len=4M'] };

/** Scenarios that take or damage the kernel: never natively without allowCrash. */
function damaging(s: Scenario): boolean {
	return !!(s.crashes || s.ownVm);
}

export interface RunOptions {
	where?: Where;
	/** Kernel for the VM runner; default: the newest with headers. */
	kernel?: string;
	/** The VM's architecture when no kernel is named (arm64: the newest fetched arm64 kernel); a named kernel has its own. */
	arch?: DebianArch;
	/** Lets the crash scenario run natively (it will take this kernel down). */
	allowCrash?: boolean;
	devicePath?: string;
	onResult?: (r: ScenarioResult) => void;
	onProgress?: (message: string) => void;
	/** The VM's own output (the inner run's progress lines). */
	vmOutput?: 'inherit' | 'pipe';
	signal?: AbortSignal;
	/** The .ko to load natively instead of building one (a warm guest gets the host's build). */
	moduleFile?: string;
	/** Load through the addon's syscalls instead of spawning insmod and mknod (quick-load.ts): the VM runner's guests. */
	quickLoad?: boolean;
	/** Safe scenarios in a warm guest kept between runs (warm.ts), reused only when proven clean. */
	keep?: boolean;
	/** With keep: whether the warm guest was booted or reused, and its cleanliness proof. */
	onWarm?: (o: WarmOutcome) => void;
}

/**
 * Scenarios run in this kernel by default only when it can load the module
 * (root, CONFIG_MODULES, headers for the running kernel) and the user opted in
 * with HYBRIDMEM_NATIVE=1: nobody gets a test module in their workstation's
 * kernel by surprise.  --native asks for it explicitly.
 */
export function canRunNatively(): boolean {
	return (
		process.env.HYBRIDMEM_NATIVE === '1' &&
		process.getuid?.() === 0 &&
		kernelLoadsModules() &&
		existsSync(`/lib/modules/${os.release()}/build/Makefile`)
	);
}

function result(s: Scenario, outcome: ScenarioOutcome, started: number, where: 'native' | 'vm', kernel: string, error?: string): ScenarioResult {
	return {
		name: s.name,
		title: s.title,
		expectation: s.expectation,
		...outcome,
		passed: !error && outcome.checks.length > 0 && outcome.checks.every((c) => c.ok),
		durationMs: Date.now() - started,
		kernel,
		where,
		...(error ? { error } : {}),
	};
}

async function runOne(s: Scenario, ctx: ScenarioContext, where: 'native' | 'vm'): Promise<ScenarioResult> {
	const started = Date.now();
	try {
		return result(s, await s.run(ctx), started, where, os.release());
	} catch (err) {
		return result(s, { checks: [], summary: 'did not finish' }, started, where, os.release(), errorMessage(err));
	}
}

/** Runs scenarios in this kernel; the module is (re)loaded with its defaults first. */
export async function runNatively(scenarios: Scenario[], opts: RunOptions = {}): Promise<ScenarioResult[]> {
	const devicePath = opts.devicePath ?? DEFAULT_NODE;
	const crash = scenarios.filter((s) => s.crashes);
	const refused = scenarios.filter(damaging);
	if (refused.length && !opts.allowCrash)
		throw Object.assign(new Error(`${refused.map((s) => s.name).join(', ')} ${refused.length > 1 ? 'crash or corrupt' : refused[0]!.crashes ? 'crashes' : 'corrupts'} the kernel: refused natively; run it with --vm, or pass --allow-crash on a machine you can lose`), {
			code: 'ERR_CRASH_REFUSED',
		});
	const ctx = new ScenarioContext(devicePath);
	const results: ScenarioResult[] = [];
	const safe = scenarios.filter((s) => !s.crashes);
	if (safe.length) {
		requireModuleSupport();
		await ensureAddon(opts);
		if (!opts.moduleFile) await buildModule(os.release());
		if (opts.quickLoad) await loadQuick(opts.moduleFile ?? moduleFile(os.release()), devicePath);
		else await setup({ reload: true, node: devicePath, ...(opts.moduleFile ? { module: opts.moduleFile } : {}) });
	}
	try {
		// One PFN trace for the run, emptied between scenarios (withReusedTraces).
		await withReusedTraces(async () => {
			for (const s of safe) {
				opts.onProgress?.(`running ${s.name}`);
				const r = await runOne(s, ctx, 'native');
				results.push(r);
				opts.onResult?.(r);
			}
		});
	} finally {
		ctx.close();
	}
	for (const s of crash) await s.run(ctx); // does not return on a kernel that BUGs
	return results;
}

/** Marks a result line the run inside a VM prints, so the run outside reports each as it finishes. */
export const RESULT_LINE_PREFIX = '@hybridmem-result ';

export function resultLine(r: ScenarioResult): string {
	return `${RESULT_LINE_PREFIX}${JSON.stringify(r)}`;
}

/** Compiles the addon from source when neither a build nor a prebuilt binary for this platform is there. */
async function ensureAddon(opts: RunOptions): Promise<void> {
	if (findAddon()) return;
	opts.onProgress?.(`compiling the addon from source (no prebuilt binary for ${process.platform}-${process.arch})`);
	await buildAddon();
}

/** Runs the non-crashing scenarios in one VM boot, through this CLI inside it. */
async function runSafeInVm(scenarios: Scenario[], opts: RunOptions, kernel: string, label: string): Promise<ScenarioResult[]> {
	opts.onProgress?.(label);
	const damage = scenarios.some(damaging) ? ['--allow-crash'] : [];
	const dir = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-run-'));
	const file = path.join(dir, 'results.json');
	const streamed = new Map<string, ScenarioResult>();
	try {
		const vm = await runInVm({
			kernel,
			command: ['node', guestProgram('cli'), 'run', '--native', ...damage, '--results', file, ...scenarios.map((s) => s.name)],
			...EVIDENCE_BOOT,
			cwd: PACKAGE_ROOT,
			rw: [dir],
			stdout: opts.vmOutput ?? 'pipe',
			stderr: opts.vmOutput ?? 'pipe',
			...(opts.signal ? { signal: opts.signal } : {}),
			...(opts.onProgress ? { onNotice: (m: string) => opts.onProgress?.(`${label}: ${m}`) } : {}),
			onStdoutLine: (line) => {
				if (!line.startsWith(RESULT_LINE_PREFIX)) return;
				try {
					const r = { ...(JSON.parse(line.slice(RESULT_LINE_PREFIX.length)) as ScenarioResult), where: 'vm' as const };
					streamed.set(r.name, r);
					opts.onResult?.(r);
				} catch {
					/* a line cut short by a dying guest: the results file decides */
				}
			},
		});
		if (!existsSync(file)) {
			const why = `the VM run gave no results (${vm.outcome}, exit ${vm.exitCode}); console log: ${vm.consoleLog}\n${(vm.stderr ?? '').trim()}`;
			// Those that finished before the VM died count; the rest did not run.
			return scenarios.map((s) => {
				const done = streamed.get(s.name);
				if (done) return done;
				const r = result(s, { checks: [], summary: 'did not run' }, Date.now(), 'vm', kernel, why);
				opts.onResult?.(r);
				return r;
			});
		}
		const results = (JSON.parse(readFileSync(file, 'utf8')) as ScenarioResult[]).map((r) => ({ ...r, where: 'vm' as const }));
		// The results carry the evidence; a failed scenario is no failed boot.
		if (vm.outcome === 'exited' && vm.exitCode <= 1) rmSync(vm.consoleLog, { force: true });
		for (const r of results) if (!streamed.has(r.name)) opts.onResult?.(r);
		return results;
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

export async function runScenarios(scenarios: Scenario[], opts: RunOptions = {}): Promise<ScenarioResult[]> {
	const where = opts.where ?? 'auto';
	// Asked for natively: run here or refuse here (the crash without --allow-crash).
	if (where === 'native') return runNatively(scenarios, opts);
	// An arm64 kernel runs in the VM runner whatever this machine can do.
	const foreign = (opts.arch ?? (opts.kernel ? archOfRelease(opts.kernel) : 'amd64')) !== 'amd64';
	const native = where === 'auto' && !foreign && canRunNatively();
	if (native && (opts.allowCrash || !scenarios.some(damaging))) return runNatively(scenarios, opts);
	const safe = scenarios.filter((s) => !damaging(s));
	const own = scenarios.filter((s) => s.ownVm && !s.crashes);
	const crash = scenarios.filter((s) => s.crashes);
	const kernel = chooseKernel(opts.kernel, undefined, undefined, undefined, opts.arch).version;
	const results: ScenarioResult[] = [];
	const report = (r: ScenarioResult) => {
		results.push(r);
		opts.onResult?.(r);
	};
	if (safe.length && native) results.push(...(await runNatively(safe, opts)));
	if ((safe.length && !native) || own.length) await ensureAddon(opts);
	if ((safe.length && !native) || own.length || crash.length) {
		opts.onProgress?.(`building the module for ${kernel}`);
		await buildModule(kernel);
	}
	if (safe.length && !native && opts.keep) {
		// Loaded only here: the warm guest's host side is not needed by any other run.
		const { runWarm } = await import('./warm.js');
		results.push(...(await runWarm(safe, opts, kernel)));
	} else if (safe.length && !native) {
		results.push(...(await runSafeInVm(safe, opts, kernel, `booting ${kernel} for ${safe.length} scenario${safe.length > 1 ? 's' : ''}`)));
	}
	for (const s of own) {
		results.push(...(await runSafeInVm([s], opts, kernel, `booting ${kernel} for ${s.name} (it damages that kernel)`)));
	}
	for (const s of crash) {
		opts.onProgress?.(`booting ${kernel} for ${s.name} (it crashes that kernel)`);
		const started = Date.now();
		try {
			const outcome = await runBugPfnmapInVm({
				kernel,
				...(opts.signal ? { signal: opts.signal } : {}),
				...(opts.onProgress ? { onNotice: (m: string) => opts.onProgress?.(`booting ${kernel} for ${s.name}: ${m}`) } : {}),
			});
			report(result(s, outcome, started, 'vm', outcome.kernel));
		} catch (err) {
			report(result(s, { checks: [], summary: 'did not run' }, started, 'vm', kernel, errorMessage(err)));
		}
	}
	return results;
}

/** Writes results where the outer run (on the host) reads them. */
export function writeResults(file: string, results: ScenarioResult[]): void {
	// Results hold strings and numbers only (checks render bigints themselves).
	writeFileSync(file, JSON.stringify(results, null, 2));
}
