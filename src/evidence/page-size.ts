// The running kernel's page size, for the evidence readers' defaults: 4 KiB
// on x86_64, 4, 16 or 64 KiB on arm64.  Node has no sysconf(_SC_PAGESIZE),
// so it is read from the kernel: the first mapping's KernelPageSize in
// /proc/self/smaps (the first 4 KiB of it, one VMA's worth; the kernel
// renders no more).
import { closeSync, openSync, readSync } from 'node:fs';

let cachedSize: number | undefined;

/** The kernel's base page size in bytes; 4096 where /proc/self/smaps cannot be read (not Linux). */
export function kernelPageSize(): number {
	if (cachedSize !== undefined) return cachedSize;
	let size = 4096;
	let fd: number | undefined;
	try {
		fd = openSync('/proc/self/smaps', 'r');
		const buf = Buffer.alloc(4096);
		const n = readSync(fd, buf, 0, buf.length, 0);
		const m = /^KernelPageSize:\s+(\d+) kB$/m.exec(buf.toString('latin1', 0, n));
		if (m) size = Number(m[1]) * 1024;
	} catch {
		/* no procfs: the common case's size */
	} finally {
		if (fd !== undefined) closeSync(fd);
	}
	cachedSize = size;
	return size;
}
