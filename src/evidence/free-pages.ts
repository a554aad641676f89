// Leak accounting for any driver: free memory before and after many
// map/unmap cycles.  Free pages are counted as the buddy allocator's free
// pages plus those waiting on per-CPU lists (/proc/zoneinfo "pages free" and
// each pageset's "count"), so a page parked on a per-CPU list after a free
// counts as free; /proc/vmstat's nr_free_pages alone does not.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

const NEEDLES = [Buffer.from('pages free'), Buffer.from('count:')];
let scratch = Buffer.alloc(256 * 1024);

/** Sum of the integers after each needle in zoneinfo text, read without allocating on the JS heap. */
function sumFields(buf: Buffer, length: number): number {
	let total = 0;
	for (const needle of NEEDLES) {
		let at = buf.indexOf(needle, 0);
		while (at >= 0 && at < length) {
			let i = at + needle.length;
			while (i < length && buf[i] === 0x20) i++;
			let n = 0;
			while (i < length && buf[i]! >= 0x30 && buf[i]! <= 0x39) n = n * 10 + (buf[i++]! - 0x30);
			total += n;
			at = buf.indexOf(needle, i);
		}
	}
	return total;
}

let canRefresh = true;

/**
 * Zone counters lag behind: each CPU keeps a differential of up to its
 * stat_threshold pages and folds it in about once a second.  Writing
 * /proc/sys/vm/stat_refresh (root) folds them all now.
 */
function refreshVmStats(): void {
	if (!canRefresh) return;
	try {
		const fd = openSync('/proc/sys/vm/stat_refresh', 'w');
		try {
			writeSync(fd, '1');
		} finally {
			closeSync(fd);
		}
	} catch {
		canRefresh = false; // not root: counts may lag by up to the thresholds
	}
}

/**
 * Free pages in every zone, per-CPU lists included, per-CPU counter
 * differentials folded in first.  Sampling must not
 * disturb what it measures: the file is read into a buffer kept between
 * calls and parsed in place, so a sample allocates nothing on the JS heap.
 */
export function freePages(zoneinfo?: string): number {
	if (zoneinfo !== undefined) {
		const b = Buffer.from(zoneinfo);
		return sumFields(b, b.length);
	}
	refreshVmStats();
	for (;;) {
		const fd = openSync('/proc/zoneinfo', 'r');
		let length = 0;
		try {
			for (let n; length < scratch.length && (n = readSync(fd, scratch, length, scratch.length - length, null)) > 0; ) length += n;
		} finally {
			closeSync(fd);
		}
		if (length < scratch.length) return sumFields(scratch, length);
		scratch = Buffer.alloc(scratch.length * 2); // many zones or CPUs: read again, whole
	}
}

/**
 * Anonymous resident pages of this process: statm's resident less shared
 * (file-backed) pages.  File pages mostly come from the page cache, allocated
 * long before; new anonymous pages are what this process's own heap took.
 */
export function residentPages(): number {
	const fd = openSync('/proc/self/statm', 'r');
	try {
		const n = readSync(fd, scratch, 0, 128, 0);
		const fields: number[] = [];
		let v = 0;
		for (let i = 0; i <= n && fields.length < 3; i++) {
			const c = i < n ? scratch[i]! : 0x20;
			if (c >= 0x30 && c <= 0x39) v = v * 10 + (c - 0x30);
			else {
				fields.push(v);
				v = 0;
			}
		}
		return (fields[1] ?? 0) - (fields[2] ?? 0); // resident - shared
	} finally {
		closeSync(fd);
	}
}

export interface LeakMeasure {
	cycles: number;
	/** Free pages before the first and after the last cycle. */
	before: number;
	after: number;
	/** This process's anonymous resident pages before and after (its own heap grows while it measures). */
	residentBefore: number;
	residentAfter: number;
	/**
	 * Pages each cycle did not give back, less this process's own growth:
	 * ((before - after) - (residentAfter - residentBefore)) / cycles.
	 */
	perCycle: number;
	/** Kernel-attributable pages missing after each sample, from the start. */
	samples: number[];
	/** Cycles between samples. */
	cyclesPerSample: number;
	/**
	 * Pages per cycle over the second half of the cycles only: a leak keeps
	 * growing at the same rate, a cache that fills once (slab, page cache of
	 * a file read late) does not.
	 */
	latePerCycle: number;
}

/**
 * Runs `cycle` `cycles` times after `warmup` unmeasured ones and reports the
 * pages not given back.  What this process itself holds more at the end
 * (the JS heap growing, files mapped) is subtracted: the measure is of pages
 * the kernel kept.
 */
export async function measureFreePages(
	cycle: (i: number) => unknown,
	opts: { cycles?: number; warmup?: number; cyclesPerSample?: number; settleMs?: number } = {},
): Promise<LeakMeasure> {
	const cycles = opts.cycles ?? 32;
	const per = opts.cyclesPerSample ?? 4;
	// Memory the kernel frees late (RCU-deferred page tables and slab
	// objects, kfree_rcu batches every 20 ms) is back after a short idle.
	const settle = () => new Promise((resolve) => setTimeout(resolve, opts.settleMs ?? 50));
	for (let i = 0; i < (opts.warmup ?? 8); i++) await cycle(-1 - i);
	await settle();
	const before = freePages();
	const residentBefore = residentPages();
	const samples: number[] = [];
	let after = before;
	let residentAfter = residentBefore;
	for (let i = 0; i < cycles; i++) {
		await cycle(i);
		if ((i + 1) % per === 0 || i === cycles - 1) {
			await settle();
			after = freePages();
			residentAfter = residentPages();
			samples.push(before - after - (residentAfter - residentBefore));
		}
	}
	// Frees a driver defers to a worker (GEM objects, RCU) come back within a
	// second: the last sample is the one after the count stopped rising.
	for (let i = 0; i < 20; i++) {
		await settle();
		const now = freePages();
		if (now <= after) break;
		after = now;
		residentAfter = residentPages();
		samples[samples.length - 1] = before - after - (residentAfter - residentBefore);
	}
	const last = samples.length - 1;
	const mid = Math.floor(last / 2);
	const lateCycles = Math.min(cycles, (last + 1) * per) - (mid + 1) * per;
	const latePerCycle = lateCycles > 0 ? ((samples[last] ?? 0) - (samples[mid] ?? 0)) / lateCycles : (samples[last] ?? 0) / cycles;
	return { cycles, before, after, residentBefore, residentAfter, perCycle: (samples[last] ?? 0) / cycles, samples, cyclesPerSample: per, latePerCycle };
}

export interface LeakVerdict {
	/** Pages per cycle not given back, by the measure. */
	perCycle: number;
	/** The same over the second half of the cycles. */
	latePerCycle: number;
	/** |pages per cycle| of the leak-free baseline, and the threshold derived from it. */
	noise: number;
	threshold: number;
	leaks: boolean;
}

/**
 * A leak is a loss per cycle above the threshold (four times what a
 * leak-free baseline measured the same way lost, and at least half a page per
 * cycle), over all the cycles and still over their second half: a one-off
 * step (a slab or page cache filling once) is not a loss per cycle.
 */
export function judgeLeak(measure: LeakMeasure, baseline: LeakMeasure): LeakVerdict {
	const noise = Math.abs(baseline.perCycle);
	const threshold = Math.max(0.5, 4 * noise);
	return { perCycle: measure.perCycle, latePerCycle: measure.latePerCycle, noise, threshold, leaks: measure.perCycle > threshold && measure.latePerCycle > threshold };
}
