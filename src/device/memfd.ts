// An anonymous memory file (memfd_create) mapped through the same Mapping API
// as the device: what host tests use without the module, and the classic way
// to provoke SIGBUS (truncate the file under a live mapping).
import { loadBinding } from './binding.js';
import { callNative, codedError, invalidArgValue } from './errors.js';
import { Mapping } from './mapping.js';
import { checkMapRequest, type MapOptions } from './protection.js';
import { validateIndex, validateString } from './validate.js';

/** memfd_create(2) refuses longer names (NAME_MAX minus the "memfd:" prefix). */
export const MEMFD_NAME_MAX = 249;

export class MemFile implements Disposable {
	readonly name: string;
	#fd: number;

	constructor(name = 'hybridmem', size: number | bigint = 0) {
		validateString(name, 'name');
		const bytes = Buffer.byteLength(name);
		if (bytes > MEMFD_NAME_MAX) {
			throw invalidArgValue('name', name, `must be at most ${MEMFD_NAME_MAX} bytes long (memfd_create's limit; it is ${bytes})`);
		}
		if (name.includes('\0')) throw invalidArgValue('name', name, 'must not contain null bytes');
		const initial = validateIndex(size, 'size');
		this.name = name;
		const binding = loadBinding();
		this.#fd = callNative(() => binding.memfd(name));
		if (initial !== 0) {
			try {
				this.truncate(initial);
			} catch (error) {
				this.close();
				throw error;
			}
		}
	}

	get fd(): number {
		if (this.#fd < 0) throw codedError('ERR_DEVICE_CLOSED', `memfd ${this.name} was closed`);
		return this.#fd;
	}

	get path(): string {
		return `memfd:${this.name}`;
	}

	truncate(size: number | bigint): void {
		const bytes = validateIndex(size, 'size');
		callNative(() => loadBinding().ftruncate(this.fd, bytes), this.path);
	}

	map(length: number | bigint, options?: MapOptions): Mapping {
		const binding = loadBinding();
		const request = checkMapRequest(binding, length, options);
		const fd = this.fd;
		const native = callNative(() => binding.mmap(fd, request.length, request.protBits, request.shared, request.offset), this.path);
		return Mapping.fromNative(native, { path: this.path, pageSize: binding.pageSize, prot: request.prot, shared: request.shared, offset: request.offset });
	}

	/** Closes the fd; mappings made from it stay valid until unmapped (as with any mmap). */
	close(): void {
		if (this.#fd < 0) return;
		const fd = this.#fd;
		this.#fd = -1;
		callNative(() => loadBinding().close(fd), this.path);
	}

	[Symbol.dispose](): void {
		this.close();
	}
}

export function createMemFile(size: number | bigint = 0, name = 'hybridmem'): MemFile {
	return new MemFile(name, size);
}
