// The N-API addon outside a development checkout: where the package's
// prebuilt binaries live (prebuildify's layout, prebuilds/<platform>-<arch>/),
// which one fits this process, and the source build that stands in when none
// does.  The source build compiles native/*.cc straight with g++ into the
// per-user cache (never into the package directory, which may be read-only
// or replaced by the next install); scripts/prebuild.mjs uses the same
// compile for the binaries shipped in the tarball.
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { cachePath, hashKey } from '../vm/cache.js';
import { PACKAGE_ROOT } from './paths.js';

/** The architectures a prebuilt binary ships for, by Node's process.arch name. */
export const PREBUILT_ARCHES = ['x64', 'arm64'] as const;
export type PrebuiltArch = (typeof PREBUILT_ARCHES)[number];

/** GNU triplet prefixes of the compilers that target each architecture. */
const CROSS_PREFIX: Record<PrebuiltArch, string> = { x64: 'x86_64-linux-gnu-', arm64: 'aarch64-linux-gnu-' };
/** Debian's package for each cross compiler (the native one comes with build-essential). */
export const CROSS_PACKAGE: Record<PrebuiltArch, string> = { x64: 'g++-x86-64-linux-gnu', arm64: 'g++-aarch64-linux-gnu' };

/** The addon's file name inside prebuilds/<platform>-<arch>/: prebuildify's tags (N-API, glibc). */
export const PREBUILD_NAME = 'hybridmem.napi.glibc.node';

export function prebuildFile(arch: string = process.arch, platform: string = process.platform, root = PACKAGE_ROOT): string {
	return path.join(root, 'prebuilds', `${platform}-${arch}`, PREBUILD_NAME);
}

/** 'glibc' or 'musl' (or undefined off Linux): a glibc prebuild does not load under musl. */
export function hostLibc(): 'glibc' | 'musl' | undefined {
	if (process.platform !== 'linux') return undefined;
	const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
	return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The shipped prebuild that fits this process, if any. */
export function fittingPrebuild(root = PACKAGE_ROOT): string | undefined {
	if (hostLibc() !== 'glibc') return undefined;
	const file = prebuildFile(process.arch, process.platform, root);
	return existsSync(file) ? file : undefined;
}

/** The addon's sources, in a fixed order: native/*.cc and *.h, and the uapi header it includes. */
export function addonSources(root = PACKAGE_ROOT): { units: string[]; all: string[] } {
	const dir = path.join(root, 'native');
	const names = readdirSync(dir).sort();
	const units = names.filter((n) => n.endsWith('.cc')).map((n) => path.join(dir, n));
	const all = [...names.filter((n) => /\.(cc|h)$/.test(n)).map((n) => path.join(dir, n)), path.join(root, 'kmod', 'hybridmem_uapi.h')];
	return { units, all };
}

/** Where the source build of this package's addon goes: keyed by the sources' content and the architecture. */
export function cachedAddonFile(root = PACKAGE_ROOT, arch: string = process.arch): string {
	const { all } = addonSources(root);
	const key = hashKey(arch, ...all.flatMap((f) => [path.basename(f), existsSync(f) ? readFileSync(f) : '']));
	return path.join(cachePath(), 'addon', `${process.platform}-${arch}-${key}`, 'hybridmem.node');
}

/** The directory holding node_api.h: Node's own headers, else node-api-headers if installed. */
export function nodeApiIncludeDir(): string | undefined {
	const candidates = [
		process.env.npm_config_nodedir ? path.join(process.env.npm_config_nodedir, 'include', 'node') : '',
		path.join(path.dirname(process.execPath), '..', 'include', 'node'),
		'/usr/include/node',
	];
	try {
		candidates.push(path.join(path.dirname(createRequire(path.join(PACKAGE_ROOT, 'package.json')).resolve('node-api-headers/package.json')), 'include'));
	} catch {
		/* not installed: a development dependency only */
	}
	return candidates.find((d) => d && existsSync(path.join(d, 'node_api.h')));
}

function nodeAddonApiDir(): string {
	const req = createRequire(path.join(PACKAGE_ROOT, 'package.json'));
	return path.dirname(req.resolve('node-addon-api/package.json'));
}

/** The C++ compiler for `arch`: the plain g++ when it is this machine's, else the cross compiler. */
export function compilerFor(arch: PrebuiltArch): string {
	return arch === process.arch ? 'g++' : `${CROSS_PREFIX[arch]}g++`;
}

export class AddonBuildError extends Error {
	readonly code = 'ERR_HYBRIDMEM_ADDON_BUILD';
	constructor(message: string) {
		super(message);
		this.name = 'AddonBuildError';
	}
}

/**
 * Compiles the addon for `arch` into `out`: the same flags as binding.gyp
 * (C++17, exceptions, -O3, -z nodelete).  Translation units compile in
 * parallel; the file appears atomically, so a reader never loads half of it.
 */
export async function compileAddon(opts: { out: string; arch?: PrebuiltArch; root?: string; fixHint?: string }): Promise<string> {
	const arch = opts.arch ?? (process.arch as PrebuiltArch);
	const root = opts.root ?? PACKAGE_ROOT;
	const fix = opts.fixHint ?? 'hybridmem bootstrap';
	const cxx = compilerFor(arch);
	const include = nodeApiIncludeDir();
	if (!include) throw new AddonBuildError(`Node's headers (node_api.h) not found next to ${process.execPath} or in /usr/include/node: run \`${fix}\` (it installs them)`);
	const flags = [
		'-std=c++17', '-fPIC', '-fexceptions', '-O3', '-Wall', '-Wextra', '-fvisibility=hidden',
		'-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DBUILDING_NODE_EXTENSION',
		'-I', include, '-I', nodeAddonApiDir(), '-I', path.join(root, 'kmod'),
	];
	const work = `${opts.out}.${process.pid}.d`;
	rmSync(work, { recursive: true, force: true });
	mkdirSync(work, { recursive: true });
	const run = async (args: string[]) => {
		try {
			const r = await execa(cxx, args, { reject: false, all: true });
			if (r.exitCode !== 0) throw new AddonBuildError(`${cxx} failed building the addon:\n${(r.all ?? '').split('\n').slice(-30).join('\n')}`);
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code === 'ENOENT')
				throw new AddonBuildError(`${cxx} not found: the addon for ${arch} cannot be compiled; run \`${fix}\` (it installs the compiler)`);
			throw err;
		}
	};
	try {
		const { units } = addonSources(root);
		const objects = units.map((u) => path.join(work, `${path.basename(u, '.cc')}.o`));
		await Promise.all(units.map((u, i) => run([...flags, '-c', u, '-o', objects[i]!])));
		const linked = path.join(work, 'hybridmem.node');
		await run(['-shared', '-o', linked, ...objects, '-Wl,-z,nodelete', '-Wl,-s']);
		mkdirSync(path.dirname(opts.out), { recursive: true });
		renameSync(linked, opts.out);
		return opts.out;
	} finally {
		rmSync(work, { recursive: true, force: true });
	}
}

/** Machine of an ELF file (e_machine): 62 x86-64, 183 aarch64. */
export function elfMachine(file: string): number {
	const head = readFileSync(file).subarray(0, 20);
	if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
	return head.readUInt16LE(18);
}

export const ELF_MACHINE: Record<PrebuiltArch, number> = { x64: 62, arm64: 183 };
