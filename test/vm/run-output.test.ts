// What a VM boot leaves behind and how results arrive: real boots through the
// CLI and the API, each in a temp directory of its own (TMPDIR), which must
// be empty afterwards unless the boot failed; scenario results reach the
// caller while the VM that produced them is still running.
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { selectScenarios } from '../../src/scenarios/catalog.js';
import { runScenarios } from '../../src/scenarios/run.js';

const CLI = path.resolve('dist/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-output-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function freshTmpdir(name: string): string {
	const dir = path.join(tmp, name);
	mkdirSync(dir);
	return dir;
}

/** Whether a QEMU process carrying HM_STREAM_TAG=tag in its environment is alive now. */
function qemuAlive(tag: string): boolean {
	for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
		try {
			if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('qemu-system')) continue;
			if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`HM_STREAM_TAG=${tag}`)) return true;
		} catch {
			/* gone */
		}
	}
	return false;
}

describe('console logs in TMPDIR', () => {
	test('a clean boot leaves nothing in TMPDIR', async () => {
		const dir = freshTmpdir('clean');
		const r = await execa('node', [CLI, 'vm', '--', 'true'], { env: { TMPDIR: dir }, reject: false });
		expect(r.exitCode).toBe(0);
		expect(r.stderr).toBe('');
		expect(readdirSync(dir)).toEqual([]);
	});

	test('a failed command keeps its console log and names it; --console-log keeps the one asked for', async () => {
		const dir = freshTmpdir('failed');
		const r = await execa('node', [CLI, 'vm', '--', 'false'], { env: { TMPDIR: dir }, reject: false });
		expect(r.exitCode).toBe(1);
		const kept = readdirSync(dir);
		expect(kept).toHaveLength(1);
		expect(kept[0]).toMatch(/^hybridmem-console-.*\.log$/);
		expect(r.stderr).toBe(`hybridmem vm: the command exited 1 (console log kept: ${path.join(dir, kept[0]!)})`);
		expect(readFileSync(path.join(dir, kept[0]!), 'utf8')).toMatch(/reboot: Power down/);

		const asked = path.join(tmp, 'asked.log');
		const clean = freshTmpdir('asked');
		const ok = await execa('node', [CLI, 'vm', '--console-log', asked, '--', 'true'], { env: { TMPDIR: clean }, reject: false });
		expect(ok.exitCode).toBe(0);
		expect(readFileSync(asked, 'utf8')).toMatch(/reboot: Power down/);
		expect(readdirSync(clean)).toEqual([]);
	});
});

describe('scenario results', () => {
	test('each result reaches onResult while the VM still runs, and the run leaves nothing in TMPDIR', async () => {
		const dir = freshTmpdir('stream');
		const tag = `stream-${process.pid}`;
		const saved = { tmp: process.env.TMPDIR, tag: process.env.HM_STREAM_TAG };
		process.env.TMPDIR = dir;
		process.env.HM_STREAM_TAG = tag;
		const seen: { name: string; vmAlive: boolean }[] = [];
		try {
			const results = await runScenarios(selectScenarios(['test1', 'zap-noop']), {
				where: 'vm',
				onResult: (r) => seen.push({ name: r.name, vmAlive: qemuAlive(tag) }),
			});
			expect(results.map((r) => [r.name, r.passed])).toEqual([
				['test1', true],
				['zap-noop', true],
			]);
		} finally {
			process.env.TMPDIR = saved.tmp;
			if (saved.tmp === undefined) delete process.env.TMPDIR;
			if (saved.tag === undefined) delete process.env.HM_STREAM_TAG;
		}
		expect(seen.map((s) => s.name)).toEqual(['test1', 'zap-noop']);
		// Streamed, not collected at the end: QEMU was still running when each arrived.
		expect(seen.every((s) => s.vmAlive)).toBe(true);
		expect(readdirSync(dir)).toEqual([]);
	});
});

describe('a cold first boot', () => {
	test('says it is preparing the kernel and initramfs while it builds the cache', async () => {
		// An empty cache makes the boot cold; the child is stopped as soon as it has said so.
		const cache = freshTmpdir('cold-cache');
		const child = spawn(process.execPath, [CLI, 'vm', '--verbose', '--accel', 'tcg', '--', 'true'], {
			env: { ...process.env, HYBRIDMEM_CACHE: cache },
			stdio: ['ignore', 'ignore', 'pipe'],
		});
		let stderr = '';
		const said = await new Promise<boolean>((resolve) => {
			const timer = setTimeout(() => resolve(false), 60_000);
			child.stderr.on('data', (d: Buffer) => {
				stderr += d.toString();
				if (stderr.includes('\n')) {
					clearTimeout(timer);
					resolve(true);
				}
			});
			child.once('exit', () => resolve(stderr.includes('\n')));
		});
		child.kill('SIGKILL');
		expect(said).toBe(true);
		expect(stderr.split('\n')[0]).toBe('hybridmem vm: preparing the kernel and initramfs (first boot of this kernel; cached afterwards)');
	});
});
