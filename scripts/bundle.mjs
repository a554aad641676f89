#!/usr/bin/env node
// Bundles the programs a guest runs (the CLI, the warm guest's agent) into one
// file each under dist/guest/, from tsc's output in dist/.  Under TCG a guest
// reads the package over 9p: the unbundled CLI's 244 module files cost about
// 1,800 file operations and 6 to 8 s of a `check` start; the bundle's load
// costs 0.35 s beyond node's own start (README, "Fast loop").  dist/guest/ sits two levels below the
// package root like every dist/ directory, so PACKAGE_ROOT, the addon's
// lookup and package.json resolve the same from the bundle.
// Usage: node scripts/bundle.mjs (npm run build runs it after tsc)
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_BUNDLE } from './esbuild-options.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const t = Date.now();
await build({
	entryPoints: { cli: path.join(root, 'dist', 'cli', 'main.js'), 'warm-agent': path.join(root, 'dist', 'scenarios', 'warm-agent.js') },
	outdir: path.join(root, 'dist', 'guest'),
	...NODE_BUNDLE,
});
console.log(`hybridmem: bundled the guest's CLI and warm agent into dist/guest/ (${Date.now() - t} ms)`);
