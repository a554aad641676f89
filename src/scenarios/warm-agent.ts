// PID 1's command in a warm guest (hybridmem run --keep): it takes a baseline
// of the fresh kernel, then serves scenario runs that arrive as JSON lines on
// the control port, one at a time.  After each run it unloads the module and
// proves the kernel clean against the baseline (clean-proof.ts); the first
// proof that fails ends the agent, which powers the guest off, so nothing
// ever runs in a kernel a previous run left dirty.
import { createHash } from 'node:crypto';
import { closeSync, openSync, read, readdirSync, readFileSync, writeSync } from 'node:fs';
import { errorMessage } from '../cli/errors.js';
import { PfnTrace, withReusedTraces } from '../evidence/pfn-trace.js';
import { counters, isLoaded } from '../setup/kernel-state.js';
import { DEFAULT_NODE } from '../setup/paths.js';
import { unloadQuick } from './quick-load.js';
import { selectScenarios } from './catalog.js';
import { proveClean, takeBaseline, type CleanBaseline } from './clean-proof.js';
import { runNatively } from './run.js';
import type { WarmReply, WarmRequest } from './warm-protocol.js';
import { CONTROL_PORT, IDLE_ENV, DEFAULT_IDLE_S } from './warm-protocol.js';

function findPort(name: string): string {
	for (const p of readdirSync('/sys/class/virtio-ports')) {
		try {
			if (readFileSync(`/sys/class/virtio-ports/${p}/name`, 'utf8').trim() === name) return `/dev/${p}`;
		} catch {
			/* a port without a name */
		}
	}
	throw new Error(`no virtio port named ${name}`);
}

function readChunk(fd: number, buf: Buffer): Promise<number> {
	return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serve(fd: number, base: CleanBaseline): Promise<void> {
	const send = (reply: WarmReply) => {
		const line = Buffer.from(`${JSON.stringify(reply)}\n`);
		// Blocks while no host is connected: the next one gets it and drops it by its id.
		for (let off = 0; off < line.length; ) off += writeSync(fd, line, off);
	};
	const idleMs = Number(process.env[IDLE_ENV] ?? DEFAULT_IDLE_S) * 1000;
	let idle = setTimeout(() => process.exit(0), idleMs);
	const buf = Buffer.alloc(64 * 1024);
	let pending = '';
	for (;;) {
		const n = await readChunk(fd, buf);
		// 0: no host connected; the port wakes up when one connects.
		if (n === 0) {
			await sleep(20);
			continue;
		}
		pending += buf.toString('utf8', 0, n);
		let nl;
		while ((nl = pending.indexOf('\n')) >= 0) {
			const line = pending.slice(0, nl);
			pending = pending.slice(nl + 1);
			if (!line.trim()) continue;
			clearTimeout(idle);
			let req: WarmRequest;
			try {
				req = JSON.parse(line) as WarmRequest;
			} catch {
				continue; // a line cut short by a host that went away
			}
			const clean = await handle(req, base, send);
			if (!clean) process.exit(3);
			base = clean;
			idle = setTimeout(() => process.exit(0), idleMs);
		}
	}
}

/** Runs one request; returns the next baseline, or undefined when the kernel is no longer clean. */
async function handle(req: WarmRequest, base: CleanBaseline, send: (r: WarmReply) => void): Promise<CleanBaseline | undefined> {
	const id = req.id;
	const t0 = performance.now();
	const ms: Record<string, number> = {};
	let error: string | undefined;
	let results: WarmReply['results'] = [];
	try {
		const sha = createHash('sha256').update(readFileSync(req.module)).digest('hex');
		if (sha !== req.sha256) throw new Error(`the module the guest sees (${req.module}, sha256 ${sha}) is not the one the host built (${req.sha256})`);
		const scenarios = selectScenarios(req.scenarios);
		if (scenarios.some((s) => s.crashes || s.ownVm)) throw new Error('a scenario that damages the kernel never runs in a warm guest');
		results = await runNatively(scenarios, { moduleFile: req.module, quickLoad: true, onResult: (r) => send({ id, type: 'result', result: r }) });
		ms.scenarios = results.reduce((t, r) => t + r.durationMs, 0);
	} catch (err) {
		error = errorMessage(err);
	}
	let live: { pages: bigint; mappings: bigint } | undefined;
	try {
		if (isLoaded()) {
			const c = counters();
			live = { pages: c.live_pages ?? -1n, mappings: c.live_mappings ?? -1n };
			await unloadQuick(DEFAULT_NODE);
		}
	} catch (err) {
		error = [error, `teardown: ${errorMessage(err)}`].filter(Boolean).join('; ');
	}
	ms.run = performance.now() - t0;
	const proof = await proveClean(base, live ? { live } : {});
	ms.total = performance.now() - t0;
	send({
		id,
		type: 'done',
		results,
		...(error ? { error } : {}),
		proof: { clean: proof.clean, checks: proof.checks },
		// Where the guest's time went: the scenarios themselves, the whole run with loading and unloading, and with the proof.
		guestMs: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v)])),
	});
	return proof.clean ? proof.next : undefined;
}

// Tracing allocates once, on first use, and keeps it (the global ring buffer,
// BTF for the probes' arguments): tens of MiB a baseline taken before would
// count against the first run.  So one trace is made before the baseline and
// kept, idle and off, for the agent's life (withReusedTraces): every run's
// scenarios reuse it, and each proof counts free pages as the baseline did,
// with its ring buffer allocated.
await withReusedTraces(async () => {
	try {
		(await PfnTrace.start()).stop();
	} catch {
		/* a kernel without tracing: the scenarios will say so */
	}
	const base = await takeBaseline();
	const fd = openSync(findPort(CONTROL_PORT), 'r+');
	try {
		await serve(fd, base);
	} finally {
		closeSync(fd);
	}
});
