// Checks that several scenarios share: the kernel's log of an mmap against
// the user's view of the mapping, the module's counters before and after,
// and the per-page map of what the evidence showed.
import type { DeviceStats, Mapping, PageState } from '../device/index.js';
import type { ModuleEvent } from '../kmsg/events.js';
import type { Evidence } from './evidence.js';
import type { PageMark } from './types.js';

export function ofType<T extends ModuleEvent['type']>(events: ModuleEvent[], type: T): Extract<ModuleEvent, { type: T }>[] {
	return events.filter((e): e is Extract<ModuleEvent, { type: T }> => e.type === type);
}

/** User addresses of pages [0, n) of a mapping, as the module prints them. */
export function pageAddresses(m: Mapping, n: number, first = 0): bigint[] {
	return Array.from({ length: n }, (_, i) => m.address + BigInt((first + i) * m.pageSize));
}

/**
 * The mmap's log says what user space saw: one start line naming the vma at
 * the mapping's address, one "inserted page" line per page (up to the
 * module's log_pages cap) at vm_start + i * PAGE_SIZE, and the completion.
 */
export function expectMapLogged(ev: Evidence, events: ModuleEvent[], m: Mapping, pages: number, opts: { eager: boolean; logPages: number }): void {
	const [start] = ofType(events, 'mapStart');
	if (ev.ok('the kernel logged the mmap', start !== undefined, start ? undefined : 'no "vma->vm_end ..." line')) {
		ev.eq('vm_start is the user address', start!.vmStart, m.address);
		ev.eq('vm_end - vm_start is the length', start!.vmEnd - start!.vmStart, BigInt(m.length));
		ev.eq('pages in the vma', start!.pages, pages);
	}
	const logged = Math.min(pages, opts.logPages);
	if (opts.eager) {
		const inserted = ofType(events, 'pageInserted');
		ev.eq('inserted page lines: the user pages, in order', inserted.map((e) => e.address), pageAddresses(m, logged));
		ev.eq('inserted page indices', inserted.map((e) => e.index), Array.from({ length: logged }, (_, i) => i));
	}
	const [done] = ofType(events, 'mapComplete');
	ev.eq('completed inserting', done?.pages, opts.eager ? pages : 0);
}

/** Nothing allocated by the scenario outlives it. */
export function expectNoLeak(ev: Evidence, before: DeviceStats, after: DeviceStats): void {
	ev.eq('live_pages back to where it started', after.livePages, before.livePages);
	ev.eq('live_mappings back to where it started', after.liveMappings, before.liveMappings);
}

export function pageMap(marks: PageMark[]): string {
	return marks.join('');
}

/** Marks from probe states; after a zap, pass 'Z' so the pages it took read as zapped. */
export function marksFromProbe(states: PageState[], faulting: PageMark = 'F'): PageMark[] {
	return states.map((s) => (s === 'present' ? 'M' : s === 'faulting' ? faulting : '.'));
}

/** Marks pages holding a mismatch with X. */
export function markMismatches(marks: PageMark[], offsets: number[], pageSize: number): PageMark[] {
	const out = [...marks];
	for (const o of offsets) out[Math.floor(o / pageSize)] = 'X';
	return out;
}

export function hex(v: bigint): string {
	return `0x${v.toString(16)}`;
}
