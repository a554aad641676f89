// The device API against the real module (inside the VM runner, or a machine
// that loaded hybridmem_test.ko): every map_mode but mixed maps 64 pages and
// passes fill/verify; the kernel zaps pages under the live mapping and probe
// sees them go; REMAP brings fresh (zeroed) pages back; counters add up.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { MAP_MODES, openDevice, PATTERNS, type KexDevice, type MapMode, type Mapping } from '../../src/device/index.js';

import { zapSemantics } from '../../src/scenarios/kernel-features.js';
import { requireDevice } from './device-env.js';

const { ok: present, path: devicePath } = requireDevice();
const PAGES = 64;

const PFN_MODES: readonly MapMode[] = ['remap_pfn', 'remap_contig', 'fault'];
const INSERT_MODES: readonly MapMode[] = ['insert_page', 'insert_pages'];

function pageRange(from: number, count: number): number[] {
	return Array.from({ length: count }, (_, i) => from + i);
}

function statesOf(mapping: Mapping, touch: boolean): string[] {
	return mapping.probe({ touch }).pages;
}

describe.skipIf(!present)('hybridmem_test.ko through the device API', () => {
	let device: KexDevice;
	let ps: number;

	beforeAll(() => {
		device = openDevice(devicePath);
		ps = device.pageSize;
	});
	afterAll(() => device?.close());

	test('info() and stats() are sane', () => {
		const info = device.info();
		expect(info.version).toBe(2);
		expect(info.pageSize).toBe(ps);
		expect(MAP_MODES).toContain(info.mapMode);
		expect(info.failAt).toBeGreaterThanOrEqual(-1);
		expect(info.maxPages).toBeGreaterThanOrEqual(PAGES);
		// Caps are bytes, whatever the page size: the defaults are 256 MiB per mapping and at most 1 GiB in all.
		expect(info.maxMapBytes).toBe(256 * 1024 * 1024);
		expect(info.maxPages).toBe(info.maxMapBytes / ps);
		expect(info.maxTotalBytes).toBeLessThanOrEqual(1024 * 1024 * 1024);
		expect(info.logBudget).toBe(2048);
		expect(info.maxTotalPages).toBeGreaterThanOrEqual(info.maxPages);
		expect(typeof info.allowBug).toBe('boolean');
		const stats = device.stats();
		for (const value of Object.values(stats)) {
			expect(typeof value).toBe('bigint');
			expect(value).toBeGreaterThanOrEqual(0n);
		}
		expect(stats.livePages).toBeLessThanOrEqual(BigInt(info.maxTotalPages));
		expect(stats.frees).toBeLessThanOrEqual(stats.livePages + stats.frees);
	});

	test('setMode changes only the fields given and is per fd', () => {
		const start = device.setMode({ mode: 'insert_page', zapAfterMap: false, failAt: null });
		expect(start).toMatchObject({ mapMode: 'insert_page', zapAfterMap: false, failAt: -1 });
		expect(device.setMode({ failAt: 3 })).toMatchObject({ mapMode: 'insert_page', zapAfterMap: false, failAt: 3 });
		expect(device.setMode({ mode: 'fault' })).toMatchObject({ mapMode: 'fault', failAt: 3 });
		using other = openDevice(devicePath);
		expect(other.info().failAt).not.toBe(3);
		device.setMode({ failAt: null });
	});

	// Which zap this kernel has (asked of the kernel: a kprobe on zap_special_vma_range).
	let zapsMixedmap = false;
	beforeAll(async () => {
		zapsMixedmap = (await zapSemantics()).zapsMixedmap;
	});

	// mixed BUGs; free_after_map and leak_on_error are the notes' bugs (own VMs, test/vm).
	for (const mode of MAP_MODES.filter((m) => !['mixed', 'free_after_map', 'leak_on_error'].includes(m))) {
		test(`${mode}: ${PAGES} pages map, pass fill/verify, zap, probe and remap, and are freed on unmap`, () => {
			device.setMode({ mode, zapAfterMap: false, failAt: null });
			const before = device.stats();
			const mapping = device.map(PAGES * ps);
			const during = device.stats();
			expect(during.livePages - before.livePages).toBe(BigInt(PAGES));
			expect(during.liveMappings - before.liveMappings).toBe(1n);
			expect(during.maps - before.maps).toBe(1n);

			// The vma flags the notes are about: remap_pfn_range/vmf_insert_pfn give VM_PFNMAP, vm_insert_page(s) VM_MIXEDMAP.
			const flags = mapping.vmFlags();
			if (PFN_MODES.includes(mode)) expect(flags).toContain('pf');
			else expect(flags).toContain('mm');

			for (const pattern of PATTERNS) {
				const options = { pattern, seed: 0xfeedn, value: 0x3c };
				expect(mapping.fillSync(options).faultingPages).toEqual([]);
				expect(mapping.verifySync(options)).toMatchObject({ ok: true, bytes: PAGES * ps });
			}
			if (mode === 'fault') expect(device.stats().faults - before.faults).toBe(BigInt(PAGES));
			expect(statesOf(mapping, true).every((s) => s === 'present')).toBe(true);
			// mincore cannot see VM_PFNMAP vmas (the kernel's page walk skips them): every page reads 'absent'.
			if (PFN_MODES.includes(mode)) expect(statesOf(mapping, false).every((s) => s === 'absent')).toBe(true);
			else expect(statesOf(mapping, false).every((s) => s === 'present')).toBe(true);

			// The kernel takes pages 8..23 away while we hold the mapping.
			mapping.fillSync({ pattern: 'address-tag', seed: 1 });
			const zapped = pageRange(8, 16);
			const range = { mapping, offset: 8 * ps, length: 16 * ps };
			const zap = device.zap(range);
			expect(zap.pages).toBe(16);

			if (INSERT_MODES.includes(mode)) {
				if (!zapsMixedmap) {
					// zap_vma_ptes ignores a vma without VM_PFNMAP: nothing happened, and the module says so.
					expect(zap.noop).toBe(true);
					expect(statesOf(mapping, false).every((s) => s === 'present')).toBe(true);
				} else {
					// 7.1's zap_special_vma_range empties VM_MIXEDMAP too; the fault handler maps the same pages back on touch.
					expect(zap.noop).toBe(false);
					const untouched = statesOf(mapping, false);
					for (const page of zapped) expect(untouched[page]).toBe('absent');
				}
				expect(mapping.verifySync({ pattern: 'address-tag', seed: 1 }).ok).toBe(true);
				// REMAP agrees with ZAP: nothing was unmapped (NOOP), the pages get fresh contents in place.
				expect(device.remap(range)).toMatchObject({ pages: 16, noop: true });
				expect(statesOf(mapping, false).every((s) => s === 'present')).toBe(true);
				expect(mapping.verifySync({ pattern: 'constant', value: 0, offset: 8 * ps, length: 16 * ps }).ok).toBe(true);
				expect(mapping.verifySync({ pattern: 'address-tag', seed: 1, offset: 0, length: 8 * ps }).ok).toBe(true);
				expect(mapping.verifySync({ pattern: 'address-tag', seed: 1, offset: 24 * ps, length: (PAGES - 24) * ps }).ok).toBe(true);
				expect(device.stats().remaps - before.remaps).toBe(16n);
			} else {
				expect(zap.noop).toBe(false);
				const untouched = statesOf(mapping, false);
				for (const page of zapped) expect(untouched[page]).toBe('absent');
				if (mode === 'fault') {
					// The fault handler maps the same page again on touch: present, with its old (stale) contents.
					expect(statesOf(mapping, true).every((s) => s === 'present')).toBe(true);
					expect(mapping.verifySync({ pattern: 'address-tag', seed: 1 }).ok).toBe(true);
				} else {
					// No pte and no fault handler for this mode: a touch is SIGBUS, caught and reported.
					const touched = statesOf(mapping, true);
					expect(touched.flatMap((s, i) => (s === 'faulting' ? [i] : []))).toEqual(zapped);
					const verified = mapping.verifySync({ pattern: 'address-tag', seed: 1 });
					expect(verified.faultingPages).toEqual(zapped);
					expect(verified.mismatchCount).toBe(0);
					expect(verified.bytes).toBe((PAGES - 16) * ps);
				}
				const remap = device.remap(range);
				expect(remap).toMatchObject({ pages: 16, noop: false });
				expect(statesOf(mapping, true).every((s) => s === 'present')).toBe(true);
				// Fresh contents: the remapped pages read as zero, the rest keep the pattern.
				expect(mapping.verifySync({ pattern: 'constant', value: 0, offset: 8 * ps, length: 16 * ps }).ok).toBe(true);
				expect(mapping.verifySync({ pattern: 'address-tag', seed: 1, offset: 0, length: 8 * ps }).ok).toBe(true);
				expect(mapping.verifySync({ pattern: 'address-tag', seed: 1, offset: 24 * ps, length: (PAGES - 24) * ps }).ok).toBe(true);
				expect(device.stats().remaps - before.remaps).toBe(16n);
			}

			mapping.unmap();
			const after = device.stats();
			expect(after.livePages).toBe(before.livePages);
			expect(after.liveMappings).toBe(before.liveMappings);
			expect(after.frees - before.frees).toBe(BigInt(PAGES));
		});
	}

	test('zapAfterMap: a fresh remap_pfn mapping faults everywhere until REMAP', () => {
		device.setMode({ mode: 'remap_pfn', zapAfterMap: true, failAt: null });
		try {
			using mapping = device.map(8 * ps);
			expect(mapping.probe({ touch: true }).faulting).toBe(8);
			expect(mapping.verifySync({ pattern: 'constant', value: 0 }).faultingPages).toEqual(pageRange(0, 8));
			device.remap(mapping);
			expect(mapping.verifySync({ pattern: 'constant', value: 0 }).ok).toBe(true);
		} finally {
			device.setMode({ zapAfterMap: false });
		}
	});

	test('failAt: mmap fails with ENOMEM, counted as a map failure, with no page left behind', () => {
		device.setMode({ mode: 'remap_pfn', zapAfterMap: false, failAt: 5 });
		try {
			const before = device.stats();
			expect(() => device.map(16 * ps)).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'mmap', path: devicePath }));
			const after = device.stats();
			expect(after.mapFailures - before.mapFailures).toBe(1n);
			expect(after.livePages).toBe(before.livePages);
		} finally {
			device.setMode({ failAt: null });
		}
	});

	test('the notes\' as-written modes are refused with EPERM unless the module was loaded with allow_as_written=1', () => {
		expect(readFileSync('/sys/module/hybridmem_test/parameters/allow_as_written', 'utf8').trim()).toBe('N');
		for (const mode of ['free_after_map', 'leak_on_error'] as const) {
			device.setMode({ mode, zapAfterMap: false, failAt: null });
			expect(() => device.map(4 * ps)).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'mmap' }));
		}
		device.setMode({ mode: 'remap_pfn' });
	});

	test('refusals: MAP_PRIVATE and a non-zero offset are EINVAL; mixed without allow_bug is EPERM', () => {
		device.setMode({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
		expect(() => device.map(4 * ps, { shared: false })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'mmap' }));
		expect(() => device.map(4 * ps, { offset: ps })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'mmap' }));
		if (!device.info().allowBug) {
			device.setMode({ mode: 'mixed' });
			expect(() => device.map(4 * ps)).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'mmap' }));
			device.setMode({ mode: 'remap_pfn' });
		}
	});

	test('a large mapping verifies on the worker thread, and unmap waits for no one (EBUSY)', async () => {
		const pages = Math.min(device.info().maxPages, 4096);
		device.setMode({ mode: 'insert_pages', zapAfterMap: false, failAt: null });
		const mapping = device.map(pages * ps);
		await mapping.fill({ pattern: 'random', seed: 3 });
		const running = mapping.verify({ pattern: 'random', seed: 3 });
		if (pages * ps >= 4 * 1024 * 1024) expect(() => mapping.unmap()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
		expect((await running).ok).toBe(true);
		mapping.unmap();
	});
});
