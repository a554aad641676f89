// The baseline the VM benchmarks compare against (bench/vm-boot.mjs,
// bench/loop.mjs): the same Debian kernel as a compressed bzImage on q35 with
// two vCPUs, and a busybox initramfs whose init powers off at once.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { writeCpio } = await dist('vm/cpio.js');
const { findBusybox } = await dist('vm/initramfs.js');

/**
 * Writes the baseline's initramfs into `dir` and returns the QEMU arguments
 * of a bare boot of `kernel` (from chooseKernel), its console going to
 * `serial` (a file) or nowhere.
 */
export function bareBoot(kernel, dir) {
	const initrd = path.join(dir, 'bare.cpio');
	writeFileSync(
		initrd,
		writeCpio([
			...['bin', 'dev', 'proc', 'sys'].map((name) => ({ type: 'dir', name })),
			{ type: 'chardev', name: 'dev/console', major: 5, minor: 1 },
			{ type: 'file', name: 'bin/busybox', data: readFileSync(findBusybox()), mode: 0o755 },
			{ type: 'symlink', name: 'bin/sh', target: 'busybox' },
			{ type: 'file', name: 'init', data: Buffer.from('#!/bin/sh\nexec /bin/busybox poweroff -f\n'), mode: 0o755 },
		]),
	);
	return (serial) => [
		'-machine', 'q35', '-cpu', 'max', '-m', '2048', '-smp', '2', '-accel', 'tcg',
		'-kernel', kernel.image, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1',
		'-no-reboot', '-display', 'none', '-serial', serial ? `file:${serial}` : 'null',
	];
}
