// What an arm64 guest does differently from an x86 one: QEMU's virt machine
// with a Neoverse-N1 CPU (16K pages need TGran16, which cortex-a57 lacks),
// the PL011 console, virtio over PCI,
// and the arm64 root (arm64-root.ts) laid over the host's.  Never KVM: the
// host is x86_64.
import path from 'node:path';
import { arm64Busybox } from './arm64-root.js';
import { FSTABS, FSTAB_ROOT, INIT_DIRS, NINEP_OPTS, PROBE_PARAM, ROOT_TAG, SPEC_PARAM } from './guest-init.js';
import type { InitramfsLayout } from './initramfs.js';
import { BASE_KERNEL_ARGS, guestArgs, ninepArgs, type QemuConfig } from './qemu-args.js';

export const ARM64_QEMU_BINARY = 'qemu-system-aarch64';

/** 9p mount tag of the arm64 root. */
export const ARM64_ROOT_TAG = 'hm.arm64root';

/** Where the initramfs mounts the arm64 root before laying it over the host's (/lower). */
const ARM64_MOUNT = '/arm64';

/** The PATH of an arm64 guest's command: the host's /usr/local holds amd64 binaries the arm64 root does not hide. */
export const ARM64_GUEST_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The mount tables of an arm64 guest: the x86 ones, with the arm64 root
 * mounted too and made the overlay's upper lower layer, so /usr/bin/node,
 * /lib/ld-linux-aarch64.so.1 and the libraries are arm64's while every path
 * it lacks is the host's.
 */
export function arm64Fstabs(): Record<string, string> {
	const root = FSTABS[FSTAB_ROOT]!.split('\n').flatMap((line) => {
		if (line.startsWith(`${ROOT_TAG} `)) return [line, `${ARM64_ROOT_TAG} ${ARM64_MOUNT} 9p ${NINEP_OPTS},ro,cache=loose 0 0`];
		if (line.startsWith('overlay ')) return [line.replace('lowerdir=/lower', `lowerdir=${ARM64_MOUNT}:/lower`)];
		return [line];
	});
	return { ...FSTABS, [FSTAB_ROOT]: root.join('\n') };
}

export function arm64InitramfsLayout(root: string): InitramfsLayout {
	return { busybox: arm64Busybox(root), fstabs: arm64Fstabs(), dirs: [...INIT_DIRS, ARM64_MOUNT.slice(1)] };
}

/** x86-only words of BASE_KERNEL_ARGS, left out for arm64. */
const X86_ONLY = /^(console=ttyS0|no_timer_check|tsc=|i8042\.)/;

export const ARM64_KERNEL_ARGS = ['console=ttyAMA0', ...BASE_KERNEL_ARGS.filter((a) => !X86_ONLY.test(a))];

export function arm64QemuArgs(c: QemuConfig & { arm64Root: string }): string[] {
	const append = [...ARM64_KERNEL_ARGS, ...(c.extraKernelArgs ?? [])];
	if (c.probe) append.push(PROBE_PARAM);
	if (c.specDir) append.push(`${SPEC_PARAM}=${c.specDir}`);
	const args = [
		'-nodefaults',
		'-no-user-config',
		'-no-reboot',
		'-display', 'none',
		'-machine', 'virt,accel=tcg',
		// Not `max`: with `-cpu max,pauth-impdef=on` QEMU 7.2's TCG left node's
		// V8 in the 16K guest with a corrupt heap in about half the boots (a
		// FeedbackVector CHECK, "Cannot access 'defaultMaxListeners' before
		// initialization"); with neoverse-n1 (ARMv8.2, TGran16, no pointer
		// authentication to emulate) 4 of 4 such boots ran clean.
		'-cpu', 'neoverse-n1',
		...guestArgs(c, append, 'virtio-serial-pci'),
		...ninepArgs(ROOT_TAG, '/', true, 'virtio-9p-pci'),
		...ninepArgs(ARM64_ROOT_TAG, path.resolve(c.arm64Root), true, 'virtio-9p-pci'),
	];
	for (const s of c.shares) args.push(...ninepArgs(s.tag, s.dir, false, 'virtio-9p-pci'));
	return args;
}
