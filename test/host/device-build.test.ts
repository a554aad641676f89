// scripts/build-addon.mjs: offline node-gyp build that skips itself when
// build/Release/hybridmem.node is newer than every input.
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { execa } from 'execa';
import { expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');

test('a second build-addon run is skipped and leaves the addon untouched', async () => {
	await execa(process.execPath, [join(root, 'scripts', 'build-addon.mjs')], { cwd: root }); // builds only if stale
	const addon = join(root, 'build', 'Release', 'hybridmem.node');
	const before = statSync(addon).mtimeMs;
	const again = await execa(process.execPath, [join(root, 'scripts', 'build-addon.mjs')], { cwd: root });
	expect(again.stdout).toContain('up to date');
	expect(statSync(addon).mtimeMs).toBe(before);
}, 180_000);
