// The notes' test2 and its siblings: map pages with one map_mode, let user
// space write and read them back, and hold the module's trace events to what
// user space saw and to the PFNs the kernel's own evidence names.  One
// scenario per mode, all shaped alike.
import type { DeviceStats, KexDevice, MapMode, Mapping } from '../device/index.js';
import { describeModuleEvents, eventsOf, type ModuleTraceEvent } from '../evidence/module-trace.js';
import type { Logged, ScenarioContext, Traced } from './context.js';
import { Evidence } from './evidence.js';
import { expectCleanLifecycle } from './kernel-evidence.js';
import { traceMapping } from '../evidence/trace-mapping.js';
import type { PfnTrace } from '../evidence/pfn-trace.js';
import { expectMapTraced, expectNoLeak, hex, indices, marksFromProbe, markMismatches, notesLines, pageAddresses, pageMap } from './mapping-checks.js';
import type { PageMark, Scenario, ScenarioOutcome } from './types.js';

export const WRITE_READ_PAGES = 64;

async function writeRead(ctx: ScenarioContext, mode: MapMode, pages = WRITE_READ_PAGES): Promise<ScenarioOutcome> {
	const ev = new Evidence();
	using dev = ctx.open({ mode, zapAfterMap: false, failAt: null });
	const before = dev.stats();
	const length = pages * dev.pageSize;
	let rest: Awaited<ReturnType<typeof afterMap>> | undefined;
	let mapped: Logged<Traced<Mapping>> | undefined;
	const { log, lifecycle } = await traceMapping(dev.pageSize, async (trace, onMapped) => {
		trace.mark('map');
		// The notes' lines are captured only to show them; the checks read the trace events.
		mapped = await ctx.kernelLog(() => ctx.traced(() => dev.map(length)));
		onMapped(mapped.value.value);
		rest = await afterMap(ctx, ev, { dev, mode, pages, before, mapped: mapped.value, trace });
	});
	const evidence = expectCleanLifecycle(ev, lifecycle, log, pages);
	// Two witnesses of one fact: the module's events and the mapping APIs' kprobes (or pagemap).
	const modulePfns = rest!.pfns;
	ev.eq(
		"the module's events name the PFN the kernel mapped at each user page (kprobes on the mapping APIs, else pagemap)",
		lifecycle.pages.map((p) => [p.index, p.pfn]),
		[...modulePfns].sort((a, b) => a[0] - b[0]).filter(([i]) => lifecycle.pages.some((p) => p.index === i)),
	);
	ev.eq("…for every user page", lifecycle.pages.length, modulePfns.length);
	const after = dev.stats();
	ev.eq('counted one more map', after.maps - before.maps, 1n);
	if (mode === 'fault') ev.eq('counted one fault per page', after.faults - before.faults, BigInt(pages));
	expectNoLeak(ev, before, after);
	const runs = pfnRuns(modulePfns.map(([, pfn]) => pfn));
	return {
		checks: ev.checks,
		summary: `${pages} pages at ${hex(rest!.address)}, ${rest!.verifiedBytes} bytes verified, ${rest!.eventCount} module trace events matched, ${lifecycle.distinctPfns} PFNs traced`,
		pageMap: pageMap(rest!.marks),
		evidence: [
			...rest!.described,
			`${pages} PFNs in ${runs} contiguous run${runs === 1 ? '' : 's'}`,
			...evidence,
			...(mode === 'remap_pfn' ? notesLines(mapped!.lines) : []),
		],
	};
}

/** How many runs of consecutive PFNs, in mapping order. */
function pfnRuns(pfns: number[]): number {
	return pfns.filter((p, i) => i === 0 || p !== pfns[i - 1]! + 1).length;
}

/** From the mmap to the munmap: the module's trace events against user space's view. */
async function afterMap(
	ctx: ScenarioContext,
	ev: Evidence,
	s: { dev: KexDevice; mode: MapMode; pages: number; before: DeviceStats; mapped: Traced<Mapping>; trace: PfnTrace },
): Promise<{ address: bigint; verifiedBytes: number; eventCount: number; marks: PageMark[]; pfns: [number, number][]; described: string[] }> {
	const { dev, mode, pages, before, mapped, trace } = s;
	const m = mapped.value;
	expectMapTraced(ev, mapped.events, m, pages, { eager: mode !== 'fault', mode });

	if (mode === 'fault') ev.eq('mmap faulted nothing in (the first touch does)', dev.stats().faults - before.faults, 0n);
	const filled = await ctx.traced(() => m.fill({ pattern: 'address-tag', seed: 0x5eedn }));
	ev.eq('fill reached every page', filled.value.faultingPages, []);
	const faults = eventsOf(filled.events, 'fault');
	if (mode === 'fault') {
		ev.eq('one hybridmem_fault event per page, at its user address', faults.map((f) => f.address).sort(), pageAddresses(m, pages).sort());
		ev.eq('hybridmem_fault indices', faults.map((f) => f.index).sort((a, b) => a - b), indices(pages));
	} else {
		ev.eq('no hybridmem_fault event (mmap mapped every page)', faults.length, 0);
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
	const unmapped = await ctx.traced(() => m.unmap());
	ev.eq('the last unmap frees the pages (hybridmem_free)', eventsOf(unmapped.events, 'free').map((f) => f.pages), [pages]);
	const pageEvents = mode === 'fault' ? faults : eventsOf(mapped.events, 'page');
	const all: ModuleTraceEvent[] = [...mapped.events, ...filled.events, ...unmapped.events];
	return {
		address,
		verifiedBytes: verify.bytes,
		eventCount: all.length,
		marks,
		pfns: pageEvents.map((e) => [e.index, e.pfn]),
		described: describeModuleEvents(all),
	};
}

function writeReadScenario(s: { name: string; mode: MapMode; title: string; expectation: string }): Scenario {
	return { name: s.name, title: s.title, expectation: s.expectation, run: (ctx) => writeRead(ctx, s.mode) };
}

export const test2 = writeReadScenario({
	name: 'test2',
	mode: 'remap_pfn',
	title: 'remap_pfn_range, then user write/read (notes: test2)',
	expectation: `mmap of ${WRITE_READ_PAGES} pages maps each with remap_pfn_range; the module traces one hybridmem_page event per user page, at its address, with the PFN the kprobe on remap_pfn_range saw; what user space writes it reads back; munmap frees every page (no __free_page while mapped)`,
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
	expectation: 'mmap maps nothing; each first touch faults one page in with vmf_insert_pfn (one hybridmem_fault event per page at its user address); write/read passes; nothing leaks',
});
