#!/usr/bin/env node
// Runs the device test suite where hybridmem_test.ko can be loaded: inside
// the VM runner (scripts/test.mjs boots one per kernel) or natively with
// HYBRIDMEM_NATIVE=1.  Loads the module built for the running kernel, runs
// vitest's device project with a JSON report, then unloads the module.
// Usage: node scripts/device-suite.mjs --report FILE [--bundled] [vitest filters...]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEVICE_BUNDLE_DIR } from './device-bundle.mjs';
import { guestModulesDir } from './guest-modules.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The guest's one-file CLI (scripts/bundle.mjs), as the VM runner's own commands use it.
const { guestProgram } = await import(path.join(root, 'dist', 'setup', 'paths.js'));
const cli = guestProgram('cli');
const args = process.argv.slice(2);
const reportAt = args.indexOf('--report');
const report = reportAt >= 0 ? args.splice(reportAt, 2)[1] : path.join(root, 'reports', `device-${os.release()}.json`);
// --bundled: the suite as the host bundled it just before (scripts/device-bundle.mjs).
const bundled = args.includes('--bundled');
if (bundled) args.splice(args.indexOf('--bundled'), 1);

// In a guest of another architecture than the host that ran npm (arm64
// under the x86 checkout), vitest's native bindings come from
// build/guest-modules (scripts/guest-modules.mjs fetches them).
const guestModules = path.join(root, guestModulesDir(process.arch));
const env = {
	...process.env,
	...(existsSync(guestModules) ? { NODE_PATH: [guestModules, process.env.NODE_PATH].filter(Boolean).join(path.delimiter) } : {}),
	...(bundled ? { HYBRIDMEM_DEVICE_BUNDLE: DEVICE_BUNDLE_DIR } : {}),
};

function run(cmd, argv) {
	const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, env });
	return r.status ?? 1;
}

console.log(`device suite on ${os.release()}`);
if (run('node', [cli, 'setup', '--reload']) !== 0) {
	console.error('device suite: setup failed; no device test ran');
	process.exit(1);
}
const status = run(path.join(root, 'node_modules', '.bin', 'vitest'), [
	'run', '--project', 'device',
	'--reporter=default', '--reporter=json', `--outputFile.json=${report}`,
	...args,
]);
const down = run('node', [cli, 'teardown']);
process.exit(status !== 0 ? status : down);
