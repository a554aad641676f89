// scripts/build-addon.mjs: offline node-gyp build that skips itself when
// build/Release/hybridmem.node is newer than every input.
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { execa } from 'execa';
import { expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');

// It never rebuilds here (that would delete build/ under the other test files):
// the test run starts after `npm run build`, so the addon must be up to date.
test('build-addon skips the build when the addon is newer than its sources', async () => {
	const check = await execa(process.execPath, [join(root, 'scripts', 'build-addon.mjs'), '--check'], { cwd: root, reject: false });
	expect(check.exitCode, 'the addon is older than native/, binding.gyp or the uapi header: run `npm run build`').toBe(0);
	const addon = join(root, 'build', 'Release', 'hybridmem.node');
	const before = statSync(addon).mtimeMs;
	const again = await execa(process.execPath, [join(root, 'scripts', 'build-addon.mjs')], { cwd: root });
	expect(again.stdout, 'the addon is older than native/, binding.gyp or the uapi header: run `npm run build`').toContain('up to date');
	expect(statSync(addon).mtimeMs).toBe(before);
}, 180_000);
