// Map options shared by devices and memfds: protection names to PROT_* bits,
// and the checks every mmap request passes before reaching the kernel.
import { constants as bufferConstants } from 'node:buffer';

import type { NativeBinding } from './binding.js';
import { invalidArgType, outOfRange } from './errors.js';
import type { Protection } from './mapping.js';
import { validateBoolean, validateIndex, validateOneOf, validateOptions } from './validate.js';

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

export const PROTECTIONS = ['rw', 'r', 'none'] as const;

export function protBits(binding: NativeBinding, prot: Protection): number {
	const { PROT_NONE, PROT_READ, PROT_WRITE } = binding.constants;
	return prot === 'rw' ? PROT_READ | PROT_WRITE : prot === 'r' ? PROT_READ : PROT_NONE;
}

/** Checks a map(length, options) call completely, before anything reaches the kernel. */
export function checkMapRequest(binding: NativeBinding, length: number | bigint, options?: MapOptions): MapRequest {
	const pageSize = binding.pageSize;
	const opts = validateOptions(options);
	const bytes = validateIndex(length, 'length', 1);
	if (bytes % pageSize !== 0) {
		throw outOfRange('length', `a multiple of the page size (${pageSize}), such as ${Math.ceil(bytes / pageSize) * pageSize}`, length);
	}
	if (bytes > bufferConstants.MAX_LENGTH) {
		throw outOfRange(
			'length',
			`<= ${bufferConstants.MAX_LENGTH}, the most Node ${process.version} can view as one buffer (buffer.constants.MAX_LENGTH); map it in parts`,
			length,
		);
	}
	const prot = opts.prot === undefined ? 'rw' : validateOneOf(opts.prot, 'options.prot', PROTECTIONS);
	if (opts.shared !== undefined) validateBoolean(opts.shared, 'options.shared');
	const offset = opts.offset ?? 0;
	if (typeof offset !== 'number' && typeof offset !== 'bigint') throw invalidArgType('options.offset', 'one of type number or bigint', offset);
	if (typeof offset === 'number' && !Number.isInteger(offset)) throw outOfRange('options.offset', 'an integer', offset);
	const offsetBig = BigInt(offset);
	if (offsetBig < 0n || offsetBig >= 2n ** 63n) throw outOfRange('options.offset', '>= 0 && < 2n ** 63n', offset);
	if (offsetBig % BigInt(pageSize) !== 0n) throw outOfRange('options.offset', `a multiple of the page size (${pageSize})`, offset);
	return { length: bytes, prot, protBits: protBits(binding, prot), shared: opts.shared ?? true, offset: offsetBig };
}
