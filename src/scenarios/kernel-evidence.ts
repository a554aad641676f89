// The generic kernel evidence of one mapping, as scenarios use it: a PFN
// trace around the steps, pagemap where the ptes are normal ones, and the
// checks every correct mapping must pass (no PFN freed while mapped, one PFN
// per user page, every PFN given back after the last unmap).
import type { Mapping } from '../device/index.js';
import { analyzeLifecycle, describeLifecycle, pagesFromPagemap, pagesFromTrace, type Lifecycle, type MappingWindow } from '../evidence/lifecycle.js';
import { readPagemap, type PagemapEntry } from '../evidence/pagemap.js';
import { PfnTrace, type PfnTraceLog } from '../evidence/pfn-trace.js';
import type { Evidence } from './evidence.js';

/** A PFN trace of one mapping's life: mark the steps, read pagemap while it is mapped, judge at the end. */
export class MappingTrace {
	#pagemap: PagemapEntry[] = [];
	#window: MappingWindow | undefined;

	private constructor(readonly trace: PfnTrace) {}

	static async start(pageSize: number): Promise<MappingTrace> {
		return new MappingTrace(await PfnTrace.start({ pageSize }));
	}

	mark(label: string): void {
		this.trace.mark(label);
	}

	/** Call right after mmap: remembers the mapping and reads its pagemap. */
	mapped(m: Mapping, opts: { from?: string; until?: string; end?: string } = {}): void {
		this.#window = { address: m.address, length: m.length, tgid: process.pid, from: opts.from ?? 'map', until: opts.until ?? 'unmap', end: opts.end ?? 'end' };
		this.readPagemap(m);
	}

	/** Reads pagemap again (after a fault-in, say); the newest reading wins. */
	readPagemap(m: Mapping): void {
		this.#pagemap = readPagemap(m.address, m.length / m.pageSize, { pageSize: m.pageSize });
	}

	/** Stops the trace and judges the mapping's pages. */
	finish(): { log: PfnTraceLog; lifecycle: Lifecycle | undefined } {
		const log = this.trace.stop();
		const w = this.#window;
		if (!w) return { log, lifecycle: undefined };
		return { log, lifecycle: analyzeLifecycle(log, w, [...pagesFromTrace(log, w), ...pagesFromPagemap(this.#pagemap, w, log)]) };
	}
}

/** The checks of a correct mapping of `pages` pages. */
export function expectCleanLifecycle(ev: Evidence, lc: Lifecycle | undefined, log: PfnTraceLog, pages: number): string[] {
	if (!ev.ok('kernel evidence: the PFN trace recorded the mapping', lc !== undefined && log.lost === 0, lc ? `${log.lost} trace events lost` : 'no mapping window')) return [];
	ev.eq('kernel evidence: a PFN for every user page (kprobes on the mapping APIs, else pagemap)', lc!.pages.length, pages);
	ev.eq('kernel evidence: no mapped PFN was freed while mapped', lc!.freedWhileMapped.map((f) => `0x${f.pfn.toString(16)} (user page ${f.pages.join(',')})`), []);
	ev.eq('kernel evidence: distinct user pages, distinct PFNs', lc!.aliases.map((a) => `0x${a.pfn.toString(16)}`), []);
	ev.eq('kernel evidence: after the last unmap every PFN went back to the allocator', lc!.notReturned.map((p) => `0x${p.toString(16)}`), []);
	return describeLifecycle(lc!);
}
