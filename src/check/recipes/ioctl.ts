// ioctls with a struct argument for recipes: the struct lives in a one-page
// memfd mapping whose user address the kernel gets (the addon's ioctlRaw
// passes an integer argument), so no native code is needed per driver.
import { createMemFile, loadBinding, type Mapping } from '../../device/index.js';

/** _IOC(dir, type, nr, size) as in include/uapi/asm-generic/ioctl.h (x86 and arm64). */
export function ioc(dir: 'none' | 'w' | 'r' | 'rw', type: number, nr: number, size: number): number {
	const d = { none: 0, w: 1, r: 2, rw: 3 }[dir];
	return ((d << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

export class IoctlBuffer implements Disposable {
	readonly #m: Mapping;

	constructor(pageSize: number) {
		const file = createMemFile(pageSize, 'hybridmem-ioctl');
		try {
			this.#m = file.map(pageSize);
		} finally {
			file.close();
		}
	}

	/** A DataView over the struct area (little endian on x86_64 and arm64). */
	get view(): DataView {
		const b = this.#m.bytes;
		return new DataView(b.buffer, b.byteOffset, b.length);
	}

	get address(): bigint {
		return this.#m.address;
	}

	/** Zeroes the first `size` bytes, lets `fill` write the struct, runs the ioctl, returns the view. */
	call(fd: number, request: number, size: number, fill: (v: DataView) => void = () => undefined): DataView {
		this.run(fd, request, size, fill);
		return this.view;
	}

	/** As call(), returning what the ioctl returned (an fd, for some). */
	run(fd: number, request: number, size: number, fill: (v: DataView) => void = () => undefined): number {
		const v = this.view;
		for (let i = 0; i < size; i++) v.setUint8(i, 0);
		fill(v);
		return loadBinding().ioctlRaw(fd, request, this.address);
	}

	[Symbol.dispose](): void {
		this.#m.unmap();
	}
}
