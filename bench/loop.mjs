#!/usr/bin/env node
// The edit-to-verdict loop under emulation (issue 19): wall time of what a
// driver developer runs over and over, against a bare compressed-kernel QEMU
// boot measured in the same session.  Variants alternate within each round
// (and the order flips every round) so a loaded host slows all of them alike;
// the figures are medians.  A benchmark, not a test.
// The keep-* variants use `run --keep`: one warm guest for all of them, which
// each run must leave proven clean (a discarded guest makes the next sample a
// boot, counted as such).  edit-* changes the module's source for real (a
// comment with a counter), so each sample rebuilds it; the source is restored
// and the bench's module builds removed at the end.
// usage: node bench/loop.mjs [--runs 5] [--kernel VER] [--only a,b] [--json]
// (needs `npm run build`; the first round is untimed and warms every cache)
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bareBoot } from './bare-boot.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { chooseKernel } = await dist('vm/kernels.js');
const { SCENARIOS } = await dist('scenarios/catalog.js');
const { cachePath } = await dist('vm/cache.js');

const { values } = parseArgs({
	options: {
		runs: { type: 'string', default: '5' },
		kernel: { type: 'string' },
		only: { type: 'string' },
		json: { type: 'boolean', default: false },
	},
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs expects a positive integer, got '${values.runs}'`);
const kernel = chooseKernel(values.kernel);
const cli = path.join(root, 'dist', 'cli', 'main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-bench-loop-'));
const TIMEOUT_MS = 300_000;
const safe = SCENARIOS.filter((s) => !s.crashes && !s.ownVm).map((s) => s.name);

// The baseline: the same kernel's compressed bzImage, busybox, an init that powers off at once.
const bare = bareBoot(kernel, tmp)();
const hm = (...args) => [process.execPath, cli, ...args];
const k = ['--kernel', kernel.version];
const source = path.join(root, 'kmod', 'hybridmem_test.c');
const original = readFileSync(source, 'utf8');
const kmodCache = path.join(cachePath(), 'kmod');
const buildsBefore = new Set(existsSync(kmodCache) ? readdirSync(kmodCache) : []);
let edits = 0;
const touch = () => {
	const now = new Date();
	utimesSync(source, now, now);
};
// A real edit: the content changes, so the content-keyed build runs kbuild again.
const edit = () => writeFileSync(source, `${original}/* bench/loop.mjs edit ${++edits} */\n`);

const VARIANTS = [
	{ name: 'bare', label: 'bare QEMU boot (bzImage, q35)', cmd: ['qemu-system-x86_64', ...bare] },
	{ name: 'true', label: 'hybridmem vm -- true', cmd: hm('vm', ...k, '--', 'true') },
	{ name: 'snapshot', label: 'hybridmem vm --snapshot -- true (restored)', cmd: hm('vm', ...k, '--snapshot', '--', 'true') },
	{ name: 'node', label: 'hybridmem vm -- node -e 0', cmd: hm('vm', ...k, '--', process.execPath, '-e', '0') },
	{ name: 'test2', label: 'hybridmem run test2 (warm)', cmd: hm('run', '--vm', ...k, 'test2') },
	{ name: 'node-9p', label: 'hybridmem vm -- node -e 0 (node over 9p)', env: { HYBRIDMEM_NODE_LAYER: '0' }, cmd: hm('vm', ...k, '--', process.execPath, '-e', '0') },
	{ name: 'test2', label: 'hybridmem run test2 (fresh VM)', cmd: hm('run', '--vm', ...k, 'test2') },
	{ name: 'touch', label: 'touch kmod/hybridmem_test.c && hybridmem run test2', before: touch, cmd: hm('run', '--vm', ...k, 'test2') },
	{ name: 'edit', label: 'edit kmod/hybridmem_test.c && hybridmem run test2', before: edit, cmd: hm('run', '--vm', ...k, 'test2') },
	{ name: 'safe', label: `hybridmem run (${safe.length} safe scenarios, fresh VM)`, cmd: hm('run', '--vm', ...k, ...safe) },
	{ name: 'keep-test2', label: 'hybridmem run --keep test2', warm: true, cmd: hm('run', '--keep', '--json', ...k, 'test2') },
	{ name: 'keep-touch', label: 'touch && hybridmem run --keep test2', warm: true, before: touch, cmd: hm('run', '--keep', '--json', ...k, 'test2') },
	{ name: 'keep-edit', label: 'edit && hybridmem run --keep test2', warm: true, before: edit, cmd: hm('run', '--keep', '--json', ...k, 'test2') },
	{ name: 'keep-safe', label: `hybridmem run --keep (${safe.length} safe scenarios)`, warm: true, cmd: hm('run', '--keep', '--json', ...k, ...safe) },
];
const only = values.only?.split(',');
const chosen = only ? VARIANTS.filter((v) => only.includes(v.name)) : VARIANTS;
if (only && chosen.length !== only.length) throw new Error(`--only: known variants are ${VARIANTS.map((v) => v.name).join(', ')}`);

const boots = new Map(); // keep-* variant -> samples that had to boot
const drift = []; // free pages short of the baseline, per clean warm run
const discards = [];

async function timed(v, counted = true) {
	v.before?.();
	const t0 = performance.now();
	const [bin, ...args] = v.cmd;
	const r = await execa(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: v.env ?? {}, reject: false, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
	const s = (performance.now() - t0) / 1000;
	if (r.timedOut || r.exitCode !== 0) throw new Error(`${v.label} failed (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}):\n${r.stdout}\n${r.stderr}`);
	if (v.warm && counted) {
		const warm = JSON.parse(r.stdout).warm;
		if (warm.booted) boots.set(v.name, (boots.get(v.name) ?? 0) + 1);
		// A discarded guest is the proof working (or too strict): count it and say why; the next sample boots.
		if (!warm.kept) discards.push({ variant: v.name, why: warm.proof?.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; ') ?? warm.error });
		const free = warm.proof.checks.find((c) => c.name === 'free pages back');
		const m = /^(-?\d+) pages short of the baseline /.exec(free?.detail ?? '');
		if (m) drift.push(Number(m[1]));
	}
	return s;
}

const stats = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	const mid = s.length >> 1;
	return { min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1], samples: xs };
};

try {
	for (const v of chosen) await timed(v, false); // untimed: warms the caches (and boots the warm guest) and proves each exits 0
	const samples = chosen.map(() => []);
	for (let i = 0; i < runs; i++) {
		const order = chosen.map((_, j) => j);
		if (i % 2) order.reverse();
		for (const j of order) samples[j].push(await timed(chosen[j]));
		if (!values.json) process.stderr.write(`\rround ${i + 1}/${runs}`);
	}
	if (!values.json) process.stderr.write('\n');
	const results = chosen.map((v, j) => ({ name: v.name, label: v.label, ...(v.warm ? { boots: boots.get(v.name) ?? 0 } : {}), ...stats(samples[j]) }));
	const by = Object.fromEntries(results.map((r) => [r.name, r]));
	const load = os.loadavg()[0];
	const loop = by['keep-touch'] ?? by.touch;
	const all = by['keep-safe'] ?? by.safe;
	const targets = [
		loop && { what: `${loop.name}: touch && run test2 median`, value: loop.median, unit: 's', target: 3 },
		all && { what: `${all.name}: run of all safe scenarios median`, value: all.median, unit: 's', target: 5 },
		by.true && by.bare && { what: 'vm -- true / bare boot', value: by.true.median / by.bare.median, unit: 'x', target: 0.5 },
		by.snapshot && by.bare && { what: 'vm --snapshot -- true / bare boot', value: by.snapshot.median / by.bare.median, unit: 'x', target: 0.5 },
	].filter(Boolean);
	for (const t of targets) t.met = t.value <= t.target;
	const driftRange = drift.length ? { min: Math.min(...drift), max: Math.max(...drift), n: drift.length } : undefined;
	if (values.json) console.log(JSON.stringify({ kernel: kernel.version, runs, loadavg1: load, results, targets, freePagesDrift: driftRange, discards }, null, 2));
	else {
		const f = (x) => `${x.toFixed(2)} s`;
		console.log(`kernel ${kernel.version}, TCG, ${runs} alternating rounds, ${os.cpus().length} host CPUs, load average ${load.toFixed(1)} at the end`);
		console.log(`${'variant'.padEnd(54)} ${'min'.padStart(8)} ${'median'.padStart(8)} ${'max'.padStart(8)}`);
		for (const r of results) console.log(`${r.label.padEnd(54)} ${f(r.min).padStart(8)} ${f(r.median).padStart(8)} ${f(r.max).padStart(8)}${r.boots ? `   (${r.boots} booted)` : ''}`);
		for (const d of discards) console.log(`warm guest discarded after ${d.variant}: ${d.why}`);
		if (driftRange) console.log(`\nwarm runs: free pages short of the baseline after each, ${driftRange.min} to ${driftRange.max} over ${driftRange.n} runs (slack 1024)`);
		console.log('');
		for (const t of targets)
			console.log(`${t.what.padEnd(36)} ${t.value.toFixed(2)} ${t.unit}   target <= ${t.target} ${t.unit}   ${t.met ? 'met' : 'MISSED'}`);
	}
} finally {
	writeFileSync(source, original);
	utimesSync(source, new Date(), new Date());
	for (const d of existsSync(kmodCache) ? readdirSync(kmodCache) : []) if (!buildsBefore.has(d)) rmSync(path.join(kmodCache, d), { recursive: true, force: true });
	rmSync(tmp, { recursive: true, force: true });
}
