// The evidence layer in a kernel with kprobe events (the VM runner's guests):
// the mapping APIs probed for real, on hybridmem_test and on a device that is
// not ours (/dev/zero), and nothing left behind in tracefs afterwards.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { openDevice } from '../../src/device/index.js';
import { analyzeLifecycle, pagesFromPagemap, pagesFromTrace } from '../../src/evidence/lifecycle.js';
import { readPagemap } from '../../src/evidence/pagemap.js';
import { PfnTrace, type PfnTraceLog } from '../../src/evidence/pfn-trace.js';
import { findTracefs } from '../../src/evidence/tracefs.js';
import { requireDevice } from './device-env.js';

const device = requireDevice();

async function traced(fn: (trace: PfnTrace) => void): Promise<PfnTraceLog> {
	const trace = await PfnTrace.start();
	try {
		fn(trace);
	} catch (err) {
		trace.stop(); // the probes never stay behind
		throw err;
	}
	return trace.stop();
}

describe.runIf(device.ok)('PFN trace with kprobes on the mapping APIs', () => {
	test('every mapping API this kernel has is probed, and stop() removes the probes and the instance', async () => {
		const log = await traced(() => undefined);
		expect(log.probed).toEqual(expect.arrayContaining(['remap_pfn_range', 'vmf_insert_pfn', 'vm_insert_page', 'vm_insert_pages']));
		// One of the zap's two names: zap_vma_ptes, or zap_special_vma_range from 7.1 on.
		expect(log.probed.filter((p) => p === 'zap_vma_ptes' || p === 'zap_special_vma_range')).toHaveLength(1);
		const root = findTracefs()!;
		expect(readFileSync(path.join(root, 'kprobe_events'), 'utf8')).not.toMatch(/hybridmem_/);
		expect(readdirSync(path.join(root, 'instances')).filter((n) => n.startsWith('hybridmem_'))).toEqual([]);
	});

	test('hybridmem_test remap_pfn: the kprobe gives each user page its PFN; frees come after the unmap only', async () => {
		using dev = openDevice(device.path);
		dev.setMode({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
		let address = 0n;
		const log = await traced((t) => {
			t.mark('map');
			const m = dev.map(8 * dev.pageSize);
			address = m.address;
			m.fillSync({ pattern: 'counter' });
			t.mark('unmap');
			m.unmap();
			t.mark('end');
		});
		const w = { address, length: 8 * dev.pageSize, tgid: process.pid, from: 'map', until: 'unmap', end: 'end' };
		const lc = analyzeLifecycle(log, w, pagesFromTrace(log, w));
		expect(lc.apis).toEqual({ remap_pfn_range: 8 });
		expect(lc.pages.map((p) => p.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
		expect(lc.distinctPfns).toBe(8);
		expect(lc.freedWhileMapped).toEqual([]);
		expect(lc.returned).toBe(8);
	});

	test('hybridmem_test insert_pages: the kprobe counts the batch, pagemap gives the PFNs, and they match what the module freed', async () => {
		using dev = openDevice(device.path);
		dev.setMode({ mode: 'insert_pages', zapAfterMap: false, failAt: null });
		let address = 0n;
		let entries: ReturnType<typeof readPagemap> = [];
		const log = await traced((t) => {
			t.mark('map');
			const m = dev.map(8 * dev.pageSize);
			address = m.address;
			t.mark('pagemap');
			entries = readPagemap(m.address, 8, { pageSize: dev.pageSize });
			t.mark('unmap');
			m.unmap();
			t.mark('end');
		});
		const w = { address, length: 8 * dev.pageSize, tgid: process.pid, from: 'map', until: 'unmap', end: 'end' };
		const lc = analyzeLifecycle(log, w, pagesFromPagemap(entries, w, log, 'pagemap'));
		expect(log.events.some((e) => e.type === 'map' && e.api === 'vm_insert_pages' && e.pages === 8 && e.address === address)).toBe(true);
		expect(lc.distinctPfns).toBe(8);
		expect(lc.freedWhileMapped).toEqual([]);
		expect(lc.notReturned).toEqual([]);
	});

	test('/dev/zero (not hybridmem): no mapping API is called, pagemap gives shmem PFNs, all freed after the unmap', async () => {
		using dev = openDevice('/dev/zero');
		let address = 0n;
		let entries: ReturnType<typeof readPagemap> = [];
		const log = await traced((t) => {
			t.mark('map');
			const m = dev.map(16 * dev.pageSize);
			m.fillSync({ pattern: 'counter' });
			address = m.address;
			t.mark('pagemap');
			entries = readPagemap(m.address, 16, { pageSize: dev.pageSize });
			t.mark('unmap');
			m.unmap();
			t.mark('end');
		});
		const w = { address, length: 16 * dev.pageSize, tgid: process.pid, from: 'map', until: 'unmap', end: 'end' };
		const lc = analyzeLifecycle(log, w, pagesFromPagemap(entries, w, log, 'pagemap'));
		expect(lc.apis).toEqual({});
		expect(lc.distinctPfns).toBe(16);
		expect(lc.freedWhileMapped).toEqual([]);
		expect(lc.returned).toBe(16);
	});
});
