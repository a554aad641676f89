#!/usr/bin/env node
// Stability of tracing under QEMU's TCG: enabling kprobes and tracepoints
// patches kernel text, where QEMU 7.2's cross-modifying-code bug showed as
// "Oops: int3" with two vCPUs.  Boots N guests (one vCPU by default, as the
// evidence VMs do), each enabling and removing the PFN trace's probes
// around a mapping, and counts runs whose console shows an oops, BUG,
// WARNING or panic.  A benchmark, not a test.
// usage: node bench/traced-vm-runs.mjs [--runs 200] [--cpus 1] [--kernel VER] [--json]
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { runInVm } = await import(path.join(root, 'dist', 'vm', 'runner.js'));
const { values } = parseArgs({
	options: { runs: { type: 'string', default: '200' }, cpus: { type: 'string', default: '1' }, kernel: { type: 'string' }, json: { type: 'boolean', default: false } },
});
const runs = Number(values.runs);
const cpus = Number(values.cpus);
const BAD = /Oops|kernel BUG|WARNING:|Kernel panic|BUG: |int3/;
let bad = 0;
let failed = 0;
const times = [];
const badRuns = [];
for (let i = 0; i < runs; i++) {
	const t = Date.now();
	const r = await runInVm({
		command: ['node', path.join(root, 'bench', 'guest', 'traced-run.mjs')],
		cwd: root,
		cpus,
		...(values.kernel ? { kernel: values.kernel } : {}),
		timeoutMs: 120_000,
		stdout: 'pipe',
		stderr: 'pipe',
	});
	times.push(Date.now() - t);
	const console_ = readFileSync(r.consoleLog, 'utf8');
	const oops = console_.split('\n').filter((l) => BAD.test(l));
	if (oops.length) {
		bad++;
		badRuns.push({ run: i, lines: oops.slice(0, 3), log: r.consoleLog });
	} else rmSync(r.consoleLog, { force: true });
	if (r.exitCode !== 0) failed++;
	if (!values.json && (i + 1) % 10 === 0) console.log(`${i + 1}/${runs}: ${bad} with a kernel report, ${failed} failed`);
}
times.sort((a, b) => a - b);
const result = { runs, cpus, kernel: values.kernel ?? 'default', withKernelReport: bad, failed, medianMs: times[Math.floor(times.length / 2)], badRuns };
console.log(values.json ? JSON.stringify(result) : `${runs} traced VM runs with ${cpus} vCPU(s): ${bad} with a kernel report (oops/BUG/WARNING/panic), ${failed} with a non-zero exit; median ${result.medianMs} ms per run`);
for (const b of badRuns) console.log(`  run ${b.run}: ${b.lines.join(' | ')} (${b.log})`);
