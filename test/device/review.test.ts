// Issue 14, the linux-mm review of hybridmem_test, against the real module:
// memory charged to the mapping process's memory cgroup, a fatal signal
// ends the allocation, the log bounded (a budget per open file and a
// module-wide rate), MADV_DONTNEED keeps a shared mapping's data, parameters
// clamped without a WARN, caps in bytes, the free loop yields the CPU.  The
// C client (build/fixtures/ARCH/hm_review, built by scripts/fixtures.mjs) does the
// threads, forks, madvise and signals; each test judges its numbers.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadBinding, MAP_MODES, openDevice, type KexDevice, type MapMode } from '../../src/device/index.js';
import { parseRecords } from '../../src/kmsg/parse.js';
import { startCapture } from '../../src/kmsg/reader.js';
import { kernelPageSize } from '../../src/evidence/page-size.js';
import { clientPath, requireDevice } from './device-env.js';

const device = requireDevice();
const client = clientPath('hm_review');
const PARAMS = '/sys/module/hybridmem_test/parameters';
const CGROUP_ROOT = '/sys/fs/cgroup';
/** The module's log rate limit: 2048 lines every 5 s, module wide. */
const RATE_BURST = 2048;
const RATE_WINDOW_MS = 5000;
const BUDGET = 2048;

const param = (name: string) => readFileSync(path.join(PARAMS, name), 'utf8').trim();
const setParam = (name: string, value: string | number) => writeFileSync(path.join(PARAMS, name), String(value));
const modeNumber = (mode: MapMode) => String(MAP_MODES.indexOf(mode));
/** Before 5.11 (memcg_data), what kmod/hybridmem_compat.h tests with PG_kmemcg; user space sees only the release. */
const chargedPagesAreTyped = (() => {
	const [major = 0, minor = 0] = os.release().split('.').map(Number);
	return major < 5 || (major === 5 && minor < 11);
})();

/** Runs the client; its one line of key=value pairs as an object. */
async function review(...args: string[]): Promise<Record<string, string>> {
	expect(existsSync(client), `${client} (scripts/fixtures.mjs builds it: npm test, npm run test:matrix)`).toBe(true);
	const r = await execa(client, args, { reject: false });
	expect(r.stderr).toBe('');
	expect(r.exitCode).toBe(0);
	return Object.fromEntries(r.stdout.trim().split(/\s+/).map((kv) => kv.split('=') as [string, string]));
}

/** A fresh window of the module's log rate limit (and of the refusal limit). */
const freshLogWindow = () => sleep(RATE_WINDOW_MS + 500);

describe.runIf(device.ok)('issue 14: the linux-mm review findings', () => {
	let dev: KexDevice;
	beforeAll(() => {
		dev = openDevice(device.path);
	});
	afterAll(() => dev?.close());

	describe('memory is charged to the memory cgroup of the process that maps it', () => {
		const cg = path.join(CGROUP_ROOT, `hm-review-${process.pid}`);
		let mounted = false;
		beforeAll(async () => {
			if (!existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'))) {
				await execa('mount', ['-t', 'cgroup2', 'none', CGROUP_ROOT]);
				mounted = true;
			}
			writeFileSync(path.join(CGROUP_ROOT, 'cgroup.subtree_control'), '+memory');
			mkdirSync(cg);
			writeFileSync(path.join(cg, 'memory.max'), String(16 << 20));
		});
		afterAll(async () => {
			if (existsSync(cg)) rmdirSync(cg);
			if (mounted) await execa('umount', [CGROUP_ROOT]);
		});

		/** The client inside the cgroup: the shell moves itself in, then execs. */
		const inCgroup = (...args: string[]) =>
			execa('sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec "$@"`, 'sh', client, ...args], { reject: false });

		for (const mode of ['remap_pfn', 'insert_pages', 'fault'] as const) {
			test(`${mode}: a 4 MiB mapping shows in memory.current`, async () => {
				const r = await inCgroup('map', device.path, modeNumber(mode), String(4 << 20), cg);
				expect(r.exitCode).toBe(0);
				const out = Object.fromEntries(r.stdout.trim().split(' ').map((kv) => kv.split('=')));
				expect(out.mmap).toBe('0');
				// Up to 5.10 a charged page has the Kmemcg page type, which vm_insert_page() refuses
				// (the mmap was EINVAL in any memory cgroup): the module leaves the insert modes uncharged there.
				if (mode === 'insert_pages' && chargedPagesAreTyped) return;
				// The pages and the page array; the client itself is charged before and after alike.
				// memory.current counts the per-CPU charge stock a CPU took ahead (up to
				// MEMCG_CHARGE_BATCH, 64 pages), and charges taken from that stock do not move it:
				// the difference may be up to 64 pages short (seen on arm64: one page short in 2
				// of 5 runs). An uncharged mapping shows about 0, far below.
				const stock = 64 * kernelPageSize();
				expect(Number(out.after) - Number(out.before)).toBeGreaterThanOrEqual((4 << 20) - stock);
			});
		}

		test('a 64 MiB mapping under memory.max 16 MiB fails with ENOMEM or the cgroup OOM kills the mapper, and only it', async () => {
			const bystander = execa('sleep', ['60'], { reject: false });
			const before = dev.stats();
			const events = () => Object.fromEntries(readFileSync(path.join(cg, 'memory.events'), 'utf8').trim().split('\n').map((l) => l.split(' ')));
			const kills = Number(events().oom_kill);
			const r = await inCgroup('map', device.path, modeNumber('remap_pfn'), String(64 << 20), cg);
			if (r.signal) {
				expect(r.signal).toBe('SIGKILL');
				expect(Number(events().oom_kill)).toBe(kills + 1);
			} else {
				expect(r.stdout.trim()).toBe('mmap=ENOMEM');
			}
			// The OOM killer stayed inside the cgroup.
			expect([bystander.exitCode, bystander.signalCode]).toEqual([null, null]);
			bystander.kill('SIGKILL');
			await bystander;
			expect(dev.stats().livePages).toBe(before.livePages);
			expect(Number(readFileSync(path.join(cg, 'memory.current'), 'utf8'))).toBeLessThan(1 << 20);
		});
	});

	for (const mode of ['remap_pfn', 'insert_page'] as const) {
		test(`${mode}: SIGKILL while mmap allocates 256 MiB ends the mmap at once (it fails; nothing is left)`, async () => {
			const r = await review('kill', device.path, modeNumber(mode), String(dev.info().maxPages));
			expect(r).toMatchObject({ signal: '9', maps: '0', map_failures: '1', live_pages: '0' });
			// Before the fix the whole mapping was allocated and mapped first (seconds under TCG).
			expect(Number(r.frees)).toBeLessThan(dev.info().maxPages);
		});
	}

	for (const mode of ['remap_pfn', 'insert_page', 'insert_pages', 'remap_contig', 'fault'] as const) {
		const pfnmap = ['remap_pfn', 'remap_contig', 'fault'].includes(mode);
		test(`${mode}: MADV_DONTNEED then touch ${pfnmap ? 'is EINVAL (VM_PFNMAP) and the data stays' : 'gives the same data back'}`, async () => {
			const before = dev.stats();
			const r = await review('dontneed', device.path, modeNumber(mode), '16');
			expect(r).toEqual({ madvise: pfnmap ? 'EINVAL' : '0', sigbus: '0', mismatch: '0' });
			expect(dev.stats().livePages).toBe(before.livePages);
		});
	}

	test('parameters are clamped, with no WARN, and a mapping past the clamp is EINVAL', async () => {
		const saved = Object.fromEntries(['max_map_bytes', 'max_total_bytes', 'log_pages', 'log_budget'].map((p) => [p, param(p)]));
		const capture = await startCapture();
		try {
			for (const p of Object.keys(saved)) setParam(p, '99999999999999');
			expect(Number(param('max_map_bytes'))).toBe(1 << 30);
			const ram = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
			expect(Number(param('max_total_bytes'))).toBeLessThanOrEqual(ram + (64 << 20));
			expect(param('log_pages')).toBe('4096');
			expect(param('log_budget')).toBe(String(1 << 20));
			// 1 TiB of address space: refused before any allocation (kvcalloc of 2 GiB warned before the fix).
			expect(await review('huge', device.path, String(2 ** 40))).toEqual({ mmap: 'EINVAL' });
			// Bytes, page aligned: 8 pages and one byte allow 8 pages, not 9.
			const ps = dev.pageSize;
			setParam('max_map_bytes', 8 * ps + 1);
			expect(Number(param('max_map_bytes'))).toBe(8 * ps);
			dev.map(8 * ps).unmap();
			expect(() => dev.map(9 * ps)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
		} finally {
			for (const [p, v] of Object.entries(saved)) setParam(p, v);
		}
		const { records } = await capture.stop();
		expect(parseRecords(records).reports).toEqual([]);
		expect(records.map((r) => r.text)).toContain('hybridmem_test: max_map_bytes 99999999999999 clamped to 1073741824');
	});

	test('the ioctl magic is 0xD6 (0xB6 is fpga-dfl\'s): the old GET_INFO number is ENOTTY', () => {
		const binding = loadBinding();
		expect(binding.constants.IOC_MAGIC).toBe(0xd6);
		expect(dev.info().version).toBe(2);
		// _IOR(0xB6, 0x00, struct hybridmem_info): 48 bytes.
		const oldGetInfo = (2 << 30) | (48 << 16) | (0xb6 << 8) | 0x00;
		expect(() => binding.ioctlRaw(dev.fd, oldGetInfo >>> 0, 1n)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
	});

	describe('the log is bounded', () => {
		beforeAll(freshLogWindow);
		// Leave the next tests a fresh window: they read the notes' lines.
		afterAll(freshLogWindow);

		test('mode mixed without allow_bug: refused with a line that log scanners do not read as a crash', async () => {
			const capture = await startCapture();
			using d = openDevice(device.path);
			d.setMode({ mode: 'mixed' });
			expect(() => d.map(2 * d.pageSize)).toThrow(expect.objectContaining({ code: 'EPERM' }));
			const { records } = await capture.stop();
			const refusal = records.filter((r) => r.text.startsWith('hybridmem_test: mmap refused: map_mode mixed'));
			expect(refusal).toHaveLength(1);
			expect(refusal[0]!.text).not.toMatch(/kernel BUG|BUG:|Oops|WARNING/);
			expect(parseRecords(records).reports).toEqual([]);
			// Validation comes first: no vma line for a refused mmap.
			expect(records.some((r) => r.text.includes('vma->vm_end'))).toBe(false);
		});

		test('200 refused MAP_PRIVATE mmaps log at most 10 lines and no vma line', async () => {
			const r = await review('log', device.path, 'private', '1', '200');
			expect(r.refused).toBe('200');
			expect(r.vma).toBe('0');
			expect(Number(r.records)).toBeLessThanOrEqual(10);
		});

		test('200 map/unmap cycles of 64 pages on one open file log the budget and no more', async () => {
			const r = await review('log', device.path, 'one', '64', '200');
			// 67 lines a cycle before the fix: 13,400.  Now the budget, plus the line saying it is used up
			// (the 10 refusals above took their share of the module-wide window).
			expect(Number(r.records)).toBeGreaterThanOrEqual(BUDGET - 20);
			expect(Number(r.records)).toBeLessThanOrEqual(BUDGET + 1);
		});

		test('200 cycles with a new open file each are held to the module-wide rate', async () => {
			const r = await review('log', device.path, 'new', '64', '200');
			const windows = Math.floor(Number(r.ms) / RATE_WINDOW_MS) + 1;
			// The previous test used this window's lines up; "callbacks suppressed" adds one line a window.
			expect(Number(r.records)).toBeLessThanOrEqual(windows * (RATE_BURST + 1));
			expect(Number(r.records)).toBeLessThan(13400);
		});
	});

	test('freeing a 256 MiB mapping lets a waiting task on the same CPU run (cond_resched)', async () => {
		// The longest wait of a SCHED_FIFO thread during the munmap, as a share of the munmap.  Before the fix
		// it waited for the whole free loop (0.86-0.91 of the munmap, every time).  A stall of the host stalls
		// the guest's clock too and reads as a long wait: the best of up to 3 tries counts.
		const shares: number[] = [];
		for (let i = 0; i < 3 && !(Math.min(...shares) < 0.5); i++) {
			const r = await review('latency', device.path, modeNumber('remap_pfn'), String(dev.info().maxPages));
			shares.push(Number(r.max_delay_us) / (Number(r.munmap_ms) * 1000));
		}
		expect(Math.min(...shares), shares.map((s) => s.toFixed(2)).join(', ')).toBeLessThan(0.5);
	});
});
