// The module's tracepoints (events/hybridmem/), read from a private trace
// instance: one event per step of a mapping's life, each with the pid of the
// task that caused it and the user address and pfn it concerns.
import { describe, expect, test } from 'vitest';
import { openDevice } from '../../src/device/index.js';
import { TraceInstance } from '../../src/evidence/tracefs.js';
import { requireDevice } from './device-env.js';

const device = requireDevice();
const EVENTS = ['hybridmem_map', 'hybridmem_page', 'hybridmem_fault', 'hybridmem_remap', 'hybridmem_zap', 'hybridmem_free'];

interface TraceEvent {
	pid: number;
	event: string;
	fields: Record<string, string>;
}

function parseTrace(text: string): TraceEvent[] {
	const out: TraceEvent[] = [];
	for (const line of text.split('\n')) {
		// "comm-PID", then "(TGID)" when record-tgid is on, "[CPU]", flags, timestamp, "event: fields".
		const m = /^\s*.+?-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\].*?\s(hybridmem_\w+): (.*)$/.exec(line);
		if (!m) continue;
		out.push({ pid: Number(m[1]), event: m[2]!, fields: Object.fromEntries(m[3]!.split(' ').map((kv) => kv.split('=') as [string, string])) });
	}
	return out;
}

const hex = (n: bigint) => `0x${n.toString(16)}`;

describe.runIf(device.ok)('tracepoints', () => {
	test('map, page, zap, remap, fault and free events, per pid, at the user addresses', async () => {
		const trace = await TraceInstance.create(`hm-trace-${process.pid}`);
		try {
			for (const e of EVENTS) {
				expect(trace.hasEvent('hybridmem', e), e).toBe(true);
				trace.enable('hybridmem', e);
			}
			trace.on();
			using dev = openDevice(device.path);
			const ps = dev.pageSize;
			dev.setMode({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
			const m = dev.map(4 * ps);
			const base = m.address;
			dev.zap({ mapping: m, offset: 2 * ps, length: 2 * ps });
			dev.remap({ mapping: m, offset: 2 * ps, length: 2 * ps });
			m.unmap();
			dev.setMode({ mode: 'fault' });
			const f = dev.map(2 * ps);
			f.fillSync({ pattern: 'constant', value: 1 });
			const fbase = f.address;
			f.unmap();
			trace.off();
			const events = parseTrace(trace.read()).filter((e) => e.pid === process.pid);
			const of = (name: string) => events.filter((e) => e.event === name).map((e) => e.fields);
			expect(of('hybridmem_map')).toEqual([
				{ start: hex(base), len: String(4 * ps), mode: '0' },
				{ start: hex(fbase), len: String(2 * ps), mode: '4' },
			]);
			const pages = of('hybridmem_page');
			expect(pages.map((p) => [p.addr, p.index])).toEqual([0, 1, 2, 3].map((i) => [hex(base + BigInt(i * ps)), String(i)]));
			expect(of('hybridmem_zap')).toEqual([{ addr: hex(base + BigInt(2 * ps)), pages: '2', noop: '0' }, { addr: hex(base + BigInt(2 * ps)), pages: '2', noop: '0' }]);
			// REMAP maps the same pfns again.
			expect(of('hybridmem_remap')).toEqual(pages.slice(2));
			expect(of('hybridmem_fault').map((p) => [p.addr, p.index])).toEqual([0, 1].map((i) => [hex(fbase + BigInt(i * ps)), String(i)]));
			expect(of('hybridmem_free')).toEqual([{ pages: '4' }, { pages: '2' }]);
		} finally {
			trace.close();
		}
	});
});
