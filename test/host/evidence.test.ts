// The evidence layer: parsers on kernel output captured in the VM (the
// notes' test2 as written on 6.1 and 6.12: the rendered PFN trace and the
// kernel log with its page-poison report), and the live parts on this host's
// own kernel against mappings that are not hybridmem's (/dev/zero, a memfd).
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createMemFile, openDevice } from '../../src/device/index.js';
import { freePages, judgeLeak, residentPages, type LeakMeasure } from '../../src/evidence/free-pages.js';
import { analyzeLifecycle, compactRanges, describeLifecycle, pagesFromPagemap, pagesFromTrace } from '../../src/evidence/lifecycle.js';
import { decodeAddressTag, findPoisonReports, pagePoisoningEnabled } from '../../src/evidence/page-poison.js';
import { pageStates, readPagemap, type PagemapEntry } from '../../src/evidence/pagemap.js';
import { markerTime, parseTrace, PfnTrace, type PfnTraceLog } from '../../src/evidence/pfn-trace.js';
import { findTracefs } from '../../src/evidence/tracefs.js';
import { isCi } from '../env.js';

const FIXTURES = path.resolve('test/fixtures/evidence');
const KERNELS = ['6.1', '6.12'] as const;
const SEED = 0x5eedn;

describe.each(KERNELS)('captured on %s: the notes\' test2 as written (4 pages, free_after_map)', (k) => {
	const text = readFileSync(path.join(FIXTURES, `trace-${k}-free-after-map.txt`), 'utf8');
	const log = { events: parseTrace(text), probed: ['remap_pfn_range'], lost: 0, pageSize: 4096 };

	test('the trace parses into markers, remap_pfn_range events with user address and PFN, and frees', () => {
		const kinds = log.events.map((e) => (e.type === 'map' ? `map:${e.api}` : e.type));
		expect(kinds).toEqual(['marker', 'map:remap_pfn_range', 'free', 'map:remap_pfn_range', 'free', 'map:remap_pfn_range', 'free', 'map:remap_pfn_range', 'free', 'marker', 'marker']);
		const maps = log.events.filter((e) => e.type === 'map');
		expect(maps.map((e) => e.type === 'map' && e.pages)).toEqual([1, 1, 1, 1]);
		const first = maps[0]!.type === 'map' ? maps[0]!.address : 0n;
		expect(maps.map((e) => (e.type === 'map' ? e.address - first : -1n))).toEqual([0n, 0x1000n, 0x2000n, 0x3000n]);
		expect(log.events.every((e) => e.comm === 'node' && e.tgid === e.pid)).toBe(true);
		expect(markerTime(log, 'unmap')).toBeGreaterThan(markerTime(log, 'map')!);
	});

	test('the lifecycle shows every user page freed while mapped, all on one PFN, none given back after the unmap', () => {
		const first = log.events.find((e) => e.type === 'map')!;
		const window = { address: first.type === 'map' ? first.address : 0n, length: 4 * 4096, from: 'map', until: 'unmap', end: 'end' };
		const lc = analyzeLifecycle(log, window, pagesFromTrace(log, window));
		expect(lc.pages.map((p) => p.index)).toEqual([0, 1, 2, 3]);
		expect(lc.distinctPfns).toBe(1);
		expect(lc.aliases).toEqual([{ pfn: lc.pages[0]!.pfn, indices: [0, 1, 2, 3] }]);
		expect(lc.pagesFreedWhileMapped).toEqual([0, 1, 2, 3]);
		// The k-th free hits the PFN while pages 0..k map it.
		expect(lc.freedWhileMapped.map((f) => f.pages)).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]);
		expect(lc.freedWhileMapped.every((f) => f.comm === 'node' && f.order === 0 && f.afterMapUs >= 0)).toBe(true);
		expect(lc.returned).toBe(0);
		expect(describeLifecycle(lc)).toContain('4 of 4 user pages had their PFN freed while mapped (4 frees)');
	});

	test('the page-poison report gives the changed bytes, the PFN from dump_page and the allocating stack', () => {
		const lines = readFileSync(path.join(FIXTURES, `kmsg-${k}-page-poison.log`), 'utf8').split('\n');
		const reports = findPoisonReports(lines);
		expect(reports).toHaveLength(1);
		const [r] = reports;
		expect(r!.kind).toBe('memory corruption');
		expect(r!.bytes.length).toBe(4096);
		const free = log.events.find((e) => e.type === 'free');
		expect(r!.pfn).toBeDefined();
		expect(r!.frames.some((f) => f.startsWith('__kernel_unpoison_pages'))).toBe(true); // 6.1 prints it with .cold
		expect(r!.comm).toBe('node');
		// The last page written (user page 3) is what the freed page held.
		const tag = decodeAddressTag(r!.bytes, SEED, { maxOffset: 4n * 4096n });
		expect(tag).toEqual({ firstOffset: 0x3000n, lastOffset: 0x3fffn, words: 512 });
		expect(free?.type === 'free' && free.pfn).toBeTypeOf('number');
	});
});

describe('the leak rule', () => {
	// Samples of pages missing every 4 cycles, as measureFreePages reports them.
	const measure = (samples: number[]): LeakMeasure => {
		const cycles = samples.length * 4;
		const last = samples.length - 1;
		const mid = Math.floor(last / 2);
		return { cycles, before: 0, after: 0, residentBefore: 0, residentAfter: 0, samples, cyclesPerSample: 4, perCycle: samples[last]! / cycles, latePerCycle: (samples[last]! - samples[mid]!) / ((last - mid) * 4) };
	};
	const idle = measure([1, 2, 2, 3, 3, 4, 4, 5]);

	test('a steady loss per cycle is a leak; the threshold is 4x the idle baseline, at least half a page', () => {
		const v = judgeLeak(measure([32, 64, 96, 128, 160, 192, 224, 256]), idle);
		expect(v).toMatchObject({ perCycle: 8, latePerCycle: 8, leaks: true });
		expect(v.threshold).toBeCloseTo(0.625);
		expect(judgeLeak(measure([1, 2, 3, 4, 5, 6, 7, 8]), measure([0, 0, 0, 0, 0, 0, 0, 0]))).toMatchObject({ threshold: 0.5, leaks: false });
	});

	test('a one-off step (a cache filling once) is not a loss per cycle; a leak that starts late is', () => {
		expect(judgeLeak(measure([60, 64, 64, 65, 64, 65, 66, 66]), idle)).toMatchObject({ leaks: false });
		expect(judgeLeak(measure([0, 0, 0, 0, 16, 32, 48, 64]), idle)).toMatchObject({ leaks: true });
	});
});

describe('parsers on edge cases', () => {
	test('vmf_insert_pfn calling vmf_insert_pfn_prot is one insert; pfn_t flags are masked; vm_insert_pages counts pages', () => {
		const text = [
			'            node-7     (      7) [000]     1.000001: hm_vmf_insert_pfn: (vmf_insert_pfn+0x0/0x20) addr=0x7f0000001000 pfn=0x1234',
			'            node-7     (      7) [000]     1.000002: hm_vmf_insert_pfn_prot: (vmf_insert_pfn_prot+0x0/0x100) addr=0x7f0000001000 pfn=0x1234',
			'   kworker/0:1-12      (     12) [000]     1.000003: hm_vmf_insert_mixed: (vmf_insert_mixed+0x0/0x10) addr=0x7f0000002000 pfn=0x8000000000001235',
			'            node-7     (      7) [000]     1.000004: hm_vm_insert_pages: (vm_insert_pages+0x0/0x10) addr=0x7f0000003000 num=8',
			'            node-7     (      7) [000]     1.000005: hm_zap_vma_ptes: (zap_vma_ptes+0x0/0x10) addr=0x7f0000003000 size=0x8000',
			' <idle>-0     (-------) [000]     1.000006: mm_page_free: page=0000000012345678 pfn=0x40 order=3',
		].join('\n');
		const ev = parseTrace(text);
		expect(ev.map((e) => e.type)).toEqual(['map', 'map', 'map', 'zap', 'free']);
		expect(ev[1]).toMatchObject({ api: 'vmf_insert_mixed', pfn: 0x1235, comm: 'kworker/0:1', pid: 12 });
		expect(ev[2]).toMatchObject({ api: 'vm_insert_pages', pages: 8 });
		expect(ev[3]).toMatchObject({ type: 'zap', pages: 8 });
		expect(ev[4]).toMatchObject({ type: 'free', pfn: 0x40, order: 3, comm: '<idle>', pid: 0 });
		expect(ev[4]!.tgid).toBeUndefined();
	});

	test("7.1's zap_special_vma_range (zap_vma_ptes renamed) is a zap like zap_vma_ptes", () => {
		const ev = parseTrace('            node-7     (      7) [000]     1.000005: hm_zap_special_vma_range: (zap_special_vma_range+0x0/0x40) addr=0x7f0000003000 size=0x3000');
		expect(ev).toEqual([{ type: 'zap', address: 0x7f0000003000n, pages: 3, comm: 'node', pid: 7, tgid: 7, ts: 1.000005 }]);
	});

	test('a free of a higher-order block covers every PFN in it', () => {
		const log = {
			events: parseTrace(
				[
					'  node-7 (7) [000] 1.0: tracing_mark_write: hybridmem: map',
					'  node-7 (7) [000] 1.1: hm_remap_pfn_range: (remap_pfn_range+0x0/0xa0) addr=0x10000 pfn=0x104 size=0x2000',
					'  node-7 (7) [000] 1.2: mm_page_free: page=0 pfn=0x100 order=3',
					'  node-7 (7) [000] 1.3: tracing_mark_write: hybridmem: unmap',
				].join('\n'),
			),
			probed: [],
			lost: 0,
			pageSize: 4096,
		};
		const w = { address: 0x10000n, length: 0x2000, from: 'map', until: 'unmap' };
		const lc = analyzeLifecycle(log, w, pagesFromTrace(log, w));
		expect(lc.pages.map((p) => p.pfn)).toEqual([0x104, 0x105]);
		expect(lc.freedWhileMapped.map((f) => f.pfn)).toEqual([0x104, 0x105]);
		expect(lc.notReturned).toEqual([0x104, 0x105]);
	});

	test('address-tag words are found at any byte alignment of the dump; other bytes are not', () => {
		const words = new BigUint64Array(64).map((_, i) => BigInt(0x20000 + i * 8) + SEED);
		const bytes = new Uint8Array(words.buffer).subarray(3); // the dump starts at the first changed byte
		expect(decodeAddressTag(bytes, SEED)).toEqual({ firstOffset: 0x20008n, lastOffset: 0x201ffn, words: 63 });
		expect(decodeAddressTag(new Uint8Array(512).fill(0x41), SEED)).toBeUndefined();
		expect(decodeAddressTag(bytes, SEED, { maxOffset: 0x1000n })).toBeUndefined();
	});

	test('page_poison=1 on the command line is what turns the check on', () => {
		expect(pagePoisoningEnabled('console=ttyS0 page_poison=1 quiet')).toBe(true);
		expect(pagePoisoningEnabled('page_poison=on')).toBe(true);
		expect(pagePoisoningEnabled('page_poison=0')).toBe(false);
		expect(pagePoisoningEnabled('init_on_free=1')).toBe(false);
	});

	test('freePages adds the zones\' free pages and every per-CPU list', () => {
		const zoneinfo = ['Node 0, zone      DMA', '  pages free     3840', '  pagesets', '    cpu: 0', '              count: 12', '              high:  0', 'Node 0, zone   Normal', '  pages free     1000', '    cpu: 0', '              count:   5', '    cpu: 1', '              count: 7'].join('\n');
		expect(freePages(zoneinfo)).toBe(3840 + 12 + 1000 + 5 + 7);
		expect(compactRanges([5, 1, 2, 3, 9, 10])).toBe('1-3, 5, 9-10');
	});

	test('freePages on this machine matches its /proc/zoneinfo read by a regex', () => {
		const text = readFileSync('/proc/zoneinfo', 'utf8');
		const byRegex = [...text.matchAll(/^\s+pages free\s+(\d+)$/gm), ...text.matchAll(/^\s+count:\s+(\d+)$/gm)].reduce((t, m) => t + Number(m[1]), 0);
		expect(freePages(text)).toBe(byRegex);
		expect(freePages()).toBeGreaterThan(0);
		expect(residentPages()).toBeGreaterThan(0);
	});
});

// Root and tracefs with the kmem tracepoint: what CI has.  This host kernel
// has no kprobe events, so the PFNs come from pagemap (normal ptes).
const root = process.getuid?.() === 0;
const tracefs = root && (findTracefs() !== undefined || existsSync('/sys/kernel/tracing'));

describe.runIf(tracefs || isCi())('live on this host: mappings that are not hybridmem\'s', () => {
	test('/dev/zero MAP_SHARED: one PFN per user page from pagemap, none freed while mapped, all freed after the unmap', async () => {
		const trace = await PfnTrace.start({ kprobes: false });
		using dev = openDevice('/dev/zero');
		const pages = 32;
		let address = 0n;
		let entries: PagemapEntry[] = [];
		let log: PfnTraceLog;
		try {
			trace.mark('map');
			const m = dev.map(pages * dev.pageSize);
			m.fillSync({ pattern: 'address-tag', seed: SEED });
			address = m.address;
			trace.mark('pagemap');
			entries = readPagemap(m.address, pages, { pageSize: dev.pageSize });
			const states = pageStates(entries.map((e) => e.pfn!));
			expect(states.every((s) => !s.free && s.count >= 1)).toBe(true);
			trace.mark('unmap');
			m.unmap();
			trace.mark('end');
		} finally {
			log = trace.stop();
		}
		expect(log.probed).toEqual([]);
		expect(entries.every((e) => e.present && e.fileOrShared)).toBe(true);
		const window = { address, length: pages * dev.pageSize, from: 'map', until: 'unmap', end: 'end' };
		const lc = analyzeLifecycle(log, window, pagesFromPagemap(entries, window, log, 'pagemap'));
		expect(lc.pages).toHaveLength(pages);
		expect(lc.distinctPfns).toBe(pages);
		expect(lc.freedWhileMapped).toEqual([]);
		expect(lc.notReturned).toEqual([]);
		expect(lc.returned).toBe(pages);
	});

	test('a memfd truncated to zero while its mapping is gone frees its pages; the trace attributes the frees', async () => {
		const file = createMemFile(16 * 4096, 'hm-evidence');
		const trace = await PfnTrace.start({ kprobes: false });
		let entries: PagemapEntry[] = [];
		let address = 0n;
		let log: PfnTraceLog;
		try {
			trace.mark('map');
			const m = file.map(16 * 4096);
			m.fillSync({ pattern: 'counter' });
			address = m.address;
			trace.mark('pagemap');
			entries = readPagemap(m.address, 16);
			trace.mark('unmap');
			m.unmap();
			file.truncate(0);
			trace.mark('end');
		} finally {
			log = trace.stop();
			file.close();
		}
		const window = { address, length: 16 * 4096, from: 'map', until: 'unmap', end: 'end' };
		const lc = analyzeLifecycle(log, window, pagesFromPagemap(entries, window, log, 'pagemap'));
		expect(lc.distinctPfns).toBe(16);
		expect(lc.freedWhileMapped).toEqual([]);
		expect(lc.returned).toBe(16);
	});
});

// Keeps the tracefs write helper honest about errors: a bad kprobe spec is refused by the kernel, not swallowed.
describe.runIf(tracefs)('tracefs errors', () => {
	test('writing to a control file that refuses the value names the file and the errno', async () => {
		const { writeControl, tracefsRoot } = await import('../../src/evidence/tracefs.js');
		const dir = await tracefsRoot();
		expect(() => writeControl(path.join(dir, 'trace_clock'), 'no-such-clock')).toThrow(/trace_clock failed: EINVAL/);
		const fd = openSync(path.join(dir, 'trace_marker'), 'w');
		writeSync(fd, 'hybridmem: test marker');
		closeSync(fd);
	});
});
