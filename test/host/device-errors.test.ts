// Errors of the device API: Node-fs-shaped system errors, clear argument
// errors, and use after unmap/close.
import { constants as bufferConstants } from 'node:buffer';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, test } from 'vitest';

import { createMemFile, loadBinding, openDevice } from '../../src/device/index.js';

describe('system errors look like node:fs errors', () => {
	test('a missing device: ENOENT with errno, syscall, path and the fs message', () => {
		let caught: unknown;
		try {
			openDevice('/dev/devKex-does-not-exist');
		} catch (error) {
			caught = error;
		}
		expect(caught).toBeInstanceOf(Error);
		expect(caught).toMatchObject({
			code: 'ENOENT',
			errno: -2,
			syscall: 'open',
			path: '/dev/devKex-does-not-exist',
			message: "ENOENT: no such file or directory, open '/dev/devKex-does-not-exist'",
		});
	});

	test('module ioctls on /dev/zero fail with ENOTTY as a normal Error', () => {
		using device = openDevice('/dev/zero');
		const expected = { code: 'ENOTTY', errno: -25, syscall: 'ioctl', path: '/dev/zero', message: "ENOTTY: inappropriate ioctl for device, ioctl '/dev/zero'" };
		expect(() => device.info()).toThrow(expect.objectContaining(expected));
		expect(() => device.stats()).toThrow(expect.objectContaining(expected));
		expect(() => device.setMode({ mode: 'fault' })).toThrow(expect.objectContaining(expected));
		using mapping = device.map(4096);
		expect(() => device.zap(mapping)).toThrow(expect.objectContaining(expected));
		expect(() => device.remap({ mapping, offset: 0, length: 4096 })).toThrow(expect.objectContaining(expected));
	});

	test('a failed mmap carries code, errno, syscall mmap and the device path', () => {
		// /dev/null is a character device without mmap: the kernel answers ENODEV.
		using device = openDevice('/dev/null');
		expect(() => device.map(4096)).toThrow(
			expect.objectContaining({ code: 'ENODEV', errno: -19, syscall: 'mmap', path: '/dev/null', message: "ENODEV: no such device, mmap '/dev/null'" }),
		);
	});

	test('a device opened read-only maps read-only and refuses prot rw clearly', () => {
		using device = openDevice('/dev/zero', { readOnly: true });
		expect(() => device.map(4096, { prot: 'rw' })).toThrow(expect.objectContaining({ code: 'ERR_DEVICE_READ_ONLY' }));
		using mapping = device.map(4096, { prot: 'r' });
		expect(mapping.verifySync({ pattern: 'constant', value: 0 }).ok).toBe(true);
	});

	test('memfd errors name the memfd', () => {
		using file = createMemFile(4096, 'errs');
		expect(() => file.truncate(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
		file.close();
		expect(() => file.map(4096)).toThrow(expect.objectContaining({ code: 'ERR_DEVICE_CLOSED' }));
	});

	test('a path that is not a character device', () => {
		const dir = mkdtempSync(join(tmpdir(), 'hybridmem-'));
		try {
			const file = join(dir, 'plain');
			writeFileSync(file, 'x');
			expect(() => openDevice(file)).toThrow(expect.objectContaining({ code: 'ERR_NOT_CHAR_DEVICE', path: file }));
			expect(() => openDevice(file)).toThrow(/is a regular file, not a character device/);
			expect(() => openDevice(dir)).toThrow(expect.objectContaining({ code: 'EISDIR', syscall: 'open', path: dir }));
		} finally {
			rmSync(dir, { recursive: true });
		}
	});
});

describe('arguments are validated with clear messages', () => {
	test('map length', () => {
		using device = openDevice('/dev/zero');
		expect(() => device.map(-4096)).toThrow(
			expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: 'The value of "length" is out of range. It must be >= 1 && <= 9007199254740991. Received -4096' }),
		);
		expect(() => device.map(4096.5)).toThrow('The value of "length" is out of range. It must be an integer. Received 4096.5');
		expect(() => device.map(0)).toThrow('It must be >= 1');
		expect(() => device.map(5000)).toThrow('The value of "length" is out of range. It must be a multiple of the page size (4096), such as 8192. Received 5000');
		expect(() => device.map(4096, { offset: 100 })).toThrow('The value of "options.offset" is out of range. It must be a multiple of the page size (4096). Received 100');
		expect(() => device.map(4096, { prot: 'x' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
		expect(device.map(8192n).length).toBe(8192);
	});

	test('a mapping larger than one ArrayBuffer can be is refused, in TypeScript and in the addon, without a leak', () => {
		using device = openDevice('/dev/zero');
		const tooBig = bufferConstants.MAX_LENGTH + 4096;
		expect(() => device.map(tooBig)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/MAX_LENGTH/) }));
		const zeroMaps = (): number => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith('/dev/zero (deleted)') || l.endsWith('/dev/zero')).length;
		const before = zeroMaps();
		// The addon itself: Node runs the buffer's finalizer at once when it cannot make it; exactly one munmap, no crash.
		expect(() => loadBinding().mmap(device.fd, tooBig, 3, true, 0)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_/) }));
		expect(zeroMaps()).toBe(before);
	});

	test('patterns and ranges', () => {
		using device = openDevice('/dev/zero');
		using mapping = device.map(8192);
		expect(() => mapping.fillSync({ pattern: 'zigzag' as never })).toThrow(
			"The property 'options.pattern' must be one of: 'counter', 'random', 'constant', 'address-tag'. Received 'zigzag'",
		);
		expect(() => mapping.fillSync({ pattern: 'constant', value: 256 })).toThrow('It must be >= 0 && <= 255. Received 256');
		expect(() => mapping.verifySync({ offset: 4096, length: 8192 })).toThrow(
			'The value of "options.length" is out of range. It must be <= 4096 (the mapping\'s 8192 bytes from offset 4096). Received 8192',
		);
		expect(() => mapping.verifySync({ pattern: 'address-tag', offset: 4 })).toThrow('"options.offset" is out of range. It must be a multiple of 8');
		expect(() => mapping.probe({ offset: 100 })).toThrow('"options.offset" is out of range. It must be a multiple of the page size (4096)');
		// Checked before GET_INFO (which /dev/zero answers with ENOTTY).
		expect(() => device.setMode({ mode: 'bogus' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
		expect(() => device.zap({ address: 4097n, length: 4096 })).toThrow('"target.address" is out of range. It must be a multiple of the page size (4096)');
	});
});

describe('use after unmap or close', () => {
	test('every use of an unmapped mapping throws ERR_MAPPING_CLOSED; old views show zero-filled scratch memory', async () => {
		using device = openDevice('/dev/zero');
		const mapping = device.map(4 * 4096);
		const view = mapping.bytes;
		const sub = view.subarray(4096);
		mapping.fillSync();
		mapping.unmap();
		expect(mapping.closed).toBe(true);
		// Not detached (Node's zlib aborts on a detached input view): the range is reserved, zero-filled.
		expect(view.length).toBe(4 * 4096);
		expect(sub.every((b) => b === 0)).toBe(true);
		expect(view[1]).toBe(0);
		const closed = expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' });
		expect(() => mapping.bytes).toThrow(closed);
		expect(() => mapping.fillSync()).toThrow(closed);
		expect(() => mapping.verifySync()).toThrow(closed);
		expect(() => mapping.probe()).toThrow(closed);
		await expect(mapping.verify()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
		expect(() => device.zap(mapping)).toThrow(closed);
		expect(() => mapping.unmap()).not.toThrow(); // a second unmap does nothing
	});

	test('every use of a closed device throws ERR_DEVICE_CLOSED; close unmaps its mappings', () => {
		const device = openDevice('/dev/zero');
		const mapping = device.map(4096);
		device.close();
		expect(mapping.closed).toBe(true);
		const closed = expect.objectContaining({ code: 'ERR_DEVICE_CLOSED' });
		expect(() => device.map(4096)).toThrow(closed);
		expect(() => device.info()).toThrow(closed);
		expect(() => device.stats()).toThrow(closed);
		expect(() => device.zap({ address: 0n, length: 4096 })).toThrow(closed);
		expect(() => device.close()).not.toThrow();
	});

	test('unmap while an async verify runs fails with EBUSY; afterwards it succeeds', async () => {
		using device = openDevice('/dev/zero');
		const mapping = device.map(64 * 1024 * 1024);
		await mapping.fill({ pattern: 'random' });
		const running = mapping.verify({ pattern: 'random' });
		expect(mapping.busy).toBe(true);
		expect(() => mapping.unmap()).toThrow(expect.objectContaining({ code: 'EBUSY', errno: -16, syscall: 'munmap', path: '/dev/zero' }));
		expect(() => device.close()).toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'close' }));
		expect((await running).ok).toBe(true);
		expect(mapping.busy).toBe(false);
		mapping.unmap();
		expect(mapping.closed).toBe(true);
	});

	test('await using waits for running work before unmapping', async () => {
		let view: Uint8Array | undefined;
		let pending: Promise<unknown> | undefined;
		{
			await using device = openDevice('/dev/zero');
			await using mapping = device.map(16 * 1024 * 1024);
			view = mapping.bytes;
			pending = mapping.fill({ pattern: 'counter' });
		}
		await expect(pending).resolves.toMatchObject({ bytes: 16 * 1024 * 1024 });
		expect(view[1]).toBe(0); // unmapped after the fill: the reservation's zeros, not the counter pattern
	});
});
