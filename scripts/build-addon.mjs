#!/usr/bin/env node
// Builds the N-API addon (build/Release/hybridmem.node) with node-gyp, offline:
// Node's own headers (the directory holding include/node/common.gypi, /usr on
// Debian) are used, never downloaded. Skips the build when the .node is newer
// than every input. Usage: node scripts/build-addon.mjs [--force | --check]
// (--check only says whether a build is needed: exit 0 up to date, 1 stale).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(root, 'build', 'Release', 'hybridmem.node');
const force = process.argv.includes('--force');
const checkOnly = process.argv.includes('--check');

function inputs() {
	const nativeDir = join(root, 'native');
	const files = readdirSync(nativeDir).map((name) => join(nativeDir, name));
	return [...files, join(root, 'binding.gyp'), join(root, 'kmod', 'hybridmem_uapi.h')];
}

function upToDate() {
	if (!existsSync(output)) return false;
	const built = statSync(output).mtimeMs;
	return inputs().every((file) => !existsSync(file) || statSync(file).mtimeMs < built);
}

// The node-gyp to run: the project's own if installed, else the one npm
// bundles (found from npm's exec path when run by npm, else next to node).
function findNodeGyp() {
	const candidates = [];
	try {
		candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
	} catch {
		// not a project dependency
	}
	if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
	if (process.env.npm_execpath) {
		candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
	}
	const prefix = resolve(dirname(process.execPath), '..');
	candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
	candidates.push(join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
	return candidates.find((file) => existsSync(file));
}

// The directory whose include/node/common.gypi matches the running node.
function findNodeDir() {
	const candidates = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')].filter(Boolean);
	return candidates.find((dir) => existsSync(join(dir, 'include', 'node', 'common.gypi')));
}

function fail(message) {
	console.error(`hybridmem: ${message}`);
	process.exit(1);
}

if (!force && upToDate()) {
	console.log('hybridmem: build/Release/hybridmem.node is up to date');
	process.exit(0);
}
if (checkOnly) {
	console.log('hybridmem: build/Release/hybridmem.node is missing or older than its sources');
	process.exit(1);
}
const nodeGyp = findNodeGyp();
if (!nodeGyp) fail('node-gyp not found: install npm (it bundles node-gyp) or add node-gyp to devDependencies');
const nodeDir = findNodeDir();
if (!nodeDir) {
	fail(
		`Node's headers not found (no include/node/common.gypi next to ${process.execPath}); ` +
			'install them (Debian: apt-get install libnode-dev / nodejs headers) or set npm_config_nodedir',
	);
}
console.log(`hybridmem: building the addon with ${nodeGyp} (headers from ${nodeDir})`);
// configure + build, not rebuild: rebuild's clean step deletes all of build/,
// which also holds the kernel modules (build/kmod) and other outputs.
for (const step of [['configure'], ['build', '--jobs=max']]) {
	const result = spawnSync(process.execPath, [nodeGyp, ...step, `--nodedir=${nodeDir}`], {
		cwd: root,
		stdio: 'inherit',
		// node-gyp must never fetch headers: a dead dist URL makes any attempt fail loudly.
		env: { ...process.env, npm_config_nodedir: nodeDir, npm_config_dist_url: 'http://0.0.0.0/' },
	});
	if (result.error) fail(`could not run node-gyp: ${result.error.message}`);
	if (result.status !== 0) fail(`node-gyp ${step[0]} failed (exit ${result.status ?? result.signal})`);
}
// make leaves the .node's mtime alone when nothing needed relinking; the
// up-to-date check compares against the sources, so mark this build.
const now = new Date();
utimesSync(output, now, now);
