// Scenarios around zap_vma_ptes: the notes' test1 (map, zap at once, never
// touch), the hdcdrv pattern (the kernel takes pages away from a live
// mapping and gives them back), and the trap of zapping a vm_insert_page
// mapping, which kernels up to 7.0 silently ignore.
import type { ScenarioContext } from './context.js';
import { Evidence } from './evidence.js';
import { expectMapLogged, expectNoLeak, hex, marksFromProbe, ofType, pageAddresses, pageMap } from './mapping-checks.js';
import { zapSemantics } from './kernel-features.js';
import type { Scenario } from './types.js';

const TEST1_PAGES = 4; // the notes mapped 4 pages

export const test1: Scenario = {
	name: 'test1',
	title: 'remap_pfn_range then zap_vma_ptes, user does not touch (notes: test1)',
	expectation: `mmap of ${TEST1_PAGES} pages logs one "inserted page" and one "zap_vma_ptes addr" line per page, with the same user addresses; mmap still succeeds; the pages are gone afterwards (a touch raises SIGBUS, caught); munmap frees every page`,
	async run(ctx: ScenarioContext) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: true, failAt: null });
		const info = dev.info();
		const before = dev.stats();
		const mapped = await ctx.kernelLog(() => dev.map(TEST1_PAGES * dev.pageSize));
		const m = mapped.value;
		expectMapLogged(ev, mapped.events, m, TEST1_PAGES, { eager: true, logPages: info.logPages });
		const zaps = ofType(mapped.events, 'zap').map((z) => z.address);
		ev.eq('one zap_vma_ptes line per page, at the inserted addresses', zaps, ofType(mapped.events, 'pageInserted').map((e) => e.address));
		ev.eq('the zapped addresses are the user pages', zaps, pageAddresses(m, TEST1_PAGES));
		const touched = m.probe({ touch: true });
		ev.eq('a touch of each page raises SIGBUS (caught)', touched.faulting, TEST1_PAGES);
		const address = m.address;
		const unmapped = await ctx.kernelLog(() => m.unmap());
		ev.eq('munmap frees the pages', ofType(unmapped.events, 'freed')[0]?.pages, TEST1_PAGES);
		const after = dev.stats();
		ev.eq('zaps counted', after.zaps - before.zaps, BigInt(TEST1_PAGES));
		expectNoLeak(ev, before, after);
		return {
			checks: ev.checks,
			summary: `${TEST1_PAGES} pages at ${hex(address)}: ${TEST1_PAGES} inserted, ${zaps.length} zapped, ${touched.faulting} SIGBUS on touch`,
			pageMap: pageMap(marksFromProbe(touched.pages, 'Z')),
		};
	},
};

const ZAP_PAGES = 16;

export const zapRemap: Scenario = {
	name: 'zap-remap',
	title: 'ZAP then REMAP through ioctls on a live mapping (the hdcdrv pattern)',
	expectation: `the kernel zaps all ${ZAP_PAGES} pages of a mapping the user still holds (zap lines at the user addresses, pages absent, touch → SIGBUS), then maps them again (remap lines, pages present with fresh zeroed contents); nothing leaks`,
	async run(ctx) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
		const before = dev.stats();
		const m = dev.map(ZAP_PAGES * dev.pageSize);
		await m.fill({ pattern: 'random', seed: 7n });
		const zapped = await ctx.kernelLog(() => dev.zap(m));
		ev.eq('ZAP acted on every page', zapped.value.pages, ZAP_PAGES);
		ev.eq('ZAP was effective (VM_PFNMAP vma)', zapped.value.noop, false);
		ev.eq('zap lines at the user addresses', ofType(zapped.events, 'zap').map((z) => z.address), pageAddresses(m, ZAP_PAGES));
		const touched = m.probe({ touch: true });
		ev.eq('touching a zapped page raises SIGBUS (caught)', touched.faulting, ZAP_PAGES);
		const zapMarks = marksFromProbe(touched.pages, 'Z');
		const remapped = await ctx.kernelLog(() => dev.remap(m));
		ev.eq('REMAP acted on every page', remapped.value.pages, ZAP_PAGES);
		ev.eq('remap lines at the user addresses', ofType(remapped.events, 'remap').map((r) => r.address), pageAddresses(m, ZAP_PAGES));
		ev.eq('every page present after REMAP', m.probe({ touch: true }).present, ZAP_PAGES);
		const fresh = await m.verify({ pattern: 'constant', value: 0 });
		ev.ok('remapped pages hold fresh (zeroed) contents', fresh.ok, `${fresh.mismatchCount} non-zero bytes`);
		await m.fill({ pattern: 'address-tag', seed: 3n });
		ev.ok('write/read after REMAP passes', (await m.verify({ pattern: 'address-tag', seed: 3n })).ok);
		const address = m.address;
		m.unmap();
		const after = dev.stats();
		ev.eq('remaps counted', after.remaps - before.remaps, BigInt(ZAP_PAGES));
		expectNoLeak(ev, before, after);
		return {
			checks: ev.checks,
			summary: `${ZAP_PAGES} pages at ${hex(address)}: zapped ${zapped.value.pages} (SIGBUS on ${touched.faulting}), remapped ${remapped.value.pages}, zeroed and writable`,
			pageMap: pageMap(zapMarks),
		};
	},
};

export const zapNoop: Scenario = {
	name: 'zap-noop',
	title: 'zap_vma_ptes on a vm_insert_page mapping does nothing (7.1+: zap_special_vma_range empties it)',
	expectation: `up to 7.0 zap_vma_ptes() returns early unless the vma is VM_PFNMAP: after ZAP of ${ZAP_PAGES} vm_insert_page'd pages every page is still present and still holds what the user wrote, and the module says so in the log; on a kernel with 7.1's zap_special_vma_range() (asked of the kernel, not its version) the VM_MIXEDMAP vma is emptied: no page present before a touch, and the fault handler maps the same pages back, data intact`,
	async run(ctx) {
		const ev = new Evidence();
		const zap = await zapSemantics();
		using dev = ctx.open({ mode: 'insert_page', zapAfterMap: false, failAt: null });
		const before = dev.stats();
		const m = dev.map(ZAP_PAGES * dev.pageSize);
		await m.fill({ pattern: 'address-tag', seed: 11n });
		const zapped = await ctx.kernelLog(() => dev.zap(m));
		const noop = ofType(zapped.events, 'zapNoop');
		const untouched = m.probe();
		if (!zap.zapsMixedmap) {
			ev.eq('ZAP reports no effect (vma is not VM_PFNMAP)', zapped.value.noop, true);
			ev.eq('the module logged that the zap had no effect', noop.length, 1);
			ev.eq('…at the mapping address', noop[0]?.address, m.address);
			ev.eq('every page still present before a touch (zap_vma_ptes returned early)', untouched.present, ZAP_PAGES);
		} else {
			ev.eq(`ZAP reports an effect (${zap.fn} zaps VM_MIXEDMAP)`, zapped.value.noop, false);
			ev.eq('the module logged no "had no effect" line', noop.length, 0);
			ev.eq(`no page present before a touch (${zap.fn} emptied the ptes)`, untouched.present, 0);
		}
		const probe = m.probe({ touch: true });
		ev.eq(zap.zapsMixedmap ? 'every page present after a touch (the fault handler maps it back)' : 'every page still present', probe.present, ZAP_PAGES);
		const verify = await m.verify({ pattern: 'address-tag', seed: 11n });
		ev.ok('the data is still reachable after the "zap"', verify.ok, `${verify.mismatchCount} mismatches`);
		const address = m.address;
		m.unmap();
		expectNoLeak(ev, before, dev.stats());
		return {
			checks: ev.checks,
			summary: zap.zapsMixedmap
				? `${ZAP_PAGES} pages at ${hex(address)}: ${zap.fn} emptied the VM_MIXEDMAP vma (${untouched.present}/${ZAP_PAGES} present before a touch; ${zap.how}), the fault handler mapped ${probe.present}/${ZAP_PAGES} back, data intact`
				: `${ZAP_PAGES} pages at ${hex(address)}: zap_vma_ptes had no effect, ${probe.present}/${ZAP_PAGES} pages still present, data intact`,
			pageMap: pageMap(marksFromProbe(probe.pages)),
			finding: zap.zapsMixedmap ? `${zap.fn} empties VM_MIXEDMAP` : 'zap_vma_ptes: no-op on VM_MIXEDMAP',
		};
	},
};
