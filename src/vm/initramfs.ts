// Builds the guest's initramfs: busybox-static, the init script, and the
// chosen kernel's own modules for virtio, 9p and overlayfs, decompressed and
// numbered in dependency order.  The result is cached under a key made of
// everything that goes into it, so a kernel update or a new init script
// rebuilds it and nothing else does.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cacheDir, cached, hashKey, writeAtomic } from './cache.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { APPLETS, FSTABS, GUEST_INIT, INIT_DIRS } from './guest-init.js';
import type { KernelInfo } from './kernels.js';

/**
 * What the guest needs on either machine (virtio over MMIO for microvm, over
 * PCI for q35); their dependencies are added by modinfo.
 */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_pci', 'virtio_console', '9pnet_virtio', '9p', 'overlay'];

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

export interface ResolvedModule {
	name: string;
	/** Path of the .ko, .ko.xz, .ko.zst or .ko.gz file. */
	file: string;
	/**
	 * 0 for a module whose dependencies are all built in, else one more than
	 * its deepest dependency: the guest loads each level's modules in
	 * parallel, which a second vCPU turns into about 50 ms less boot.
	 */
	level: number;
}

export function findBusybox(): string {
	for (const p of BUSYBOX_CANDIDATES) if (existsSync(p)) return p;
	throw Object.assign(new Error('busybox not found: run `hybridmem bootstrap` (it installs busybox-static)'), {
		code: 'ERR_NO_BUSYBOX',
	});
}

/** A tool the initramfs needs is not on PATH (a cold cache builds it; a warm one never runs these). */
function noTool(bin: string, pkg: string): Error {
	return Object.assign(new Error(`${bin} not found on PATH: run \`hybridmem bootstrap\` (it installs ${pkg})`), { code: 'ERR_NO_TOOL' });
}

async function modinfo(version: string, field: string, name: string, root?: string): Promise<string> {
	const { execa } = await import('execa'); // only on a cache miss: it takes 70 ms to load
	// A fetched kernel's modules live in its unpacked tree: -b makes that tree modinfo's root.
	const r = await execa('modinfo', [...(root ? ['-b', root] : []), '-k', version, '-F', field, name], { reject: false });
	if (r.code === 'ENOENT') throw noTool('modinfo', 'kmod');
	if (r.exitCode !== 0) throw new Error(`modinfo cannot find module ${name} for kernel ${version}: ${r.stderr.trim()}`);
	return r.stdout.trim();
}

/**
 * The modules to load for `wanted`, dependencies first, skipping modules
 * built into the kernel, each with its dependency level.
 */
export async function resolveModules(version: string, wanted = GUEST_MODULES, root?: string): Promise<ResolvedModule[]> {
	const order: ResolvedModule[] = [];
	// name -> level; -1 for a built-in, which every level may rely on.
	const levels = new Map<string, number>();
	const visit = async (name: string): Promise<number> => {
		const known = levels.get(name);
		if (known !== undefined) return known;
		const file = await modinfo(version, 'filename', name, root);
		if (file === '(builtin)' || file === '') {
			levels.set(name, -1);
			return -1;
		}
		const depends = (await modinfo(version, 'depends', name, root)).split(',').filter(Boolean);
		let level = 0;
		for (const d of depends) level = Math.max(level, (await visit(d)) + 1);
		levels.set(name, level);
		order.push({ name, file, level });
		return level;
	};
	for (const w of wanted) await visit(w);
	return order;
}

const DECOMPRESSORS: Record<string, string[]> = {
	'.xz': ['xz', '-dc'],
	'.zst': ['zstd', '-dcq'],
	'.gz': ['gzip', '-dc'],
};

/** A module file's bytes, decompressed: busybox insmod takes plain ELF only. */
export async function readModule(file: string): Promise<Buffer> {
	const cmd = DECOMPRESSORS[path.extname(file)];
	if (!cmd) return readFileSync(file);
	const [bin, ...args] = cmd as [string, ...string[]];
	const { execa } = await import('execa');
	const r = await execa(bin, [...args, file], { encoding: 'buffer', maxBuffer: 1 << 28, reject: false });
	if (r.code === 'ENOENT') throw noTool(bin, bin === 'xz' ? 'xz-utils' : bin);
	if (r.exitCode !== 0) throw new Error(`${bin} could not decompress ${file}: ${Buffer.from(r.stderr as Uint8Array).toString().trim()}`);
	return Buffer.from(r.stdout as Uint8Array);
}

function stamp(file: string): string {
	const st = statSync(file);
	return `${file}:${st.size}:${st.mtimeMs}`;
}

/**
 * What differs between guests of different architectures: the busybox
 * binary, the mount tables and the directories they mount on (an arm64
 * guest lays its own root over the host's, see arm64.ts).
 */
export interface InitramfsLayout {
	busybox: string;
	fstabs: Record<string, string>;
	dirs: string[];
}

/** Cache key: busybox, the init script, and the kernel's module index. */
export function initramfsKey(kernel: KernelInfo, busybox: string, fstabs = FSTABS, dirs = INIT_DIRS): string {
	const depFile = path.join(kernel.modulesDir, 'modules.dep');
	return hashKey(kernel.version, stamp(busybox), existsSync(depFile) ? stamp(depFile) : 'no-modules.dep', GUEST_INIT, JSON.stringify(fstabs), dirs.join(','), GUEST_MODULES.join(','), APPLETS.join(','));
}

export async function buildInitramfsImage(kernel: KernelInfo, busybox = findBusybox(), fstabs = FSTABS, dirs = INIT_DIRS): Promise<Buffer> {
	const modules = await resolveModules(kernel.version, GUEST_MODULES, kernel.root);
	const entries: CpioEntry[] = [
		...['bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules', ...dirs].map((name) => ({ type: 'dir' as const, name })),
		// The kernel opens /dev/console for init before anything is mounted.
		{ type: 'chardev', name: 'dev/console', major: 5, minor: 1 },
		{ type: 'file', name: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
		...APPLETS.map((a) => ({ type: 'symlink' as const, name: `bin/${a}`, target: 'busybox' })),
		{ type: 'file', name: 'init', data: Buffer.from(GUEST_INIT), mode: 0o755 },
		...Object.entries(fstabs).map(([file, text]) => ({ type: 'file' as const, name: file.slice(1), data: Buffer.from(text) })),
	];
	// Named LEVEL-NAME.ko: the init script loads one level at a time.
	for (const m of modules) entries.push({ type: 'file', name: `lib/modules/${m.level}-${m.name}.ko`, data: await readModule(m.file) });
	return writeCpio(entries);
}

/** Path of a cached initramfs for `kernel`, building it when missing or stale. */
export async function initramfsFor(kernel: KernelInfo, layout?: InitramfsLayout): Promise<string> {
	const busybox = layout?.busybox ?? findBusybox();
	const fstabs = layout?.fstabs ?? FSTABS;
	const dirs = layout?.dirs ?? INIT_DIRS;
	const file = path.join(cacheDir(), `initramfs-${kernel.version}-${initramfsKey(kernel, busybox, fstabs, dirs)}.cpio`);
	if (!cached(file)) writeAtomic(file, await buildInitramfsImage(kernel, busybox, fstabs, dirs));
	return file;
}
