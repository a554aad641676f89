#!/usr/bin/env node
// Verify throughput over a 256 MiB MAP_SHARED mapping of a memory file
// (shmem, the same memory a MAP_SHARED /dev/zero mapping gets): the addon's
// verify (each pattern) against a C baseline (memset + memcmp) and a plain
// JavaScript loop. The C baseline runs as a child process on the same pages
// (the memfd is passed to it), so both sides read the same memory, each sample
// straight after a fill of the whole buffer by the same side, C and addon
// samples taking turns. A benchmark, not a test.
// usage: node bench/verify.mjs [--mib 256] [--iterations 7] [--json]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
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
const median = (xs) => stats(xs).median;
const gbps = (ns) => size / ns; // bytes per ns = GB/s

// On-CPU nanoseconds of this (the main) thread, from the scheduler: unlike
// wall time it leaves out the time other processes held the CPU. The C child
// reports the same (CLOCK_THREAD_CPUTIME_ID) for its side.
const threadCpuNs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

/** [wall ns, on-CPU ns, result] of fn(). */
function timeOnce(fn) {
	const c0 = threadCpuNs();
	const t0 = process.hrtime.bigint();
	const r = fn();
	const wall = Number(process.hrtime.bigint() - t0);
	return [wall, threadCpuNs() - c0, r];
}

const rows = [];
const binary = baselineBinary();
const fd = addon.memfd('hybridmem-bench-verify');
addon.ftruncate(fd, size);
const mapping = addon.mmap(fd, size, addon.constants.PROT_READ | addon.constants.PROT_WRITE, true, 0);

// The C side: a child serving "fill" / "verify" on the same memfd (its fd 3).
const child = spawn(binary, ['--serve', '3', String(mib)], { stdio: ['pipe', 'pipe', 'inherit', fd] });
const replies = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
async function cRun(command) {
	child.stdin.write(`${command}\n`);
	const { value, done } = await replies.next();
	if (done) throw new Error(`bench/verify: the C baseline exited (${command})`);
	const [ns, cpu, bad] = value.split(' ').map(Number);
	if (bad !== 0) throw new Error(`bench/verify: the C baseline found ${bad} mismatched chunks`);
	return [ns, cpu];
}

const patterns = [
	['constant', 2, { value: 0x5a }],
	['counter', 0, {}],
	['address-tag', 3, { seed: 7n }],
	['random', 1, { seed: 7n }],
];
const argsOf = (code, extra) => ({ pattern: code, seed: 0n, value: 0, offset: 0, length: size, ...extra });

const samples = { cFill: [], cVerify: [], cVerifyCpu: [] };
/**
 * Per pattern: C verify time / addon verify time, of the C sample taken next
 * to each addon sample, in wall time (`pairs`) and on-CPU time (`cpuPairs`).
 */
const pairs = {};
const cpuPairs = {};
for (const [name] of patterns) {
	samples[`fill ${name}`] = [];
	samples[`verify ${name}`] = [];
	pairs[name] = [];
	cpuPairs[name] = [];
}

/** [wall ns, on-CPU ns] of one C verify, after a C fill. */
async function cSample() {
	samples.cFill.push((await cRun('fill'))[0]);
	const [ns, cpu] = await cRun('verify');
	samples.cVerify.push(ns);
	samples.cVerifyCpu.push(cpu);
	return [ns, cpu];
}
/** [wall ns, on-CPU ns] of one addon verify, after an addon fill. */
function addonSample(name, code, extra) {
	const args = argsOf(code, extra);
	const [fillNs] = timeOnce(() => mapping.fillSync(args));
	const [ns, cpu, result] = timeOnce(() => mapping.verifySync(args));
	if (result.mismatchCount !== 0 || result.faultingPages.length !== 0) throw new Error(`verify ${name} failed`);
	samples[`fill ${name}`].push(fillNs);
	samples[`verify ${name}`].push(ns);
	return [ns, cpu];
}

// Warm-up, not counted: both sides fault in their page tables, code and
// reference buffers, and the CPU leaves its idle clock.
for (let k = 0; k < 2; k++) {
	await cRun('fill');
	await cRun('verify');
	for (const [, code, extra] of patterns) {
		mapping.fillSync(argsOf(code, extra));
		mapping.verifySync(argsOf(code, extra));
	}
}

// Each round takes the patterns in a rotated order, so none is always the
// first after the C child ran; within each pair the side that goes first
// alternates. Every verify, on either side, comes straight after that side
// filled the whole buffer: the same cache state for both.
for (let round = 0; round < iterations; round++) {
	for (let p = 0; p < patterns.length; p++) {
		const [name, code, extra] = patterns[(p + round) % patterns.length];
		let c;
		let a;
		if ((round + p) % 2 === 0) {
			c = await cSample();
			a = addonSample(name, code, extra);
		} else {
			a = addonSample(name, code, extra);
			c = await cSample();
		}
		pairs[name].push(c[0] / a[0]);
		cpuPairs[name].push(c[1] / a[1]);
	}
}
const cVerify = stats(samples.cVerify);
rows.push({ name: 'C memset (fill)', ...stats(samples.cFill) });
rows.push({ name: 'C memcmp vs 64 KiB ref (verify)', ...cVerify });
for (const [name] of patterns) {
	rows.push({ name: `addon fill ${name}`, ...stats(samples[`fill ${name}`]) });
	const verify = stats(samples[`verify ${name}`]);
	rows.push({
		name: `addon verify ${name}`,
		...verify,
		ratio: cVerify.median / verify.median,
		ratioMin: cVerify.min / verify.min,
		paired: median(pairs[name]),
		pairedCpu: median(cpuPairs[name]),
	});
}

// Async (worker thread) verify of the same region, for the promise path's overhead; paired like the rest.
{
	const args = argsOf(0, {});
	const ns = [];
	const asyncPairs = [];
	for (let i = 0; i < iterations; i++) {
		const [cNs] = await cSample();
		mapping.fillSync(args);
		const t0 = process.hrtime.bigint();
		await mapping.verifyAsync(args);
		ns.push(Number(process.hrtime.bigint() - t0));
		asyncPairs.push(cNs / ns[i]);
	}
	rows.push({ name: 'addon verify counter (async)', ...stats(ns), ratio: cVerify.median / stats(ns).median, ratioMin: cVerify.min / stats(ns).min, paired: median(asyncPairs) });
}
child.stdin.end();

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
	const ns = [];
	for (let k = 0; k < jsRuns; k++)
		ns.push(
			timeOnce(() => {
				bad = fn(bytes);
			})[0],
		);
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
	console.log(`verify throughput over ${mib} MiB of a MAP_SHARED memfd (the C baseline maps the same pages), ${iterations} iterations (JS loops: ${jsRuns})`);
	console.log('vs C: C median / addon median, min / min; paired: the median over pairs of samples taken one after the other of C time / addon time, wall and on-CPU');
	console.log(
		`${'case'.padEnd(34)} ${'min ms'.padStart(9)} ${'median ms'.padStart(10)} ${'GB/s'.padStart(7)} ${'vs C (median)'.padStart(14)} ${'vs C (min)'.padStart(11)} ${'paired'.padStart(7)} ${'on-CPU'.padStart(7)}`,
	);
	const x = (v) => (v === undefined ? '' : `${v.toFixed(2)}x`);
	for (const r of rows) {
		console.log(
			`${r.name.padEnd(34)} ${(r.min / 1e6).toFixed(1).padStart(9)} ${(r.median / 1e6).toFixed(1).padStart(10)} ${gbps(r.median).toFixed(2).padStart(7)} ${x(r.ratio).padStart(14)} ${x(r.ratioMin).padStart(11)} ${x(r.paired).padStart(7)} ${x(r.pairedCpu).padStart(7)}`,
		);
	}
	for (const row of jsRows) {
		console.log(
			`addon verify counter vs ${row.name}: ${(row.median / addonCounter.median).toFixed(1)}x faster (median), ${(row.min / addonCounter.min).toFixed(1)}x (min)`,
		);
	}
}
