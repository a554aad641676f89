// Judges a PFN trace: which physical pages backed a user mapping, whether any
// of them was freed while user space still mapped it (a use-after-free),
// whether two user pages shared one (aliasing), and whether they went back
// to the allocator after the last unmap.
import type { PagemapEntry } from './pagemap.js';
import { markerTime, type PfnTraceLog, type TraceEvent } from './pfn-trace.js';

export interface UserPage {
	/** Page index in the mapping. */
	index: number;
	address: bigint;
	pfn: number;
	/** Where the PFN came from: a mapping API's kprobe, or pagemap. */
	source: string;
	/** When it was mapped (trace seconds); pagemap pages count from the window's start. */
	mappedAt: number;
}

export interface MappingWindow {
	address: bigint;
	length: number;
	/** Process that mapped it (tgid); any when undefined. */
	tgid?: number;
	/** Marker labels: the mapping lives from `from` until `until`. */
	from: string;
	until: string;
	/** Marker after which frees no longer count as "returned" (default: the end of the trace). */
	end?: string;
}

/** One free of a PFN that user pages still mapped. */
export interface FreedWhileMapped {
	pfn: number;
	/** Indices of the user pages mapping that PFN at the time. */
	pages: number[];
	/** Trace time of the free, seconds, and how long after the latest of those pages was mapped. */
	ts: number;
	afterMapUs: number;
	order: number;
	/** Who freed it. */
	comm: string;
	pid: number;
}

export interface Lifecycle {
	/** User pages whose PFN is known. */
	pages: UserPage[];
	/** Distinct PFNs behind them. */
	distinctPfns: number;
	/** PFNs backing more than one user page. */
	aliases: { pfn: number; indices: number[] }[];
	/** Frees of a mapped PFN between its mapping and the unmap. */
	freedWhileMapped: FreedWhileMapped[];
	/** User pages whose PFN was freed while they mapped it. */
	pagesFreedWhileMapped: number[];
	/** Distinct mapped PFNs freed after the unmap marker. */
	returned: number;
	/** Mapped PFNs not freed by the end (kept by the driver, or leaked). */
	notReturned: number[];
	/** Map events the mapping APIs logged in the window (per API). */
	apis: Record<string, number>;
}

/** User pages of `window` from the trace's map events (the PFN-carrying APIs). */
export function pagesFromTrace(log: PfnTraceLog, window: MappingWindow): UserPage[] {
	const start = markerTime(log, window.from) ?? -Infinity;
	const until = markerTime(log, window.until) ?? Infinity;
	const size = BigInt(log.pageSize);
	const end = window.address + BigInt(window.length);
	const out: UserPage[] = [];
	for (const e of log.events) {
		if (e.type !== 'map' || e.pfn === undefined || e.ts < start || e.ts > until) continue;
		if (window.tgid !== undefined && e.tgid !== undefined && e.tgid !== window.tgid) continue;
		for (let i = 0; i < e.pages; i++) {
			const address = e.address + BigInt(i) * size;
			if (address < window.address || address >= end) continue;
			out.push({ index: Number((address - window.address) / size), address, pfn: e.pfn + i, source: `kprobe:${e.api}`, mappedAt: e.ts });
		}
	}
	return out;
}

/**
 * User pages from pagemap entries read while the mapping was alive (normal,
 * refcounted ptes).  Each counts as mapped from the last mapping-API event
 * that covered its address (vm_insert_page, vm_insert_pages), else from
 * `readMarker` (written just before pagemap was read; a page faulted in
 * lazily has no event), else from the window's start: a page freed and
 * reallocated before its mapping is no use-after-free.
 */
export function pagesFromPagemap(entries: PagemapEntry[], window: MappingWindow, log: PfnTraceLog, readMarker?: string): UserPage[] {
	// Without a mapping-API event a page counts from when pagemap was read (it was ours by then), else the window's start.
	const start = (readMarker ? markerTime(log, readMarker) : undefined) ?? markerTime(log, window.from) ?? 0;
	const size = BigInt(log.pageSize);
	const from = markerTime(log, window.from) ?? 0;
	const maps = log.events.filter((e): e is Extract<TraceEvent, { type: 'map' }> => e.type === 'map' && e.ts >= from && (window.tgid === undefined || e.tgid === undefined || e.tgid === window.tgid));
	const mappedAt = (a: bigint) => {
		let at: number | undefined;
		for (const e of maps) if (a >= e.address && a < e.address + BigInt(e.pages) * size) at = Math.max(at ?? 0, e.ts);
		return at ?? start;
	};
	return entries
		.filter((e) => e.pfn !== undefined)
		.map((e) => ({ index: Number((e.address - window.address) / size), address: e.address, pfn: e.pfn!, source: 'pagemap', mappedAt: mappedAt(e.address) }));
}

function apisIn(log: PfnTraceLog, window: MappingWindow): Record<string, number> {
	const start = markerTime(log, window.from) ?? -Infinity;
	const until = markerTime(log, window.until) ?? Infinity;
	const end = window.address + BigInt(window.length);
	const counts: Record<string, number> = {};
	for (const e of log.events)
		if (e.type === 'map' && e.ts >= start && e.ts <= until && e.address >= window.address && e.address < end) counts[e.api] = (counts[e.api] ?? 0) + 1;
	return counts;
}

/** The lifecycle of the given user pages (from the trace, pagemap, or both) over `window`. */
export function analyzeLifecycle(log: PfnTraceLog, window: MappingWindow, pages: UserPage[]): Lifecycle {
	const until = markerTime(log, window.until) ?? Infinity;
	const end = window.end ? markerTime(log, window.end) ?? Infinity : Infinity;
	// The latest mapping of each user page wins (a remap replaces it).
	const byIndex = new Map<number, UserPage>();
	for (const p of pages) {
		const had = byIndex.get(p.index);
		if (!had || p.mappedAt >= had.mappedAt) byIndex.set(p.index, p);
	}
	const userPages = [...byIndex.values()].sort((a, b) => a.index - b.index);
	// Every mapping of a PFN, for frees: a PFN may back a page, be freed, and back another.
	const mappingsOf = new Map<number, UserPage[]>();
	for (const p of pages) mappingsOf.set(p.pfn, [...(mappingsOf.get(p.pfn) ?? []), p]);

	const freed: FreedWhileMapped[] = [];
	const returned = new Set<number>();
	for (const e of log.events) {
		if (e.type !== 'free') continue;
		for (let pfn = e.pfn; pfn < e.pfn + 2 ** e.order; pfn++) {
			const maps = mappingsOf.get(pfn);
			if (!maps) continue;
			if (e.ts >= until) {
				if (e.ts <= end) returned.add(pfn);
				continue;
			}
			const live = maps.filter((p) => e.ts >= p.mappedAt);
			if (!live.length) continue;
			const latest = Math.max(...live.map((p) => p.mappedAt));
			freed.push({ pfn, pages: live.map((p) => p.index), ts: e.ts, afterMapUs: Math.round((e.ts - latest) * 1e6), order: e.order, comm: e.comm, pid: e.pid });
		}
	}
	const users = new Map<number, number[]>();
	for (const p of userPages) users.set(p.pfn, [...(users.get(p.pfn) ?? []), p.index]);
	const aliases = [...users].filter(([, idx]) => idx.length > 1).map(([pfn, indices]) => ({ pfn, indices }));
	const distinct = [...users.keys()];
	return {
		pages: userPages,
		distinctPfns: distinct.length,
		aliases,
		freedWhileMapped: freed,
		pagesFreedWhileMapped: [...new Set(freed.flatMap((f) => f.pages))].sort((a, b) => a - b),
		returned: distinct.filter((p) => returned.has(p)).length,
		notReturned: distinct.filter((p) => !returned.has(p)),
		apis: apisIn(log, window),
	};
}

/** One-line evidence strings for a report. */
export function describeLifecycle(lc: Lifecycle): string[] {
	const hex = (n: number) => `0x${n.toString(16)}`;
	const lines = [`${lc.pages.length} user pages, ${lc.distinctPfns} distinct PFNs (${Object.entries(lc.apis).map(([k, v]) => `${k} x${v}`).join(', ') || 'pagemap'})`];
	if (lc.freedWhileMapped.length)
		lines.push(`${lc.pagesFreedWhileMapped.length} of ${lc.pages.length} user pages had their PFN freed while mapped (${lc.freedWhileMapped.length} frees)`);
	for (const f of lc.freedWhileMapped.slice(0, 8))
		lines.push(`pfn ${hex(f.pfn)} freed by ${f.comm}-${f.pid} at ${f.ts.toFixed(6)} s while mapped at user page${f.pages.length > 1 ? 's' : ''} ${compactRanges(f.pages)}, ${f.afterMapUs} us after the last of them was mapped`);
	if (lc.freedWhileMapped.length > 8) lines.push(`... ${lc.freedWhileMapped.length - 8} more frees while mapped`);
	for (const a of lc.aliases.slice(0, 4)) lines.push(`pfn ${hex(a.pfn)} backs user pages ${compactRanges(a.indices)}`);
	lines.push(`${lc.returned} of ${lc.distinctPfns} PFNs freed after the unmap`);
	return lines;
}

/** "0-3, 7, 9-10" */
export function compactRanges(values: number[]): string {
	const v = [...new Set(values)].sort((a, b) => a - b);
	const out: string[] = [];
	for (let i = 0; i < v.length; i++) {
		let j = i;
		while (j + 1 < v.length && v[j + 1] === v[j]! + 1) j++;
		out.push(j > i ? `${v[i]}-${v[j]}` : `${v[i]}`);
		i = j;
	}
	return out.join(', ');
}

export type { TraceEvent };
