// Recipe loading for `hybridmem check --recipe`: shipped names, a user's ES
// module, and what a wrong name or module gets; --plan files.  The recipes themselves run
// in VMs (test/vm/check.test.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadRecipe, RECIPES } from '../../src/check/recipes/index.js';
import { planSpecs } from '../../src/cli/commands/check.js';

describe('loadRecipe', () => {
	test('every shipped recipe has a unique name, a description and an open()', () => {
		expect(RECIPES.map((r) => r.name)).toEqual(['vgem', 'vgem-dmabuf', 'vfb', 'vivid', 'snd-dummy', 'udmabuf', 'dma-heap', 'af-packet-rx', 'af-packet-tx', 'io-uring', 'perf']);
		for (const r of RECIPES) {
			expect(r.description.length).toBeGreaterThan(20);
			expect(typeof r.open).toBe('function');
		}
	});

	test("a user's ES module is loaded from its path", async () => {
		const r = await loadRecipe(path.resolve('test/fixtures/recipes/shmem.mjs'));
		expect(r.name).toBe('shmem');
		expect(typeof r.open).toBe('function');
	});

	test('an unknown name lists the shipped ones; a module without open() says what it lacks', async () => {
		await expect(loadRecipe('nope')).rejects.toMatchObject({ code: 'ERR_UNKNOWN_RECIPE', message: expect.stringContaining('shipped: vgem, vgem-dmabuf, vfb') });
		await expect(loadRecipe(path.resolve('test/fixtures/recipes/no-open.mjs'))).rejects.toMatchObject({ code: 'ERR_UNKNOWN_RECIPE', message: expect.stringMatching(/exports no recipe/) });
	});
});

describe('check --plan: several targets from a file', () => {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-plan-'));
	const plan = (name: string, body: unknown) => {
		const file = path.join(dir, name);
		writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
		return file;
	};

	test('entries keyed like the target options become target specs; paths are relative to the file', () => {
		const file = plan('ok.json', [{ module: 'drv.ko', params: { mode: 2 }, device: '/dev/drv', 'max-length': 65536 }, { recipe: 'vgem' }, { recipe: './mine.mjs' }]);
		expect(planSpecs(file, {})).toEqual([
			{ module: path.join(dir, 'drv.ko'), params: { mode: '2' }, device: '/dev/drv', maxLength: 65536 },
			{ recipe: 'vgem' },
			{ recipe: path.join(dir, 'mine.mjs') },
		]);
	});

	test('a missing file, a non-array, an unknown key and an entry without a target are usage errors (exit 2) that say what to fix', () => {
		const usage = (file: string, m: RegExp) => expect(() => planSpecs(file, {})).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(m) }));
		usage(path.join(dir, 'absent.json'), /absent\.json: no such file/);
		usage(plan('obj.json', {}), /must hold a JSON array of targets, e\.g\. \[/);
		usage(plan('bad.json', '[{'), /bad\.json: /);
		usage(plan('key.json', [{ recipe: 'vgem', bogus: 1 }]), /target 0: unknown key bogus; known: module, params/);
		usage(plan('none.json', [{ module: 'x.ko' }]), /exactly one of --device/);
	});
});
