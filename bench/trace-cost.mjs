#!/usr/bin/env node
// The cost of the PFN trace per mapped page, measured in a VM booted like
// the scenario VMs (one vCPU, page_poison=1): untraced and traced rounds of
// map + fill + unmap alternate in one guest, so both see the same machine.
// A benchmark, not a test.
// usage: node bench/trace-cost.mjs [--pages 1024] [--rounds 7] [--kernel VER] [--json]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { runInVm } = await import(path.join(root, 'dist', 'vm', 'runner.js'));
const { buildModule } = await import(path.join(root, 'dist', 'setup', 'build.js'));
const { chooseKernel } = await import(path.join(root, 'dist', 'vm', 'kernels.js'));
const { EVIDENCE_BOOT } = await import(path.join(root, 'dist', 'scenarios', 'run.js'));
const { values } = parseArgs({ options: { pages: { type: 'string', default: '1024' }, rounds: { type: 'string', default: '7' }, kernel: { type: 'string' }, json: { type: 'boolean', default: false } } });
const kernel = chooseKernel(values.kernel).version;
await buildModule(kernel);
const cli = path.join(root, 'dist', 'cli', 'main.js');
const script = `node ${JSON.stringify(cli)} setup --reload >/dev/null && node ${JSON.stringify(path.join(root, 'bench', 'guest', 'trace-cost.mjs'))} ${Number(values.pages)} ${Number(values.rounds)}`;
const r = await runInVm({ command: ['sh', '-c', script], cwd: root, kernel, ...EVIDENCE_BOOT, stdout: 'pipe', stderr: 'pipe', timeoutMs: 300_000 });
if (r.exitCode !== 0) throw new Error(`guest failed (${r.outcome}, exit ${r.exitCode}): ${r.stderr}`);
const data = JSON.parse(r.stdout.trim().split('\n').at(-1));
if (values.json) console.log(JSON.stringify({ kernel, ...data }));
else {
	console.log(`PFN trace cost on ${kernel} (TCG, 1 vCPU), ${values.pages} pages, median of ${values.rounds} alternating rounds:`);
	for (const [mode, d] of Object.entries(data))
		console.log(`  ${mode.padEnd(12)} map+fill+unmap ${d.untracedMs.toFixed(1)} ms untraced, ${d.tracedMs.toFixed(1)} ms traced (${d.ratio.toFixed(2)}x, +${d.perPageUs.toFixed(1)} us/page); start ${d.startMs.toFixed(0)} ms, stop+parse ${d.stopAndParseMs.toFixed(0)} ms (${d.stopPerPageUs.toFixed(1)} us/page, ${d.events} events)`);
}
