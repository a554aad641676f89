// Resource behaviour of the addon: no growth over many map/unmap cycles, the
// GC path unmaps too, and the fault handler leaves foreign faults fatal and
// wasm traps working (it chains to the handler it replaced).
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { execa } from 'execa';
import { describe, expect, test } from 'vitest';

import { addonCandidates } from '../../src/device/binding.js';
import { createMemFile, openDevice } from '../../src/device/index.js';

const root = resolve(import.meta.dirname, '..', '..');
const addon = addonCandidates().find((file) => file.startsWith(join(root, 'build'))) ?? join(root, 'build', 'Release', 'hybridmem.node');

function openFds(): number {
	return readdirSync('/proc/self/fd').length;
}

function rssBytes(): number {
	const status = readFileSync('/proc/self/status', 'utf8');
	const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
	return Number(kib) * 1024;
}

function isMapped(address: bigint): boolean {
	const start = `${address.toString(16)}-`;
	return readFileSync('/proc/self/maps', 'utf8')
		.split('\n')
		.some((line) => line.startsWith(start));
}

describe('no leaks', () => {
	test('1,000 map/fill/verify/unmap cycles and 200 open/map/close cycles keep RSS and fds flat', () => {
		const device = openDevice('/dev/zero');
		const warm = device.map(256 * 1024);
		warm.fillSync();
		warm.unmap();
		const fdsBefore = openFds();
		const rssBefore = rssBytes();
		for (let i = 0; i < 1000; i++) {
			const mapping = device.map(256 * 1024);
			mapping.fillSync({ pattern: 'address-tag', seed: i });
			expect(mapping.verifySync({ pattern: 'address-tag', seed: i }).ok).toBe(true);
			mapping.unmap();
		}
		for (let i = 0; i < 200; i++) {
			const other = openDevice('/dev/zero');
			other.map(64 * 1024).fillSync();
			other.close(); // unmaps its mapping
		}
		device.close();
		const grown = rssBytes() - rssBefore;
		// 1,000 x 256 KiB = 250 MiB touched; a leak of even one mapping per cycle would show.
		expect(grown).toBeLessThan(24 * 1024 * 1024);
		expect(openFds()).toBe(fdsBefore - 1);
	});

	test('a mapping dropped without unmap is unmapped when its buffer is collected', async () => {
		setFlagsFromString('--expose-gc');
		const gc = runInNewContext('gc') as () => void;
		const device = openDevice('/dev/zero');
		let address = 0n;
		(() => {
			const mapping = device.map(1024 * 1024);
			mapping.fillSync();
			address = mapping.address;
		})();
		expect(isMapped(address)).toBe(true);
		for (let i = 0; i < 10 && isMapped(address); i++) {
			gc();
			await new Promise((resolve) => setImmediate(resolve)); // Node runs the finalizer on a later turn
		}
		expect(isMapped(address)).toBe(false);
		device.close();
	});

	test('unmap returns the address at once; a new mapping reusing it works', () => {
		using device = openDevice('/dev/zero');
		const first = device.map(64 * 1024);
		const address = first.address;
		first.unmap();
		expect(isMapped(address)).toBe(false);
		for (let i = 0; i < 50; i++) {
			using again = device.map(64 * 1024);
			again.fillSync({ pattern: 'counter' });
			expect(again.verifySync({ pattern: 'counter' }).ok).toBe(true);
		}
	});
});

// These run a child node that loads the addon directly (no TypeScript).
describe('the fault handler chains to the previous one', () => {
	const prelude = `
		const b = require(${JSON.stringify(addon)});
		const fd = b.memfd('chain');
		b.ftruncate(fd, 8 * 4096);
		const m = b.mmap(fd, 8 * 4096, 3, true, 0);
		m.fillSync({ pattern: 0 });
		b.ftruncate(fd, 4 * 4096);
		const v = m.verifySync({ pattern: 0 });
		if (v.faultingPages.join() !== '4,5,6,7') throw new Error('guarded verify: ' + v.faultingPages);
	`;

	test('a fault outside a guarded call still kills the process with SIGBUS', async () => {
		const child = await execa(process.execPath, ['-e', `${prelude}; new Uint8Array(m.buffer)[5 * 4096] = 1; console.log('survived');`], {
			reject: false,
		});
		expect(child.stdout).not.toContain('survived');
		expect(child.signal).toBe('SIGBUS');
	});

	test('a SIGSEGV sent by kill still kills the process', async () => {
		const child = await execa(process.execPath, ['-e', `${prelude}; process.kill(process.pid, 'SIGSEGV'); setTimeout(() => console.log('survived'), 200);`], {
			reject: false,
		});
		expect(child.stdout).not.toContain('survived');
		expect(child.signal).toBe('SIGSEGV');
	});

	test('wasm out-of-bounds traps still become RuntimeError after a guarded fault', async () => {
		// (module (memory 1) (func (export "f") (param i32) (result i32) local.get 0 i32.load))
		const wasm = [0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 5, 1, 1, 102, 0, 0, 10, 9, 1, 7, 0, 32, 0, 40, 2, 0, 11];
		const script = `${prelude};
			const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(${JSON.stringify(wasm)})));
			let trapped = 0;
			for (let i = 0; i < 3; i++) { try { inst.exports.f(0x7ffffff0); } catch (e) { if (e instanceof WebAssembly.RuntimeError) trapped++; } }
			console.log('trapped', trapped, inst.exports.f(0));`;
		const child = await execa(process.execPath, ['-e', script], { reject: false });
		expect(child.stderr).toBe('');
		expect(child.stdout).toBe('trapped 3 0');
		expect(child.exitCode).toBe(0);
	});
});

test('memfd fds are closed by close() and by dispose', () => {
	const before = openFds();
	for (let i = 0; i < 100; i++) {
		using file = createMemFile(4096);
		file.map(4096).unmap();
	}
	expect(openFds()).toBe(before);
});
