// One mapping's life under a PFN trace: the caller's steps mark 'map' before
// the mmap, hand the mapping over right after it (its pagemap is read then),
// and mark 'unmap' when the last user of the pages is gone; the result is
// the lifecycle of its pages from the mapping APIs' kprobes and pagemap.
import type { Mapping } from '../device/index.js';
import { analyzeLifecycle, describeLifecycle, pagesFromPagemap, pagesFromTrace, type Lifecycle } from './lifecycle.js';
import { readPagemap, type PagemapEntry } from './pagemap.js';
import { PfnTrace, type PfnTraceLog } from './pfn-trace.js';

export interface TracedMapping {
	log: PfnTraceLog;
	lifecycle: Lifecycle;
	/** describeLifecycle() of it: one line each. */
	evidence: string[];
}

/**
 * Runs `steps` under a PFN trace.  A mapping that never came to be (a failed
 * mmap) is judged by this process's map events instead: the pages its error
 * path mapped.
 */
export async function traceMapping(pageSize: number, steps: (trace: PfnTrace, mapped: (m: Mapping) => void) => Promise<void> | void): Promise<TracedMapping> {
	const trace = await PfnTrace.start({ pageSize });
	let address = 0n;
	let length = 0;
	let entries: PagemapEntry[] = [];
	let log: PfnTraceLog;
	try {
		await steps(trace, (m) => {
			address = m.address;
			length = m.length;
			trace.mark('pagemap');
			entries = readPagemap(m.address, m.length / m.pageSize, { pageSize: m.pageSize });
		});
		trace.mark('end');
	} finally {
		log = trace.stop();
	}
	if (!length) {
		// Only this process's events: another's addresses say nothing of this mapping.
		const mine = log.events.filter((e): e is Extract<typeof e, { type: 'map' }> => e.type === 'map' && (e.tgid ?? process.pid) === process.pid);
		const first = mine[0];
		if (first) [address, length] = [first.address, Math.max(...mine.map((e) => Number(e.address - first.address) + e.pages * pageSize))];
	}
	const window = { address, length, tgid: process.pid, from: 'map', until: 'unmap', end: 'end' };
	const lifecycle = analyzeLifecycle(log, window, [...pagesFromTrace(log, window), ...pagesFromPagemap(entries, window, log, 'pagemap')]);
	return { log, lifecycle, evidence: describeLifecycle(lifecycle) };
}
