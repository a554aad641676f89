// leak: pages come back after munmap and close, cycle after cycle.  Two
// measures: the PFNs the trace saw mapped and never freed (kept pages are
// the same PFNs every cycle, leaked ones new ones), and the free-page count
// against an idle baseline measured the same way, over all cycles and over
// their second half (a cache that fills once is not a leak).
import { judgeLeak, measureFreePages } from '../../evidence/free-pages.js';
import type { Check } from '../types.js';
import { result } from '../types.js';
import { mapOf, traceMapping } from './common.js';

const CYCLES = 32;

export const leakCycles: Check = {
	name: 'leak-map-unmap-close',
	category: 'leak',
	async run(t) {
		// A failing mmap is a cycle too: an error path that leaks is what this must see.
		let failures = 0;
		const cycle = async () => {
			const o = await t.open();
			try {
				const m = mapOf(o, t);
				m.probe({ touch: true });
				m.unmap();
			} catch {
				failures++;
			} finally {
				o.close();
			}
		};
		// PFNs: three traced cycles; a PFN never freed in any of them is kept, a new one each cycle is leaked.
		const kept: number[][] = [];
		for (let i = 0; i < 3; i++) {
			const traced = await traceMapping(t.pageSize, async (trace, mapped) => {
				const o = await t.open();
				try {
					trace.mark('map');
					let m;
					try {
						m = mapOf(o, t);
					} catch {
						failures++;
					}
					// Frees from here on (munmap, close) count as given back.
					trace.mark('unmap');
					if (m) {
						m.probe({ touch: true });
						mapped(m);
						m.unmap();
					}
				} finally {
					o.close();
				}
			});
			kept.push(traced.lifecycle.notReturned);
		}
		const baseline = await measureFreePages(() => undefined, { cycles: CYCLES });
		const measured = await measureFreePages(cycle, { cycles: CYCLES });
		let verdict = judgeLeak(measured, baseline);
		// A loss is confirmed over four times the cycles: memory freed in
		// batches (RCU, kfree_rcu, per-CPU caches) lags by a bounded amount,
		// which a longer run divides away; a leak stays per cycle.
		let confirm: typeof measured | undefined;
		if (verdict.leaks) {
			confirm = await measureFreePages(cycle, { cycles: 4 * CYCLES, cyclesPerSample: 16 });
			verdict = judgeLeak(confirm, baseline);
		}
		const distinctKept = new Set(kept.flat()).size;
		const evidence = [
			...(failures ? [`${failures} of ${CYCLES + 11 + (confirm ? confirm.cycles + 8 : 0)} mmaps failed (their error path is measured too)`] : []),
			`PFNs mapped and not freed after munmap + close, per traced cycle: ${kept.map((k) => k.length).join(', ')} (${distinctKept} distinct)`,
			`free pages over ${CYCLES} cycles: ${measured.before} -> ${measured.after}, this process ${measured.residentAfter - measured.residentBefore >= 0 ? '+' : ''}${measured.residentAfter - measured.residentBefore} resident: ${measured.perCycle.toFixed(2)} pages kept by the kernel per cycle`,
			`pages missing after every ${measured.cyclesPerSample} cycles: ${measured.samples.join(', ')}; ${verdict.latePerCycle.toFixed(2)} per cycle over the last ${CYCLES / 2} cycles`,
			...(confirm ? [`confirmation over ${confirm.cycles} cycles: ${confirm.before} -> ${confirm.after} free pages, ${verdict.perCycle.toFixed(2)} pages per cycle (${verdict.latePerCycle.toFixed(2)} over the last half)`] : []),
			`idle baseline: ${baseline.perCycle.toFixed(2)} pages per cycle (${baseline.samples.join(', ')}); threshold ${verdict.threshold.toFixed(2)} (4x the baseline, at least 0.5), exceeded over all cycles and over the last half for a leak`,
		];
		const growing = kept.every((k) => k.length > 0) && distinctKept >= kept.flat().length && kept.flat().length > 0;
		if (verdict.leaks || growing)
			return result(this, 'fail', `${verdict.perCycle.toFixed(2)} pages per map/unmap/close cycle not given back (threshold ${verdict.threshold.toFixed(2)})${growing ? `; new PFNs left allocated every cycle` : ''}`, evidence);
		return result(this, 'pass', `${verdict.perCycle.toFixed(2)} pages per cycle over ${confirm?.cycles ?? CYCLES} cycles${confirm ? ` (${measured.perCycle.toFixed(2)} over the first ${CYCLES})` : ''}, under the threshold of ${verdict.threshold.toFixed(2)}`, evidence);
	},
};
