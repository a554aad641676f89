// The module's tracepoints (events/hybridmem/) through the reader the
// scenarios use (src/evidence/module-trace.ts): binary records from a private
// trace instance, one event per step of a mapping's life, with the user
// address and pfn it concerns, and only the traced process's events.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, test } from 'vitest';
import { openDevice } from '../../src/device/index.js';
import { eventsOf, MODULE_TRACE_EVENTS, ModuleTrace, type ModuleTraceEvent } from '../../src/evidence/module-trace.js';
import { clientPath, requireDevice } from './device-env.js';

const device = requireDevice();
const MAPPER = clientPath('hm_mapper');

/** What each event carries, without the who and when. */
function body(e: ModuleTraceEvent): Record<string, unknown> {
	const { ts: _ts, pid: _pid, cpu: _cpu, ...rest } = e;
	return rest;
}

/** Another process (build/fixtures/ARCH/hm_mapper) that maps `pages` pages of the device when told to and prints the address. */
function mapper(pages: number): { child: ChildProcessWithoutNullStreams; ready: Promise<void>; go(): Promise<bigint> } {
	const child = spawn(MAPPER, [device.path, String(pages)], { stdio: ['pipe', 'pipe', 'pipe'] });
	const exited = new Promise((resolve) => child.once('exit', resolve));
	const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
	let stderr = '';
	child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
	const next = async () => {
		const r = await lines.next();
		if (r.done) throw new Error(`hm_mapper exited: ${stderr}`);
		return r.value;
	};
	const ready = next().then((l) => expect(l).toBe('ready'));
	return {
		child,
		ready,
		async go() {
			child.stdin.end('go\n');
			const address = BigInt(await next());
			await exited;
			return address;
		},
	};
}

describe.runIf(device.ok)('the module trace reader', () => {
	test('map, page, map_end, zap, remap, fault and free events at the user addresses, with the pfns', async () => {
		const trace = await ModuleTrace.start();
		try {
			expect(trace.tracepoints.sort()).toEqual([...MODULE_TRACE_EVENTS].sort());
			using dev = openDevice(device.path);
			const ps = dev.pageSize;
			dev.setMode({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
			const mapped = await trace.step(() => dev.map(4 * ps));
			const m = mapped.value;
			const base = m.address;
			const at = (i: number) => base + BigInt(i * ps);
			const pages = eventsOf(mapped.events, 'page');
			expect(mapped.events.map(body)).toEqual([
				{ type: 'map', start: base, length: 4 * ps, mode: 'remap_pfn' },
				...[0, 1, 2, 3].map((i) => ({ type: 'page', address: at(i), index: i, pfn: pages[i]!.pfn })),
				{ type: 'mapEnd', start: base, pages: 4, error: 0 },
			]);
			expect(new Set(pages.map((p) => p.pfn)).size).toBe(4);
			const zapped = await trace.step(() => dev.zap({ mapping: m, offset: 2 * ps, length: 2 * ps }));
			expect(zapped.events.map(body)).toEqual([{ type: 'zap', address: at(2), pages: 2, noop: false }]);
			const remapped = await trace.step(() => dev.remap({ mapping: m, offset: 2 * ps, length: 2 * ps }));
			// REMAP empties the range first, then maps the same pfns again.
			expect(remapped.events.map(body)).toEqual([
				{ type: 'zap', address: at(2), pages: 2, noop: false },
				...[2, 3].map((i) => ({ type: 'remap', address: at(i), index: i, pfn: pages[i]!.pfn })),
			]);
			const unmapped = await trace.step(() => m.unmap());
			expect(unmapped.events.map(body)).toEqual([{ type: 'free', pages: 4 }]);

			dev.setMode({ mode: 'fault' });
			const f = dev.map(2 * ps);
			const filled = await trace.step(() => f.fill({ pattern: 'constant', value: 1 }));
			expect(eventsOf(filled.events, 'fault').map((e) => [e.address, e.index])).toEqual([0, 1].map((i) => [f.address + BigInt(i * ps), i]));
			f.unmap();
			dev.setMode({ mode: 'remap_pfn', failAt: 1 });
			expect(() => dev.map(3 * ps)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
			const rest = trace.stop();
			expect(rest.lost).toBe(0);
			// The failed mmap: page 0 mapped, map_end names page 1 and -ENOMEM, page 0 zapped, all 3 freed.
			const failed = rest.events.slice(rest.events.findLastIndex((e) => e.type === 'map'));
			expect(failed.map((e) => e.type)).toEqual(['map', 'page', 'mapEnd', 'zap', 'free']);
			expect(failed.map(body).slice(2)).toEqual([
				{ type: 'mapEnd', start: (failed[0] as { start: bigint }).start, pages: 1, error: -12 },
				{ type: 'zap', address: (failed[0] as { start: bigint }).start, pages: 1, noop: false },
				{ type: 'free', pages: 3 },
			]);
		} finally {
			trace[Symbol.dispose]();
		}
	});

	test("per process: another process's mappings do not appear, whether it ran before the trace started or was started by this process during it", async () => {
		const before = mapper(3);
		await before.ready;
		const mine = await ModuleTrace.start();
		const theirs = await ModuleTrace.start({ pid: before.child.pid! });
		try {
			// Started after the trace: the kernel follows it (event-fork); the reader must drop it.
			const during = mapper(5);
			await during.ready;
			using dev = openDevice(device.path);
			dev.setMode({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
			const m = dev.map(2 * dev.pageSize);
			const own = m.address;
			m.unmap();
			const other = await before.go();
			const child = await during.go();
			const ours = mine.stop();
			const seen = theirs.stop();
			// Only this process's threads; its mapping alone (the others map 3 and 5 pages; addresses may coincide across processes).
			expect(ours.events.filter((e) => !existsSync(`/proc/self/task/${e.pid}`))).toEqual([]);
			expect(eventsOf(ours.events, 'map').map((e) => [e.start, e.length])).toEqual([[own, 2 * dev.pageSize]]);
			expect(eventsOf(ours.events, 'page')).toHaveLength(2);
			expect(eventsOf(ours.events, 'free').map((e) => e.pages)).toEqual([2]);
			// Not vacuous: the other process's own trace has its mapping, and nothing of ours.
			expect(eventsOf(seen.events, 'map').map((e) => [e.start, e.length])).toEqual([[other, 3 * dev.pageSize]]);
			expect(eventsOf(seen.events, 'page').map((e) => e.address)).toEqual([0, 1, 2].map((i) => other + BigInt(i * dev.pageSize)));
			expect(seen.events.filter((e) => existsSync(`/proc/self/task/${e.pid}`))).toEqual([]);
			// The child started during the trace mapped 5 pages at `child`: in neither trace.
			for (const log of [ours, seen]) expect(eventsOf(log.events, 'map').filter((e) => e.length === 5 * dev.pageSize)).toEqual([]);
			expect(child).toBeGreaterThan(0n);
		} finally {
			mine[Symbol.dispose]();
			theirs[Symbol.dispose]();
			before.child.kill();
		}
	});
});
