// The invariants a stress run checks, during it (after every program) and
// at its end: no kernel report in the log, no task stuck in D state, the
// executor ran to its end, the module's live_pages back to 0, free pages
// back to their baseline within a threshold, and rmmod works.
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import type { KmsgRecord } from '../kmsg/record.js';
import { parseRecords } from '../kmsg/parse.js';
import { findPoisonReports } from '../evidence/page-poison.js';
import { freePages } from '../evidence/free-pages.js';
import type { ExecResult } from './executor.js';

export type Invariant = 'kernel-log' | 'd-state' | 'executor' | 'live-pages' | 'free-pages' | 'rmmod';

export interface Violation {
	invariant: Invariant;
	summary: string;
	evidence: string[];
	/** The kernel oopsed (a task died in the kernel): what runs after it runs in a damaged kernel. */
	fatal?: boolean;
}

const SLUB_REPORT = /^BUG (\S+) \((?:Not tainted|Tainted:[^)]*)\): (.+)$/;
const FATAL_KINDS = new Set(['BUG', 'page-fault', 'null-deref', 'gpf', 'panic', 'lockup']);

/** WARN, BUG, Oops, Bad page, rss-counter, lockdep, hung task and page-poison reports among the records. */
export function kernelLogViolations(records: readonly KmsgRecord[]): Violation[] {
	const lines = records.map((r) => r.text);
	const poison = findPoisonReports(lines).map((p) => `${p.headline} (pfn ${p.pfn !== undefined ? `0x${p.pfn.toString(16)}` : '?'}, ${p.bytes.length} bytes)`);
	// Poison reports come whole from findPoisonReports; the parser's pagealloc lines are the same reports.
	const reports = parseRecords(records).reports.filter((r) => r.kind !== 'trace' && !/^pagealloc:/.test(r.headline));
	// SLUB debug's own reports ("BUG kmalloc-64 (Tainted: ...): Poison overwritten"), which the report parser does not open.
	const slab = lines.flatMap((l) => {
		const m = SLUB_REPORT.exec(l);
		return m ? [`slab ${m[1]}: ${m[2]}`] : [];
	});
	const evidence = [...reports.map((r) => `${r.headline}${r.function ? ` in ${r.function}` : ''}${r.module ? ` [${r.module}]` : ''}`), ...poison, ...slab];
	if (!evidence.length) return [];
	// The first lines of the first report, as logged.
	const first = reports[0];
	const raw = first ? lines.filter((l) => l.includes(first.headline.slice(0, 40))).slice(0, 1) : [];
	const fatal = reports.some((r) => FATAL_KINDS.has(r.kind) && !/^BUG: Bad (page|rss)/.test(r.headline));
	return [{ invariant: 'kernel-log', ...(fatal ? { fatal } : {}), summary: `${evidence.length} kernel report(s): ${evidence.slice(0, 2).join(' | ')}`, evidence: [...evidence.slice(0, 10), ...raw, ...(first?.frames ?? []).slice(0, 6).map((f) => `  ${f.fn}+0x${f.offset.toString(16)}${f.module ? ` [${f.module}]` : ''}`)] }];
}

export function executorViolations(r: ExecResult): Violation[] {
	const out: Violation[] = [];
	if (r.stuck.length) out.push({ invariant: 'd-state', summary: r.stuck[0]!, evidence: r.stuck });
	if (r.timedOut) out.push({ invariant: 'd-state', summary: 'the program did not finish within its timeout', evidence: r.notes.slice(0, 10) });
	else if (r.exitCode !== 0) out.push({ invariant: 'executor', summary: `hm-stress exited ${r.exitCode}: ${r.notes.slice(0, 2).join(' | ')}`, evidence: r.notes.slice(0, 10) });
	return out;
}

export function readCounter(sysfsDir: string, name: string): number | undefined {
	const f = `${sysfsDir}/${name}`;
	return existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : undefined;
}

/**
 * live_pages once every process of the program is gone: back to what it was
 * before the program (`before`, 0 at the start and end of a run), waited for
 * up to waitMs (exit teardown ends before wait() returns; this covers
 * deferred work).  Relative, so a program after a leaky one is judged alone.
 */
export async function livePagesViolation(sysfsDir: string, before = 0, waitMs = 500): Promise<{ live: number | undefined; violation?: Violation }> {
	let live = readCounter(sysfsDir, 'live_pages');
	for (let waited = 0; live !== undefined && live > before && waited < waitMs; waited += 50) {
		await new Promise((r) => setTimeout(r, 50));
		live = readCounter(sysfsDir, 'live_pages');
	}
	if (live === undefined) return { live, violation: { invariant: 'live-pages', summary: `${sysfsDir}/live_pages is not there`, evidence: [] } };
	if (live > before)
		return {
			live,
			violation: { invariant: 'live-pages', summary: `live_pages ${live} after every process exited (want ${before}, as before)`, evidence: ['live_pages', 'live_mappings', 'maps', 'frees'].map((n) => `${n} ${readCounter(sysfsDir, n)}`) },
		};
	return { live };
}

/** Free pages now, once they stopped rising (RCU-deferred frees come back within a second or so). */
export async function settledFreePages(): Promise<number> {
	let best = freePages();
	for (let i = 0; i < 20; i++) {
		await new Promise((r) => setTimeout(r, 100));
		const now = freePages();
		if (now <= best) break;
		best = now;
	}
	return best;
}

export interface FreePagesVerdict {
	baseline: number;
	after: number;
	/** The stress process's own anonymous resident growth, subtracted. */
	ownGrowth: number;
	missing: number;
	threshold: number;
	violation?: Violation;
}

/**
 * Free pages after the run (module unloaded) against before it (module not
 * yet loaded), the page cache dropped both times.  Threshold: the stated
 * slack for slab caches and page tables the kernel keeps after a burst of
 * processes (measured on the correct module: see the README), and at least
 * that many pages of the module's would have to be lost.
 */
export function judgeFreePages(baseline: number, after: number, ownGrowth: number, threshold: number): FreePagesVerdict {
	const missing = baseline - after - ownGrowth;
	const v: FreePagesVerdict = { baseline, after, ownGrowth, missing, threshold };
	if (missing > threshold)
		v.violation = { invariant: 'free-pages', summary: `${missing} pages fewer free after the run than before it (threshold ${threshold})`, evidence: [`free pages before ${baseline}, after ${after}; the stress process's own resident pages grew by ${ownGrowth}`] };
	return v;
}

export async function rmmodViolation(name: string): Promise<Violation | undefined> {
	const r = await execa('rmmod', [name], { reject: false, all: true });
	if (r.exitCode === 0 && !existsSync(`/sys/module/${name}`)) return undefined;
	return { invariant: 'rmmod', summary: `rmmod ${name} failed: ${(r.all ?? '').trim()}`, evidence: [(r.all ?? '').trim(), `refcnt ${existsSync(`/sys/module/${name}/refcnt`) ? readFileSync(`/sys/module/${name}/refcnt`, 'utf8').trim() : '?'}`] };
}
