// The checks every correct mapping must pass on its kernel evidence (see
// src/evidence/trace-mapping.ts): no PFN freed while mapped, one PFN per
// user page, every PFN given back after the last unmap.
import { describeLifecycle, type Lifecycle } from '../evidence/lifecycle.js';
import type { PfnTraceLog } from '../evidence/pfn-trace.js';
import type { Evidence } from './evidence.js';

/** The checks of a correct mapping of `pages` pages. */
export function expectCleanLifecycle(ev: Evidence, lc: Lifecycle, log: PfnTraceLog, pages: number): string[] {
	if (!ev.ok('kernel evidence: the PFN trace recorded the mapping', log.lost === 0, `${log.lost} trace events lost`)) return [];
	ev.eq('kernel evidence: a PFN for every user page (kprobes on the mapping APIs, else pagemap)', lc.pages.length, pages);
	ev.eq('kernel evidence: no mapped PFN was freed while mapped', lc.freedWhileMapped.map((f) => `0x${f.pfn.toString(16)} (user page ${f.pages.join(',')})`), []);
	ev.eq('kernel evidence: distinct user pages, distinct PFNs', lc.aliases.map((a) => `0x${a.pfn.toString(16)}`), []);
	ev.eq('kernel evidence: after the last unmap every PFN went back to the allocator', lc.notReturned.map((p) => `0x${p.toString(16)}`), []);
	return describeLifecycle(lc!);
}
