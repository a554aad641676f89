// The device API on the host, without the module: /dev/zero (MAP_SHARED) and
// memfd mappings through the same Mapping as /dev/devKex.
import { afterEach, describe, expect, test } from 'vitest';

import { createMemFile, expectedBytes, openDevice, PATTERNS, type KexDevice, type MemFile } from '../../src/device/index.js';

const MiB = 1024 * 1024;
const opened: Array<KexDevice | MemFile> = [];
function zero(): KexDevice {
	const device = openDevice('/dev/zero');
	opened.push(device);
	return device;
}
function memfd(size: number): MemFile {
	const file = createMemFile(size, 'device-map-test');
	opened.push(file);
	return file;
}
afterEach(() => {
	for (const handle of opened.splice(0)) handle.close();
});

describe('mapping /dev/zero MAP_SHARED', () => {
	test('map gives a zeroed, writable Uint8Array at a page-aligned bigint address', () => {
		const device = zero();
		const mapping = device.map(4 * device.pageSize);
		expect(typeof mapping.address).toBe('bigint');
		expect(mapping.address % BigInt(device.pageSize)).toBe(0n);
		expect(mapping.length).toBe(4 * device.pageSize);
		expect(mapping.bytes.length).toBe(mapping.length);
		expect(mapping.bytes.every((b) => b === 0)).toBe(true);
		mapping.bytes[123] = 0xab;
		expect(mapping.bytes[123]).toBe(0xab);
		mapping.unmap();
	});

	for (const pattern of PATTERNS) {
		test(`fill then verify pass for the ${pattern} pattern, sync and async`, async () => {
			const device = zero();
			const small = device.map(64 * 1024);
			const options = { pattern, seed: 0x1234_5678_9abcn, value: 0xa5 };
			expect(small.fillSync(options).bytes).toBe(small.length);
			const result = small.verifySync(options);
			expect(result).toMatchObject({ ok: true, bytes: small.length, mismatchCount: 0, mismatches: [], faultingPages: [] });
			// The native fill writes what the independent JavaScript reference says.
			expect(Buffer.from(small.bytes.subarray(0, 4096)).equals(Buffer.from(expectedBytes(options, 0, 4096)))).toBe(true);
			expect(Buffer.from(small.bytes.subarray(40960, 45056)).equals(Buffer.from(expectedBytes(options, 40960, 4096)))).toBe(true);

			const large = device.map(8 * MiB); // above ASYNC_THRESHOLD: worker thread
			expect((await large.fill(options)).faultingPages).toEqual([]);
			const verified = await large.verify(options);
			expect(verified.ok).toBe(true);
			expect(verified.bytes).toBe(8 * MiB);
			expect(verified.ns).toBeGreaterThan(0);
			small.unmap();
			large.unmap();
		});
	}

	test('verify reports corrupted bytes with offset, expected and actual', () => {
		const device = zero();
		const mapping = device.map(16 * 4096);
		mapping.fillSync({ pattern: 'counter' });
		mapping.bytes[5000] = 0xee;
		mapping.bytes[60000] = (60000 & 0xff) ^ 0xff;
		const result = mapping.verifySync({ pattern: 'counter' });
		expect(result.ok).toBe(false);
		expect(result.mismatchCount).toBe(2);
		expect(result.mismatches).toEqual([
			{ offset: 5000, expected: 5000 & 0xff, actual: 0xee },
			{ offset: 60000, expected: 60000 & 0xff, actual: (60000 & 0xff) ^ 0xff },
		]);
		mapping.unmap();
	});

	test('address-tag exposes a page that holds another page\'s data (aliasing, stale data)', () => {
		const device = zero();
		const ps = device.pageSize;
		const mapping = device.map(8 * ps);
		mapping.fillSync({ pattern: 'address-tag', seed: 7 });
		mapping.bytes.copyWithin(3 * ps, 1 * ps, 2 * ps); // page 3 now shows page 1's words
		const result = mapping.verifySync({ pattern: 'address-tag', seed: 7, maxMismatches: 2 });
		expect(result.unit).toBe(8);
		expect(result.mismatchCount).toBe(ps / 8);
		expect(result.mismatches).toHaveLength(2);
		expect(result.mismatches[0]).toEqual({ offset: 3 * ps, expected: BigInt(3 * ps + 7), actual: BigInt(ps + 7) });
		mapping.unmap();
	});

	test('verify of a sub-range and a different seed', () => {
		const device = zero();
		const mapping = device.map(32 * 4096);
		mapping.fillSync({ pattern: 'random', seed: 1 });
		expect(mapping.verifySync({ pattern: 'random', seed: 1, offset: 8192, length: 4096 }).ok).toBe(true);
		const wrong = mapping.verifySync({ pattern: 'random', seed: 2, offset: 8192, length: 4096 });
		expect(wrong.ok).toBe(false);
		expect(wrong.mismatchCount).toBe(512);
		expect(wrong.mismatches[0]?.offset).toBe(8192);
		mapping.unmap();
	});

	test('probe without touch: mincore residency of a shared mapping', () => {
		const device = zero();
		const mapping = device.map(8 * device.pageSize);
		mapping.bytes[0] = 1;
		mapping.bytes[5 * device.pageSize] = 1;
		const probe = mapping.probe();
		expect(probe.pages).toHaveLength(8);
		expect(probe.pages[0]).toBe('present');
		expect(probe.pages[5]).toBe('present');
		expect(probe.faulting).toBe(0);
		expect(mapping.probe({ touch: true }).present).toBe(8);
		mapping.unmap();
	});

	test('a read-only mapping can be verified but fill is refused clearly', () => {
		const device = zero();
		const mapping = device.map(4096, { prot: 'r' });
		expect(mapping.verifySync({ pattern: 'constant', value: 0 }).ok).toBe(true);
		expect(() => mapping.fillSync()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_NOT_WRITABLE' }));
		mapping.unmap();
	});

	test('a MAP_PRIVATE mapping works too', () => {
		const device = zero();
		const mapping = device.map(4 * 4096, { shared: false });
		mapping.fillSync({ pattern: 'random', seed: 9 });
		expect(mapping.verifySync({ pattern: 'random', seed: 9 }).ok).toBe(true);
		mapping.unmap();
	});
});

describe('memfd', () => {
	test('fill/verify pass for every pattern on a memfd mapping', () => {
		const file = memfd(64 * 4096);
		const mapping = file.map(64 * 4096);
		for (const pattern of PATTERNS) {
			mapping.fillSync({ pattern, seed: 42, value: 3 });
			expect(mapping.verifySync({ pattern, seed: 42, value: 3 }).ok).toBe(true);
		}
		mapping.unmap();
	});

	test('64-bit offsets: a mapping 5 GiB into a sparse memfd', () => {
		const file = memfd(0);
		const offset = 5n * 1024n * 1024n * 1024n;
		file.truncate(offset + 65536n);
		const mapping = file.map(65536, { offset });
		expect(mapping.fileOffset).toBe(offset);
		mapping.fillSync({ pattern: 'address-tag' });
		expect(mapping.verifySync({ pattern: 'address-tag' }).ok).toBe(true);
		mapping.unmap();
	});

	test('a memfd truncated under the mapping: probe and verify report faulting pages, the process lives', async () => {
		const file = memfd(16 * 4096);
		const mapping = file.map(16 * 4096);
		mapping.fillSync({ pattern: 'counter' });
		file.truncate(10 * 4096); // pages 10..15 now raise SIGBUS when touched
		const faulting = [10, 11, 12, 13, 14, 15];

		const untouched = mapping.probe();
		expect(untouched.pages.slice(10).every((s) => s === 'absent')).toBe(true);
		const probe = mapping.probe({ touch: true });
		expect(probe.pages.slice(0, 10).every((s) => s === 'present')).toBe(true);
		expect(probe.pages.slice(10).every((s) => s === 'faulting')).toBe(true);
		expect(probe.faulting).toBe(6);

		const verified = mapping.verifySync({ pattern: 'counter' });
		expect(verified.ok).toBe(false);
		expect(verified.faultingPages).toEqual(faulting);
		expect(verified.mismatchCount).toBe(0);
		expect(verified.bytes).toBe(10 * 4096);
		expect(mapping.fillSync({ pattern: 'counter' }).faultingPages).toEqual(faulting);

		// A large region on the worker thread: the fault happens off the main thread.
		const big = memfd(8 * 1024 * 1024);
		const bigMapping = big.map(8 * 1024 * 1024);
		await bigMapping.fill({ pattern: 'random' });
		big.truncate(4 * 1024 * 1024);
		const asyncResult = await bigMapping.verify({ pattern: 'random' });
		expect(asyncResult.faultingPages).toHaveLength(1024);
		expect(asyncResult.faultingPages[0]).toBe(1024);
		expect(asyncResult.mismatchCount).toBe(0);
		bigMapping.unmap();
		mapping.unmap();
		expect(process.exitCode ?? 0).toBe(0);
	});
});
