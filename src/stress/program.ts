// A stress program: the operations hm-stress runs, one per line, each
// bound to a worker (process W / threads, thread W % threads).  The text
// form is the reproducer: `hybridmem stress --replay FILE` runs it again.
export const OPS = ['open', 'close', 'setmode', 'mmap', 'touch', 'munmap', 'mremap-move', 'mremap-grow', 'mprotect', 'madvise', 'zap', 'remap', 'fork', 'stats', 'sleep', 'collide'] as const;
export type OpName = (typeof OPS)[number];
/**
 * hybridmem_test's own ioctls, never sent to another driver; collide with
 * them (its ZAP and REMAP races), so it too is for hybridmem_test only.
 */
export const MODULE_OPS: readonly OpName[] = ['setmode', 'zap', 'remap', 'stats', 'collide'];

/** How the reproducer's comments name another driver than hybridmem_test. */
export interface OpContext {
	/** What open does, e.g. "open(/dev/hm_good_misc)" or "dup(recipe vgem's fd 0)"; %d is the fd slot's source. */
	open: string;
	/** The target's length in pages: mmap maps at most this. */
	maxPages: number;
	offset: string;
	readOnly?: boolean;
}

export interface Op {
	worker: number;
	op: OpName;
	a: number;
	b: number;
	c: number;
}

export interface Program {
	procs: number;
	threads: number;
	ops: Op[];
	/** Where it came from (seed, round), kept as comments. */
	comment?: string[];
}

const MODES = ['remap_pfn', 'insert_page', 'insert_pages', 'remap_contig', 'fault', 'mixed', 'free_after_map', 'leak_on_error'];
const PROTS = ['PROT_READ', 'PROT_READ|PROT_WRITE', 'PROT_NONE'];
const ADVICE = ['MADV_DONTNEED', 'MADV_WILLNEED', 'MADV_DONTFORK', 'MADV_DOFORK', 'MADV_NORMAL', 'MADV_RANDOM', 'MADV_COLD', 'MADV_PAGEOUT'];

const COLLIDE_MINE = ['ZAP ioctl of them all', 'REMAP ioctl of them all', 'write+read them', 'MADV_DONTNEED them'];
const COLLIDE_PARTNER = ['munmap of them all', 'munmap of the upper half', 'mprotect PROT_READ of the upper half', 'fork (the child exits at once)'];

/** What an operation does, in words (the reproducer's comments). */
export function describeOp(o: Op, t?: OpContext): string {
	const range = `pages ${o.b}+${Math.max(1, o.c & 63)}`;
	switch (o.op) {
		case 'open':
			return `fd${o.a} = ${t ? t.open.replace('%d', String(o.a % 3)) : 'open(/dev/devKex)'}`;
		case 'close':
			return `close(fd${o.a}) (mappings stay)`;
		case 'setmode':
			return `SET_MODE fd${o.a} map_mode ${MODES[o.b] ?? o.b} zap_after_map ${o.c & 1} fail_at ${(o.c >> 1) - 1}`;
		case 'mmap':
			return t
				? `map${o.a} = mmap(${Math.min(o.c, t.maxPages)} pages, ${t.readOnly ? 'PROT_READ' : 'PROT_READ|PROT_WRITE'}, MAP_SHARED, fd${o.b}, offset ${t.offset})`
				: `map${o.a} = mmap(${o.c} pages, MAP_SHARED, fd${o.b})`;
		case 'touch':
			return `${o.b & 1 && !t?.readOnly ? 'write+read' : 'read'} every page of map${o.a}`;
		case 'munmap':
			return `munmap map${o.a} ${range}`;
		case 'mremap-move':
			return `mremap map${o.a} to map${o.c % 6}'s window (MREMAP_MAYMOVE|MREMAP_FIXED)`;
		case 'mremap-grow':
			return `mremap map${o.a} grow by ${1 + (o.b % 8)} pages${o.c & 1 ? ' (MREMAP_MAYMOVE)' : ''}`;
		case 'mprotect':
			return `mprotect map${o.a} ${range} ${PROTS[(o.c >> 6) % 3]}`;
		case 'madvise':
			return `madvise map${o.a} ${range} ${ADVICE[(o.c >> 6) % 8]}`;
		case 'zap':
		case 'remap':
			return `${o.op.toUpperCase()} ioctl map${o.a} ${range}`;
		case 'fork':
			return `fork: the child writes map${o.a}, lives ${o.b} ms${o.c & 1 ? ', unmaps its first page' : ''}, reads, exits`;
		case 'stats':
			return 'GET_STATS ioctl';
		case 'sleep':
			return `sleep ${o.a % 50} ms`;
		case 'collide':
			return `collide, 8 rounds: map ${1 + (o.c & 63)} pages of fd${o.a % 3} alone in a 2 MiB hole, write them, then at once ${COLLIDE_MINE[Math.floor(o.b / 4) % 4]} here and ${COLLIDE_PARTNER[o.b % 4]} in a partner thread, ${(((o.c >> 6) & 7) + 1) % 8 * 20} us later in the first round, 20 us more each round (mod 160)`;
	}
}

export function formatProgram(p: Program, opts: { explain?: boolean; target?: OpContext } = {}): string {
	const lines = ['hybridmem-stress 1', `procs ${p.procs} threads ${p.threads}`, ...(p.comment ?? []).map((c) => `# ${c}`)];
	for (const o of p.ops) lines.push(`${o.worker} ${o.op} ${o.a} ${o.b} ${o.c}${opts.explain ? `\t# p${Math.floor(o.worker / p.threads)}t${o.worker % p.threads}: ${describeOp(o, opts.target)}` : ''}`);
	return `${lines.join('\n')}\n`;
}

export function parseProgram(text: string): Program {
	const lines = text.split('\n');
	if (!/^hybridmem-stress 1\s*$/.test(lines[0] ?? '')) throw Object.assign(new Error('not a hybridmem stress program: the first line must be "hybridmem-stress 1"'), { code: 'ERR_INVALID_ARG_VALUE' });
	const head = /^procs (\d+) threads (\d+)\s*$/.exec(lines[1] ?? '');
	if (!head) throw Object.assign(new Error('not a hybridmem stress program: the second line must be "procs P threads T"'), { code: 'ERR_INVALID_ARG_VALUE' });
	const procs = Number(head[1]);
	const threads = Number(head[2]);
	const ops: Op[] = [];
	const comment: string[] = [];
	lines.slice(2).forEach((line, i) => {
		const body = line.replace(/\t#.*$/, '').trim();
		if (line.startsWith('#')) comment.push(line.replace(/^#\s?/, ''));
		if (!body || body.startsWith('#')) return;
		const m = /^(\d+) (\S+) (\d+) (\d+) (\d+)$/.exec(body);
		if (!m || !(OPS as readonly string[]).includes(m[2]!) || Number(m[1]) >= procs * threads)
			throw Object.assign(new Error(`line ${i + 3} is not "WORKER OP A B C" with WORKER < ${procs * threads} and OP one of ${OPS.join(', ')}: ${line}`), { code: 'ERR_INVALID_ARG_VALUE' });
		ops.push({ worker: Number(m[1]), op: m[2] as OpName, a: Number(m[3]), b: Number(m[4]), c: Number(m[5]) });
	});
	return { procs, threads, ops, comment };
}
