// Page ownership: the pages of a mapping belong to one refcounted object, so
// fork (the child's vma maps the same pages), partial munmap (a vma split)
// and unmapping in any order neither leak nor free early; afterwards
// live_pages is back where it was and the module unloads.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { MAP_MODES } from '../../src/device/index.js';
import { setup } from '../../src/setup/setup.js';
import { status } from '../../src/setup/status.js';
import { teardown } from '../../src/setup/teardown.js';
import { clientPath, requireDevice } from './device-env.js';

const device = requireDevice();
const client = clientPath('fork_munmap');
const livePages = () => status(device.path).counters.live_pages;

describe.runIf(device.ok)('fork and partial munmap', () => {
	for (const mode of MAP_MODES.filter((m) => !['mixed', 'free_after_map', 'leak_on_error'].includes(m))) {
		test(`${mode}: parent and child share the pages, partial unmaps keep the rest, the last unmap frees all`, async () => {
			expect(existsSync(client), `${client} (scripts/fixtures.mjs builds it: npm test, npm run test:matrix)`).toBe(true);
			const before = livePages();
			const r = await execa(client, [device.path, String(MAP_MODES.indexOf(mode)), '16'], { reject: false });
			expect(r.stderr).toBe('');
			expect([r.exitCode, r.stdout]).toEqual([0, 'ok']);
			expect(livePages()).toBe(before);
		});
	}

	test('after all of that the module unloads (no reference left behind)', async () => {
		expect(status(device.path).counters.live_mappings).toBe(0n);
		expect(await teardown({ node: device.path })).toEqual({ module: 'unloaded', node: 'removed' });
		await setup({ node: device.path });
		expect(status(device.path).loaded).toBe(true);
	});
});
