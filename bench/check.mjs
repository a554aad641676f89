#!/usr/bin/env node
// Wall time of a full `hybridmem check` of one driver on one kernel under
// TCG, split into boot (host start to the guest's node process), target load
// (insmod/mknod or the recipe's modprobe), each check, and the rest (kernel
// log, results, teardown).  Target of issue 12: at most 60 s per driver per
// kernel on this 2-core machine.  A benchmark, not a test.
// With --compare-bundle each round also runs tsc's unbundled dist/cli/main.js
// in the guest, alternating with the one-file bundle guests get
// (scripts/bundle.mjs), and prints both.
// usage: node bench/check.mjs [--runs 3] [--kernel VER] [--compare-bundle] [--json] [-- CHECK-ARGS...]
//   default target: --recipe vgem
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '3' }, kernel: { type: 'string' }, 'compare-bundle': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
const target = positionals.length ? positionals : ['--recipe', 'vgem'];
const { runInVm } = await import(path.join(root, 'dist', 'vm', 'runner.js'));
const { buildHelper, CHECK_BOOT } = await import(path.join(root, 'dist', 'check', 'run.js'));
const { guestProgram } = await import(path.join(root, 'dist', 'setup', 'paths.js'));
await buildHelper();
const programs = { bundle: guestProgram('cli'), ...(values['compare-bundle'] ? { unbundled: path.join(root, 'dist', 'cli', 'main.js') } : {}) };
if (programs.bundle.endsWith(path.join('cli', 'main.js'))) console.error('bench/check: no fresh bundle in dist/guest (npm run build): both runs are unbundled');

const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const byProgram = Object.fromEntries(Object.keys(programs).map((k) => [k, []]));
for (let i = 0; i < Number(values.runs); i++) for (const [program, file] of i % 2 ? Object.entries(programs).reverse() : Object.entries(programs)) {
	const runs = byProgram[program];
	const started = performance.now();
	const vm = await runInVm({
		command: ['node', file, 'check', '--native', ...target],
		cwd: root,
		...(values.kernel ? { kernel: values.kernel } : {}),
		...CHECK_BOOT,
		stdout: 'pipe',
		stderr: 'pipe',
		timeoutMs: 300_000,
	});
	const wall = performance.now() - started;
	const lines = (vm.stdout ?? '').split('\n');
	const ready = Number(/target ready \((\d+) ms after start\)/.exec(vm.stdout ?? '')?.[1] ?? NaN);
	const marks = lines.flatMap((l) => {
		const m = /^hybridmem check: (?:running (\S+)|(checks done)) \(\+(\d+) ms\)$/.exec(l);
		return m ? [{ name: m[1] ?? 'done', at: Number(m[3]) }] : [];
	});
	const checks = {};
	for (let j = 0; j + 1 < marks.length; j++) checks[marks[j].name] = marks[j + 1].at - marks[j].at;
	const inChecks = marks.at(-1)?.at ?? 0;
	runs.push({ wall, guestProcess: vm.durationMs, ready, inChecks, exit: vm.exitCode, checks });
	if (!values.json) console.log(`run ${i + 1} (${program}): ${(wall / 1000).toFixed(1)} s wall, exit ${vm.exitCode}`);
}
const results = Object.entries(byProgram).map(([program, runs]) => summarise(program, runs));
if (values.json) console.log(JSON.stringify(results.length === 1 ? results[0] : results));
else
	for (const result of results) {
		console.log(`hybridmem check ${result.target} on ${result.kernel}, guest program ${result.program}: median of ${result.runs}: ${result.wallS.toFixed(1)} s wall (target <= 60 s)`);
		console.log(`  boot, teardown and the rest: ${result.bootAndNodeS.toFixed(1)} s; node start + CLI + target load: ${result.loadAndStartS.toFixed(1)} s; checks: ${result.checksS.toFixed(1)} s`);
		for (const [name, ms] of Object.entries(result.perCheckMs)) console.log(`  ${name.padEnd(34)} ${(ms / 1000).toFixed(2)} s`);
	}

function summarise(program, runs) {
	const per = {};
	for (const name of Object.keys(runs[0].checks)) per[name] = median(runs.map((r) => r.checks[name] ?? 0));
	const wall = median(runs.map((r) => r.wall));
	const ready = median(runs.map((r) => r.ready));
	const inChecks = median(runs.map((r) => r.inChecks));
	return { program, target: target.join(' '), kernel: values.kernel ?? 'default', runs: runs.length, wallS: wall / 1000, bootAndNodeS: (wall - ready - inChecks) / 1000, loadAndStartS: ready / 1000, checksS: inChecks / 1000, perCheckMs: per, targetS: 60 };
}
