// hybridmem stress against other drivers than hybridmem_test, through
// hybridmem check's target options, in real VMs: an in-tree driver through
// a shipped recipe (vgem: the executor inherits fds node made with DRM
// ioctls) finds nothing in a short run, and a broken fixture driver
// (test/fixtures/drivers/broken_leak, built from its kbuild directory for
// the guest kernel) is caught by the per-program free-pages invariant and
// shrunk to a reproducer that names the driver.  One boot per test.
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { listKernels } from '../../src/vm/kernels.js';
import type { StressReport } from '../../src/stress/run.js';

const CLI = path.resolve('dist/cli/main.js');
const bookworm = listKernels().filter((k) => k.usable && k.origin === 'boot').map((k) => k.version);
const kernel = bookworm.find((k) => /^6\.12\./.test(k)) ?? bookworm[0]!;
const MODULE_OPS = ['setmode', 'zap', 'remap', 'stats'];

async function stress(args: string[], cwd = process.cwd()): Promise<{ report: StressReport; exitCode: number }> {
	const r = await execa('node', [CLI, 'stress', '--json', ...args], { reject: false, timeout: 280_000, cwd });
	try {
		return { report: JSON.parse(r.stdout) as StressReport, exitCode: r.exitCode ?? -1 };
	} catch {
		throw new Error(`no JSON from hybridmem stress ${args.join(' ')} (exit ${r.exitCode}): ${r.stderr.slice(-2000)}`);
	}
}

const summary = (r: StressReport) => r.violations.map((v) => `${v.invariant}: ${v.summary}`);

describe('hybridmem stress on other drivers', () => {
	test.concurrent(`recipe vgem on ${kernel}, 8 s: generic operations only, on fds made by the recipe; no invariant broken`, async () => {
		const { report, exitCode } = await stress(['--recipe', 'vgem', '--seconds', '8', '--kernel', kernel, '--seed', '14']);
		console.log(`stress vgem ${kernel}: ${report.programs} programs, ${report.operations} operations, free pages per program ${JSON.stringify(report.programFreePages)}, at the end ${report.freePages?.missing} missing`);
		expect(summary(report)).toEqual([]);
		expect(exitCode).toBe(0);
		expect(report.target).toMatch(/^recipe vgem: /);
		// It did the work: each generic kind succeeded somewhere, and none of hybridmem_test's ioctls went to vgem.
		expect(report.programs).toBeGreaterThanOrEqual(2);
		for (const op of ['open', 'mmap', 'touch', 'munmap', 'mprotect', 'madvise', 'fork', 'close']) expect(report.counts[op]?.ok ?? 0, op).toBeGreaterThan(0);
		for (const op of MODULE_OPS) expect(report.counts[op], op).toBeUndefined();
		// VM_DONTEXPAND on a DRM vma: every grow refused.
		expect(report.counts['mremap-grow']?.['ok'] ?? 0).toBe(0);
		// The per-program measure was taken, each within its threshold; the run's end too; nothing of ours to rmmod.
		const per = report.programFreePages!;
		expect(per.missing.length).toBe(report.programs);
		for (const m of per.missing) expect(m).toBeLessThanOrEqual(per.threshold);
		expect(report.freePages!.missing).toBeLessThanOrEqual(report.freePages!.threshold);
		expect(report.rmmod).toBeNull();
		expect(report.livePages).toBeUndefined();
	});

	test.concurrent(`broken_leak (--kmod-dir, --device) on ${kernel}: the first program leaks past the per-program threshold, is shrunk, and the reproducer names the driver`, async () => {
		const out = mkdtempSync(path.join(os.tmpdir(), 'hm-stress-targets-'));
		const dir = path.resolve('test/fixtures/drivers/broken_leak');
		const { report, exitCode } = await stress(['--kmod-dir', dir, '--device', '/dev/hm_broken_leak', '--seconds', '10', '--shrink-seconds', '20', '--kernel', kernel], out);
		expect(exitCode).toBe(1);
		expect(report.target).toBe('/dev/hm_broken_leak (module broken_leak)');
		const first = report.violations[0]!;
		expect(first.invariant).toBe('free-pages');
		const leaked = Number(/^this program left (\d+) pages fewer free than before it \(threshold 128 per program\)$/.exec(first.summary)?.[1]);
		// 16 pages lost per mapping: the first program mapped at least 9 times.
		expect(leaked).toBeGreaterThan(128);
		expect(report.failedRound).toBe(0);
		// The module was unloaded (the leak is of pages nothing points at any more).
		expect(report.rmmod).toBe(true);
		const repro = report.reproducer!;
		const text = readFileSync(repro.file, 'utf8');
		console.log(`stress broken_leak: leaked ${leaked} pages in round 0; reproducer ${repro.ops} of ${repro.originalOps} operations after ${report.shrink?.tests} tests in ${report.shrink?.ms} ms:\n${text}`);
		expect(existsSync(repro.file)).toBe(true);
		expect(repro.file.startsWith(out)).toBe(true);
		expect(repro.ops).toBeLessThan(repro.originalOps);
		expect(text).toMatch(/^hybridmem-stress 1\nprocs \d+ threads \d+\n/);
		expect(text).toContain('# target: /dev/hm_broken_leak (module broken_leak)\n');
		expect(text).toMatch(/ mmap .*# p\dt\d: map\d = mmap\(\d+ pages, PROT_READ\|PROT_WRITE, MAP_SHARED, fd\d, offset 0x0\)/);
		expect(text).toMatch(/# p\dt\d: fd\d = open\(\/dev\/hm_broken_leak\)/);
		for (const op of MODULE_OPS) expect(text).not.toMatch(new RegExp(`^\\d+ ${op} `, 'm'));
		// The host's words: the kbuild directory, not the .ko built from it.
		expect(repro.command).toBe(`hybridmem stress --replay ${repro.file} --kernel ${kernel} --kmod-dir ${dir} --device /dev/hm_broken_leak`);
	});
});
