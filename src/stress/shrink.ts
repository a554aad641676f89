// The shrinker: delta debugging (Zeller's ddmin) over a failing program's
// operations, down to a sequence from which no chunk can be removed and
// still fail, within a time and test budget.  The search is a state that
// can be saved between tests: a test that takes the kernel down ends the
// boot, and the next boot resumes with that test counted as failing.
import type { Op } from './program.js';

export interface ShrinkState {
	current: Op[];
	/** ddmin's granularity: current is cut into n chunks. */
	n: number;
	stage: 'groups' | 'complement' | 'subset' | 'done';
	/** Which candidate of the stage is next. */
	i: number;
	tests: number;
}

export function initialShrinkState(ops: Op[]): ShrinkState {
	return { current: ops, n: 2, stage: 'groups', i: 0, tests: 0 };
}

function chunks(ops: Op[], n: number): Op[][] {
	const size = Math.ceil(ops.length / n);
	const out: Op[][] = [];
	for (let i = 0; i < ops.length; i += size) out.push(ops.slice(i, i + size));
	return out;
}

function candidatesOf(s: ShrinkState, groups?: (ops: Op[]) => Op[][]): Op[][] {
	if (s.stage === 'groups') return (groups?.(s.current) ?? []).filter((g) => g.length && g.length < s.current.length);
	const c = chunks(s.current, s.n);
	if (s.stage === 'complement') return c.map((_, i) => c.filter((_, j) => j !== i).flat());
	if (s.stage === 'subset') return c.length > 2 ? c : [];
	return [];
}

/** The next candidate to test, moving the state past exhausted stages; undefined when done. */
export function nextCandidate(s: ShrinkState, groups?: (ops: Op[]) => Op[][]): Op[] | undefined {
	for (;;) {
		if (s.stage === 'done' || s.current.length < 2) {
			s.stage = 'done';
			return undefined;
		}
		const list = candidatesOf(s, groups);
		if (s.i < list.length) return list[s.i];
		if (s.stage === 'groups') s.stage = 'complement';
		else if (s.stage === 'complement') s.stage = 'subset';
		else {
			// Neither a complement nor a chunk fails: finer chunks, or 1-minimal.
			if (s.n >= s.current.length) {
				s.stage = 'done';
				return undefined;
			}
			s.n = Math.min(s.n * 2, s.current.length);
			s.stage = 'complement';
		}
		s.i = 0;
	}
}

/** Records the outcome of the candidate nextCandidate() gave. */
export function recordOutcome(s: ShrinkState, candidate: Op[], failed: boolean): void {
	s.tests++;
	if (!failed) {
		s.i++;
		return;
	}
	s.current = candidate;
	s.n = s.stage === 'complement' ? Math.max(s.n - 1, 2) : 2;
	s.stage = 'complement';
	s.i = 0;
}

export interface ShrinkOptions {
	/**
	 * Subsets tried before ddmin, smallest first (one thread's operations,
	 * one process's): a bug one thread finds alone shrinks in one test.
	 */
	groups?: (ops: Op[]) => Op[][];
	/** Stop after this long (ms) with the smallest failing sequence so far. */
	budgetMs: number;
	maxTests?: number;
	onProgress?: (ops: number, tests: number) => void;
	/** Called before each test with the state and the candidate (to save them). */
	beforeTest?: (state: ShrinkState, candidate: Op[]) => void;
}

export interface ShrinkResult {
	ops: Op[];
	tests: number;
	/** The budget ran out before the sequence was 1-minimal. */
	exhausted: boolean;
	state: ShrinkState;
}

/** ddmin: `fails(candidate)` is true when the candidate still shows the failure; 'stop' ends the search (the kernel is damaged). */
export async function shrink(ops: Op[] | ShrinkState, fails: (candidate: Op[]) => Promise<boolean | 'stop'>, opts: ShrinkOptions): Promise<ShrinkResult & { stopped: boolean }> {
	const deadline = performance.now() + opts.budgetMs;
	const maxTests = opts.maxTests ?? 1000;
	const s = Array.isArray(ops) ? initialShrinkState(ops) : ops;
	const first = s.tests;
	for (;;) {
		if (performance.now() > deadline || s.tests - first >= maxTests) return { ops: s.current, tests: s.tests, exhausted: true, state: s, stopped: false };
		const c = nextCandidate(s, opts.groups);
		if (!c) return { ops: s.current, tests: s.tests, exhausted: false, state: s, stopped: false };
		opts.beforeTest?.(s, c);
		const r = await fails(c);
		const before = s.current.length;
		recordOutcome(s, c, r !== false);
		if (s.current.length < before) opts.onProgress?.(s.current.length, s.tests);
		if (r === 'stop') return { ops: s.current, tests: s.tests, exhausted: true, state: s, stopped: true };
	}
}
