// fork, orphan, partial munmap and threads: the checks that need a process
// Node cannot be (fork with a live mapping, munmap of part of it, threads on
// one mapping).  The C helper (src/check/helper/hm-map-probe.c) gets the
// target's fd as its fd 3 and says what it saw, line by line; the PFN trace
// around it, with the helper's own markers, says what the kernel freed.
import { spawn } from 'node:child_process';
import { analyzeLifecycle, describeLifecycle, pagesFromPagemap, type UserPage } from '../../evidence/lifecycle.js';
import { PfnTrace, type PfnTraceLog } from '../../evidence/pfn-trace.js';
import type { Check, CheckEnv, CheckResult, CheckTarget, OpenedTarget } from '../types.js';
import { result } from '../types.js';
import { withOpened } from './common.js';

interface HelperRun {
	lines: string[];
	fields: Map<string, string>;
	exitCode: number | null;
	ok: boolean;
	why: string;
}

/** Runs the helper on the target's fd; resolves when every process holding its stdout (an orphaned child too) is gone. */
function runHelper(env: CheckEnv, o: OpenedTarget, pageSize: number, args: string[], extraEnv: Record<string, string> = {}): Promise<HelperRun> {
	const helper = env.helper;
	if (!helper) throw Object.assign(new Error('the C helper hm-map-probe is not built'), { code: 'ERR_NO_HELPER' });
	return new Promise((resolve, reject) => {
		const child = spawn(helper, [args[0]!, '3', String(o.offset), String(o.length), String(pageSize), ...args.slice(1)], {
			stdio: ['ignore', 'pipe', 'pipe', o.device.fd],
			env: { ...process.env, ...extraEnv },
		});
		let out = '';
		let exitCode: number | null = null;
		const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
		child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
		child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
		child.on('error', reject);
		child.on('exit', (code) => (exitCode = code));
		child.stdout!.on('close', () => {
			clearTimeout(timer);
			const lines = out.split('\n').filter(Boolean);
			const fields = new Map<string, string>();
			for (const l of lines) {
				const m = /^([\w-]+): (.*)$/.exec(l);
				if (m) fields.set(m[1]!, m[2]!);
			}
			const res = fields.get('result') ?? 'fail no result line';
			resolve({ lines, fields, exitCode, ok: res === 'ok', why: res.replace(/^fail /, '') });
		});
	});
}

/** User pages of the helper's mapping: kprobe events of its processes, else the PFNs it read from pagemap. */
function helperPages(log: PfnTraceLog, run: HelperRun, pageSize: number, length: number): UserPage[] {
	const out: UserPage[] = [];
	const at = BigInt(run.fields.get('mapped-at') ?? '0');
	for (const e of log.events) {
		if (e.type !== 'map' || e.pfn === undefined || e.address < at || e.address >= at + BigInt(length)) continue;
		for (let i = 0; i < e.pages; i++) out.push({ index: Number((e.address - at) / BigInt(pageSize)) + i, address: e.address + BigInt(i * pageSize), pfn: e.pfn + i, source: `kprobe:${e.api}`, mappedAt: e.ts });
	}
	if (out.length) return out;
	// Normal ptes: the PFNs the helper read from its own pagemap.
	const entries = (run.fields.get('pfns-parent') ?? '').trim().split(/\s+/).map((p, i) => ({
		address: at + BigInt(i * pageSize),
		present: /^[0-9a-f]+$/.test(p),
		swapped: false,
		...(/^[0-9a-f]+$/.test(p) ? { pfn: parseInt(p, 16) } : {}),
		exclusive: false,
		fileOrShared: true,
	}));
	return pagesFromPagemap(entries, { address: at, length: entries.length * pageSize, from: 'map', until: 'unmap' }, log, 'pagemap');
}

async function tracedHelper(t: CheckTarget, env: CheckEnv, o: OpenedTarget, args: string[]): Promise<{ run: HelperRun; log: PfnTraceLog; evidence: string[]; freed: number }> {
	const trace = await PfnTrace.start({ pageSize: t.pageSize });
	let run: HelperRun;
	let log: PfnTraceLog;
	try {
		trace.mark('map');
		run = await runHelper(env, o, t.pageSize, args, { HM_TRACE_MARKER: trace.markerFile });
		trace.mark('end');
	} finally {
		log = trace.stop();
	}
	const at = BigInt(run.fields.get('mapped-at') ?? '0');
	const window = { address: at, length: o.length, from: 'map', until: 'unmap', end: 'end' };
	const lc = analyzeLifecycle(log, window, helperPages(log, run, t.pageSize, o.length));
	const evidence = [...run.lines.filter((l) => !l.startsWith('pfns-')), ...(lc.pages.length ? describeLifecycle(lc) : ['no PFN of the helper\'s mapping was visible to the trace'])];
	return { run, log, evidence, freed: lc.freedWhileMapped.length ? lc.pagesFreedWhileMapped.length : 0 };
}

/** The helper could not map the target at all: nothing was checked. */
function mmapFailed(check: Pick<Check, 'name' | 'category'>, run: HelperRun, evidence: string[]): CheckResult | undefined {
	return run.why.startsWith('mmap ') ? result(check, 'skip', `not run: the target's mmap failed (${run.why.slice(5)})`, evidence) : undefined;
}

function needHelper(check: Pick<Check, 'name' | 'category'>, t: CheckTarget, env: CheckEnv): CheckResult | undefined {
	if (!env.helper) return result(check, 'skip', 'the C helper hm-map-probe is not built (hybridmem build builds it; it needs a C compiler)');
	if (t.expect.readOnly) return result(check, 'skip', 'the target maps read-only; the helper writes');
	return undefined;
}

export const forkShared: Check = {
	name: 'fork-shared-both-ways',
	category: 'fork',
	async run(t, env) {
		const skip = needHelper(this, t, env);
		if (skip) return skip;
		return withOpened(t, async (o) => {
			const { run, evidence, freed } = await tracedHelper(t, env, o, ['fork']);
			const refused = mmapFailed(this, run, evidence);
			if (refused) return [refused, { ...refused, name: 'use-after-free-fork-child-exit', category: 'use-after-free' }];
			const results: CheckResult[] = [];
			results.push(
				run.ok
					? result(this, 'pass', 'a write before fork is seen by the child, the child\'s write by the parent, and the parent\'s pages outlive the child', evidence)
					: result(this, env.dataTrusted === false ? 'info' : 'fail', env.dataTrusted === false ? `${run.why} (not judged: data-round-trip failed, so contents are not reliable)` : run.why, evidence),
			);
			const uaf = { name: 'use-after-free-fork-child-exit', category: 'use-after-free' as const };
			results.push(
				freed
					? result(uaf, 'fail', `the child's exit freed ${freed} pages the parent still mapped (vm_ops->open missing or not taking a reference?)`, evidence)
					: result(uaf, 'pass', 'fork, child exit: no mapped PFN freed while the parent mapped it', evidence),
			);
			return results;
		});
	},
};

export const orphanChild: Check = {
	name: 'use-after-free-parent-exit',
	category: 'use-after-free',
	async run(t, env) {
		const skip = needHelper(this, t, env);
		if (skip) return skip;
		return withOpened(t, async (o) => {
			const { run, evidence, freed } = await tracedHelper(t, env, o, ['orphan']);
			const refused = mmapFailed(this, run, evidence);
			if (refused) return refused;
			if (freed) return result(this, 'fail', `after the parent unmapped, closed and exited, ${freed} pages the child still mapped were freed`, evidence);
			if (!run.ok && env.dataTrusted === false) return result(this, 'info', `${run.why} (not judged: data-round-trip failed)`, evidence);
			if (!run.ok) return result(this, 'fail', run.why, evidence);
			return result(this, 'pass', 'the parent unmapped, closed and exited; the child\'s mapping kept its pages and data', evidence);
		});
	},
};

/**
 * A helper command under the PFN trace: skipped without the helper or on a
 * read-only target, skipped when its mmap failed, a use-after-free when a
 * page it still mapped was freed (whatever step showed it), else `judge`.
 */
function tracedHelperCheck(
	check: Pick<Check, 'name' | 'category'>,
	t: CheckTarget,
	env: CheckEnv,
	args: string[],
	uaf: { name: string; what: string },
	judge: (run: HelperRun, evidence: string[]) => CheckResult,
): Promise<CheckResult> {
	const skip = needHelper(check, t, env);
	if (skip) return Promise.resolve(skip);
	return withOpened(t, async (o) => {
		const { run, evidence, freed } = await tracedHelper(t, env, o, args);
		const refused = mmapFailed(check, run, evidence);
		if (refused) return refused;
		if (freed) return result({ name: uaf.name, category: 'use-after-free' }, 'fail', `${freed} pages were freed ${uaf.what}`, evidence);
		if (!run.ok && env.dataTrusted === false) return result(check, 'info', `${run.why} (not judged: data-round-trip failed)`, evidence);
		if (!run.ok) return result(check, 'fail', run.why, evidence);
		return judge(run, evidence);
	});
}

/** A helper command without the trace (its own result is the verdict): skipped as above, else `says` on success. */
function helperCheck(check: Pick<Check, 'name' | 'category'>, t: CheckTarget, env: CheckEnv, args: string[], says: (run: HelperRun) => string): Promise<CheckResult> {
	const skip = needHelper(check, t, env);
	if (skip) return Promise.resolve(skip);
	return withOpened(t, async (o) => {
		const run = await runHelper(env, o, t.pageSize, args);
		const refused = mmapFailed(check, run, run.lines);
		if (refused) return refused;
		if (!run.ok) return result(check, 'fail', run.why, run.lines);
		return result(check, 'pass', says(run), run.lines);
	});
}

export const partialMunmap: Check = {
	name: 'bounds-partial-munmap',
	category: 'bounds',
	async run(t, env) {
		if (!needHelper(this, t, env) && t.pageSize * 3 > (await withOpened(t, (o) => o.length))) return result(this, 'skip', 'the mapping has fewer than 3 pages');
		return tracedHelperCheck(this, t, env, ['partial'], { name: 'use-after-free-partial-munmap', what: 'while the rest of a partially unmapped mapping still mapped them' }, (run, evidence) =>
			result(this, 'pass', `munmap of the head, middle and tail pages left the other ${run.fields.get('pages-intact') ?? '?'} pages intact`, evidence),
		);
	},
};

export const threads: Check = {
	name: 'concurrency-threads',
	category: 'concurrency',
	run(t, env) {
		return helperCheck(this, t, env, ['threads', '4', '500'], (run) =>
			`4 threads touched the mapping ${run.fields.get('touches')} times while the main thread mapped and unmapped it ${run.fields.get('map-unmap-cycles')} times: no lost write`,
		);
	},
};

export const mremapMoved: Check = {
	name: 'bounds-mremap-move',
	category: 'bounds',
	run(t, env) {
		return tracedHelperCheck(this, t, env, ['mremap'], { name: 'use-after-free-mremap-move', what: 'while the moved mapping still mapped them' }, (run, evidence) => {
			const move = run.fields.get('mremap-move') ?? '?';
			return result(this, 'pass', move.startsWith('refused') ? `mremap move ${move}` : 'mremap moved the mapping with its contents intact', evidence);
		});
	},
};

export const dontNeed: Check = {
	name: 'data-madvise-dontneed',
	category: 'data',
	run(t, env) {
		// Refault of the same pages, zero pages or SIGBUS: each is some driver's design, so this is reported, not judged.
		return tracedHelperCheck(this, t, env, ['dontneed'], { name: 'use-after-free-madvise-dontneed', what: 'by MADV_DONTNEED while the driver still owned them' }, (run, evidence) =>
			result(this, 'info', `after madvise(MADV_DONTNEED): ${run.fields.get('after-dontneed') ?? run.why} (madvise: ${run.fields.get('madvise-dontneed') ?? '?'})`, evidence),
		);
	},
};

export const processes: Check = {
	name: 'concurrency-processes',
	category: 'concurrency',
	run(t, env) {
		// The helper says "mmap in every process" when no process could map: a skip, as for one process.
		return helperCheck(this, t, env, ['procs', '4', '300'], () => '4 processes mapped the target at once and wrote their own words of every page for 300 ms: no lost write');
	},
};
