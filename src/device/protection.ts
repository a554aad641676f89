// Map options shared by devices and memfds: protection names to PROT_* bits,
// and the checks every mmap request passes before reaching the kernel.
import { constants as bufferConstants } from 'node:buffer';

import type { NativeBinding } from './binding.js';
import { invalidArgument, outOfRange } from './errors.js';
import { toIndex, type Protection } from './mapping.js';

export interface MapOptions {
	/** 'rw' (default), 'r' or 'none'. */
	prot?: Protection;
	/** MAP_SHARED (default true) or MAP_PRIVATE. */
	shared?: boolean;
	/** Offset in the file/device, a page multiple (default 0). */
	offset?: number | bigint;
}

export interface MapRequest {
	length: number;
	prot: Protection;
	protBits: number;
	shared: boolean;
	offset: bigint;
}

export function protBits(binding: NativeBinding, prot: Protection): number {
	const { PROT_NONE, PROT_READ, PROT_WRITE } = binding.constants;
	switch (prot) {
		case 'rw':
			return PROT_READ | PROT_WRITE;
		case 'r':
			return PROT_READ;
		case 'none':
			return PROT_NONE;
		default:
			throw invalidArgument('prot', `must be 'rw', 'r' or 'none'; received ${String(prot)}`);
	}
}

export function checkMapRequest(binding: NativeBinding, length: number | bigint, options: MapOptions = {}): MapRequest {
	const pageSize = binding.pageSize;
	const bytes = toIndex('length', length);
	if (bytes === 0) throw outOfRange('length', 'must be at least one page');
	if (bytes % pageSize !== 0) {
		throw outOfRange('length', `must be a multiple of the page size (${pageSize}); received ${bytes} (${Math.ceil(bytes / pageSize) * pageSize} would do)`);
	}
	if (bytes > bufferConstants.MAX_LENGTH) {
		throw outOfRange(
			'length',
			`is ${bytes} bytes, more than Node ${process.version} can view as one buffer (buffer.constants.MAX_LENGTH = ${bufferConstants.MAX_LENGTH}); map it in parts`,
		);
	}
	const offset = options.offset ?? 0;
	if (typeof offset === 'bigint' ? offset < 0n : !Number.isSafeInteger(offset) || offset < 0) {
		throw outOfRange('offset', `must be a non-negative integer; received ${String(offset)}`);
	}
	const offsetBig = BigInt(offset);
	if (offsetBig % BigInt(pageSize) !== 0n) throw outOfRange('offset', `must be a multiple of the page size (${pageSize}); received ${offsetBig}`);
	const prot = options.prot ?? 'rw';
	if (options.shared !== undefined && typeof options.shared !== 'boolean') {
		throw invalidArgument('shared', `must be a boolean; received ${typeof options.shared}`);
	}
	return { length: bytes, prot, protBits: protBits(binding, prot), shared: options.shared ?? true, offset: offsetBig };
}
