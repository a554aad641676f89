// Builds hm-stress (the C executor: node cannot fork with a live mapping)
// into the per-user cache, and runs one program with it while watching its
// tasks for D state.
import { execa, type Options } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { KMOD_SOURCE_DIR, PACKAGE_ROOT } from '../setup/paths.js';
import { startCapture } from '../kmsg/reader.js';
import { cachePath, hashKey } from '../vm/cache.js';

export const EXECUTOR_SOURCE = path.join(PACKAGE_ROOT, 'src', 'stress', 'executor', 'hm-stress.c');
const UAPI = path.join(KMOD_SOURCE_DIR, 'hybridmem_uapi.h');

/** The built executor, named by its sources' content (the guest sees the same cache). */
export function executorBinary(): string {
	const key = hashKey(existsSync(EXECUTOR_SOURCE) ? readFileSync(EXECUTOR_SOURCE) : '', existsSync(UAPI) ? readFileSync(UAPI) : '');
	return path.join(cachePath(), 'stress', key, 'hm-stress');
}

export async function buildExecutor(): Promise<string> {
	const binary = executorBinary();
	if (existsSync(binary)) return binary;
	mkdirSync(path.dirname(binary), { recursive: true });
	const work = `${binary}.${process.pid}.tmp`;
	const r = await execa('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-I', KMOD_SOURCE_DIR, '-o', work, EXECUTOR_SOURCE], { reject: false, all: true });
	if (r.exitCode !== 0) throw Object.assign(new Error(`building the stress executor failed (it needs a C compiler: apt-get install gcc):\n${r.all ?? ''}`), { code: 'ERR_BUILD' });
	renameSync(work, binary);
	return binary;
}

export interface ExecResult {
	exitCode: number;
	/** op -> outcome (ok, an errno name, SIGBUS, SIGSEGV) -> count. */
	counts: Record<string, Record<string, number>>;
	/** Lines other than counts (a process killed by a signal, the executor's own errors). */
	notes: string[];
	durationMs: number;
	/** Tasks seen in D state longer than the bound: "pid comm ms". */
	stuck: string[];
	timedOut: boolean;
}

/** Tasks in D state now: pid -> comm. */
function tasksInD(): Map<number, string> {
	const out = new Map<number, string>();
	for (const name of readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) continue;
		try {
			const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
			const close = stat.lastIndexOf(')');
			if (stat[close + 2] === 'D') out.set(Number(name), stat.slice(stat.indexOf('(') + 1, close));
		} catch {
			/* gone meanwhile */
		}
	}
	return out;
}

export interface ExecOptions {
	/** A task continuously in D state longer than this is a finding (ms). */
	dStateBoundMs: number;
	timeoutMs: number;
	node?: string;
	/** More of the executor's environment (another driver: HM_STRESS_GENERIC, HM_STRESS_MAP, HM_STRESS_FDS). */
	env?: Record<string, string>;
	/** Fds the executor inherits as 3, 4, ... (a recipe's, made here). */
	fds?: number[];
	/** Called once the executor runs (it holds its copies of `fds` then). */
	onSpawn?: () => void;
	/** Watch the kernel log: after an oops the program gets OOPS_GRACE_MS to end, then is given up on. */
	watchOops?: boolean;
}

const OOPS = /(Oops|kernel BUG at|BUG: unable to handle|general protection fault)/;
const OOPS_GRACE_MS = 5000;

export async function runProgramFile(binary: string, file: string, opts: ExecOptions): Promise<ExecResult> {
	const started = performance.now();
	const child = execa(binary, [file], {
		reject: false,
		all: true,
		timeout: opts.timeoutMs,
		env: { ...(opts.node ? { HM_STRESS_NODE: opts.node } : {}), ...opts.env },
		...(opts.fds?.length ? { stdio: ['pipe', 'pipe', 'pipe', ...opts.fds] as Options['stdio'] } : {}),
	});
	if (opts.onSpawn) child.once('spawn', opts.onSpawn);
	// A task that oopsed holding a lock can leave the others waiting for good:
	// then the program is killed, and left (unkillable in D state) if need be.
	const watcher = opts.watchOops ? await startCapture() : undefined;
	let oopsed = false;
	const oopsWatch = setInterval(() => {
		if (!watcher || oopsed) return;
		void watcher.take().then((recs) => {
			if (oopsed || !recs.some((r) => OOPS.test(r.text))) return;
			oopsed = true;
			setTimeout(() => child.kill('SIGKILL'), OOPS_GRACE_MS);
		});
	}, 250);
	const since = new Map<number, number>();
	const stuck = new Set<string>();
	const watch = setInterval(() => {
		const now = performance.now();
		const d = tasksInD();
		for (const pid of since.keys()) if (!d.has(pid)) since.delete(pid);
		for (const [pid, comm] of d) {
			const from = since.get(pid) ?? now;
			since.set(pid, from);
			if (now - from > opts.dStateBoundMs) stuck.add(`${pid} ${comm} in D state for more than ${opts.dStateBoundMs} ms`);
		}
	}, 100);
	let giveUp: NodeJS.Timeout | undefined;
	const r = await Promise.race([
		child,
		// Killed at the timeout, a task in D state still does not end: give up on it 5 s later.
		new Promise<'hung'>((resolve) => (giveUp = setTimeout(() => resolve('hung'), opts.timeoutMs + 5000))),
		new Promise<undefined>((resolve) => {
			const t = setInterval(() => {
				if (oopsed && performance.now() - started > 0) {
					clearInterval(t);
					setTimeout(() => resolve(undefined), OOPS_GRACE_MS + 3000);
				}
			}, 250);
			void child.finally(() => clearInterval(t));
		}),
	]);
	clearInterval(watch);
	clearInterval(oopsWatch);
	clearTimeout(giveUp);
	await watcher?.stop();
	if (r === 'hung') return { exitCode: -1, counts: {}, notes: [`the program did not end within ${opts.timeoutMs} ms and not when killed`], durationMs: performance.now() - started, stuck: [...stuck], timedOut: true };
	if (!r) return { exitCode: -1, counts: {}, notes: ['the program was given up on after a kernel oops (its tasks did not end)'], durationMs: performance.now() - started, stuck: [...stuck], timedOut: false };
	const counts: Record<string, Record<string, number>> = {};
	const notes: string[] = [];
	for (const line of (typeof r.all === 'string' ? r.all : '').split('\n')) {
		const m = /^count (\S+) (\S+) (\d+)$/.exec(line);
		if (m) (counts[m[1]!] ??= {})[m[2]!] = Number(m[3]);
		else if (line.trim() && line !== 'result: done') notes.push(line);
	}
	return { exitCode: r.exitCode ?? -1, counts, notes, durationMs: performance.now() - started, stuck: [...stuck], timedOut: !!r.timedOut };
}

/** Adds b's counts into a. */
export function addCounts(a: Record<string, Record<string, number>>, b: Record<string, Record<string, number>>): void {
	for (const [op, outcomes] of Object.entries(b)) for (const [k, v] of Object.entries(outcomes)) (a[op] ??= {})[k] = (a[op][k] ?? 0) + v;
}
