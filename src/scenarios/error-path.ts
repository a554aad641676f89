// The notes' error paths done right: a failure while mapping page N zaps the
// N pages already mapped, frees everything (vm_ops->close never runs for a
// vma whose ->mmap failed) and fails the mmap; in fault mode only page N
// raises SIGBUS.
import type { ScenarioContext } from './context.js';
import { Evidence } from './evidence.js';
import { expectNoLeak, hex, marksFromProbe, ofType, pageMap } from './mapping-checks.js';
import type { Scenario } from './types.js';

const PAGES = 16;
const FAIL_AT = 8;

export const errorPath: Scenario = {
	name: 'error-path',
	title: 'a failure while mapping page N (fail_at): zap what was mapped, free all, fail the mmap',
	expectation: `with fail_at=${FAIL_AT} an mmap of ${PAGES} pages fails with ENOMEM after logging ${FAIL_AT} inserted and ${FAIL_AT} zap lines at the same addresses and freeing every page (live_pages back where it was); in fault mode the same setting makes only page ${FAIL_AT} raise SIGBUS`,
	async run(ctx: ScenarioContext) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: false, failAt: FAIL_AT });
		const before = dev.stats();
		const failed = await ctx.kernelLog(() => {
			try {
				dev.map(PAGES * dev.pageSize).unmap();
				return undefined;
			} catch (err) {
				return err as NodeJS.ErrnoException;
			}
		});
		ev.eq('mmap fails with ENOMEM', failed.value?.code, 'ENOMEM');
		const [start] = ofType(failed.events, 'mapStart');
		const inserted = ofType(failed.events, 'pageInserted').map((e) => e.address);
		const zapped = ofType(failed.events, 'zap').map((e) => e.address);
		ev.eq('the pages before the failure were inserted', inserted.length, FAIL_AT);
		ev.eq('the error path zapped exactly those pages', zapped, inserted);
		ev.eq('…starting at vm_start', zapped[0], start?.vmStart);
		ev.eq('the failure names page N', ofType(failed.events, 'mapFailed')[0]?.index, FAIL_AT);
		ev.ok('the error path freed the pages', ofType(failed.events, 'freed').length === 1, `${ofType(failed.events, 'freed').length} freed lines`);
		const after = dev.stats();
		ev.eq('map_failures counted', after.mapFailures - before.mapFailures, 1n);
		expectNoLeak(ev, before, after);

		// Fault mode: the mmap succeeds and page N alone cannot be faulted in.
		dev.setMode({ mode: 'fault', failAt: FAIL_AT });
		const m = dev.map(PAGES * dev.pageSize);
		const probe = m.probe({ touch: true });
		const faulting = probe.pages.flatMap((s, i) => (s === 'faulting' ? [i] : []));
		ev.eq('fault mode: only page N raises SIGBUS', faulting, [FAIL_AT]);
		ev.eq('fault mode: the other pages fault in', probe.present, PAGES - 1);
		m.unmap();
		expectNoLeak(ev, before, dev.stats());
		return {
			checks: ev.checks,
			summary: `mmap of ${PAGES} pages at ${start ? hex(start.vmStart) : '?'} failed at page ${FAIL_AT} with ${failed.value?.code ?? 'no error'}: ${zapped.length} zapped, all freed; fault mode: SIGBUS on page ${faulting.join(',')}`,
			pageMap: pageMap(marksFromProbe(probe.pages)),
		};
	},
};
