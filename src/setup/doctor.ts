// hybridmem doctor: what this machine can and cannot do for hybridmem, one
// small function per check.  Each finding says what was seen and, for a gap,
// the exact command that closes it.  Nothing here boots a VM or loads a
// module, except the KVM probe when the caller asks for it.
import { accessSync, constants, existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { chooseAccel } from '../vm/accel.js';
import { hostTscKhz } from '../vm/host-tsc.js';
import { findBusybox } from '../vm/initramfs.js';
import { listKernels, type KernelInfo } from '../vm/kernels.js';
import { QEMU_BINARY } from '../vm/runner.js';
import { findAddon } from '../device/binding.js';
import { nodeApiIncludeDir } from './addon.js';
import { BOOTSTRAP_COMMAND } from './bootstrap.js';
import { kernelLoadsModules } from './kernel-state.js';
import { moduleFile } from './paths.js';

export type CheckStatus = 'ok' | 'missing';
/** The two ways scenarios can run: the module loaded into this kernel, or inside the VM runner. */
export type RunPath = 'native' | 'vm';

export interface Check {
	id: string;
	title: string;
	status: CheckStatus;
	/** What was found, or why it is missing. */
	detail: string;
	/** The command that closes the gap; absent when there is nothing to fix. */
	fix?: string;
	/** Which paths need this; an empty list means it only makes things faster or broader. */
	neededFor: RunPath[];
}

export const NATIVE_ENV = 'HYBRIDMEM_NATIVE';

function check(c: Check): Check {
	return c.status === 'ok' ? { ...c, fix: undefined } : c;
}

export function checkRoot(uid = process.getuid?.() ?? -1): Check {
	return check({
		id: 'root',
		title: 'root',
		status: uid === 0 ? 'ok' : 'missing',
		detail: uid === 0 ? 'running as root' : `running as uid ${uid}: insmod and mknod need root`,
		fix: 'sudo -E hybridmem ... (run as root)',
		neededFor: ['native'],
	});
}

export function checkModuleSupport(release = os.release(), procModules = '/proc/modules'): Check {
	const ok = existsSync(procModules);
	return check({
		id: 'module-support',
		title: 'module support',
		status: ok ? 'ok' : 'missing',
		detail: ok
			? `kernel ${release} loads modules (${procModules} exists)`
			: `kernel ${release} was built without loadable module support (no ${procModules}): the module cannot be loaded here, so scenarios run in the VM runner`,
		fix: 'none on this kernel; use the VM runner: hybridmem vm -- CMD (hybridmem run does this by itself)',
		neededFor: ['native'],
	});
}

export function checkHeaders(release = os.release(), modulesRoot = '/lib/modules'): Check {
	const makefile = path.join(modulesRoot, release, 'build', 'Makefile');
	const ok = existsSync(makefile);
	return check({
		id: 'headers',
		title: 'headers for the running kernel',
		status: ok ? 'ok' : 'missing',
		detail: ok ? `${makefile} exists` : `no ${makefile}: the module cannot be built for the running kernel`,
		fix: /-(amd64|arm64|cloud-amd64|rt-amd64)$/.test(release)
			? `apt-get install -y linux-headers-${release}`
			: `none needed for the VM runner (hybridmem build and run use its kernels); to load the module natively, install the headers of kernel ${release} from whoever built it, at ${path.dirname(makefile)} (not a Debian kernel: apt has none)`,
		neededFor: ['native'],
	});
}

/** The first executable `name` on PATH, like `command -v`. */
export function whichSync(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
	for (const dir of searchPath.split(path.delimiter)) {
		if (!dir) continue;
		const file = path.join(dir, name);
		try {
			if (!statSync(file).isFile()) continue;
			accessSync(file, constants.X_OK);
			return file;
		} catch {
			/* not here */
		}
	}
	return undefined;
}

/** "7.2.22" from QEMU's "QEMU emulator version 7.2.22 (Debian ...)". */
export function parseQemuVersion(text: string): string | undefined {
	return /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

export async function checkQemu(searchPath?: string): Promise<Check & { version?: string; binary?: string }> {
	const base = { id: 'qemu', title: 'QEMU', fix: `${BOOTSTRAP_COMMAND} (it installs qemu-system-x86)`, neededFor: ['vm'] as RunPath[] };
	const binary = whichSync(QEMU_BINARY, searchPath);
	if (!binary) return check({ ...base, status: 'missing', detail: `${QEMU_BINARY} is not on PATH` });
	const r = await execa(binary, ['--version'], { reject: false, timeout: 10_000 });
	const version = parseQemuVersion(r.stdout);
	if (r.exitCode !== 0 || !version)
		return check({ ...base, status: 'missing', detail: `${binary} --version failed: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}` });
	return { ...check({ ...base, status: 'ok', detail: `${binary}, version ${version}` }), version, binary };
}

/** Thrown by the probe that doctor hands to chooseAccel when it must not boot anything. */
class NotProbed extends Error {}

/**
 * KVM, as the VM runner decides it: through chooseAccel, so doctor reads the
 * verdict the runner cached.  Without `probe`, a missing verdict is reported
 * as not probed instead of booting a guest; `probe` is the runner's own way
 * of finding out (a boot with accel auto).
 */
export async function checkKvm(probe?: () => Promise<'kvm' | 'tcg'>): Promise<Check> {
	const base = { id: 'kvm', title: 'KVM usable', neededFor: [] as RunPath[] };
	try {
		// The same binary name the runner passes, so the verdict's cache key is the same.
		const choice = await chooseAccel('auto', QEMU_BINARY, () => Promise.reject(new NotProbed()));
		if (choice.accel === 'kvm') return check({ ...base, status: 'ok', detail: `${choice.reason} (cached verdict)` });
		const noDevice = !existsSync('/dev/kvm');
		return check({
			...base,
			status: 'missing',
			detail: `${choice.reason}; the VM runner uses TCG, which works but is slower`,
			fix: noDevice
				? 'none needed (TCG works); for KVM, give this machine /dev/kvm (hardware virtualization, or nested virtualization on a VM host)'
				: 'none needed (TCG works); /dev/kvm is there but does not boot a guest on this host',
		});
	} catch (err) {
		if (!(err instanceof NotProbed)) throw err;
	}
	if (!probe)
		return check({
			...base,
			status: 'missing',
			detail: '/dev/kvm exists but no verdict is cached yet (the VM runner probes it with a test guest on its first boot); TCG until then',
			fix: 'hybridmem doctor --probe-kvm',
		});
	const accel = await probe();
	return check({
		...base,
		status: accel === 'kvm' ? 'ok' : 'missing',
		detail: accel === 'kvm' ? 'KVM (a test guest booted with it just now)' : '/dev/kvm did not boot a test guest in time: the VM runner uses TCG',
		fix: 'none needed (TCG works); /dev/kvm is there but does not boot a guest on this host',
	});
}

/** Whether an ELF file has no program interpreter, i.e. runs without a dynamic loader. */
export function isStaticElf(file: string): boolean {
	const fd = openSync(file, 'r');
	try {
		const eh = Buffer.alloc(64);
		readSync(fd, eh, 0, 64, 0);
		if (eh.readUInt32BE(0) !== 0x7f454c46) return false;
		if (eh[4] !== 2 || eh[5] !== 1) throw new Error(`${file}: not a 64-bit little-endian ELF file`);
		const phoff = Number(eh.readBigUInt64LE(32));
		const phentsize = eh.readUInt16LE(54);
		const phnum = eh.readUInt16LE(56);
		const ph = Buffer.alloc(phentsize * phnum);
		readSync(fd, ph, 0, ph.length, phoff);
		const PT_INTERP = 3;
		for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === PT_INTERP) return false;
		return true;
	} finally {
		closeSync(fd);
	}
}

export function checkBusybox(): Check {
	const base = { id: 'busybox', title: 'busybox (static)', fix: `${BOOTSTRAP_COMMAND} (it installs busybox-static)`, neededFor: ['vm'] as RunPath[] };
	let file: string;
	try {
		file = findBusybox();
	} catch {
		return check({ ...base, status: 'missing', detail: 'no busybox at /bin/busybox or /usr/bin/busybox: the guest initramfs needs it' });
	}
	if (!isStaticElf(file))
		return check({ ...base, status: 'missing', detail: `${file} is dynamically linked: the initramfs has no libc for it` });
	return check({ ...base, status: 'ok', detail: `${file}, statically linked` });
}

/** Which QEMU machine a TCG guest gets: microvm needs the host's TSC frequency (vm/host-tsc.ts). */
export function checkVmMachine(tscKhz: number | undefined): Check {
	return check({
		id: 'vm-machine',
		title: 'fast VM machine',
		status: tscKhz !== undefined ? 'ok' : 'missing',
		detail:
			tscKhz !== undefined
				? `microvm: the host TSC is constant at ${tscKhz} kHz, which TCG guests are told instead of calibrating it`
				: 'q35 (about 0.3 s more per boot): no constant, nonstop TSC frequency to tell a microvm guest under TCG',
		fix: 'none needed (q35 works)',
		neededFor: [],
	});
}

export function checkKernels(kernels: KernelInfo[] = listKernels()): Check {
	const usable = kernels.filter((k) => k.usable);
	const unusable = kernels.filter((k) => !k.usable).map((k) => `${k.version} not usable: ${k.reason}`);
	return check({
		id: 'kernels',
		title: 'kernels for the VM runner',
		status: usable.length > 0 ? 'ok' : 'missing',
		detail:
			(usable.length > 0
				? `${usable.map((k) => k.version).join(', ')} (default ${usable[0]?.version})`
				: 'no kernel under /boot with modules and headers') + (unusable.length ? `; ${unusable.join('; ')}` : ''),
		fix: `${BOOTSTRAP_COMMAND} (it installs Debian's 6.1 and 6.12 kernels with their headers)`,
		neededFor: ['vm'],
	});
}

/** gcc and make: kbuild needs them for the module, whichever path runs it. */
export function checkCompiler(searchPath?: string): Check {
	const missing = ['make', 'gcc'].filter((t) => !whichSync(t, searchPath));
	return check({
		id: 'compiler',
		title: 'gcc and make',
		status: missing.length ? 'missing' : 'ok',
		detail: missing.length ? `${missing.join(' and ')} not on PATH: the module cannot be built` : 'on PATH (kbuild builds the module with them)',
		fix: `${BOOTSTRAP_COMMAND} (it installs build-essential)`,
		neededFor: ['native', 'vm'],
	});
}

/**
 * The node addon: found where the loader looks (a development build, the
 * package's prebuilt binary for this platform, a source build in the cache).
 * When none is there but g++ and Node's headers are, \`hybridmem run\` and
 * \`hybridmem build\` compile it themselves, so it is no gap.
 */
export function checkAddon(found: string | null = findAddon() ?? null, searchPath?: string): Check {
	const base = { id: 'addon', title: 'node addon' };
	if (found)
		return check({
			...base,
			status: 'ok',
			detail: found.includes(`${path.sep}prebuilds${path.sep}`) ? `prebuilt for ${process.platform}-${process.arch}: ${found}` : found,
			neededFor: ['native', 'vm'],
		});
	const canCompile = !!whichSync('g++', searchPath) && !!nodeApiIncludeDir();
	return check({
		...base,
		status: 'missing',
		detail: canCompile
			? `no prebuilt binary fits ${process.platform}-${process.arch}; hybridmem run (or build) compiles it from source on first use`
			: `no prebuilt binary fits ${process.platform}-${process.arch}, and it cannot be compiled here (${whichSync('g++', searchPath) ? "no Node headers (node_api.h)" : 'no g++'})`,
		fix: canCompile ? 'hybridmem build' : `${BOOTSTRAP_COMMAND}, then hybridmem build`,
		neededFor: canCompile ? [] : ['native', 'vm'],
	});
}

/**
 * hybridmem_test.ko for \`kver\`, built from the current sources (the build
 * directory is named by their content).  Never a gap by itself: hybridmem
 * run builds it first when it is missing, given the headers and compiler,
 * which their own checks cover.
 */
export function checkModuleBuilt(kver: string, why = ''): Check {
	const file = moduleFile(kver);
	const base = { id: `module:${kver}`, title: `module built for ${kver}`, fix: `hybridmem build --kernel ${kver}`, neededFor: [] as RunPath[] };
	if (!existsSync(file)) return check({ ...base, status: 'missing', detail: `not built yet${why}; hybridmem run builds it first` });
	return check({ ...base, status: 'ok', detail: `${file}${why}` });
}

/** One module check per usable VM kernel. */
export function checkModulesForKernels(kernels: KernelInfo[] = listKernels()): Check[] {
	return kernels
		.filter((k) => k.usable)
		.map((k, i) =>
			i === 0
				? checkModuleBuilt(k.version, " (the VM runner's default kernel)")
				: { ...checkModuleBuilt(k.version, ` (for --kernel ${k.version})`), fix: 'hybridmem build --all-kernels' },
		)
		.map(check);
}

export function checkNativeOptIn(env = process.env): Check {
	const ok = env[NATIVE_ENV] === '1';
	return check({
		id: 'native-opt-in',
		title: `${NATIVE_ENV}=1`,
		status: ok ? 'ok' : 'missing',
		detail: ok ? 'set: scenarios may load the module into this kernel' : 'not set: hybridmem never loads its test module into this kernel by surprise',
		fix: `export ${NATIVE_ENV}=1`,
		neededFor: ['native'],
	});
}

export interface DoctorReport {
	checks: Check[];
	paths: Record<RunPath, { usable: boolean; missing: string[] }>;
	/** Where scenarios will run; 'none' when neither path is complete. */
	scenarios: RunPath | 'none';
}

export function summarize(checks: Check[]): DoctorReport {
	const pathState = (p: RunPath) => {
		const missing = checks.filter((c) => c.neededFor.includes(p) && c.status !== 'ok').map((c) => c.id);
		return { usable: missing.length === 0, missing };
	};
	const paths = { native: pathState('native'), vm: pathState('vm') };
	return { checks, paths, scenarios: paths.native.usable ? 'native' : paths.vm.usable ? 'vm' : 'none' };
}

export interface DoctorOptions {
	/** How to find out whether KVM works when no verdict is cached; without it doctor never boots a guest. */
	probeKvm?: () => Promise<'kvm' | 'tcg'>;
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
	const kernels = listKernels();
	const release = os.release();
	const checks: Check[] = [
		checkRoot(),
		checkModuleSupport(),
		checkHeaders(),
		checkNativeOptIn(),
		await checkQemu(),
		await checkKvm(opts.probeKvm),
		checkBusybox(),
		checkVmMachine(hostTscKhz()),
		checkKernels(kernels),
		checkCompiler(),
		checkAddon(),
		...checkModulesForKernels(kernels),
	];
	// The native path's module is for the running kernel, which the VM kernels' checks may not cover.
	if (kernelLoadsModules() && !kernels.some((k) => k.usable && k.version === release)) checks.push(checkModuleBuilt(release, ' (the running kernel)'));
	return summarize(checks);
}
