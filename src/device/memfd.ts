// An anonymous memory file (memfd_create) mapped through the same Mapping API
// as the device: what host tests use without the module, and the classic way
// to provoke SIGBUS (truncate the file under a live mapping).
import { loadBinding } from './binding.js';
import { callNative, codedError } from './errors.js';
import { Mapping, toIndex } from './mapping.js';
import { checkMapRequest, type MapOptions } from './protection.js';

export class MemFile implements Disposable {
	readonly name: string;
	#fd: number;

	constructor(name = 'hybridmem', size: number | bigint = 0) {
		this.name = name;
		const binding = loadBinding();
		this.#fd = callNative(() => binding.memfd(name));
		if (size !== 0 && size !== 0n) this.truncate(size);
	}

	get fd(): number {
		if (this.#fd < 0) throw codedError('ERR_DEVICE_CLOSED', `memfd ${this.name} was closed`);
		return this.#fd;
	}

	get path(): string {
		return `memfd:${this.name}`;
	}

	truncate(size: number | bigint): void {
		const bytes = toIndex('size', size);
		callNative(() => loadBinding().ftruncate(this.fd, bytes), this.path);
	}

	map(length: number | bigint, options: MapOptions = {}): Mapping {
		const binding = loadBinding();
		const request = checkMapRequest(binding, length, options);
		const fd = this.fd;
		const native = callNative(() => binding.mmap(fd, request.length, request.protBits, request.shared, request.offset), this.path);
		return new Mapping(native, { path: this.path, pageSize: binding.pageSize, prot: request.prot, shared: request.shared, offset: request.offset });
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
