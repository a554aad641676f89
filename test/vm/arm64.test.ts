// arm64, the notes' own platform, under TCG: Debian trixie's arm64 kernels
// with 4K and with 16K pages, fetched into the cache on a fresh machine (with
// the arm64 root and the module's cross-build chroot, made on first use).
// On each: the guest is arm64 and its page size is the kernel's; a bounded
// subset of the scenarios passes; the notes' crash has the notes' shape
// (`kernel BUG at mm/memory.c`, `pc : vm_insert_page+`, `Call trace:` with
// the module's mmap handler) and parses to the same fields as on x86.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseKernelLog } from '../../src/kmsg/parse.js';
import type { CrashReport } from '../../src/kmsg/reports.js';
import { runBugPfnmapInVm } from '../../src/scenarios/bug-pfnmap.js';

const CLI = path.resolve('dist/cli/main.js');
/** The x86_64 report of the same crash (6.12, hybridmem run bug-pfnmap's console), the reference for the fields. */
const X86_BUG = parseKernelLog(readFileSync(path.resolve('test/fixtures/kmsg/real-6.12-bug-pfnmap.console.log'), 'utf8')).reports.find((x) => x.kind === 'BUG')!;

/** What a reader of the report gets from the parser, addresses and offsets aside. */
function crashFields(r: CrashReport) {
	return {
		kind: r.kind,
		file: r.file,
		line: r.line,
		function: r.function,
		ended: r.ended,
		// The first frame below the faulting function (arm64's trace starts with it, x86's does not).
		caller: r.frames.find((f) => f.fn !== r.function)?.fn,
		module: r.module,
		moduleFrame: r.frames.find((f) => f.module === 'hybridmem_test')?.fn,
		fields: Object.keys(r).filter((k) => (r as unknown as Record<string, unknown>)[k] !== undefined).sort(),
	};
}
const FLAVOURS = [
	{ spec: 'trixie:arm64', pageSize: 4096 },
	{ spec: 'trixie:arm64-16k', pageSize: 16384 },
];
/** Releases by flavour spec, once fetched. */
const releases = new Map<string, string>();

function hm(args: string[], timeout: number) {
	return execa('node', [CLI, ...args], { reject: false, timeout, stdin: 'ignore' });
}

interface RunJson {
	passed: boolean;
	results: { name: string; passed: boolean; where: string; kernel: string; checks: { name: string; ok: boolean; detail?: string }[] }[];
}

// The three tests of a flavour boot a guest each: two at a time (vitest.config.ts maxConcurrency).
describe.concurrent.each(FLAVOURS)('arm64 guest on $spec', ({ spec, pageSize }) => {
	beforeAll(async () => {
		const f = await hm(['kernels', '--fetch', spec, '--json'], 600_000);
		expect(f.exitCode, f.stderr).toBe(0);
		const [res] = JSON.parse(f.stdout) as { kernel: { release: string; arch?: string } }[];
		expect(res!.kernel.arch).toBe('arm64');
		releases.set(spec, res!.kernel.release);
		// The module, cross-built with the kernel's own compiler, warning-free with W=1 (--strict fails on a warning).
		const b = await hm(['build', '--no-addon', '--strict', '--kernel', res!.kernel.release], 900_000);
		expect(b.exitCode, b.stderr + b.stdout).toBe(0);
		expect(b.stdout).toMatch(/aarch64-linux-gnu-gcc-\d+/);
	}, 1_500_000);

	test("runs node as arm64 with the kernel's page size, which the addon and the evidence readers see", async () => {
		const kernel = releases.get(spec)!;
		const script = [
			`node -e 'console.log(process.arch, require("os").release())'`,
			'getconf PAGESIZE',
			`node --input-type=module -e "const m = await import('${path.resolve('dist/evidence/page-size.js')}'); const b = await import('${path.resolve('dist/device/binding.js')}'); console.log(m.kernelPageSize(), b.loadBinding().pageSize)"`,
		].join('; ');
		const r = await hm(['vm', '--kernel', kernel, '--', 'sh', '-c', script], 600_000);
		expect(r.exitCode, r.stderr).toBe(0);
		expect(r.stdout.trim().split('\n')).toEqual([`arm64 ${kernel}`, String(pageSize), `${pageSize} ${pageSize}`]);
	});

	test('test1, test2 and zap-noop pass in one boot', async () => {
		const kernel = releases.get(spec)!;
		const r = await hm(['run', 'test1', 'test2', 'zap-noop', '--kernel', kernel, '--json'], 600_000);
		const data = JSON.parse(r.stdout) as RunJson;
		expect(data.results.flatMap((x) => x.checks.filter((c) => !c.ok).map((c) => `${x.name}: ${c.name}: ${c.detail ?? ''}`))).toEqual([]);
		expect(data.results.map((x) => [x.name, x.passed, x.where, x.kernel])).toEqual(['test1', 'test2', 'zap-noop'].map((n) => [n, true, 'vm', kernel]));
		expect(r.exitCode).toBe(0);
	});

	test("bug-pfnmap: the notes' arm64 report, parsed with the same fields as on x86", async () => {
		const kernel = releases.get(spec)!;
		const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-arm64-crash-'));
		try {
			const consoleLog = path.join(dir, 'console.log');
			const outcome = await runBugPfnmapInVm({ kernel, consoleLog });
			expect(outcome.checks.filter((c) => !c.ok)).toEqual([]);
			expect(outcome.kernel).toBe(kernel);
			// The serial console ends its lines with CRLF.
			const text = readFileSync(consoleLog, 'utf8').replace(/\r/g, '');
			// The notes' lines, as arm64 prints them.
			expect(text).toMatch(/kernel BUG at mm\/memory\.c:\d+!/);
			expect(text).toMatch(/pc : vm_insert_page\+0x[0-9a-f]+\/0x[0-9a-f]+/);
			expect(text).toMatch(/Call trace:\n(.*\n)*?.*vm_insert_page\+0x[0-9a-f]+\/0x[0-9a-f]+\n(.*\n)*?.*\+0x[0-9a-f]+\/0x[0-9a-f]+ \[hybridmem_test\]/);
			// The same fields, with the same values, as the x86_64 6.12 report of this crash.
			const bug = parseKernelLog(text).reports.find((x) => x.kind === 'BUG');
			expect(bug && crashFields(bug)).toEqual(crashFields(X86_BUG));
			expect(outcome.crash?.frames[0]?.text).toMatch(/^vm_insert_page\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
