// Loads the native addon (a development build by node-gyp or cmake-js, the
// package's prebuilt binary, or a source build in the per-user cache) and
// describes its surface. Everything above this file talks to
// the kernel only through these functions.
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedAddonFile, fittingPrebuild, hostLibc } from '../setup/addon.js';

export interface NativeRegionOptions {
	pattern: number;
	seed: bigint;
	value: number;
	offset: number;
	length: number;
	maxMismatches?: number;
}

export interface NativeFillResult {
	bytes: number;
	faultingPages: number[];
	ns: number;
}

export interface NativeMismatch {
	offset: number;
	expected: number | bigint;
	actual: number | bigint;
}

export interface NativeVerifyResult extends NativeFillResult {
	mismatches: NativeMismatch[];
	mismatchCount: number;
	unit: 1 | 8;
}

export interface NativeMapping {
	readonly buffer: ArrayBuffer | undefined;
	readonly address: bigint;
	readonly length: number;
	readonly closed: boolean;
	readonly busy: boolean;
	unmap(): boolean;
	fillSync(options: NativeRegionOptions): NativeFillResult;
	verifySync(options: NativeRegionOptions): NativeVerifyResult;
	fillAsync(options: NativeRegionOptions): Promise<NativeFillResult>;
	verifyAsync(options: NativeRegionOptions): Promise<NativeVerifyResult>;
	/** Page states: 0 absent, 1 present, 2 faulting. */
	probe(options?: { touch?: boolean; offset?: number; length?: number }): Uint8Array;
}

/** An opaque list of a device's unclosed mappings (binding.createGroup()). */
export interface NativeGroup {
	readonly __nativeGroup?: never;
}

export interface NativeLiveMappings {
	/** Regions mapped, or still reserved for a live buffer of an unmapped one, in this process. */
	live: number;
	/** mmap() refuses with ERR_HYBRIDMEM_TOO_MANY_MAPPINGS at this many. */
	limit: number;
	maxMapCount: number;
}

export interface NativeInfo {
	version: number;
	pageSize: number;
	mapMode: number;
	zapAfterMap: number;
	failAt: number;
	allowBug: number;
	maxMapBytes: bigint;
	maxTotalBytes: bigint;
	logPages: number;
	logBudget: number;
}

/**
 * Module-wide event counters: bigints, all of them (the kernel's u64
 * counters only grow and are compared by difference). Sizes and limits in
 * NativeInfo are bigints too, and DeviceInfo turns them into numbers
 * (checked exact), since map lengths are computed from them.
 */
export interface NativeStats {
	livePages: bigint;
	liveMappings: bigint;
	maps: bigint;
	mapFailures: bigint;
	zaps: bigint;
	faults: bigint;
	remaps: bigint;
	frees: bigint;
}

export interface NativeRangeResult {
	pages: number;
	flags: number;
}

/** io_uring_setup(2)'s answer: the fd, ring sizes and where each region is mapped. */
export interface NativeIoUring {
	fd: number;
	sqEntries: number;
	cqEntries: number;
	features: number;
	/** sq_off.array and cq_off.cqes: the ring sizes are these plus the entries. */
	sqArray: number;
	cqCqes: number;
	sqeSize: number;
	cqeSize: number;
	offSqRing: bigint;
	offCqRing: bigint;
	offSqes: bigint;
}

export interface NativeBinding {
	open(path: string, flags?: number): number;
	close(fd: number): void;
	memfd(name?: string): number;
	ftruncate(fd: number, size: number | bigint): void;
	mmap(fd: number, length: number | bigint, prot: number, shared: boolean, offset?: number | bigint, group?: NativeGroup | null): NativeMapping;
	createGroup(): NativeGroup;
	/** Unmaps every unclosed mapping of the group; EBUSY (nothing changed) while one is busy. Returns how many. */
	closeGroup(group: NativeGroup): number;
	liveMappings(): NativeLiveMappings;
	getInfo(fd: number): NativeInfo;
	setMode(fd: number, mode: { mapMode: number; zapAfterMap: number; failAt: number }): void;
	getStats(fd: number): NativeStats;
	zap(fd: number, addr: bigint, length: number | bigint): NativeRangeResult;
	remap(fd: number, addr: bigint, length: number | bigint): NativeRangeResult;
	/** ioctl with any command and argument address (bad-input checks: ENOTTY, EFAULT). */
	ioctlRaw(fd: number, request: number, arg: bigint): number;
	/** mremap() growing in place; a driver's VM_DONTEXPAND must refuse it. */
	mremapGrow(address: bigint, oldLength: number, newLength: number): void;
	/** finit_module(2) of the file with these parameters (the VM runner's guests load the module without spawning insmod). */
	loadModule(path: string, params: string): void;
	/** delete_module(2), O_NONBLOCK. */
	unloadModule(name: string): void;
	/** mknod(2) of a character device with exactly `mode`. */
	mknodChar(path: string, mode: number, major: number, minor: number): void;
	/** fds of in-tree mmap providers beyond open() (native/fdsources.cc). */
	packetRing(options: { tx?: boolean; blockSize: number; blockCount: number; frameSize: number }): number;
	ioUringSetup(entries: number): NativeIoUring;
	perfEventOpen(options: { type: number; config: bigint }): number;
	sealedMemfd(name: string, size: number | bigint, seals: number): number;
	readonly fdConstants: {
		F_SEAL_SEAL: number;
		F_SEAL_SHRINK: number;
		F_SEAL_GROW: number;
		F_SEAL_WRITE: number;
		PERF_TYPE_SOFTWARE: number;
		PERF_COUNT_SW_DUMMY: number;
		IORING_FEAT_SINGLE_MMAP: number;
	};
	readonly pageSize: number;
	readonly constants: {
		PROT_NONE: number;
		PROT_READ: number;
		PROT_WRITE: number;
		O_RDONLY: number;
		O_WRONLY: number;
		O_RDWR: number;
		UAPI_VERSION: number;
		RANGE_NOOP: number;
		IOC_GET_INFO: number;
		IOC_MAGIC: number;
	};
}

// src/device/ and dist/device/ both sit two levels below the package root.
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where the addon is looked for, in order, the way node-gyp-build does it:
 * HYBRIDMEM_ADDON, a development build in build/Release or build/Debug, the
 * package's prebuilt binary for this platform and architecture
 * (prebuilds/<platform>-<arch>/, prebuildify's layout), then the source build
 * `hybridmem build` leaves in the per-user cache when no prebuild fits.
 */
export function addonCandidates(): string[] {
	const fromEnv = process.env.HYBRIDMEM_ADDON;
	const prebuilt = fittingPrebuild(packageRoot);
	let cachedBuild: string | undefined;
	try {
		cachedBuild = cachedAddonFile(packageRoot);
	} catch {
		/* no native/ sources shipped or no cache directory: nothing built there */
	}
	return [
		...(fromEnv ? [resolve(fromEnv)] : []),
		// A development build is for the machine it was made on: an arm64 guest sharing the checkout skips the host's amd64 one.
		...[join(packageRoot, 'build', 'Release', 'hybridmem.node'), join(packageRoot, 'build', 'Debug', 'hybridmem.node')].filter(forThisArch),
		...(prebuilt ? [prebuilt] : []),
		...(cachedBuild ? [cachedBuild] : []),
	];
}

/** ELF e_machine of each process.arch a build can be for. */
const ELF_MACHINES: Record<string, number> = { x64: 62, arm64: 183 };

/** False when `file` is an ELF object for another architecture than this process's; true when it is not there or cannot tell. */
function forThisArch(file: string): boolean {
	const want = ELF_MACHINES[process.arch];
	if (want === undefined) return true;
	let fd: number | undefined;
	try {
		fd = openSync(file, 'r');
		const head = Buffer.alloc(20);
		if (readSync(fd, head, 0, 20, 0) < 20 || head.readUInt32BE(0) !== 0x7f454c46) return true;
		return head.readUInt16LE(18) === want;
	} catch {
		return true;
	} finally {
		if (fd !== undefined) closeSync(fd);
	}
}

/** The addon file loadBinding() would load, or undefined when there is none. */
export function findAddon(): string | undefined {
	return addonCandidates().find((file) => existsSync(file));
}

let cached: NativeBinding | undefined;

export function loadBinding(): NativeBinding {
	if (cached) return cached;
	const found = findAddon();
	if (!found) {
		const error = new Error(
			`hybridmem's native addon is missing: no prebuilt binary for ${process.platform}-${process.arch}${hostLibc() === 'musl' ? ' (musl)' : ''} ` +
				`ships in this package and none was built from source; run \`npx hybridmem build\` to compile it ` +
				'(it needs g++ and Node\'s headers: `npx hybridmem bootstrap` installs them on Debian)',
		) as Error & { code: string };
		error.code = 'ERR_HYBRIDMEM_ADDON_MISSING';
		throw error;
	}
	const require = createRequire(import.meta.url);
	cached = require(found) as NativeBinding;
	return cached;
}
