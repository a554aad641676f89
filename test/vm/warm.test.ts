// The warm guest of `hybridmem run --keep`: reused only after a proof that
// the run before it left the kernel clean, discarded otherwise.  Real boots,
// the real module, the real /dev/kmsg; the warm guests of this file live in
// a directory of its own (HYBRIDMEM_WARM_DIR), so they never meet a
// developer's.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildModule } from '../../src/setup/build.js';
import { moduleFile } from '../../src/setup/paths.js';
import { chooseKernel } from '../../src/vm/kernels.js';

const CLI = path.resolve('dist/cli/main.js');
const kernel = chooseKernel().version;
const warmDir = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-warmtest-'));
const env = { HYBRIDMEM_WARM_DIR: warmDir };
afterAll(async () => {
	await execa('node', [CLI, 'run', '--discard'], { env, reject: false });
	rmSync(warmDir, { recursive: true, force: true });
});

interface Json {
	passed: boolean;
	results: { name: string; passed: boolean; where: string }[];
	warm?: { booted: boolean; kept: boolean; error?: string; proof?: { clean: boolean; checks: { name: string; ok: boolean; detail: string }[] } };
}

async function keepRun(...names: string[]): Promise<Json> {
	const r = await execa('node', [CLI, 'run', '--keep', '--json', ...names], { env, reject: false });
	expect(r.exitCode, r.stderr).toBe(0);
	const out = JSON.parse(r.stdout) as Json;
	// Every run here is one the guest must survive: say why when it did not.
	expect(out.warm?.kept, JSON.stringify(out.warm)).toBe(true);
	return out;
}

function qemuPid(): number | undefined {
	try {
		return Number(readFileSync(path.join(warmDir, kernel, 'pid'), 'utf8'));
	} catch {
		return undefined;
	}
}

describe('run --keep', () => {
	test('the second run reuses the guest the first booted, each proven clean with its numbers', async () => {
		const first = await keepRun('test2');
		expect(first.results.map((r) => [r.name, r.passed, r.where])).toEqual([['test2', true, 'vm']]);
		expect(first.warm).toMatchObject({ booted: true, kept: true });
		const pid = qemuPid();
		expect(pid).toBeGreaterThan(0);
		const second = await keepRun('test2', 'zap-remap');
		expect(second.passed).toBe(true);
		expect(second.warm).toMatchObject({ booted: false, kept: true });
		expect(qemuPid()).toBe(pid);
		const checks = second.warm!.proof!.checks;
		expect(checks.map((c) => c.name)).toEqual(['module unloaded', 'live pages zero', 'no kernel-log report', 'taint unchanged', 'free pages back']);
		expect(checks.every((c) => c.ok)).toBe(true);
		expect(checks.find((c) => c.name === 'live pages zero')!.detail).toBe('live_pages 0, live_mappings 0 before unloading');
	});

	test('a guest left dirty (another module left loaded) proves so, powers off, and the next run boots a fresh one', async () => {
		await keepRun('test2');
		const pid = qemuPid()!;
		// Through the agent's own protocol: a real module of this kernel that is not the test module.
		// setup() loads it, finds no 'kex' device and fails; nothing unloads it.
		const dummy = (await execa('modinfo', ['-k', kernel, '-F', 'filename', 'dummy'])).stdout.trim();
		const xchg = path.join(warmDir, kernel, 'xchg');
		const guestKo = path.join(xchg, path.basename(dummy));
		copyFileSync(dummy, guestKo);
		const sha256 = createHash('sha256').update(readFileSync(guestKo)).digest('hex');
		const sock = net.connect(path.join(warmDir, kernel, 'ctl.sock'));
		const done = await new Promise<Json['warm'] & { error?: string }>((resolve) => {
			let text = '';
			sock.on('data', (d) => {
				text += String(d);
				const line = text.split('\n').find((l) => l.includes('"type":"done"'));
				if (line) resolve(JSON.parse(line) as Json['warm'] & { error?: string });
			});
			sock.write(`${JSON.stringify({ id: 'dirty', scenarios: ['test2'], module: guestKo, sha256 })}\n`);
		});
		sock.destroy();
		expect(done.error).toMatch(/not in \/proc\/devices/);
		expect(done.proof?.clean).toBe(false);
		expect(done.proof?.checks.filter((c) => !c.ok).map((c) => [c.name, c.detail])).toEqual([['module unloaded', 'modules added: dummy; gone: none']]);
		// The agent ended: the guest powers off and QEMU exits by itself.
		const until = Date.now() + 60_000;
		while (existsSync(`/proc/${pid}`) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
		expect(existsSync(`/proc/${pid}`)).toBe(false);
		const next = await keepRun('test2');
		expect(next.warm).toMatchObject({ booted: true, kept: true });
		expect(qemuPid()).not.toBe(pid);
	});
});

describe('the cleanliness proof in a real kernel', () => {
	test('a module left loaded, a WARN in the log and a new taint bit each make the guest dirty; unloading makes it clean', async () => {
		await buildModule(kernel);
		const ko = moduleFile(kernel);
		const proof = path.resolve('dist/scenarios/clean-proof.js');
		const script = `
			import { execFileSync } from 'node:child_process';
			import { writeFileSync } from 'node:fs';
			const { takeBaseline, proveClean } = await import(${JSON.stringify(proof)});
			const failing = (p) => p.checks.filter((c) => !c.ok).map((c) => c.name);
			const base = await takeBaseline();
			const out = { clean: failing(await proveClean(base)) };
			execFileSync('insmod', [${JSON.stringify(ko)}]);
			out.loaded = failing(await proveClean(base));
			execFileSync('rmmod', ['hybridmem_test']);
			out.unloaded = failing(await proveClean(base));
			writeFileSync('/dev/kmsg', '<4>WARNING: CPU: 0 PID: 1 at mm/memory.c:1234 zap_pte_range+0x1f/0x40\\n');
			out.warn = failing(await proveClean(base));
			const base2 = await takeBaseline();
			writeFileSync('/proc/sys/kernel/tainted', String(1 << 9));
			out.taint = failing(await proveClean(base2));
			console.log(JSON.stringify(out));
		`;
		const r = await execa('node', [CLI, 'vm', '--cpus', '1', '--', process.execPath, '--input-type=module', '-e', script], { reject: false });
		expect(r.exitCode, r.stderr).toBe(0);
		const out = JSON.parse(r.stdout) as Record<string, string[]>;
		expect(out).toEqual({
			clean: [],
			loaded: ['module unloaded'],
			unloaded: [],
			warn: ['no kernel-log report'],
			taint: ['taint unchanged'],
		});
	});
});
