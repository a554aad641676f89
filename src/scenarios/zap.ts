// Scenarios around zap_vma_ptes: the notes' test1 (map, zap at once, never
// touch), the hdcdrv pattern (the kernel takes pages away from a live
// mapping and gives them back), and the trap of zapping a vm_insert_page
// mapping, which kernels up to 7.0 silently ignore.
import { describeModuleEvents, eventsOf } from '../evidence/module-trace.js';
import type { ScenarioContext } from './context.js';
import { Evidence } from './evidence.js';
import { expectMapTraced, expectNoLeak, hex, indices, marksFromProbe, notesLines, pageAddresses, pageMap, zappedAddresses } from './mapping-checks.js';
import { zapSemantics } from './kernel-features.js';
import type { Scenario } from './types.js';

const TEST1_PAGES = 4; // the notes mapped 4 pages

export const test1: Scenario = {
	name: 'test1',
	title: 'remap_pfn_range then zap_vma_ptes, user does not touch (notes: test1)',
	expectation: `mmap of ${TEST1_PAGES} pages traces one hybridmem_page event per page and a hybridmem_zap over the same user addresses (the notes' "inserted page" and "zap_vma_ptes addr" lines); mmap still succeeds; the pages are gone afterwards (a touch raises SIGBUS, caught); munmap frees every page`,
	async run(ctx: ScenarioContext) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: true, failAt: null });
		const before = dev.stats();
		// The notes' lines are captured only to show them; the checks read the trace events.
		const logged = await ctx.kernelLog(() => ctx.traced(() => dev.map(TEST1_PAGES * dev.pageSize)));
		const mapped = logged.value;
		const m = mapped.value;
		expectMapTraced(ev, mapped.events, m, TEST1_PAGES, { eager: true, mode: 'remap_pfn' });
		const zaps = eventsOf(mapped.events, 'zap');
		const zapped = zappedAddresses(mapped.events, dev.pageSize);
		ev.eq('hybridmem_zap covers the mapped pages', zapped, eventsOf(mapped.events, 'page').map((e) => e.address));
		ev.eq('the zapped addresses are the user pages', zapped, pageAddresses(m, TEST1_PAGES));
		ev.eq('the zap acted (noop=0: the vma is VM_PFNMAP)', zaps.map((z) => z.noop), [false]);
		ev.ok('the zap came after the last page was mapped', zaps.length === 1 && mapped.events.indexOf(zaps[0]!) > mapped.events.findLastIndex((e) => e.type === 'page'));
		const touchStep = await ctx.traced(() => m.probe({ touch: true }));
		const touched = touchStep.value;
		ev.eq('a touch of each page raises SIGBUS (caught)', touched.faulting, TEST1_PAGES);
		ev.eq('no hybridmem_fault event: nothing maps a zapped page back', eventsOf(touchStep.events, 'fault').length, 0);
		const address = m.address;
		const unmapped = await ctx.traced(() => m.unmap());
		ev.eq('munmap frees the pages (hybridmem_free)', eventsOf(unmapped.events, 'free').map((f) => f.pages), [TEST1_PAGES]);
		const after = dev.stats();
		ev.eq('zaps counted', after.zaps - before.zaps, BigInt(TEST1_PAGES));
		expectNoLeak(ev, before, after);
		return {
			checks: ev.checks,
			summary: `${TEST1_PAGES} pages at ${hex(address)}: ${eventsOf(mapped.events, 'page').length} inserted, ${zapped.length} zapped, ${touched.faulting} SIGBUS on touch`,
			pageMap: pageMap(marksFromProbe(touched.pages, 'Z')),
			evidence: [...describeModuleEvents([...mapped.events, ...unmapped.events]), ...notesLines(logged.lines, 2 * TEST1_PAGES + 2)],
		};
	},
};

const ZAP_PAGES = 16;

export const zapRemap: Scenario = {
	name: 'zap-remap',
	title: 'ZAP then REMAP through ioctls on a live mapping (the hdcdrv pattern)',
	expectation: `the kernel zaps all ${ZAP_PAGES} pages of a mapping the user still holds (a hybridmem_zap over the user addresses, pages absent, touch → SIGBUS), then maps them again (one hybridmem_remap per page, same addresses and PFNs as the mmap's hybridmem_page events; pages present with fresh zeroed contents); nothing leaks`,
	async run(ctx) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
		const before = dev.stats();
		const mapped = await ctx.traced(() => dev.map(ZAP_PAGES * dev.pageSize));
		const m = mapped.value;
		const pfns = eventsOf(mapped.events, 'page').map((e) => e.pfn);
		ev.eq('hybridmem_page events: a PFN for every page', new Set(pfns).size, ZAP_PAGES);
		await m.fill({ pattern: 'random', seed: 7n });
		const zapped = await ctx.traced(() => dev.zap(m));
		ev.eq('ZAP acted on every page', zapped.value.pages, ZAP_PAGES);
		ev.eq('ZAP was effective (VM_PFNMAP vma)', zapped.value.noop, false);
		ev.eq('hybridmem_zap: [addr, pages, noop]', eventsOf(zapped.events, 'zap').map((z) => [z.address, z.pages, z.noop]), [[m.address, ZAP_PAGES, false]]);
		const touched = m.probe({ touch: true });
		ev.eq('touching a zapped page raises SIGBUS (caught)', touched.faulting, ZAP_PAGES);
		const zapMarks = marksFromProbe(touched.pages, 'Z');
		const remapped = await ctx.traced(() => dev.remap(m));
		ev.eq('REMAP acted on every page', remapped.value.pages, ZAP_PAGES);
		const remaps = eventsOf(remapped.events, 'remap');
		ev.eq('hybridmem_remap events at the user addresses', remaps.map((r) => r.address), pageAddresses(m, ZAP_PAGES));
		ev.eq('hybridmem_remap indices', remaps.map((r) => r.index), indices(ZAP_PAGES));
		ev.eq('REMAP maps the PFNs the mmap mapped (the module keeps its pages)', remaps.map((r) => r.pfn), pfns);
		ev.eq('every page present after REMAP', m.probe({ touch: true }).present, ZAP_PAGES);
		const fresh = await m.verify({ pattern: 'constant', value: 0 });
		ev.ok('remapped pages hold fresh (zeroed) contents', fresh.ok, `${fresh.mismatchCount} non-zero bytes`);
		await m.fill({ pattern: 'address-tag', seed: 3n });
		ev.ok('write/read after REMAP passes', (await m.verify({ pattern: 'address-tag', seed: 3n })).ok);
		const address = m.address;
		const unmapped = await ctx.traced(() => m.unmap());
		ev.eq('munmap frees the pages (hybridmem_free)', eventsOf(unmapped.events, 'free').map((f) => f.pages), [ZAP_PAGES]);
		const after = dev.stats();
		ev.eq('remaps counted', after.remaps - before.remaps, BigInt(ZAP_PAGES));
		expectNoLeak(ev, before, after);
		return {
			checks: ev.checks,
			summary: `${ZAP_PAGES} pages at ${hex(address)}: zapped ${zapped.value.pages} (SIGBUS on ${touched.faulting}), remapped ${remapped.value.pages} onto the same ${new Set(remaps.map((r) => r.pfn)).size} PFNs, zeroed and writable`,
			pageMap: pageMap(zapMarks),
			evidence: describeModuleEvents([...zapped.events, ...remapped.events, ...unmapped.events]),
		};
	},
};

export const zapNoop: Scenario = {
	name: 'zap-noop',
	title: 'zap_vma_ptes on a vm_insert_page mapping does nothing (7.1+: zap_special_vma_range empties it)',
	expectation: `up to 7.0 zap_vma_ptes() returns early unless the vma is VM_PFNMAP: after ZAP of ${ZAP_PAGES} vm_insert_page'd pages every page is still present and still holds what the user wrote, and the module's hybridmem_zap event says noop=1; on a kernel with 7.1's zap_special_vma_range() (asked of the kernel, not its version) the VM_MIXEDMAP vma is emptied: no page present before a touch, and the fault handler maps the same pages back (hybridmem_fault events with the mmap's PFNs), data intact`,
	async run(ctx) {
		const ev = new Evidence();
		const zap = await zapSemantics();
		using dev = ctx.open({ mode: 'insert_page', zapAfterMap: false, failAt: null });
		const before = dev.stats();
		const mapped = await ctx.traced(() => dev.map(ZAP_PAGES * dev.pageSize));
		const m = mapped.value;
		const pages = eventsOf(mapped.events, 'page');
		ev.eq('vm_insert_page mapped every page (hybridmem_page events)', pages.map((p) => p.address), pageAddresses(m, ZAP_PAGES));
		await m.fill({ pattern: 'address-tag', seed: 11n });
		const zapped = await ctx.traced(() => dev.zap(m));
		const zaps = eventsOf(zapped.events, 'zap').map((z) => [z.address, z.pages, z.noop]);
		const untouched = m.probe();
		if (!zap.zapsMixedmap) {
			ev.eq('ZAP reports no effect (vma is not VM_PFNMAP)', zapped.value.noop, true);
			ev.eq('hybridmem_zap: [addr, pages, noop]: no effect, at the mapping address', zaps, [[m.address, ZAP_PAGES, true]]);
			ev.eq('every page still present before a touch (zap_vma_ptes returned early)', untouched.present, ZAP_PAGES);
		} else {
			ev.eq(`ZAP reports an effect (${zap.fn} zaps VM_MIXEDMAP)`, zapped.value.noop, false);
			ev.eq('hybridmem_zap: [addr, pages, noop]: effective, at the mapping address', zaps, [[m.address, ZAP_PAGES, false]]);
			ev.eq(`no page present before a touch (${zap.fn} emptied the ptes)`, untouched.present, 0);
		}
		const touchedBack = await ctx.traced(() => m.probe({ touch: true }));
		const probe = touchedBack.value;
		const faults = eventsOf(touchedBack.events, 'fault');
		ev.eq(zap.zapsMixedmap ? 'every page present after a touch (the fault handler maps it back)' : 'every page still present', probe.present, ZAP_PAGES);
		if (zap.zapsMixedmap) ev.eq('the fault handler mapped the same PFNs back (hybridmem_fault per page, as hybridmem_page)', faults.map((f) => [f.index, f.pfn]), pages.map((p) => [p.index, p.pfn]));
		else ev.eq('no hybridmem_fault event: the ptes never went away', faults.length, 0);
		const verify = await m.verify({ pattern: 'address-tag', seed: 11n });
		ev.ok('the data is still reachable after the "zap"', verify.ok, `${verify.mismatchCount} mismatches`);
		const address = m.address;
		const unmapped = await ctx.traced(() => m.unmap());
		ev.eq('munmap frees the pages (hybridmem_free)', eventsOf(unmapped.events, 'free').map((f) => f.pages), [ZAP_PAGES]);
		expectNoLeak(ev, before, dev.stats());
		return {
			checks: ev.checks,
			summary: zap.zapsMixedmap
				? `${ZAP_PAGES} pages at ${hex(address)}: ${zap.fn} emptied the VM_MIXEDMAP vma (${untouched.present}/${ZAP_PAGES} present before a touch; ${zap.how}), the fault handler mapped ${probe.present}/${ZAP_PAGES} back, data intact`
				: `${ZAP_PAGES} pages at ${hex(address)}: zap_vma_ptes had no effect, ${probe.present}/${ZAP_PAGES} pages still present, data intact`,
			pageMap: pageMap(marksFromProbe(probe.pages)),
			evidence: describeModuleEvents([...zapped.events, ...touchedBack.events, ...unmapped.events]),
			finding: zap.zapsMixedmap ? `${zap.fn} empties VM_MIXEDMAP` : 'zap_vma_ptes: no-op on VM_MIXEDMAP',
		};
	},
};
