// A minimal writer for the "newc" cpio format the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
// Writing it here keeps the initramfs independent of the host's cpio tool
// and lets entries come straight from memory.

export type CpioEntry =
	| { type: 'dir'; name: string; mode?: number }
	| { type: 'file'; name: string; data: Buffer; mode?: number }
	| { type: 'symlink'; name: string; target: string }
	| { type: 'chardev'; name: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(n: number): number {
	return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, size: number, nameSize: number, rdevMajor = 0, rdevMinor = 0): Buffer {
	const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, nameSize, 0];
	return Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'ascii');
}

export function writeCpio(entries: CpioEntry[]): Buffer {
	const chunks: Buffer[] = [];
	let offset = 0;
	const push = (b: Buffer) => {
		chunks.push(b);
		offset += b.length;
	};
	const record = (ino: number, mode: number, name: string, data: Buffer, rdev: [number, number] = [0, 0]) => {
		const nameBuf = Buffer.from(name + '\0', 'utf8');
		push(header(ino, mode, data.length, nameBuf.length, rdev[0], rdev[1]));
		push(nameBuf);
		push(Buffer.alloc(pad4(offset)));
		push(data);
		push(Buffer.alloc(pad4(offset)));
	};
	let ino = 1;
	for (const e of entries) {
		const name = e.name.replace(/^\/+/, '');
		switch (e.type) {
			case 'dir':
				record(ino++, S_IFDIR | (e.mode ?? 0o755), name, Buffer.alloc(0));
				break;
			case 'file':
				record(ino++, S_IFREG | (e.mode ?? 0o644), name, e.data);
				break;
			case 'symlink':
				record(ino++, S_IFLNK | 0o777, name, Buffer.from(e.target, 'utf8'));
				break;
			case 'chardev':
				record(ino++, S_IFCHR | (e.mode ?? 0o600), name, Buffer.alloc(0), [e.major, e.minor]);
				break;
		}
	}
	record(0, 0, 'TRAILER!!!', Buffer.alloc(0));
	return Buffer.concat(chunks);
}
