// The notes' test2 and its siblings: map pages with one map_mode, let user
// space write and read them back, and hold the kernel's log to what user space
// saw.  One scenario per mode, all shaped alike.
import type { DeviceStats, KexDevice, MapMode, Mapping } from '../device/index.js';
import type { Logged, ScenarioContext } from './context.js';
import { Evidence } from './evidence.js';
import { expectCleanLifecycle } from './kernel-evidence.js';
import { traceMapping } from '../evidence/trace-mapping.js';
import type { PfnTrace } from '../evidence/pfn-trace.js';
import { expectMapLogged, expectNoLeak, hex, marksFromProbe, markMismatches, ofType, pageAddresses, pageMap } from './mapping-checks.js';
import type { PageMark, Scenario, ScenarioOutcome } from './types.js';

export const WRITE_READ_PAGES = 64;

async function writeRead(ctx: ScenarioContext, mode: MapMode, pages = WRITE_READ_PAGES): Promise<ScenarioOutcome> {
	const ev = new Evidence();
	using dev = ctx.open({ mode, zapAfterMap: false, failAt: null });
	const info = dev.info();
	const before = dev.stats();
	const length = pages * dev.pageSize;
	let rest: Awaited<ReturnType<typeof afterMap>> | undefined;
	const { log, lifecycle } = await traceMapping(dev.pageSize, async (trace, onMapped) => {
		trace.mark('map');
		const mapped = await ctx.kernelLog(() => dev.map(length));
		onMapped(mapped.value);
		rest = await afterMap(ctx, ev, { dev, mode, pages, logPages: info.logPages, before, mapped, trace });
	});
	const traced = { ...rest!, lifecycle };
	const evidence = expectCleanLifecycle(ev, lifecycle, log, pages);
	const after = dev.stats();
	ev.eq('counted one more map', after.maps - before.maps, 1n);
	if (mode === 'fault') ev.eq('counted one fault per page', after.faults - before.faults, BigInt(pages));
	expectNoLeak(ev, before, after);
	return {
		checks: ev.checks,
		summary: `${pages} pages at ${hex(traced.address)}, ${traced.verifiedBytes} bytes verified, ${traced.kernelLines} kernel lines matched, ${traced.lifecycle?.distinctPfns ?? 0} PFNs traced`,
		pageMap: pageMap(traced.marks),
		evidence,
	};
}

/** From the mmap to the munmap: the kernel's lines against user space's view. */
async function afterMap(
	ctx: ScenarioContext,
	ev: Evidence,
	s: { dev: KexDevice; mode: MapMode; pages: number; logPages: number; before: DeviceStats; mapped: Logged<Mapping>; trace: PfnTrace },
): Promise<{ address: bigint; verifiedBytes: number; kernelLines: number; marks: PageMark[] }> {
	const { dev, mode, pages, before, mapped, trace } = s;
	const info = { logPages: s.logPages };
	const m = mapped.value;
	expectMapLogged(ev, mapped.events, m, pages, { eager: mode !== 'fault', logPages: info.logPages });

	if (mode === 'fault') ev.eq('mmap faulted nothing in (the first touch does)', dev.stats().faults - before.faults, 0n);
	const filled = await ctx.kernelLog(() => m.fill({ pattern: 'address-tag', seed: 0x5eedn }));
	ev.eq('fill reached every page', filled.value.faultingPages, []);
	if (mode === 'fault') {
		const faults = ofType(filled.events, 'faultIn');
		const logged = Math.min(pages, info.logPages);
		ev.eq('one fault-in line per page, at the user address', faults.map((f) => f.address).sort(), pageAddresses(m, logged).sort());
	}
	const verify = await m.verify({ pattern: 'address-tag', seed: 0x5eedn });
	ev.ok('write/read: verify passes', verify.ok, `${verify.mismatchCount} mismatches, ${verify.faultingPages.length} faulting pages`);
	// A guarded read of each page: mincore() and pagemap cannot see inside
	// VM_PFNMAP vmas (the page walker skips them), a read can.
	const probe = m.probe({ touch: true });
	ev.eq('every page present after the write', probe.present, pages);
	const address = m.address;
	const marks = markMismatches(marksFromProbe(probe.pages), verify.mismatches.map((x) => x.offset), dev.pageSize);

	trace.mark('unmap');
	const unmapped = await ctx.kernelLog(() => m.unmap());
	const [freed] = ofType(unmapped.events, 'freed');
	ev.eq('the last unmap frees the pages', freed?.pages, pages);
	return { address, verifiedBytes: verify.bytes, kernelLines: mapped.events.length + filled.events.length, marks };
}

function writeReadScenario(s: { name: string; mode: MapMode; title: string; expectation: string }): Scenario {
	return { name: s.name, title: s.title, expectation: s.expectation, run: (ctx) => writeRead(ctx, s.mode) };
}

export const test2 = writeReadScenario({
	name: 'test2',
	mode: 'remap_pfn',
	title: 'remap_pfn_range, then user write/read (notes: test2)',
	expectation: `mmap of ${WRITE_READ_PAGES} pages maps each with remap_pfn_range; the kernel logs one "inserted page" line per user page; what user space writes it reads back; munmap frees every page (no __free_page while mapped)`,
});

export const insertPage = writeReadScenario({
	name: 'insert-page',
	mode: 'insert_page',
	title: 'vm_insert_page per page, then write/read',
	expectation: 'vm_insert_page per page (the trans_mmap pattern); write/read passes; the references vm_insert_page took are dropped at munmap and the pages freed',
});

export const insertPages = writeReadScenario({
	name: 'insert-pages',
	mode: 'insert_pages',
	title: 'vm_insert_pages batch, then write/read',
	expectation: 'one vm_insert_pages call maps all pages; write/read passes; nothing leaks',
});

export const remapContig = writeReadScenario({
	name: 'remap-contig',
	mode: 'remap_contig',
	title: 'contiguous blocks, one remap_pfn_range each, then write/read',
	expectation: 'pages come from higher-order allocations (falling back to smaller orders), each block mapped by one remap_pfn_range; write/read passes; nothing leaks',
});

export const faultMode = writeReadScenario({
	name: 'fault',
	mode: 'fault',
	title: 'lazy mapping from vm_ops->fault',
	expectation: 'mmap maps nothing; each first touch faults one page in with vmf_insert_pfn (one fault-in line per page at its user address); write/read passes; nothing leaks',
});
