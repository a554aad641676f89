// The QEMU command line of one guest.  Console on the first serial port (the
// host reads it from QEMU's stdout), the command's stdout/stderr and its exit
// status on virtio-serial ports of their own, so kernel messages never mix
// with the command's output and the status cannot be garbled.
import { GUEST_HOSTNAME, PORTS, ROOT_TAG, SPEC_PARAM, PROBE_PARAM } from './guest-init.js';

export type Accel = 'kvm' | 'tcg';

/**
 * microvm: no PCI, no legacy firmware, virtio devices on MMIO transports
 * described by ACPI.  It boots about 0.3 s sooner than q35 under TCG (no PCI
 * enumeration, far fewer devices to probe).  q35 remains for guests that need
 * more virtio devices than microvm takes, and for TCG guests that cannot be
 * told the host's TSC frequency (see chooseMachine).
 */
export type Machine = 'microvm' | 'q35' | 'virt';
// virt: QEMU's arm64 machine (qemu-args-arm64.ts).

/**
 * Virtio devices a microvm guest can use.  QEMU 7.2 accepts 24 on its MMIO
 * transports, but with the 24th in use the guest never got its devices
 * going (the boot timed out); 23 work (measured with --rw shares).
 */
export const MICROVM_TRANSPORTS = 23;

/** Virtio devices every guest has: the serial ports and the host root. */
const FIXED_VIRTIO_DEVICES = 2;

/**
 * microvm unless the writable shares need more transports than it has, or a
 * TCG guest could not be told the TSC frequency (microvm has no timer but
 * the PIT to calibrate it against, and that fails on a busy host).
 */
export function chooseMachine(shareCount: number, accel: Accel, tscKhz: number | undefined): Machine {
	if (FIXED_VIRTIO_DEVICES + shareCount > MICROVM_TRANSPORTS) return 'q35';
	return accel === 'kvm' || tscKhz !== undefined ? 'microvm' : 'q35';
}

/** The same virtio device on either machine's bus. */
function virtioDevice(machine: Machine, kind: 'serial' | '9p'): string {
	const name = kind === 'serial' ? 'virtio-serial' : 'virtio-9p';
	return machine === 'microvm' ? `${name}-device` : `${name}-pci`;
}

export interface QemuConfig {
	kernelImage: string;
	initramfs: string;
	accel: Accel;
	/** Default: microvm. */
	machine?: Machine;
	memMiB: number;
	cpus: number;
	/** Unix socket (listened on by the host) feeding the command's stdin; none: stdin is at EOF. */
	stdinSocket?: string;
	/** Unix sockets (listened on by the host) receiving the command's stdout and stderr. */
	stdoutSocket?: string;
	stderrSocket?: string;
	statusFile: string;
	specDir?: string;
	shares: { tag: string; dir: string }[];
	extraKernelArgs?: string[];
	probe?: boolean;
	/** Host TSC frequency (see host-tsc.ts), passed to microvm TCG guests so they skip calibrating it. */
	tscKhz?: number;
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
	// Making kernel text and rodata read-only (and the W+X self-check after
	// it) costs 0.19 s of every boot under TCG: page-table splits and TLB
	// flushes on every vCPU.  The module's text stays read-only either way;
	// its rodata and the kernel's become writable.  --append rodata=on gets
	// the protection back (the last rodata= wins).
	'rodata=off',
	'printk.devkmsg=on',
	'nokaslr',
	`hostname=${GUEST_HOSTNAME}`,
	// Built-in initcalls that cost 0.1 to 0.15 s of every emulated boot and
	// do nothing a test of memory mappings needs: the jitter-entropy RNG's
	// self-test, loading the distribution's X.509 certificates (only module
	// signature checks use them; the test module is unsigned anyway), BPF
	// kfunc and struct_ops registration, encrypted keys, a KDF self-test.
	// Names a kernel does not have are ignored.
	'initcall_blacklist=jent_mod_init,load_system_certificate_list,bpf_tcp_ca_kfunc_init,bpf_dummy_struct_ops_init,init_encrypted,crypto_kdf108_init',
];

/** A virtio-serial port whose host side is a Unix socket, or nothing. */
export function port(id: string, name: string, socket: string | undefined): string[] {
	const backend = socket ? `socket,id=${id},path=${socket}` : `null,id=${id}`;
	return ['-chardev', backend, '-device', `virtserialport,bus=vser.0,chardev=${id},name=${name}`];
}

/**
 * What every guest has, on either architecture: memory, vCPUs, kernel,
 * initramfs and command line, the console, and the runner's virtio-serial
 * ports (stdin, stdout, stderr, status) on `serialDevice`.
 */
export function guestArgs(c: QemuConfig, append: string[], serialDevice: string): string[] {
	return [
		'-m', String(c.memMiB),
		'-smp', String(c.cpus),
		'-kernel', c.kernelImage,
		'-initrd', c.initramfs,
		'-append', append.join(' '),
		'-chardev', 'stdio,id=con,signal=off',
		'-serial', 'chardev:con',
		'-device', `${serialDevice},id=vser`,
		...port('hmin', PORTS.stdin, c.stdinSocket),
		...port('hmout', PORTS.stdout, c.stdoutSocket),
		...port('hmerr', PORTS.stderr, c.stderrSocket),
		'-chardev', `file,id=hmst,path=${c.statusFile}`,
		'-device', `virtserialport,bus=vser.0,chardev=hmst,name=${PORTS.status}`,
	];
}

/** `dir` shared over virtio-9p as `tag`, through `device` (the -device or -pci variant). */
export function ninepArgs(tag: string, dir: string, readOnly: boolean, device: string): string[] {
	if (dir.includes(',')) throw new Error(`cannot share ${dir}: QEMU option values cannot contain commas`);
	return ['-fsdev', `local,id=${tag},path=${dir},security_model=none,${readOnly ? 'readonly=on,' : ''}multidevs=remap`, '-device', `${device},fsdev=${tag},mount_tag=${tag}`];
}

export function qemuArgs(c: QemuConfig): string[] {
	const machine = c.machine ?? 'microvm';
	const append = [...BASE_KERNEL_ARGS];
	if (c.accel === 'tcg') {
		// Under QEMU 7.2's multi-threaded TCG, a static key flipped while the
		// other vCPU runs the patched code now and then leaves it executing
		// the int3 of text_poke_bp after the patch completed: "Oops: int3"
		// in enqueue_timer or hrtimer_start_range_ns, then a panic.  Seen 2
		// times in about 100 microvm boots, both in the NOHZ timer keys
		// (timers_nohz_active, timers_migration_enabled) that every boot
		// flips when the tick goes one-shot.  With nohz=off they never flip.
		append.push('nohz=off');
	}
	if (machine === 'microvm') {
		// No PCI bus: say so rather than have the kernel probe for one.
		append.push('pci=off');
		// No HPET or PM timer to calibrate the TSC against (see host-tsc.ts).
		if (c.accel === 'tcg' && c.tscKhz !== undefined) append.push(`tsc_early_khz=${c.tscKhz}`);
	}
	// The caller's words come after ours, so that theirs win (e.g. rodata=on),
	// and before the init script's, which must stay as we wrote them.
	append.push(...(c.extraKernelArgs ?? []));
	if (c.probe) append.push(PROBE_PARAM);
	if (c.specDir) append.push(`${SPEC_PARAM}=${c.specDir}`);
	const args = [
		'-nodefaults',
		'-no-user-config',
		'-no-reboot',
		'-display', 'none',
		'-machine', `${machine},accel=${c.accel}`,
		'-cpu', c.accel === 'kvm' ? 'host' : 'max',
		...guestArgs(c, append, virtioDevice(machine, 'serial')),
		...ninepArgs(ROOT_TAG, '/', true, virtioDevice(machine, '9p')),
	];
	for (const sh of c.shares) args.push(...ninepArgs(sh.tag, sh.dir, false, virtioDevice(machine, '9p')));
	return args;
}
