#!/usr/bin/env node
// Verify throughput over a 256 MiB MAP_SHARED /dev/zero mapping: the addon's
// verify (each pattern) against a C baseline (memset + memcmp, same kind of
// mapping, same run) and a plain JavaScript loop. A benchmark, not a test.
// usage: node bench/verify.mjs [--mib 256] [--iterations 7] [--json]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
	options: { mib: { type: 'string', default: '256' }, iterations: { type: 'string', default: '7' }, json: { type: 'boolean', default: false } },
});
const mib = Number(values.mib);
const iterations = Number(values.iterations);
const size = mib * 1024 * 1024;

const addonPath = join(root, 'build', 'Release', 'hybridmem.node');
if (!existsSync(addonPath)) {
	console.error('bench/verify: the addon is not built; run `npm run build` first');
	process.exit(1);
}
const addon = createRequire(import.meta.url)(addonPath);

function baselineBinary() {
	const source = join(root, 'bench', 'c', 'verify_baseline.c');
	const outDir = join(root, 'build', 'bench');
	const binary = join(outDir, 'verify_baseline');
	if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs) {
		mkdirSync(outDir, { recursive: true });
		execFileSync('cc', ['-O2', '-o', binary, source], { stdio: 'inherit' });
	}
	return binary;
}

const stats = (ns) => {
	const sorted = [...ns].sort((a, b) => a - b);
	return { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)] };
};
const gbps = (ns) => size / ns; // bytes per ns = GB/s

function timeIt(n, fn) {
	const out = [];
	for (let i = 0; i < n; i++) {
		const t0 = process.hrtime.bigint();
		fn();
		out.push(Number(process.hrtime.bigint() - t0));
	}
	return out;
}

const rows = [];

// C baseline first (its own process, its own mapping of the same kind).
const c = JSON.parse(execFileSync(baselineBinary(), [String(mib), String(iterations)], { encoding: 'utf8' }));
rows.push({ name: 'C memset (fill)', ...stats(c.fill) });
rows.push({ name: 'C memcmp vs 64 KiB ref (verify)', ...stats(c.verify) });
const cVerify = stats(c.verify);

const fd = addon.open('/dev/zero', addon.constants.O_RDWR);
const mapping = addon.mmap(fd, size, addon.constants.PROT_READ | addon.constants.PROT_WRITE, true, 0);
const patterns = [
	['constant', 2, { value: 0x5a }],
	['counter', 0, {}],
	['address-tag', 3, { seed: 7n }],
	['random', 1, { seed: 7n }],
];
for (const [name, code, extra] of patterns) {
	const args = { pattern: code, seed: 0n, value: 0, offset: 0, length: size, ...extra };
	rows.push({ name: `addon fill ${name}`, ...stats(timeIt(iterations, () => addon_fill(args))) });
	let result;
	const ns = timeIt(iterations, () => {
		result = mapping.verifySync(args);
	});
	if (result.mismatchCount !== 0 || result.faultingPages.length !== 0) throw new Error(`verify ${name} failed`);
	rows.push({ name: `addon verify ${name}`, ...stats(ns), ratio: cVerify.median / stats(ns).median });
}
function addon_fill(args) {
	mapping.fillSync(args);
}

// Async (worker thread) verify of the same region, for the promise path's overhead.
{
	const args = { pattern: 0, seed: 0n, value: 0, offset: 0, length: size };
	mapping.fillSync(args);
	const ns = [];
	for (let i = 0; i < iterations; i++) {
		const t0 = process.hrtime.bigint();
		await mapping.verifyAsync(args);
		ns.push(Number(process.hrtime.bigint() - t0));
	}
	rows.push({ name: 'addon verify counter (async)', ...stats(ns), ratio: cVerify.median / stats(ns).median });
}

// Plain JavaScript loop over the same bytes, counter pattern (fewer runs: it is slow).
const bytes = new Uint8Array(mapping.buffer);
let jsBad = 0;
const jsNs = timeIt(Math.min(3, iterations), () => {
	let bad = 0;
	for (let i = 0; i < bytes.length; i++) if (bytes[i] !== (i & 0xff)) bad++;
	jsBad = bad;
});
if (jsBad !== 0) throw new Error('JS loop found mismatches');
const js = stats(jsNs);
rows.push({ name: 'JS loop verify counter', ...js, ratio: cVerify.median / js.median });
const addonCounter = rows.find((r) => r.name === 'addon verify counter');

mapping.unmap();
addon.close(fd);

if (values.json) {
	console.log(JSON.stringify({ mib, iterations, rows }, null, 2));
} else {
	console.log(`verify throughput over ${mib} MiB of MAP_SHARED /dev/zero, ${iterations} iterations (JS loop: ${jsNs.length})`);
	console.log(`${'case'.padEnd(34)} ${'min ms'.padStart(9)} ${'median ms'.padStart(10)} ${'GB/s'.padStart(7)} ${'vs C verify'.padStart(12)}`);
	for (const r of rows) {
		const ratio = r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`;
		console.log(`${r.name.padEnd(34)} ${(r.min / 1e6).toFixed(1).padStart(9)} ${(r.median / 1e6).toFixed(1).padStart(10)} ${gbps(r.median).toFixed(2).padStart(7)} ${ratio.padStart(12)}`);
	}
	console.log(`addon verify counter vs JS loop: ${(js.median / addonCounter.median).toFixed(1)}x faster`);
}
