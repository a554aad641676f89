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
const binary = baselineBinary();
const fd = addon.open('/dev/zero', addon.constants.O_RDWR);
const mapping = addon.mmap(fd, size, addon.constants.PROT_READ | addon.constants.PROT_WRITE, true, 0);
const patterns = [
	['constant', 2, { value: 0x5a }],
	['counter', 0, {}],
	['address-tag', 3, { seed: 7n }],
	['random', 1, { seed: 7n }],
];

// Rounds interleave the C baseline and the addon, two samples each per round,
// so a busy neighbour on a shared machine slows both sides alike.
const samples = { cFill: [], cVerify: [] };
for (const [name] of patterns) {
	samples[`fill ${name}`] = [];
	samples[`verify ${name}`] = [];
}
for (let round = 0; round < iterations; round++) {
	const c = JSON.parse(execFileSync(binary, [String(mib), '2'], { encoding: 'utf8' }));
	samples.cFill.push(...c.fill);
	samples.cVerify.push(...c.verify);
	for (const [name, code, extra] of patterns) {
		const args = { pattern: code, seed: 0n, value: 0, offset: 0, length: size, ...extra };
		samples[`fill ${name}`].push(...timeIt(1, () => mapping.fillSync(args)));
		let result;
		samples[`verify ${name}`].push(
			...timeIt(2, () => {
				result = mapping.verifySync(args);
			}),
		);
		if (result.mismatchCount !== 0 || result.faultingPages.length !== 0) throw new Error(`verify ${name} failed`);
	}
}
const cVerify = stats(samples.cVerify);
rows.push({ name: 'C memset (fill)', ...stats(samples.cFill) });
rows.push({ name: 'C memcmp vs 64 KiB ref (verify)', ...cVerify });
for (const [name] of patterns) {
	rows.push({ name: `addon fill ${name}`, ...stats(samples[`fill ${name}`]) });
	const verify = stats(samples[`verify ${name}`]);
	rows.push({ name: `addon verify ${name}`, ...verify, ratio: cVerify.median / verify.median, ratioMin: cVerify.min / verify.min });
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
	rows.push({ name: 'addon verify counter (async)', ...stats(ns), ratio: cVerify.median / stats(ns).median, ratioMin: cVerify.min / stats(ns).min });
}

// Plain JavaScript loops over the same bytes, counter pattern: byte by byte
// (the obvious loop) and 32 bits at a time (a hand-tuned one). Top-level
// functions so V8 optimizes them; 5 runs (they are slow), warm runs dominate the median.
function jsByteLoop(view) {
	let bad = 0;
	for (let i = 0; i < view.length; i++) if (view[i] !== (i & 0xff)) bad++;
	return bad;
}
function jsWordLoop(view) {
	const words = new Uint32Array(view.buffer, view.byteOffset, view.length >>> 2);
	let bad = 0;
	for (let i = 0; i < words.length; i++) {
		const b0 = (i * 4) & 0xff;
		const expected = (b0 | (((b0 + 1) & 0xff) << 8) | (((b0 + 2) & 0xff) << 16) | (((b0 + 3) & 0xff) << 24)) >>> 0;
		if (words[i] !== expected) bad++;
	}
	return bad;
}
const bytes = new Uint8Array(mapping.buffer);
const jsRuns = Math.min(5, iterations);
const jsRows = [];
for (const [name, fn] of [['JS loop verify counter (bytes)', jsByteLoop], ['JS loop verify counter (u32)', jsWordLoop]]) {
	let bad = 0;
	const ns = timeIt(jsRuns, () => {
		bad = fn(bytes);
	});
	if (bad !== 0) throw new Error(`${name} found mismatches`);
	const row = { name, ...stats(ns), ratio: cVerify.median / stats(ns).median, ratioMin: cVerify.min / stats(ns).min };
	rows.push(row);
	jsRows.push(row);
}
const addonCounter = rows.find((r) => r.name === 'addon verify counter');

mapping.unmap();
addon.close(fd);

if (values.json) {
	console.log(JSON.stringify({ mib, iterations, rows }, null, 2));
} else {
	console.log(`verify throughput over ${mib} MiB of MAP_SHARED /dev/zero, ${iterations} iterations (JS loops: ${jsRuns})`);
	console.log(
		`${'case'.padEnd(34)} ${'min ms'.padStart(9)} ${'median ms'.padStart(10)} ${'GB/s'.padStart(7)} ${'vs C (median)'.padStart(14)} ${'vs C (min)'.padStart(11)}`,
	);
	for (const r of rows) {
		const ratio = r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`;
		const ratioMin = r.ratioMin === undefined ? '' : `${r.ratioMin.toFixed(2)}x`;
		console.log(
			`${r.name.padEnd(34)} ${(r.min / 1e6).toFixed(1).padStart(9)} ${(r.median / 1e6).toFixed(1).padStart(10)} ${gbps(r.median).toFixed(2).padStart(7)} ${ratio.padStart(14)} ${ratioMin.padStart(11)}`,
		);
	}
	for (const row of jsRows) {
		console.log(
			`addon verify counter vs ${row.name}: ${(row.median / addonCounter.median).toFixed(1)}x faster (median), ${(row.min / addonCounter.min).toFixed(1)}x (min)`,
		);
	}
}
