// Leak accounting for any driver: free memory before and after many
// map/unmap cycles.  Free pages are counted as the buddy allocator's free
// pages plus those waiting on per-CPU lists (/proc/zoneinfo "pages free" and
// each pageset's "count"), so a page parked on a per-CPU list after a free
// counts as free; /proc/vmstat's nr_free_pages alone does not.
import { readFileSync } from 'node:fs';

/** Free pages in every zone, per-CPU lists included. */
export function freePages(zoneinfo = readFileSync('/proc/zoneinfo', 'utf8')): number {
	let total = 0;
	for (const m of zoneinfo.matchAll(/^\s+pages free\s+(\d+)$/gm)) total += Number(m[1]);
	for (const m of zoneinfo.matchAll(/^\s+count:\s+(\d+)$/gm)) total += Number(m[1]);
	return total;
}

export interface LeakMeasure {
	cycles: number;
	/** Free pages before the first and after the last cycle. */
	before: number;
	after: number;
	/**
	 * Pages one cycle did not give back: the median of the per-cycle drops,
	 * so the caller's own occasional growth (a heap expanding, a slab filling)
	 * does not count, while a steady loss of every cycle does.
	 */
	perCycle: number;
	/** (before - after) / cycles, for comparison. */
	meanPerCycle: number;
	/** Free pages after each cycle. */
	samples: number[];
}

function median(values: number[]): number {
	const v = [...values].sort((a, b) => a - b);
	if (!v.length) return 0;
	const mid = v.length >> 1;
	return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * Runs `cycle` `cycles` times after `warmup` unmeasured ones (so caches and
 * the caller's own heap settle) and reports the pages not given back.
 */
export async function measureFreePages(cycle: (i: number) => unknown, opts: { cycles?: number; warmup?: number } = {}): Promise<LeakMeasure> {
	const cycles = opts.cycles ?? 32;
	for (let i = 0; i < (opts.warmup ?? 8); i++) await cycle(-1 - i);
	const before = freePages();
	const samples: number[] = [];
	for (let i = 0; i < cycles; i++) {
		await cycle(i);
		samples.push(freePages());
	}
	const after = samples[samples.length - 1] ?? before;
	const drops = samples.map((v, i) => (i === 0 ? before : samples[i - 1]!) - v);
	return { cycles, before, after, perCycle: median(drops), meanPerCycle: (before - after) / cycles, samples };
}

export interface LeakVerdict {
	/** Pages per cycle not given back, by the measure. */
	perCycle: number;
	/** |pages per cycle| of the leak-free baseline, and the threshold derived from it. */
	noise: number;
	threshold: number;
	leaks: boolean;
}

/**
 * A leak is a loss per cycle above the threshold: four times what a leak-free
 * baseline measured the same way lost, and at least half a page per cycle.
 */
export function judgeLeak(measure: LeakMeasure, baseline: LeakMeasure): LeakVerdict {
	const noise = Math.abs(baseline.perCycle);
	const threshold = Math.max(0.5, 4 * noise);
	return { perCycle: measure.perCycle, noise, threshold, leaks: measure.perCycle > threshold };
}
