// hybridmem stress, the parts that run anywhere: the seeded generator, the
// program text (the reproducer format), and the shrinker (ddmin), including
// a shrink resumed after a test that "took the kernel down".  The executor
// itself runs against the real module in test/vm/stress.test.ts.
import { describe, expect, test } from 'vitest';
import { generateProgram } from '../../src/stress/generate.js';
import { formatProgram, MODULE_OPS, parseProgram, type Op } from '../../src/stress/program.js';
import { checkReplayFor } from '../../src/stress/run.js';
import { initialShrinkState, shrink, type ShrinkState } from '../../src/stress/shrink.js';
import { kernelLogViolations } from '../../src/stress/invariants.js';
import type { KmsgRecord } from '../../src/kmsg/record.js';

const opts = { seed: 7, round: 3, procs: 2, threads: 3, opsPerWorker: 40 };

describe('stress program generator', () => {
	test('the same seed and round give the same program; another round or seed another one', () => {
		const a = formatProgram(generateProgram(opts));
		expect(formatProgram(generateProgram(opts))).toBe(a);
		expect(formatProgram(generateProgram({ ...opts, round: 4 }))).not.toBe(a);
		expect(formatProgram(generateProgram({ ...opts, seed: 8 }))).not.toBe(a);
	});

	test('every worker gets its operations, and the program covers every operation kind and every correct map mode', () => {
		const p = generateProgram({ ...opts, opsPerWorker: 400 });
		expect(p.ops.length).toBe(6 * 400);
		expect(new Set(p.ops.map((o) => o.worker))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
		expect(new Set(p.ops.map((o) => o.op)).size).toBe(16);
		const modes = new Set(p.ops.filter((o) => o.op === 'setmode').map((o) => o.b));
		for (const m of [0, 1, 2, 3, 4]) expect(modes.has(m)).toBe(true);
	});

	test('the text form parses back to the same program, with or without the explanations', () => {
		const p = generateProgram(opts);
		for (const explain of [false, true]) expect(parseProgram(formatProgram(p, { explain })).ops).toEqual(p.ops);
		expect(formatProgram(p, { explain: true })).toMatch(/\t# p0t0: fd0 = open\(\/dev\/devKex\)/);
	});

	test('for another driver (generic): no hybridmem_test ioctl, every generic kind, reproducible; its words name the target', () => {
		const g = { ...opts, opsPerWorker: 400, generic: true };
		const p = generateProgram(g);
		expect(formatProgram(generateProgram(g))).toBe(formatProgram(p));
		const kinds = new Set(p.ops.map((o) => o.op));
		for (const op of MODULE_OPS) expect(kinds.has(op)).toBe(false);
		expect([...kinds].sort()).toEqual(['close', 'fork', 'madvise', 'mmap', 'mprotect', 'mremap-grow', 'mremap-move', 'munmap', 'open', 'sleep', 'touch']);
		const text = formatProgram(p, { explain: true, target: { open: 'dup(fd %d made by recipe perf)', maxPages: 9, offset: '0x0', readOnly: true } });
		expect(text).toMatch(/\t# p0t0: fd0 = dup\(fd 0 made by recipe perf\)/);
		// mmap keeps to the target's length and protections; touches of a read-only target only read.
		expect(text).toMatch(/\t# p0t0: map0 = mmap\([1-9] pages, PROT_READ, MAP_SHARED, fd0, offset 0x0\)/);
		expect(text).not.toMatch(/mmap\((1\d|[2-9]\d) pages/);
		expect(text).not.toMatch(/write\+read/);
		// A replay for another driver refuses hybridmem_test's ioctls; for the module it is fine.
		const modular = generateProgram(opts);
		expect(() => checkReplayFor(modular, { recipe: 'vgem' })).toThrow(/hybridmem_test's own ioctls, which are never sent to another driver/);
		expect(() => checkReplayFor(modular, undefined)).not.toThrow();
		expect(() => checkReplayFor(p, { device: '/dev/x' })).not.toThrow();
	});

	test('bad program text is refused with a message that says what is wrong', () => {
		expect(() => parseProgram('hello\n')).toThrow(/first line must be "hybridmem-stress 1"/);
		expect(() => parseProgram('hybridmem-stress 1\nprocs 1 threads 1\n0 explode 1 2 3\n')).toThrow(/line 3 is not "WORKER OP A B C"/);
		expect(() => parseProgram('hybridmem-stress 1\nprocs 1 threads 1\n1 open 0 0 0\n')).toThrow(/WORKER < 1/);
	});
});

describe('stress invariants: the kernel log', () => {
	const records = (lines: string[]): KmsgRecord[] => lines.map((text, i) => ({ seq: i, tsUsec: i, facility: 0, level: 3, flag: '-', text, dict: {} }));
	test('a SLUB debug report (slub_debug=FZP) is a kernel-log violation naming the cache; ordinary lines are not', () => {
		// The layout of mm/slub.c slab_bug() and check_bytes_and_report() (6.1 and 6.12).
		const v = kernelLogViolations(
			records([
				'=============================================================================',
				'BUG kmalloc-cg-192 (Tainted: G           OE     ): Poison overwritten',
				'-----------------------------------------------------------------------------',
				'0xffff888004a1c0c8-0xffff888004a1c0c8 @offset=200. First byte 0x6a instead of 0x6b',
				'FIX kmalloc-cg-192: Restoring Poison 0xffff888004a1c0c8-0xffff888004a1c0c8=0x6b',
			]),
		);
		expect(v).toHaveLength(1);
		expect(v[0]).toMatchObject({ invariant: 'kernel-log', summary: expect.stringMatching(/slab kmalloc-cg-192: Poison overwritten/) });
		expect(kernelLogViolations(records(['hybridmem_test: freed 6 pages', 'BUG: Bad rss-counter state mm:0 type:MM_ANONPAGES val:4']))).toHaveLength(1);
		expect(kernelLogViolations(records(['hybridmem_test: freed 6 pages', 'SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=2, Nodes=1']))).toEqual([]);
	});
});

const op = (i: number): Op => ({ worker: i % 3, op: 'touch', a: i, b: 0, c: 0 });

describe('stress shrinker (ddmin)', () => {
	test('a failure that needs two operations far apart shrinks to exactly those two', async () => {
		const ops = Array.from({ length: 200 }, (_, i) => op(i));
		const fails = async (c: Op[]) => c.some((o) => o.a === 17) && c.some((o) => o.a === 160);
		const r = await shrink(ops, fails, { budgetMs: 10_000 });
		expect(r.ops.map((o) => o.a)).toEqual([17, 160]);
		expect(r.exhausted).toBe(false);
		expect(r.tests).toBeLessThan(120);
	});

	test('the per-thread groups go first: a one-thread failure shrinks from that thread alone', async () => {
		const ops = Array.from({ length: 90 }, (_, i) => op(i));
		const seen: number[] = [];
		const fails = async (c: Op[]) => {
			seen.push(c.length);
			return c.some((o) => o.a === 40);
		};
		const r = await shrink(ops, fails, { budgetMs: 10_000, groups: (c) => [0, 1, 2].map((w) => c.filter((o) => o.worker === w)) });
		expect(seen.slice(0, 2)).toEqual([30, 30]); // thread 0 (no), thread 1 (has 40)
		expect(r.ops.map((o) => o.a)).toEqual([40]);
	});

	test('a shrink stopped by a test that takes the kernel down resumes from its saved state to the same result', async () => {
		const ops = Array.from({ length: 64 }, (_, i) => op(i));
		const culprit = (c: Op[]) => c.some((o) => o.a === 5) && c.some((o) => o.a === 50);
		const straight = await shrink(ops, async (c) => culprit(c), { budgetMs: 10_000 });
		// Each failing test "crashes": the search stops there; a new "boot" goes on from the saved state.
		let state: ShrinkState = initialShrinkState(ops);
		let inFlight: Op[] | undefined;
		let boots = 0;
		for (;;) {
			const saved = JSON.parse(JSON.stringify({ state, inFlight })) as { state: ShrinkState; inFlight?: Op[] };
			const r = await shrink(saved.state, async (c) => (culprit(c) ? 'stop' : false), { budgetMs: 10_000, beforeTest: (_, c) => (inFlight = c) });
			state = r.state;
			boots++;
			if (!r.stopped) break;
		}
		expect(state.current).toEqual(straight.ops);
		expect(state.current.map((o) => o.a)).toEqual([5, 50]);
		expect(boots).toBeGreaterThan(2);
	});
});

describe('hybridmem stress: bad arguments', () => {
	const cli = async (args: string[]) => {
		const { execa } = await import('execa');
		return execa('node', ['dist/cli/main.js', 'stress', ...args], { reject: false });
	};
	test.each([
		[['--procs', '0'], /--procs expects an integer of at least 1, got '0'/],
		[['--procs', '9', '--threads', '8'], /--procs x --threads is at most 64, got 72/],
		[['--seconds', 'soon'], /--seconds expects an integer of at least 1, got 'soon'/],
		[['--replay', '/nonexistent/program.txt'], /no program at \/nonexistent\/program.txt: --replay takes a file a failing run wrote/],
		[['--module', '/nonexistent/x.ko'], /no module at \/nonexistent\/x.ko/],
		[['--param', 'x=1'], /--param, --kmod-dir, --minor, --length and --offset describe another driver: add --device \/dev\/NODE, --chrdev NAME or --recipe/],
		[['--recipe', 'vgem', '--device', '/dev/zero'], /stress: say what to stress with exactly one of --device \/dev\/NODE, --chrdev NAME or --recipe/],
		[['--recipe', 'vgem', '--max-length', '4096'], /--max-length is hybridmem check's/],
		[['--recipe', 'vgem', '--length', 'big'], /--length expects a non-negative integer, got 'big'/],
	])('%j: exit 2 and a message that says what to do', async (args, message) => {
		const r = await cli(args as string[]);
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toMatch(message as RegExp);
	});

	test('--replay of a program with hybridmem_test ioctls against another driver: exit 2 before any VM boots', async () => {
		const { mkdtempSync, writeFileSync } = await import('node:fs');
		const os = await import('node:os');
		const file = `${mkdtempSync(`${os.tmpdir()}/hm-stress-host-`)}/p.txt`;
		writeFileSync(file, 'hybridmem-stress 1\nprocs 1 threads 1\n0 open 0 0 0\n0 zap 0 0 1\n');
		const r = await cli(['--replay', file, '--recipe', 'vgem']);
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toMatch(/stress: the program uses zap, hybridmem_test's own ioctls, which are never sent to another driver/);
	});
});
