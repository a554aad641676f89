// The fds `hybridmem check` recipes map that take a syscall other than
// open(), on this host's own kernel: an AF_PACKET ring, io_uring's SQE array,
// a perf event ring, a sealed memfd.  Each maps, fills and verifies through
// the same Mapping API as a device, and bad arguments are Node-style errors.
import { describe, expect, test } from 'vitest';
import { isCi } from '../env.js';
import { isSystemError, loadBinding, openIoUring, openPacketRing, openPerfEvent, openSealedMemFile } from '../../src/device/index.js';

const ps = loadBinding().pageSize;
// CI runs as root: there the tests must run, not skip.
const root = process.getuid?.() === 0 || isCi();

describe.runIf(root)('fd sources on this host', () => {
	test('an AF_PACKET RX ring of 8 one-page blocks maps whole, round-trips a pattern, and refuses another length (EINVAL)', async () => {
		using ring = openPacketRing({ blockSize: ps, blockCount: 8, frameSize: 2048 });
		expect(ring.path).toBe('AF_PACKET rx ring');
		const m = ring.map(8 * ps);
		await m.fill({ pattern: 'address-tag', seed: 3n });
		expect((await m.verify({ pattern: 'address-tag', seed: 3n })).ok).toBe(true);
		m.unmap();
		expect(() => ring.map(4 * ps)).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'mmap' }));
	});

	test('a frame size that does not divide the block is the kernel\'s EINVAL from setsockopt; a block under a page is refused before any syscall', () => {
		let err: unknown;
		try {
			openPacketRing({ blockSize: ps, blockCount: 1, frameSize: 3000 });
		} catch (e) {
			err = e;
		}
		expect(isSystemError(err) && err.code === 'EINVAL' && err.syscall === 'setsockopt').toBe(true);
		expect(() => openPacketRing({ blockSize: 100, blockCount: 1, frameSize: 16 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
	});

	test('io_uring_setup(1024): the SQE array is 64 KiB at IORING_OFF_SQES, zeroed, and round-trips', async () => {
		const ring = openIoUring(1024);
		using device = ring.device;
		expect(ring.params.sqEntries).toBe(1024);
		expect(ring.sqesBytes).toBe(1024 * 64);
		expect(ring.params.offSqes).toBe(0x10000000n);
		const m = device.map(ring.sqesBytes, { offset: ring.params.offSqes });
		expect((await m.verify({ pattern: 'constant', value: 0 })).ok).toBe(true);
		await m.fill({ pattern: 'random', seed: 9n });
		expect((await m.verify({ pattern: 'random', seed: 9n })).ok).toBe(true);
		m.unmap();
		expect(() => openIoUring(0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
	});

	test('a perf event ring of 1 + 8 pages maps read-only; its first page is the control page the kernel filled', () => {
		using ev = openPerfEvent();
		const m = ev.map(9 * ps, { prot: 'r' });
		const p = m.probe({ touch: true });
		expect(p.present).toBe(9);
		// struct perf_event_mmap_page: __u32 version (0 today), __u32 compat_version; data_offset at 1040 is the page size.
		expect(new DataView(m.bytes.buffer, m.bytes.byteOffset).getBigUint64(1040, true)).toBe(BigInt(ps));
		m.unmap();
		// Not 1 + 2^n pages: the kernel's EINVAL.
		expect(() => ev.map(4 * ps, { prot: 'r' })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
	});

	test('a memfd sealed with F_SEAL_SHRINK maps and round-trips, and cannot shrink (EPERM)', async () => {
		const { F_SEAL_SHRINK } = loadBinding().fdConstants;
		using f = openSealedMemFile(4 * ps, F_SEAL_SHRINK, 'hm-sealed');
		const m = f.map(4 * ps);
		await m.fill({ pattern: 'counter' });
		expect((await m.verify({ pattern: 'counter' })).ok).toBe(true);
		m.unmap();
		expect(() => loadBinding().ftruncate(f.fd, ps)).toThrow(expect.objectContaining({ code: 'EPERM' }));
	});
});
