// fds of in-tree mmap providers that take a syscall other than open(): an
// AF_PACKET ring, an io_uring instance, a perf event ring, a sealed memfd.
// Each comes back as a KexDevice, so it maps, fills and verifies like a node.
import { loadBinding, type NativeIoUring } from './binding.js';
import { KexDevice } from './device.js';
import { callNative, invalidArgValue } from './errors.js';
import { validateIndex, validateInteger } from './validate.js';

export interface PacketRingOptions {
	/** PACKET_TX_RING instead of PACKET_RX_RING. */
	tx?: boolean;
	/** tp_block_size: a multiple of the page size. */
	blockSize: number;
	blockCount: number;
	/** tp_frame_size: divides blockSize, a multiple of 16 (TPACKET_ALIGNMENT). */
	frameSize: number;
}

/** socket(AF_PACKET, SOCK_RAW, 0) with a TPACKET_V1 ring; protocol 0 receives nothing, so the ring stays as user space leaves it. Needs CAP_NET_RAW. */
export function openPacketRing(options: PacketRingOptions): KexDevice {
	const binding = loadBinding();
	const blockSize = validateInteger(options.blockSize, 'options.blockSize', binding.pageSize, 2 ** 31);
	if (blockSize % binding.pageSize) throw invalidArgValue('options.blockSize', blockSize, `must be a multiple of the page size (${binding.pageSize})`);
	const blockCount = validateInteger(options.blockCount, 'options.blockCount', 1, 2 ** 31);
	const frameSize = validateInteger(options.frameSize, 'options.frameSize', 16, blockSize);
	const name = options.tx ? 'tx' : 'rx';
	const fd = callNative(() => binding.packetRing({ tx: options.tx === true, blockSize, blockCount, frameSize }), `AF_PACKET ${name} ring`);
	return KexDevice.fromFd(binding, fd, `AF_PACKET ${name} ring`, false);
}

export interface IoUring {
	device: KexDevice;
	params: NativeIoUring;
	/** Bytes of each region at its mmap offset. */
	sqRingBytes: number;
	cqRingBytes: number;
	sqesBytes: number;
}

/** io_uring_setup(entries): the instance and the size of each of its three regions. */
export function openIoUring(entries: number): IoUring {
	const binding = loadBinding();
	const n = validateInteger(entries, 'entries', 1, 32768);
	const params = callNative(() => binding.ioUringSetup(n), 'io_uring');
	return {
		device: KexDevice.fromFd(binding, params.fd, 'io_uring', false),
		params,
		sqRingBytes: params.sqArray + params.sqEntries * 4,
		cqRingBytes: params.cqCqes + params.cqEntries * params.cqeSize,
		sqesBytes: params.sqEntries * params.sqeSize,
	};
}

/** perf_event_open of a disabled event of this process on any CPU (default: the software dummy event); needs perf_event_paranoid <= 2 or CAP_PERFMON. */
export function openPerfEvent(options: { type?: number; config?: bigint } = {}): KexDevice {
	const binding = loadBinding();
	const type = options.type ?? binding.fdConstants.PERF_TYPE_SOFTWARE;
	const config = options.config ?? BigInt(binding.fdConstants.PERF_COUNT_SW_DUMMY);
	const fd = callNative(() => binding.perfEventOpen({ type, config }), 'perf_event');
	return KexDevice.fromFd(binding, fd, 'perf_event', false);
}

/** A memfd made with MFD_ALLOW_SEALING, sized, with `seals` added (F_SEAL_* bits). */
export function openSealedMemFile(size: number, seals: number, name = 'hybridmem'): KexDevice {
	const binding = loadBinding();
	const bytes = validateIndex(size, 'size');
	const fd = callNative(() => binding.sealedMemfd(name, bytes, seals), `memfd:${name}`);
	return KexDevice.fromFd(binding, fd, `memfd:${name}`, false);
}
