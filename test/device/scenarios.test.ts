// Every scenario of the notes against the real module (this suite runs where
// hybridmem_test.ko is loaded: inside the VM runner or natively on request).
// Each test states the scenario's expectation and fails with the checks that
// did not hold.
import { execa } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/catalog.js';
import { ScenarioContext } from '../../src/scenarios/context.js';
import { requireDevice } from './device-env.js';

const device = requireDevice();

describe.runIf(device.ok)(`scenarios on ${os.release()}`, () => {
	const ctx = new ScenarioContext(device.path);
	for (const s of SCENARIOS.filter((x) => !x.crashes)) {
		test(`${s.name}: ${s.expectation}`, async () => {
			const outcome = await s.run(ctx);
			expect(outcome.checks.filter((c) => !c.ok)).toEqual([]);
			expect(outcome.checks.length).toBeGreaterThanOrEqual(5);
		});
	}

	test('hybridmem run --native: report lines, --json results and a JUnit file', async () => {
		const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-run-'));
		const junit = path.join(dir, 'junit.xml');
		const json = await execa('node', ['dist/cli/main.js', 'run', '--native', '--json', '--junit', junit, 'test1', 'zap-noop'], { reject: false });
		expect(json.exitCode).toBe(0);
		const data = JSON.parse(json.stdout) as { passed: boolean; results: { name: string; passed: boolean; where: string; pageMap?: string }[] };
		expect(data.passed).toBe(true);
		expect(data.results.map((r) => [r.name, r.passed, r.where])).toEqual([
			['test1', true, 'native'],
			['zap-noop', true, 'native'],
		]);
		expect(data.results[0]?.pageMap).toBe('ZZZZ');
		const xml = readFileSync(junit, 'utf8');
		expect(xml).toMatch(/<testsuite name="hybridmem scenarios" tests="2" failures="0"/);
		expect(xml).toContain('name="test1"');

		const human = await execa('node', ['dist/cli/main.js', 'run', '--native', 'test2'], { reject: false });
		expect(human.exitCode).toBe(0);
		expect(human.stdout).toMatch(/^PASS test2 +64 pages at 0x[0-9a-f]+, 262144 bytes verified/m);
		expect(human.stdout).toMatch(/^ {5}pages M{64}$/m);
		expect(human.stdout).toMatch(/^1 passed, 0 failed/m);
	});

	test('the crash scenario is refused natively without --allow-crash', async () => {
		const r = await execa('node', ['dist/cli/main.js', 'run', '--native', 'bug-pfnmap'], { reject: false });
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toContain('bug-pfnmap crashes the kernel: refused natively; run it with --vm, or pass --allow-crash');
	});
});
