// hybridmem run --keep: the safe scenarios in a warm guest that stays up
// between runs.  The host hands the guest's agent the module it built (copied
// into the exchange directory and named by its hash), takes the results as
// they come, and keeps the guest only when the agent proved the kernel clean
// afterwards; otherwise, or when anything went wrong, the guest is killed
// and the next run boots a fresh one.
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../cli/errors.js';
import { findAddon } from '../device/binding.js';
import { guestProgram, moduleFile, PACKAGE_ROOT } from '../setup/paths.js';
import { newestMtime } from '../vm/cache.js';
import { connectWarm, discardWarmVm, warmVm, withWarmLock } from '../vm/warm-vm.js';
import type { RunOptions } from './run.js';
import type { Scenario, ScenarioResult } from './types.js';
import { CONTROL_PORT, IDLE_ENV, type WarmReply, type WarmRequest } from './warm-protocol.js';

/** The same boot as a fresh scenario VM (run.ts EVIDENCE_BOOT), so results do not depend on which one ran them. */
const WARM_BOOT = { cpus: 1, memMiB: 2048, extraKernelArgs: ['page_poison=1', 'log_buf_len=4M'] };
export const WARM_TIMEOUT_MS = 600_000;

export interface WarmOutcome {
	/** The guest was booted by this run (false: reused after the previous run's proof). */
	booted: boolean;
	/** The guest is kept for the next run: the agent proved the kernel clean. */
	kept: boolean;
	proof?: WarmReply['proof'];
	error?: string;
	/** Milliseconds: in the guest (scenarios, run, total) and on the host (before the request went out, the whole run). */
	guestMs?: Record<string, number>;
	hostMs: { ready: number; total: number };
	consoleLog: string;
}

function didNotRun(s: Scenario, kernel: string, why: string): ScenarioResult {
	return { name: s.name, title: s.title, expectation: s.expectation, checks: [], summary: 'did not run', passed: false, durationMs: 0, kernel, where: 'vm', error: why };
}

function stamp(file: string | undefined): string {
	if (!file) return 'none';
	const st = statSync(file);
	return `${file}:${st.size}:${st.mtimeMs}`;
}

export function runWarm(scenarios: Scenario[], opts: RunOptions, kernel: string): Promise<ScenarioResult[]> {
	return withWarmLock(kernel, () => runWarmLocked(scenarios, opts, kernel));
}

async function runWarmLocked(scenarios: Scenario[], opts: RunOptions, kernel: string): Promise<ScenarioResult[]> {
	const t0 = performance.now();
	const agent = guestProgram('warm-agent');
	const vm = await warmVm({
		kernel,
		command: [process.execPath, agent],
		cwd: PACKAGE_ROOT,
		// A rebuilt CLI or addon means a new agent: the old guest runs the old code.
		keyParts: [String(newestMtime(path.join(PACKAGE_ROOT, 'dist'))), stamp(findAddon()), process.version],
		...WARM_BOOT,
		portName: CONTROL_PORT,
		env: Object.fromEntries([IDLE_ENV].flatMap((k) => (process.env[k] !== undefined ? [[k, process.env[k]!]] : []))),
		...(opts.onProgress ? { onNotice: opts.onProgress } : {}),
	});
	opts.onProgress?.(vm.booted ? `booting a warm guest for ${scenarios.length} scenario${scenarios.length > 1 ? 's' : ''}` : 'reusing the warm guest (proven clean after the last run)');
	const ko = readFileSync(moduleFile(kernel));
	const sha256 = createHash('sha256').update(ko).digest('hex');
	const guestKo = path.join(vm.xchg, `hybridmem_test-${sha256.slice(0, 16)}.ko`);
	// Only this run's module in the exchange directory: every edit would leave one more.
	for (const old of readdirSync(vm.xchg)) if (old.endsWith('.ko') && path.join(vm.xchg, old) !== guestKo) rmSync(path.join(vm.xchg, old), { force: true });
	if (!existsSync(guestKo)) copyFileSync(moduleFile(kernel), guestKo);
	const req: WarmRequest = { id: randomUUID(), scenarios: scenarios.map((s) => s.name), module: guestKo, sha256 };

	const ready = performance.now() - t0;
	const streamed = new Map<string, ScenarioResult>();
	let done: WarmReply | undefined;
	let error: string | undefined;
	try {
		const sock = await connectWarm(vm);
		done = await new Promise<WarmReply | undefined>((resolve, reject) => {
			let pending = '';
			const timer = setTimeout(() => reject(new Error(`the warm guest gave no answer in ${WARM_TIMEOUT_MS / 1000} s`)), WARM_TIMEOUT_MS);
			const onAbort = () => reject(new Error('aborted'));
			opts.signal?.addEventListener('abort', onAbort, { once: true });
			const finish = (r: WarmReply | undefined) => {
				clearTimeout(timer);
				opts.signal?.removeEventListener('abort', onAbort);
				sock.destroy();
				resolve(r);
			};
			sock.setEncoding('utf8');
			sock.on('data', (text: string) => {
				pending += text;
				let nl;
				while ((nl = pending.indexOf('\n')) >= 0) {
					const line = pending.slice(0, nl);
					pending = pending.slice(nl + 1);
					let reply: WarmReply;
					try {
						reply = JSON.parse(line) as WarmReply;
					} catch {
						continue;
					}
					if (reply.id !== req.id) continue; // another run's, sent after its host went away
					if (reply.type === 'result' && reply.result) {
						const r = { ...reply.result, where: 'vm' as const };
						streamed.set(r.name, r);
						opts.onResult?.(r);
					} else if (reply.type === 'done') return finish(reply);
				}
			});
			// QEMU closes the socket when it exits: the guest died (or powered off).
			sock.once('close', () => finish(undefined));
			sock.once('error', () => finish(undefined));
			sock.write(`${JSON.stringify(req)}\n`);
		});
	} catch (err) {
		error = errorMessage(err);
	}
	const kept = !!done?.proof?.clean && !done.error && !error;
	let consoleLog = vm.consoleLog;
	if (!kept) {
		// The state directory goes with the guest; its console log is the evidence of why.
		consoleLog = path.join(os.tmpdir(), `hybridmem-warm-console-${Date.now()}-${process.pid}.log`);
		try {
			copyFileSync(vm.consoleLog, consoleLog);
		} catch {
			consoleLog = '(none)';
		}
		discardWarmVm(kernel);
	}
	if (!done && !error) error = `the warm guest went away before it finished; console log: ${consoleLog}`;
	if (done?.error) error = done.error;
	opts.onWarm?.({ booted: vm.booted, kept, ...(done?.proof ? { proof: done.proof } : {}), ...(error ? { error } : {}), ...(done?.guestMs ? { guestMs: done.guestMs } : {}), hostMs: { ready: Math.round(ready), total: Math.round(performance.now() - t0) }, consoleLog });
	const results = (done?.results ?? []).map((r) => ({ ...r, where: 'vm' as const }));
	const have = new Map([...streamed, ...results.map((r) => [r.name, r] as const)]);
	return scenarios.map((s) => {
		const r = have.get(s.name);
		if (r) {
			if (!streamed.has(s.name)) opts.onResult?.(r);
			return r;
		}
		const missing = didNotRun(s, kernel, error ?? 'no result from the warm guest');
		opts.onResult?.(missing);
		return missing;
	});
}
