// Checks that several scenarios share: the module's trace events of an mmap
// against the user's view of the mapping, the module's counters before and
// after, and the per-page map of what the evidence showed.
import type { DeviceStats, MapMode, Mapping, PageState } from '../device/index.js';
import { eventsOf, type ModuleTraceEvent } from '../evidence/module-trace.js';
import type { Evidence } from './evidence.js';
import type { PageMark } from './types.js';

/** User addresses of pages [0, n) of a mapping. */
export function pageAddresses(m: Mapping, n: number, first = 0): bigint[] {
	return Array.from({ length: n }, (_, i) => m.address + BigInt((first + i) * m.pageSize));
}

/** 0, 1, ... n-1. */
export function indices(n: number, first = 0): number[] {
	return Array.from({ length: n }, (_, i) => first + i);
}

/** The user addresses a zap event covers. */
export function zappedAddresses(events: ModuleTraceEvent[], pageSize: number): bigint[] {
	return eventsOf(events, 'zap').flatMap((z) => Array.from({ length: z.pages }, (_, i) => z.address + BigInt(i * pageSize)));
}

/**
 * The mmap's trace events say what user space saw: one hybridmem_map at the
 * mapping's address with its length and mode, one hybridmem_page per page
 * at vm_start + i * PAGE_SIZE with a PFN of its own (none in fault mode),
 * and a hybridmem_map_end with no error.
 */
export function expectMapTraced(ev: Evidence, events: ModuleTraceEvent[], m: Mapping, pages: number, opts: { eager: boolean; mode: MapMode }): void {
	const starts = eventsOf(events, 'map');
	if (ev.eq('one hybridmem_map event for the mmap', starts.length, 1)) {
		const [start] = starts;
		ev.eq('hybridmem_map: start is the user address', start!.start, m.address);
		ev.eq('hybridmem_map: len is the length', start!.length, m.length);
		ev.eq('hybridmem_map: mode', start!.mode, opts.mode);
	}
	const mapped = eventsOf(events, 'page');
	if (opts.eager) {
		ev.eq('hybridmem_page events: the user pages, in order', mapped.map((e) => e.address), pageAddresses(m, pages));
		ev.eq('hybridmem_page indices', mapped.map((e) => e.index), indices(pages));
		ev.eq('hybridmem_page: a PFN of its own for every page', new Set(mapped.map((e) => e.pfn)).size, pages);
	} else {
		ev.eq('no hybridmem_page event (the first touch maps each page)', mapped.length, 0);
	}
	const ends = eventsOf(events, 'mapEnd');
	ev.eq('hybridmem_map_end: [start, pages mapped, err]', ends.map((e) => [e.start, e.pages, e.error]), [[m.address, opts.eager ? pages : 0, 0]]);
}

/** The kernel log lines of the module that the notes printed, for people who read dmesg: the first few and a count. */
export function notesLines(lines: string[], first = 3): string[] {
	const ours = lines.filter((l) => l.startsWith('hybridmem_test: '));
	if (!ours.length) return [];
	return [`dmesg (${ours.length} lines of the module):`, ...ours.slice(0, first).map((l) => `  ${l}`), ...(ours.length > first ? [`  ... ${ours.length - first} more`] : [])];
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
