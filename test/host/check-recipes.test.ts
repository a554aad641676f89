// Recipe loading for `hybridmem check --recipe`: shipped names, a user's ES
// module, and what a wrong name or module gets.  The recipes themselves run
// in VMs (test/vm/check.test.ts).
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadRecipe, RECIPES } from '../../src/check/recipes/index.js';

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
