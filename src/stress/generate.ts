// The operation generator: a program of random operations from a seeded
// PRNG, so a seed and a round number give the same program again.
import { rng } from './prng.js';
import { MODULE_OPS, type Op, type OpName, type Program } from './program.js';

export interface GenerateOptions {
	seed: number;
	round: number;
	procs: number;
	threads: number;
	/** Operations per worker (thread). */
	opsPerWorker: number;
	/** Another driver than hybridmem_test: generic operations only (no SET_MODE, ZAP, REMAP, GET_STATS). */
	generic?: boolean;
}

/*
 * Weights: mapping and touching most, then the calls that split, move and
 * take pages away (munmap, mremap, mprotect, madvise, ZAP, REMAP, fork),
 * then open/close and the rest.
 */
const WEIGHTS: Record<OpName, number> = {
	open: 7,
	close: 3,
	setmode: 6,
	mmap: 14,
	touch: 14,
	munmap: 7,
	'mremap-move': 4,
	'mremap-grow': 2,
	mprotect: 4,
	madvise: 6,
	zap: 7,
	remap: 6,
	fork: 7,
	stats: 1,
	sleep: 2,
	// Two operations pinned to one moment on one mapping (hm-stress.c collide()): 8 races each.
	collide: 3,
};

/** What any driver gets: the same weights without hybridmem_test's ioctls. */
const GENERIC_WEIGHTS = Object.fromEntries(Object.entries(WEIGHTS).filter(([k]) => !MODULE_OPS.includes(k as OpName))) as Record<OpName, number>;

export function generateProgram(o: GenerateOptions): Program {
	const r = rng(o.seed, o.round);
	const ops: Op[] = [];
	const workers = o.procs * o.threads;
	const range = () => ({ b: r.int(32), c: 1 + r.int(32) });
	for (let w = 0; w < workers; w++) {
		// Each worker starts with an open, a correct map mode and a mapping: no
		// program is all no-ops, and the six workers map in every mode (most
		// later mmaps go through fds in the default mode, remap_pfn).
		ops.push({ worker: w, op: 'open', a: w % 3, b: 0, c: 0 });
		if (!o.generic) ops.push({ worker: w, op: 'setmode', a: w % 3, b: (w + o.round) % 5, c: 0 });
		ops.push({ worker: w, op: 'mmap', a: w % 6, b: w % 3, c: 1 + r.int(32) });
		for (let i = o.generic ? 2 : 3; i < o.opsPerWorker; i++) {
			const op = r.weighted(o.generic ? GENERIC_WEIGHTS : WEIGHTS);
			const a = r.int(op === 'open' || op === 'close' || op === 'setmode' || op === 'collide' ? 3 : 6);
			switch (op) {
				case 'setmode': {
					// The five correct modes mostly; the refused ones (mixed without allow_bug, the as-written two) and an unknown one sometimes.
					const mode = r.chance(0.75) ? r.int(5) : 5 + r.int(4);
					const failAt = r.chance(0.1) ? 1 + r.int(8) : 0;
					ops.push({ worker: w, op, a, b: mode, c: (r.chance(0.15) ? 1 : 0) | (failAt << 1) });
					break;
				}
				case 'mmap':
					ops.push({ worker: w, op, a, b: r.int(3), c: 1 + r.int(32) });
					break;
				case 'touch':
					ops.push({ worker: w, op, a, b: r.chance(0.7) ? 1 : 0, c: 0 });
					break;
				case 'munmap':
				case 'zap':
				case 'remap': {
					const { b, c } = range();
					ops.push({ worker: w, op, a, b, c });
					break;
				}
				case 'mprotect':
				case 'madvise': {
					const { b, c } = range();
					ops.push({ worker: w, op, a, b, c: (c & 63) | (r.int(op === 'mprotect' ? 3 : 8) << 6) });
					break;
				}
				case 'mremap-move':
					ops.push({ worker: w, op, a, b: 0, c: r.int(6) });
					break;
				case 'mremap-grow':
					ops.push({ worker: w, op, a, b: r.int(8), c: r.int(2) });
					break;
				case 'fork':
					ops.push({ worker: w, op, a, b: r.chance(0.5) ? r.int(20) : 0, c: r.int(2) });
					break;
				case 'collide':
					// a: fd slot; b: this thread's op x 4 + the partner's; c: pages - 1 | first jitter << 6.
					ops.push({ worker: w, op, a, b: r.int(16), c: r.int(64) | (r.int(8) << 6) });
					break;
				case 'sleep':
					ops.push({ worker: w, op, a: r.int(10), b: 0, c: 0 });
					break;
				default:
					ops.push({ worker: w, op, a, b: 0, c: 0 });
			}
		}
	}
	return { procs: o.procs, threads: o.threads, ops, comment: [`seed ${o.seed} round ${o.round}`] };
}
