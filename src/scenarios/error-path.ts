// The notes' error paths done right: a failure while mapping page N zaps the
// N pages already mapped, frees everything (vm_ops->close never runs for a
// vma whose ->mmap failed) and fails the mmap; in fault mode only page N
// raises SIGBUS.
import { describeModuleEvents, eventsOf } from '../evidence/module-trace.js';
import type { ScenarioContext } from './context.js';
import { Evidence } from './evidence.js';
import { expectNoLeak, hex, indices, marksFromProbe, pageMap, zappedAddresses } from './mapping-checks.js';
import type { Scenario } from './types.js';

const PAGES = 16;
const FAIL_AT = 8;

export const errorPath: Scenario = {
	name: 'error-path',
	title: 'a failure while mapping page N (fail_at): zap what was mapped, free all, fail the mmap',
	expectation: `with fail_at=${FAIL_AT} an mmap of ${PAGES} pages fails with ENOMEM after mapping ${FAIL_AT} pages (hybridmem_page events), ending with a hybridmem_map_end naming page ${FAIL_AT} and -ENOMEM, then zapping exactly those ${FAIL_AT} user addresses (hybridmem_zap) and freeing every page (hybridmem_free of all ${PAGES}, live_pages back where it was); in fault mode the same setting makes only page ${FAIL_AT} raise SIGBUS (a hybridmem_fault for every other page)`,
	async run(ctx: ScenarioContext) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: false, failAt: FAIL_AT });
		const before = dev.stats();
		const failed = await ctx.traced(() => {
			try {
				dev.map(PAGES * dev.pageSize).unmap();
				return undefined;
			} catch (err) {
				return err as NodeJS.ErrnoException;
			}
		});
		ev.eq('mmap fails with ENOMEM', failed.value?.code, 'ENOMEM');
		const [start] = eventsOf(failed.events, 'map');
		const inserted = eventsOf(failed.events, 'page');
		const zapped = zappedAddresses(failed.events, dev.pageSize);
		ev.eq('hybridmem_page events for the pages before the failure', inserted.map((e) => e.index), indices(FAIL_AT));
		ev.eq('the error path zapped exactly those user addresses (hybridmem_zap)', zapped, inserted.map((e) => e.address));
		ev.eq('…starting at vm_start (hybridmem_map start)', zapped[0], start?.start);
		ev.eq('hybridmem_map_end names page N and -ENOMEM: [pages, err]', eventsOf(failed.events, 'mapEnd').map((e) => [e.pages, e.error]), [[FAIL_AT, -12]]);
		ev.eq('the error path freed every page it allocated (hybridmem_free)', eventsOf(failed.events, 'free').map((f) => f.pages), [PAGES]);
		const after = dev.stats();
		ev.eq('map_failures counted', after.mapFailures - before.mapFailures, 1n);
		expectNoLeak(ev, before, after);

		// Fault mode: the mmap succeeds and page N alone cannot be faulted in.
		dev.setMode({ mode: 'fault', failAt: FAIL_AT });
		const m = dev.map(PAGES * dev.pageSize);
		const touched = await ctx.traced(() => m.probe({ touch: true }));
		const probe = touched.value;
		const faulting = probe.pages.flatMap((s, i) => (s === 'faulting' ? [i] : []));
		ev.eq('fault mode: only page N raises SIGBUS', faulting, [FAIL_AT]);
		ev.eq('fault mode: the other pages fault in', probe.present, PAGES - 1);
		ev.eq('fault mode: a hybridmem_fault for every page but N', eventsOf(touched.events, 'fault').map((f) => f.index).sort((a, b) => a - b), indices(PAGES).filter((i) => i !== FAIL_AT));
		m.unmap();
		expectNoLeak(ev, before, dev.stats());
		return {
			checks: ev.checks,
			summary: `mmap of ${PAGES} pages at ${start ? hex(start.start) : '?'} failed at page ${FAIL_AT} with ${failed.value?.code ?? 'no error'}: ${zapped.length} zapped, all freed; fault mode: SIGBUS on page ${faulting.join(',')}`,
			pageMap: pageMap(marksFromProbe(probe.pages)),
			evidence: describeModuleEvents(failed.events),
		};
	},
};
