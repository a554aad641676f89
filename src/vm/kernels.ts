// Which Debian kernels the VM runner can boot, and which one it boots by
// default: the newest installed one (/boot) whose headers are installed,
// because a kernel the module cannot be built for is of no use to the tests.
// Kernels fetched from Debian's archive (debian.ts) are listed beside them
// and booted by name (--kernel VER), never by default.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { archOfRelease, fetchedKernelsDir, listFetched, suiteOfRelease, type DebianArch } from './debian.js';

/** A kernel option as its config sets it: built in, a module, or not set. */
export type Tristate = 'y' | 'm' | 'n';

export interface KernelFeatures {
	ninep: Tristate;
	ninepVirtio: Tristate;
	virtioMmio: Tristate;
	virtioPci: Tristate;
	virtioConsole: Tristate;
	overlay: Tristate;
	modules: boolean;
	/** QEMU can boot the uncompressed ELF (CONFIG_PVH). */
	pvh: boolean;
	/** An arm64 kernel (CONFIG_ARM64). */
	arm64: boolean;
	preemptRt: boolean;
	pageSize: string;
	/** The compiler the kernel was built with (CONFIG_CC_VERSION_TEXT). */
	compiler?: string;
}

export interface KernelInfo {
	version: string;
	image: string;
	modulesDir: string;
	headersDir: string;
	usable: boolean;
	/** Why the kernel cannot be used; undefined when it can. */
	reason?: string;
	/** 'boot': installed on this machine; 'fetched': unpacked from Debian's archive under the cache. */
	origin: 'boot' | 'fetched';
	/** The unpacked tree a fetched kernel lives in (modinfo -b); undefined for an installed one. */
	root?: string;
	/** The Debian suite (and flavour) a fetched kernel came from. */
	suite?: string;
	flavour?: string;
	/** The Debian architecture the kernel runs on (amd64, arm64), from its release name. */
	arch: DebianArch;
	/** From the kernel's config, when it has one. */
	features?: KernelFeatures;
}

/** Reads a kernel config into option -> value ('y', 'm', a string); unset options are absent. */
export function parseKernelConfig(text: string): Map<string, string> {
	const map = new Map<string, string>();
	for (const line of text.split('\n')) {
		const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
		if (m) map.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1'));
	}
	return map;
}

export function kernelFeatures(config: Map<string, string>): KernelFeatures {
	const tri = (name: string): Tristate => (config.get(name) === 'y' ? 'y' : config.get(name) === 'm' ? 'm' : 'n');
	let pageSize = 'unknown';
	for (const [k, v] of config) {
		if (v !== 'y') continue;
		const m = /^CONFIG_(?:PAGE_SIZE_(\d+)KB|ARM64_(\d+)K_PAGES)$/.exec(k);
		if (m) pageSize = `${m[1] ?? m[2]}K`;
	}
	if (pageSize === 'unknown' && config.get('CONFIG_X86') === 'y') pageSize = '4K';
	const compiler = config.get('CONFIG_CC_VERSION_TEXT');
	return {
		ninep: tri('CONFIG_9P_FS'),
		ninepVirtio: tri('CONFIG_NET_9P_VIRTIO'),
		virtioMmio: tri('CONFIG_VIRTIO_MMIO'),
		virtioPci: tri('CONFIG_VIRTIO_PCI'),
		virtioConsole: tri('CONFIG_VIRTIO_CONSOLE'),
		overlay: tri('CONFIG_OVERLAY_FS'),
		modules: config.get('CONFIG_MODULES') === 'y',
		pvh: config.get('CONFIG_PVH') === 'y',
		arm64: config.get('CONFIG_ARM64') === 'y',
		preemptRt: config.get('CONFIG_PREEMPT_RT') === 'y',
		pageSize,
		...(compiler ? { compiler } : {}),
	};
}

/** What the runner needs that a kernel lacks, in words; undefined when it has it all. */
export function missingForRunner(f: KernelFeatures): string | undefined {
	const missing: string[] = [];
	if (!f.modules) missing.push('CONFIG_MODULES (loading the test module)');
	if (f.ninep === 'n') missing.push('CONFIG_9P_FS (the host root is shared over 9p)');
	if (f.ninepVirtio === 'n') missing.push('CONFIG_NET_9P_VIRTIO (9p over virtio)');
	if (f.virtioConsole === 'n') missing.push("CONFIG_VIRTIO_CONSOLE (the command's stdin, stdout, stderr and status)");
	if (f.overlay === 'n') missing.push('CONFIG_OVERLAY_FS (the writable root)');
	if (f.virtioMmio === 'n' && f.virtioPci === 'n') missing.push('CONFIG_VIRTIO_MMIO or CONFIG_VIRTIO_PCI (a virtio transport)');
	return missing.length ? `built without ${missing.join(', ')}, which the VM runner needs` : undefined;
}

/** One line of what a kernel can do: 9p/virtio as module (m) or built in (y), PREEMPT_RT, page size. */
export function describeFeatures(f: KernelFeatures): string {
	const parts = [
		`9p=${f.ninep}`,
		`9p-virtio=${f.ninepVirtio}`,
		`virtio-mmio=${f.virtioMmio}`,
		`virtio-pci=${f.virtioPci}`,
		`virtio-console=${f.virtioConsole}`,
		`overlay=${f.overlay}`,
		f.preemptRt ? 'PREEMPT_RT' : 'no PREEMPT_RT',
		`${f.pageSize} pages`,
	];
	// PVH is x86's: QEMU boots an arm64 Image as it is.
	if (!f.pvh && !f.arm64) parts.push('no PVH (boots the bzImage, slower)');
	if (f.compiler) parts.push(`built with ${f.compiler.split(' ')[0]}`);
	return parts.join(', ');
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

export function describeKernel(
	version: string,
	bootDir = BOOT_DIR,
	modulesRoot = MODULES_ROOT,
	fetched?: { root: string; suite: string; flavour?: string },
): KernelInfo {
	const image = path.join(bootDir, `vmlinuz-${version}`);
	const modulesDir = path.join(modulesRoot, version);
	const headersDir = path.join(modulesDir, 'build');
	const info: KernelInfo = { version, image, modulesDir, headersDir, usable: false, origin: fetched ? 'fetched' : 'boot', arch: archOfRelease(version) };
	if (fetched) {
		info.root = fetched.root;
		info.suite = fetched.suite;
		if (fetched.flavour) info.flavour = fetched.flavour;
	}
	const refetch = fetched ? `hybridmem kernels --fetch ${fetched.suite}:${version} --force` : undefined;
	try {
		info.features = kernelFeatures(parseKernelConfig(readFileSync(path.join(bootDir, `config-${version}`), 'utf8')));
	} catch {
		/* no config: nothing known beyond the files */
	}
	const lacks = info.features && missingForRunner(info.features);
	if (!existsSync(image)) info.reason = `no kernel image ${image} (${refetch ?? `apt-get install linux-image-${version}; \`hybridmem bootstrap\` installs Debian's default kernels`})`;
	else if (!existsSync(path.join(modulesDir, 'modules.dep')) && !existsSync(path.join(modulesDir, 'kernel')))
		info.reason = `no modules in ${modulesDir} (${refetch ?? `reinstall linux-image-${version}`})`;
	else if (!existsSync(path.join(headersDir, 'Makefile')))
		info.reason = `no headers at ${headersDir}, so the module cannot be built for it (${refetch ?? `apt-get install linux-headers-${version}; \`hybridmem bootstrap\` installs those of Debian's default kernels`})`;
	else if (lacks) info.reason = lacks;
	else info.usable = true;
	return info;
}

/** Kernels unpacked from Debian's archive under the cache, newest first. */
export function listFetchedKernels(dir = fetchedKernelsDir()): KernelInfo[] {
	return listFetched(dir)
		.sort((a, b) => compareKernelVersions(b.kernel.release, a.kernel.release))
		.map(({ root, kernel }) =>
			describeKernel(kernel.release, path.join(root, 'boot'), path.join(root, 'lib', 'modules'), {
				root,
				suite: kernel.suite,
				...(kernel.flavour ? { flavour: kernel.flavour } : {}),
			}),
		);
}

/**
 * Every kernel that has an image in /boot or a modules directory, newest
 * first; then, when `fetchedDir` is given, the fetched ones there (a release
 * also installed is listed once, as installed).
 */
export function listKernels(bootDir = BOOT_DIR, modulesRoot = MODULES_ROOT, fetchedDir?: string): KernelInfo[] {
	const versions = new Set<string>();
	for (const name of safeReaddir(bootDir)) if (name.startsWith('vmlinuz-')) versions.add(name.slice('vmlinuz-'.length));
	for (const name of safeReaddir(modulesRoot)) versions.add(name);
	const installed = [...versions].sort((a, b) => compareKernelVersions(b, a)).map((v) => describeKernel(v, bootDir, modulesRoot));
	const fetched = fetchedDir !== undefined ? listFetchedKernels(fetchedDir) : [];
	return [...installed, ...fetched.filter((f) => !versions.has(f.version))];
}

/** The installed kernels, then those fetched into the cache (hybridmem kernels, build --all-kernels). */
export function listAllKernels(): KernelInfo[] {
	return listKernels(BOOT_DIR, MODULES_ROOT, fetchedKernelsDir());
}

/** A kernel by release: the installed one, else a fetched one, else the installed one's description (with its reason). */
export function findKernel(version: string, bootDir = BOOT_DIR, modulesRoot = MODULES_ROOT, fetchedDir?: string): KernelInfo {
	const installed = describeKernel(version, bootDir, modulesRoot);
	if (installed.usable || existsSync(installed.image)) return installed;
	const defaults = bootDir === BOOT_DIR && modulesRoot === MODULES_ROOT;
	if (fetchedDir !== undefined || defaults) {
		const fetched = listFetchedKernels(fetchedDir).find((k) => k.version === version);
		if (fetched) return fetched;
		if (!installed.usable) installed.reason += `; nor is it fetched (hybridmem kernels --fetch ${suiteOfRelease(version) ? version : `SUITE:${version}`})`;
	}
	return installed;
}

/**
 * The kernel to boot: `wanted` if given (and usable), else the newest usable
 * installed one; with `arch` a foreign one (arm64), the newest usable fetched
 * kernel of that architecture with 4K pages, else with any.
 */
export function chooseKernel(wanted?: string, bootDir = BOOT_DIR, modulesRoot = MODULES_ROOT, fetchedDir?: string, arch?: DebianArch): KernelInfo {
	if (wanted) {
		const k = findKernel(wanted, bootDir, modulesRoot, fetchedDir);
		if (!k.usable) throw Object.assign(new Error(`kernel ${wanted} cannot be used: ${k.reason}`), { code: 'ERR_KERNEL_UNUSABLE' });
		if (arch && k.arch !== arch) throw Object.assign(new Error(`kernel ${wanted} is an ${k.arch} kernel, not ${arch}`), { code: 'ERR_KERNEL_UNUSABLE' });
		return k;
	}
	if (arch && arch !== 'amd64') {
		const fetched = listFetchedKernels(fetchedDir).filter((k) => k.arch === arch && k.usable);
		const k = fetched.find((x) => x.features?.pageSize === '4K') ?? fetched[0];
		if (!k) throw Object.assign(new Error(`no ${arch} kernel fetched: hybridmem kernels --fetch trixie:${arch} (or trixie:${arch}-16k)`), { code: 'ERR_NO_KERNEL' });
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
