// Which Debian kernels on this machine the VM runner can boot, and which one
// it boots by default: the newest whose headers are installed, because a
// kernel the module cannot be built for is of no use to the tests.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface KernelInfo {
	version: string;
	image: string;
	modulesDir: string;
	headersDir: string;
	usable: boolean;
	/** Why the kernel cannot be used; undefined when it can. */
	reason?: string;
}

const BOOT_DIR = '/boot';
const MODULES_ROOT = '/lib/modules';

/** Compares kernel release strings the way a person reads them (6.12 > 6.1.0). */
export function compareKernelVersions(a: string, b: string): number {
	const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
	const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
	for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
		const d = (pa[i] ?? -1) - (pb[i] ?? -1);
		if (d !== 0) return d;
	}
	return a.localeCompare(b);
}

export function describeKernel(version: string, bootDir = BOOT_DIR, modulesRoot = MODULES_ROOT): KernelInfo {
	const image = path.join(bootDir, `vmlinuz-${version}`);
	const modulesDir = path.join(modulesRoot, version);
	const headersDir = path.join(modulesDir, 'build');
	const info: KernelInfo = { version, image, modulesDir, headersDir, usable: false };
	if (!existsSync(image)) info.reason = `no kernel image ${image} (apt-get install linux-image-${version}; \`hybridmem bootstrap\` installs Debian's default kernels)`;
	else if (!existsSync(path.join(modulesDir, 'modules.dep')) && !existsSync(path.join(modulesDir, 'kernel')))
		info.reason = `no modules in ${modulesDir} (reinstall linux-image-${version})`;
	else if (!existsSync(path.join(headersDir, 'Makefile')))
		info.reason = `no headers at ${headersDir}, so the module cannot be built for it (apt-get install linux-headers-${version}; \`hybridmem bootstrap\` installs those of Debian's default kernels)`;
	else info.usable = true;
	return info;
}

/** Every kernel that has an image in /boot or a modules directory, newest first. */
export function listKernels(bootDir = BOOT_DIR, modulesRoot = MODULES_ROOT): KernelInfo[] {
	const versions = new Set<string>();
	for (const name of safeReaddir(bootDir)) if (name.startsWith('vmlinuz-')) versions.add(name.slice('vmlinuz-'.length));
	for (const name of safeReaddir(modulesRoot)) versions.add(name);
	return [...versions].sort((a, b) => compareKernelVersions(b, a)).map((v) => describeKernel(v, bootDir, modulesRoot));
}

/** The kernel to boot: `wanted` if given (and usable), else the newest usable one. */
export function chooseKernel(wanted?: string, bootDir = BOOT_DIR, modulesRoot = MODULES_ROOT): KernelInfo {
	if (wanted) {
		const k = describeKernel(wanted, bootDir, modulesRoot);
		if (!k.usable) throw Object.assign(new Error(`kernel ${wanted} cannot be used: ${k.reason}`), { code: 'ERR_KERNEL_UNUSABLE' });
		return k;
	}
	const all = listKernels(bootDir, modulesRoot);
	const k = all.find((x) => x.usable);
	if (!k) {
		const why = all.length ? all.map((x) => `${x.version}: ${x.reason}`).join('; ') : 'no kernel under /boot';
		throw Object.assign(new Error(`no usable kernel (${why}); run \`hybridmem bootstrap\` to install Debian's kernels and headers`), {
			code: 'ERR_NO_KERNEL',
		});
	}
	return k;
}

function safeReaddir(dir: string): string[] {
	try {
		return readdirSync(dir);
	} catch {
		return [];
	}
}
