// Every scenario of the notes against the real module (this suite runs where
// hybridmem_test.ko is loaded: inside the VM runner or natively on request).
// Each test states the scenario's expectation and fails with the checks that
// did not hold.
import { execa } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { kernelPageSize } from '../../src/evidence/page-size.js';
import { SCENARIOS } from '../../src/scenarios/catalog.js';
import { ScenarioContext } from '../../src/scenarios/context.js';
import { GUEST_CLI, requireDevice } from './device-env.js';

const device = requireDevice();

describe.runIf(device.ok)(`scenarios on ${os.release()}`, () => {
	const ctx = new ScenarioContext(device.path);
	afterAll(() => ctx.close());
	// The crash and the as-written bugs damage the kernel: each has a VM of its own (test/vm).
	for (const s of SCENARIOS.filter((x) => !x.crashes && !x.ownVm)) {
		test(`${s.name}: ${s.expectation}`, async () => {
			const outcome = await s.run(ctx);
			expect(outcome.checks.filter((c) => !c.ok)).toEqual([]);
			expect(outcome.checks.length).toBeGreaterThanOrEqual(5);
		});
	}

	test('hybridmem run --native: one line per scenario, the page map, the totals and a JUnit file', async () => {
		const junit = path.join(mkdtempSync(path.join(os.tmpdir(), 'hm-run-')), 'junit.xml');
		const r = await execa('node', [GUEST_CLI, 'run', '--native', '--junit', junit, 'test1', 'test2'], { reject: false });
		expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
		expect(r.stdout).toMatch(/^PASS test1 +4 pages at 0x[0-9a-f]+: 4 inserted, 4 zapped, 4 SIGBUS on touch/m);
		expect(r.stdout).toMatch(/^ {5}pages ZZZZ$/m);
		// test2 is 64 pages of the running kernel: 262144 bytes with 4K pages, 1048576 with 16K.
		expect(r.stdout).toMatch(new RegExp(`^PASS test2 +64 pages at 0x[0-9a-f]+, ${64 * kernelPageSize()} bytes verified`, 'm'));
		expect(r.stdout).toMatch(/^ {5}pages M{64}$/m);
		expect(r.stdout).toMatch(/^2 passed, 0 failed — on \S+ \(native\)$/m);
		const xml = readFileSync(junit, 'utf8');
		expect(xml).toMatch(/<testsuite name="hybridmem scenarios" tests="2" failures="0"/);
		expect(xml).toContain('name="test1"');
	});

	test('the crash scenario is refused natively without --allow-crash', async () => {
		const r = await execa('node', [GUEST_CLI, 'run', '--native', 'bug-pfnmap'], { reject: false });
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toContain('bug-pfnmap crashes the kernel: refused natively; run it with --vm, or pass --allow-crash');
	});
});
