// Whether a guest kernel is still as clean as when it booted, so that a warm
// guest may run the next scenarios: the module unloaded (and no other module
// left behind), no new kernel-log report, no new taint, none of the module's
// pages or mappings alive, and free pages back where they were.  Every check is a
// measurement against a baseline taken in the same kernel; the proof lists
// each one with its numbers, and any one failing makes the guest dirty.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseRecords } from '../kmsg/parse.js';
import { readKernelLog } from '../kmsg/reader.js';
import { freePages, residentPages } from '../evidence/free-pages.js';
import { MODULE_NAME } from '../setup/paths.js';

/**
 * Taint bits that loading the test module sets by design (O: out-of-tree,
 * E: unsigned), once, on its first load: they say nothing about the run.
 */
export const EXPECTED_TAINT = (1 << 12) | (1 << 13);

/**
 * Pages a clean run may leave short of the baseline, after caches were
 * dropped and the agent's own heap growth was subtracted: slab and per-CPU
 * caches settle at slightly different sizes.  bench/loop.mjs prints each
 * warm run's delta (README "fast loop"): a few dozen pages, but 446 once in
 * a run whose agent heap grew by 2023 pages, which discarded that guest at
 * a slack of 256.  A driver leaking one 4 KiB page per map shows up after
 * 1024 maps; the module's own live_pages counter catches the test module's.
 */
export const FREE_SLACK_PAGES = 1024;

/**
 * The first run in a fresh guest allocates once what later runs reuse (the
 * module loader's and the addon's first use, slab caches growing): measured
 * at about 660 pages.  That run's free pages may come back this much short;
 * the pages free after it become the baseline of every later run.
 */
export const FIRST_RUN_SLACK_PAGES = 2048;

export interface CleanBaseline {
	modules: string[];
	taint: number;
	/** Sequence number of the last kernel-log record when the baseline was taken. */
	lastSeq: number;
	/** Free pages (buddy and per-CPU lists, evidence/free-pages.ts) after dropping caches. */
	freePages: number;
	/** The agent's own anonymous resident pages and page tables then: its heap grows as it runs scenarios. */
	residentPages: number;
	/** Set once a run's end replaced the boot's free-page figures (see FIRST_RUN_SLACK_PAGES). */
	settled?: boolean;
}

export interface ProofCheck {
	name: string;
	ok: boolean;
	detail: string;
}

export interface CleanProof {
	clean: boolean;
	checks: ProofCheck[];
	/** The next baseline: the same as before except for the log position. */
	next: CleanBaseline;
}

/** The names in /proc/modules, sorted. */
export function loadedModules(): string[] {
	return readFileSync('/proc/modules', 'utf8')
		.split('\n')
		.filter(Boolean)
		.map((l) => l.split(' ')[0]!)
		.sort();
}

function taint(): number {
	return Number(readFileSync('/proc/sys/kernel/tainted', 'utf8').trim());
}

function dropCaches(): void {
	try {
		writeFileSync('/proc/sys/vm/drop_caches', '3');
	} catch {
		/* not root: free memory is then compared with the page cache in it, which the slack has to cover */
	}
}

async function lastSeq(): Promise<number> {
	const { records } = await readKernelLog({ source: 'kmsg' });
	return records.length ? records[records.length - 1]!.seq : -1;
}

/** The state a clean guest is compared with; taken at boot, before any scenario. */
/** This process's anonymous resident pages plus its page-table pages (which grow with its heap). */
function ownPages(): number {
	const m = /^VmPTE:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
	return residentPages() + (m ? Math.ceil(Number(m[1]) / 4) : 0);
}

export async function takeBaseline(): Promise<CleanBaseline> {
	dropCaches();
	return { modules: loadedModules(), taint: taint(), lastSeq: await lastSeq(), freePages: freePages(), residentPages: ownPages() };
}

export interface ProveOptions {
	/** The module's live_pages and live_mappings, read before it was unloaded. */
	live?: { pages: bigint; mappings: bigint };
}

/** Compares the kernel now with `base`; call it after the module was unloaded. */
export async function proveClean(base: CleanBaseline, opts: ProveOptions = {}): Promise<CleanProof> {
	const checks: ProofCheck[] = [];
	const mods = loadedModules();
	const ours = mods.includes(MODULE_NAME);
	const added = mods.filter((m) => !base.modules.includes(m));
	const gone = base.modules.filter((m) => !mods.includes(m));
	checks.push({
		name: 'module unloaded',
		ok: !ours && added.length === 0 && gone.length === 0,
		detail: ours ? `${MODULE_NAME} is still loaded` : added.length || gone.length ? `modules added: ${added.join(',') || 'none'}; gone: ${gone.join(',') || 'none'}` : `/proc/modules as at boot (${mods.length} modules)`,
	});
	if (opts.live) {
		const { pages, mappings } = opts.live;
		checks.push({ name: 'live pages zero', ok: pages === 0n && mappings === 0n, detail: `live_pages ${pages}, live_mappings ${mappings} before unloading` });
	}
	const { records, lost } = await readKernelLog({ source: 'kmsg' });
	const fresh = records.filter((r) => r.seq > base.lastSeq);
	const reports = parseRecords(fresh).reports;
	checks.push({
		name: 'no kernel-log report',
		ok: reports.length === 0 && lost === 0,
		detail: reports.length
			? `${reports.length} new report${reports.length > 1 ? 's' : ''}: ${reports.map((r) => r.headline).join(' | ')}`
			: lost
				? `${lost} records were overwritten before they could be read`
				: `none in ${fresh.length} new records`,
	});
	const t = taint();
	const newBits = (t & ~base.taint) & ~EXPECTED_TAINT;
	checks.push({ name: 'taint unchanged', ok: newBits === 0, detail: newBits ? `new taint bits 0x${newBits.toString(16)} (tainted ${t}, was ${base.taint})` : `tainted ${t} (at boot ${base.taint}; O and E come with the first load of the test module)` });
	dropCaches();
	const free = freePages();
	const grown = ownPages() - base.residentPages;
	const missing = base.freePages - free - grown;
	const slack = base.settled ? FREE_SLACK_PAGES : FIRST_RUN_SLACK_PAGES;
	checks.push({
		name: 'free pages back',
		ok: missing <= slack,
		detail: `${missing} pages short of the ${base.settled ? 'baseline' : 'boot baseline (first run)'} (free ${free}, baseline ${base.freePages}, agent heap grown by ${grown}; slack ${slack})`,
	});
	const lastRecord = records.length ? records[records.length - 1]!.seq : base.lastSeq;
	const next = base.settled ? { ...base, lastSeq: lastRecord } : { ...base, lastSeq: lastRecord, freePages: free, residentPages: ownPages(), settled: true };
	return { clean: checks.every((c) => c.ok), checks, next };
}
