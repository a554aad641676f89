// The QEMU command line of one guest.  Console on the first serial port (the
// host reads it from QEMU's stdout), the command's stdout/stderr and its exit
// status on virtio-serial ports of their own, so kernel messages never mix
// with the command's output and the status cannot be garbled.
import { PORTS, ROOT_TAG, SPEC_PARAM, PROBE_PARAM } from './guest-init.js';

export type Accel = 'kvm' | 'tcg';

export interface QemuConfig {
	kernelImage: string;
	initramfs: string;
	accel: Accel;
	memMiB: number;
	cpus: number;
	/** Unix sockets (listened on by the host) receiving the command's stdout and stderr. */
	stdoutSocket?: string;
	stderrSocket?: string;
	statusFile: string;
	specDir?: string;
	shares: { tag: string; dir: string }[];
	extraKernelArgs?: string[];
	probe?: boolean;
}

/** Kernel arguments that make an emulated boot short and its failures final. */
export const BASE_KERNEL_ARGS = [
	'console=ttyS0',
	'loglevel=5',
	'panic=-1', // reboot at once on panic; with -no-reboot QEMU then exits
	'rdinit=/init',
	'cryptomgr.notests',
	'no_timer_check',
	'tsc=reliable',
	'i8042.noaux',
	'i8042.nomux',
	'i8042.nopnp',
	'random.trust_cpu=on',
	'mitigations=off',
	'printk.devkmsg=on',
	'nokaslr',
];

/** A virtio-serial port whose host side is a Unix socket, or nothing. */
function port(id: string, name: string, socket: string | undefined): string[] {
	const backend = socket ? `socket,id=${id},path=${socket}` : `null,id=${id}`;
	return ['-chardev', backend, '-device', `virtserialport,bus=vser.0,chardev=${id},name=${name}`];
}

export function qemuArgs(c: QemuConfig): string[] {
	const append = [...BASE_KERNEL_ARGS, ...(c.extraKernelArgs ?? [])];
	if (c.probe) append.push(PROBE_PARAM);
	if (c.specDir) append.push(`${SPEC_PARAM}=${c.specDir}`);
	const args = [
		'-nodefaults',
		'-no-user-config',
		'-no-reboot',
		'-display', 'none',
		'-machine', c.accel === 'kvm' ? 'q35,accel=kvm' : 'q35,accel=tcg',
		'-cpu', c.accel === 'kvm' ? 'host' : 'max',
		'-m', String(c.memMiB),
		'-smp', String(c.cpus),
		'-kernel', c.kernelImage,
		'-initrd', c.initramfs,
		'-append', append.join(' '),
		'-chardev', 'stdio,id=con,signal=off',
		'-serial', 'chardev:con',
		'-device', 'virtio-serial-pci,id=vser',
		...port('hmout', PORTS.stdout, c.stdoutSocket),
		...port('hmerr', PORTS.stderr, c.stderrSocket),
		'-chardev', `file,id=hmst,path=${c.statusFile}`,
		'-device', `virtserialport,bus=vser.0,chardev=hmst,name=${PORTS.status}`,
		'-fsdev', `local,id=${ROOT_TAG},path=/,security_model=none,readonly=on,multidevs=remap`,
		'-device', `virtio-9p-pci,fsdev=${ROOT_TAG},mount_tag=${ROOT_TAG}`,
	];
	for (const s of c.shares) {
		if (s.dir.includes(',')) throw new Error(`cannot share ${s.dir}: QEMU option values cannot contain commas`);
		args.push('-fsdev', `local,id=${s.tag},path=${s.dir},security_model=none,multidevs=remap`);
		args.push('-device', `virtio-9p-pci,fsdev=${s.tag},mount_tag=${s.tag}`);
	}
	return args;
}
