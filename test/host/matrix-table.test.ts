// The kernel matrix's table (scripts/matrix-table.mjs): a cell per kernel and
// scenario, FAIL wherever a run is missing or failed, the per-kernel facts
// beside pass, and findings only where kernels differ.
import { describe, expect, test } from 'vitest';
import { matrixMarkdown, matrixTable, matrixText, type MatrixRun } from '../../scripts/matrix-table.mjs';

const k510 = { version: '5.10.0-46-amd64', origin: 'fetched', suite: 'bullseye', flavour: 'amd64' };
const k61 = { version: '6.1.0-57-amd64', origin: 'boot' };
const k72 = { version: '7.2.13+deb14-amd64', origin: 'fetched', suite: 'sid', flavour: 'amd64' };
const kRt = { version: '6.12.118+deb13-rt-amd64', origin: 'fetched', suite: 'trixie', flavour: 'rt' };
// As scripts/matrix.mjs records them now: the architecture and page size from the kernel's metadata.
const k612 = { version: '6.12.118+deb13-amd64', origin: 'fetched', suite: 'trixie', flavour: 'amd64', arch: 'amd64', pageSize: '4K' };
const kArm = { version: '6.12.118+deb13-arm64', origin: 'fetched', suite: 'trixie', flavour: 'arm64', arch: 'arm64', pageSize: '4K' };
const kArm16 = { version: '6.12.118+deb13-arm64-16k', origin: 'fetched', suite: 'trixie', flavour: 'arm64-16k', arch: 'arm64', pageSize: '16K' };
const kBoot = { version: '6.1.0-57-amd64', origin: 'boot', arch: 'amd64', pageSize: '4K' };

function run(kernel: MatrixRun['kernel'], over: Partial<MatrixRun> = {}): MatrixRun {
	return {
		kernel,
		build: { ok: true },
		scenarios: [
			{ name: 'test1', passed: true },
			{ name: 'zap-noop', passed: true, finding: 'zap_vma_ptes: no-op on VM_MIXEDMAP' },
			{ name: 'bug-pfnmap', passed: true, crash: { file: 'mm/memory.c', line: 1893 } },
		],
		device: { passed: 100, failed: 0, skipped: 2 },
		...over,
	};
}

describe('matrixTable', () => {
	test('one column per kernel, labelled by where it came from; all passing runs pass', () => {
		const t = matrixTable([run(k510), run(k61), run(kRt)]);
		expect(t.header).toEqual(['5.10.0-46-amd64 (bullseye)', '6.1.0-57-amd64 (installed)', '6.12.118+deb13-rt-amd64 (trixie:rt)']);
		expect(t.rows.map((r) => r.name)).toEqual(['module build (W=1, no warnings)', 'test1', 'zap-noop', 'bug-pfnmap', 'device suite (passed/failed/skipped)']);
		expect(t.rows[3]!.cells.map((c) => c.text)).toEqual(Array(3).fill('pass: BUG at mm/memory.c:1893'));
		expect(t.rows[4]!.cells[0]).toEqual({ text: '100/0/2', ok: true });
		expect(t.passed).toBe(true);
		expect(t.counts).toEqual({ passed: 9, failed: 0 });
		expect(t.findings).toEqual([]);
	});

	test('kernels that differ become findings, grouped by what each did', () => {
		const r72 = run(k72, {
			scenarios: [
				{ name: 'test1', passed: true },
				{ name: 'zap-noop', passed: true, finding: 'zap_special_vma_range empties VM_MIXEDMAP' },
				{ name: 'bug-pfnmap', passed: true, crash: { file: 'mm/memory.c', line: 2589 } },
			],
		});
		const t = matrixTable([run(k510), run(k61), r72]);
		expect(t.passed).toBe(true);
		expect(t.findings).toEqual([
			{
				scenario: 'zap-noop',
				groups: [
					{ fact: 'zap_vma_ptes: no-op on VM_MIXEDMAP', kernels: [k510.version, k61.version] },
					{ fact: 'zap_special_vma_range empties VM_MIXEDMAP', kernels: [k72.version] },
				],
			},
			{
				scenario: 'bug-pfnmap',
				groups: [
					{ fact: 'BUG at mm/memory.c:1893', kernels: [k510.version, k61.version] },
					{ fact: 'BUG at mm/memory.c:2589', kernels: [k72.version] },
				],
			},
		]);
		const md = matrixMarkdown(t, { date: '2026-12-01' });
		expect(md).toContain('### Kernel matrix (2026-12-01)');
		expect(md).toContain('| scenario | 5.10.0-46-amd64 (bullseye) | 6.1.0-57-amd64 (installed) | 7.2.13+deb14-amd64 (sid) |');
		expect(md).toContain('| zap-noop | pass: zap_vma_ptes: no-op on VM_MIXEDMAP | pass: zap_vma_ptes: no-op on VM_MIXEDMAP | pass: zap_special_vma_range empties VM_MIXEDMAP |');
		expect(md).toContain('- bug-pfnmap: 5.10.0-46-amd64, 6.1.0-57-amd64: BUG at mm/memory.c:1893; 7.2.13+deb14-amd64: BUG at mm/memory.c:2589');
		expect(md).toContain('9 scenario runs passed, 0 failed.');
		expect(matrixText(t).split('\n')[0]).toMatch(/^scenario\s+5\.10\.0-46-amd64 \(bullseye\)\s+6\.1\.0-57-amd64/);
	});

	test('a failed scenario, a scenario a kernel did not run, a failed build and a dead device suite each fail the table', () => {
		const failed = run(k510, { scenarios: [{ name: 'test1', passed: false }, { name: 'zap-noop', passed: true }] });
		const t = matrixTable([failed, run(k61)]);
		expect(t.rows.find((r) => r.name === 'test1')!.cells.map((c) => c.text)).toEqual(['FAIL', 'pass']);
		// bug-pfnmap only ran on 6.1: the 5.10 cell says so and counts as a failure.
		expect(t.rows.find((r) => r.name === 'bug-pfnmap')!.cells[0]).toEqual({ text: 'not run', ok: false });
		expect(t.passed).toBe(false);
		expect(t.counts).toEqual({ passed: 4, failed: 2 });

		expect(matrixTable([run(k61, { build: { ok: false, detail: 'warning: x' } })]).passed).toBe(false);
		expect(matrixTable([run(k61, { device: undefined, deviceError: 'no report (exit 1)' })]).rows.at(-1)!.cells[0]).toEqual({ text: 'FAIL: no report (exit 1)', ok: false });
		expect(matrixTable([run(k61, { device: { passed: 90, failed: 1, skipped: 0 } })]).passed).toBe(false);
		const dead = matrixTable([run(k61), run(k72, { scenarios: undefined, scenariosError: 'hybridmem run gave no JSON (exit 1)' })]);
		expect(dead.rows.find((r) => r.name === 'test1')!.cells[1]).toEqual({ text: 'FAIL: hybridmem run gave no JSON (exit 1)', ok: false });
		expect(dead.passed).toBe(false);
	});

	test('x86 and arm64 kernels in one table: each column says its architecture and page size, and a difference in device counts fails only its column', () => {
		const t = matrixTable([run(kBoot), run(k612), run(kArm), run(kArm16, { device: { passed: 99, failed: 1, skipped: 2 } })]);
		expect(t.header).toEqual([
			'6.1.0-57-amd64 (installed, amd64 4K)',
			'6.12.118+deb13-amd64 (trixie, amd64 4K)',
			'6.12.118+deb13-arm64 (trixie, arm64 4K)',
			'6.12.118+deb13-arm64-16k (trixie:arm64-16k, arm64 16K)',
		]);
		expect(t.rows.at(-1)!.cells).toEqual([
			{ text: '100/0/2', ok: true },
			{ text: '100/0/2', ok: true },
			{ text: '100/0/2', ok: true },
			{ text: '99/1/2', ok: false },
		]);
		expect(t.passed).toBe(false);
		// The same facts on x86 and arm64 are no finding.
		const same = matrixTable([run(k612), run(kArm16)]);
		expect(same.findings).toEqual([]);
		expect(matrixMarkdown(same)).toContain('| scenario | 6.12.118+deb13-amd64 (trixie, amd64 4K) | 6.12.118+deb13-arm64-16k (trixie:arm64-16k, arm64 16K) |');
	});

	test('pipes in cell text do not break the markdown table', () => {
		const t = matrixTable([run(k61, { scenarios: [{ name: 'test1', passed: true, finding: 'a | b' }] })]);
		expect(matrixMarkdown(t)).toContain('| test1 | pass: a \\| b |');
	});
});
