#!/usr/bin/env node
// Bundles the device suite (test/device/*.test.ts and the sources they
// import) for a TCG guest: vitest there would transform about 100 TypeScript
// files one by one (transform and import were 30 to 50% of a device suite's
// time in CI).  Each test file becomes one JS file under build/device-tests/,
// the code they share goes into chunks that vitest leaves to Node
// (vitest.config.ts, HYBRIDMEM_DEVICE_BUNDLE), and only vitest itself stays
// outside.  The directory sits two levels below the package root, as src/*/
// does, so PACKAGE_ROOT and the addon's lookup resolve the same.
// scripts/test.mjs and scripts/matrix.mjs run it on the host before the
// device suites; scripts/device-suite.mjs --bundled runs the result.
// Usage: node scripts/device-bundle.mjs
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_BUNDLE } from './esbuild-options.mjs';

/** Where the bundled suite goes, relative to the package root. */
export const DEVICE_BUNDLE_DIR = path.join('build', 'device-tests');

/** Writes the bundled device suite; returns its directory. */
export async function bundleDeviceTests(root) {
	const src = path.join(root, 'test', 'device');
	const out = path.join(root, DEVICE_BUNDLE_DIR);
	rmSync(out, { recursive: true, force: true });
	// Loaded here only: the guest imports this file for DEVICE_BUNDLE_DIR, and has no esbuild binary for every architecture.
	const { build } = await import('esbuild');
	await build({
		...NODE_BUNDLE,
		entryPoints: readdirSync(src).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(src, f)),
		outdir: out,
		splitting: true,
		entryNames: '[name]',
		chunkNames: 'chunk-[hash]',
		external: ['vitest'],
	});
	return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const t = Date.now();
	const out = await bundleDeviceTests(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
	console.log(`hybridmem: bundled the device suite into ${out} (${Date.now() - t} ms)`);
}
