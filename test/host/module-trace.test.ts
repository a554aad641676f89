// The module trace reader's parsers on bytes a real kernel wrote: one
// sub-buffer of per_cpu/cpu0/trace_pipe_raw and the events' format files,
// captured on 6.12 in the VM (a 4-page remap_pfn mmap, 300 ms, ZAP and REMAP
// of page 1, munmap, a 2-page fault-mode mmap filled and unmapped).  The
// live reader, per process, is tested in the VM (test/device/trace.test.ts).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeModuleRecord, describeModuleEvents, parseFormat, parseSubbuffer, type EventFormat, type ModuleTraceEvent } from '../../src/evidence/module-trace.js';

const DIR = path.resolve('test/fixtures/evidence/module-trace-6.12');
const meta = JSON.parse(readFileSync(path.join(DIR, 'meta.json'), 'utf8')) as { pid: number; pageSize: number; chunks: number[]; base: string; faultBase: string };
const formats = new Map<number, EventFormat>();
for (const f of readdirSync(DIR).filter((n) => n.endsWith('.format'))) {
	const format = parseFormat(readFileSync(path.join(DIR, f), 'utf8'));
	formats.set(format.id, format);
}

function decodeAll(): ModuleTraceEvent[] {
	const raw = readFileSync(path.join(DIR, 'cpu0.raw'));
	const out: ModuleTraceEvent[] = [];
	let at = 0;
	for (const size of meta.chunks) {
		const { records, lost } = parseSubbuffer(raw.subarray(at, at + size));
		expect(lost).toBe(0);
		for (const r of records) {
			const e = decodeModuleRecord(r, formats, 0);
			if (e) out.push(e);
		}
		at += size;
	}
	return out;
}

describe('captured on 6.12: trace_pipe_raw of the module events', () => {
	test('format files: the fields with their offsets and sizes', () => {
		const zap = [...formats.values()].find((f) => f.name === 'hybridmem_zap')!;
		expect(zap.fields.map((f) => [f.name, f.offset, f.size, f.signed])).toEqual([
			['common_type', 0, 2, false],
			['common_flags', 2, 1, false],
			['common_preempt_count', 3, 1, false],
			['common_pid', 4, 4, true],
			['addr', 8, 8, false],
			['pages', 16, 8, false],
			['noop', 24, 1, false],
		]);
		expect([...formats.values()].map((f) => f.name).sort()).toEqual(['hybridmem_fault', 'hybridmem_free', 'hybridmem_map', 'hybridmem_map_end', 'hybridmem_page', 'hybridmem_remap', 'hybridmem_zap']);
		expect(() => parseFormat('not a format')).toThrow(expect.objectContaining({ code: 'ERR_TRACE_FORMAT' }));
	});

	test('the records decode to the steps taken, with their addresses, pids and pfns', () => {
		const events = decodeAll();
		const base = BigInt(meta.base);
		const fbase = BigInt(meta.faultBase);
		const ps = meta.pageSize;
		const at = (b: bigint, i: number) => b + BigInt(i * ps);
		expect(events.every((e) => e.pid === meta.pid && e.cpu === 0)).toBe(true);
		const shape = events.map((e) => {
			const { ts: _ts, pid: _pid, cpu: _cpu, ...rest } = e;
			return 'pfn' in rest ? { ...rest, pfn: typeof rest.pfn } : rest;
		});
		expect(shape).toEqual([
			{ type: 'map', start: base, length: 4 * ps, mode: 'remap_pfn' },
			...[0, 1, 2, 3].map((i) => ({ type: 'page', address: at(base, i), index: i, pfn: 'number' })),
			{ type: 'mapEnd', start: base, pages: 4, error: 0 },
			{ type: 'zap', address: at(base, 1), pages: 1, noop: false },
			{ type: 'zap', address: at(base, 1), pages: 1, noop: false },
			{ type: 'remap', address: at(base, 1), index: 1, pfn: 'number' },
			{ type: 'free', pages: 4 },
			{ type: 'map', start: fbase, length: 2 * ps, mode: 'fault' },
			{ type: 'mapEnd', start: fbase, pages: 0, error: 0 },
			...[0, 1].map((i) => ({ type: 'fault', address: at(fbase, i), index: i, pfn: 'number' })),
			{ type: 'free', pages: 2 },
		]);
		// REMAP maps the page the mmap mapped.
		const pfnOf = (type: string, index: number) => events.find((e) => e.type === type && 'index' in e && e.index === index) as { pfn: number };
		expect(pfnOf('remap', 1).pfn).toBe(pfnOf('page', 1).pfn);
		expect(new Set(events.filter((e) => e.type === 'page').map((e) => (e as { pfn: number }).pfn)).size).toBe(4);
	});

	test('timestamps only grow, and the 300 ms pause (a time-extend record) shows between the mmap and the zap', () => {
		const events = decodeAll();
		expect(events.every((e, i) => i === 0 || e.ts >= events[i - 1]!.ts)).toBe(true);
		const mapEnd = events.find((e) => e.type === 'mapEnd')!;
		const zap = events.find((e) => e.type === 'zap')!;
		expect(zap.ts - mapEnd.ts).toBeGreaterThan(0.3);
		expect(zap.ts - mapEnd.ts).toBeLessThan(30);
	});

	test('a sub-buffer that says events were lost before it: the stored count, or -1 without one', () => {
		const raw = Buffer.from(readFileSync(path.join(DIR, 'cpu0.raw')).subarray(0, meta.chunks[0]));
		const size = raw.readUInt32LE(8) & ((1 << 27) - 1);
		const stored = Buffer.from(raw);
		stored.writeUInt32LE(size + 2 ** 31 + 2 ** 30, 8);
		stored.writeBigUInt64LE(17n, 16 + size);
		expect(parseSubbuffer(stored).lost).toBe(17);
		const unknown = Buffer.from(raw);
		unknown.writeUInt32LE(size + 2 ** 31, 8);
		expect(parseSubbuffer(unknown).lost).toBe(-1);
		expect(parseSubbuffer(unknown).records.length).toBe(parseSubbuffer(raw).records.length);
	});

	test('describeModuleEvents: runs of page events become one line', () => {
		const lines = describeModuleEvents(decodeAll());
		expect(lines[0]).toBe(`hybridmem_map start=${meta.base} len=${4 * meta.pageSize} mode=remap_pfn (pid ${meta.pid})`);
		expect(lines[1]).toMatch(new RegExp(`^hybridmem_page x4: addr ${meta.base}\\.\\.0x[0-9a-f]+ index 0\\.\\.3, pfn 0x[0-9a-f]+`));
		expect(lines).toContain('hybridmem_free pages=4');
	});
});
