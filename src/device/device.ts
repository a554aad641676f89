// KexDevice: an open /dev/devKex (or any mmap-able character device such as
// /dev/zero) with the module's ioctls and map(). Module-specific calls on
// another device fail with the kernel's ENOTTY, as a normal Error.
import { fstatSync } from 'node:fs';

import { loadBinding, type NativeBinding, type NativeInfo, type NativeStats } from './binding.js';
import { callNative, codedError, deviceClosed, invalidArgument, outOfRange, systemError, type CodedError } from './errors.js';
import { Mapping, toIndex } from './mapping.js';
import { checkMapRequest, type MapOptions } from './protection.js';

export const DEFAULT_DEVICE_PATH = '/dev/devKex';

/** The module's map_mode names, in the order of enum hybridmem_map_mode. */
export const MAP_MODES = ['remap_pfn', 'insert_page', 'insert_pages', 'remap_contig', 'fault', 'mixed', 'free_after_map', 'leak_on_error'] as const;
export type MapMode = (typeof MAP_MODES)[number];

export interface OpenOptions {
	/** Open O_RDONLY instead of O_RDWR (maps then need prot 'r'). */
	readOnly?: boolean;
}

export interface DeviceInfo {
	version: number;
	pageSize: number;
	mapMode: MapMode;
	zapAfterMap: boolean;
	/** Page index the module's mmap fails at; -1 = off. */
	failAt: number;
	allowBug: boolean;
	maxPages: number;
	maxTotalPages: number;
	logPages: number;
}

/** HYBRIDMEM_IOC_GET_STATS as the addon returns it: module-wide counters, bigints. */
export type DeviceStats = NativeStats;

export interface ModeOptions {
	mode?: MapMode;
	zapAfterMap?: boolean;
	/** Page index to fail at; -1 or null = off. */
	failAt?: number | null;
}

/** A range of a live mapping of this device: a whole Mapping, part of one, or raw address + length. */
export type RangeTarget = Mapping | { mapping: Mapping; offset?: number | bigint; length?: number | bigint } | { address: bigint; length: number | bigint };

export interface RangeResult {
	/** Pages the module acted on. */
	pages: number;
	/** ZAP only: the vma is not VM_PFNMAP, so zap_vma_ptes() did nothing. */
	noop: boolean;
	flags: number;
}

export class KexDevice implements Disposable, AsyncDisposable {
	readonly path: string;
	readonly readOnly: boolean;
	#fd: number;
	readonly #binding: NativeBinding;
	readonly #mappings = new Set<WeakRef<Mapping>>();

	/** @internal Use openDevice(). */
	constructor(binding: NativeBinding, fd: number, path: string, readOnly: boolean) {
		this.#binding = binding;
		this.#fd = fd;
		this.path = path;
		this.readOnly = readOnly;
	}

	get closed(): boolean {
		return this.#fd < 0;
	}

	get fd(): number {
		return this.#live('use the fd');
	}

	get pageSize(): number {
		return this.#binding.pageSize;
	}

	/** HYBRIDMEM_IOC_GET_INFO: the module's settings for this fd. */
	info(): DeviceInfo {
		const fd = this.#live('read info');
		return toInfo(callNative(() => this.#binding.getInfo(fd), this.path));
	}

	/** HYBRIDMEM_IOC_GET_STATS: module-wide counters. */
	stats(): DeviceStats {
		const fd = this.#live('read stats');
		return callNative(() => this.#binding.getStats(fd), this.path);
	}

	/** HYBRIDMEM_IOC_SET_MODE for later mmaps of this fd; fields left out keep their current value. */
	setMode(options: ModeOptions): DeviceInfo {
		const fd = this.#live('set the mode');
		const current = this.info();
		const mode = options.mode ?? current.mapMode;
		const mapMode = MAP_MODES.indexOf(mode);
		if (mapMode < 0) throw invalidArgument('mode', `must be one of ${MAP_MODES.map((m) => `'${m}'`).join(', ')}; received ${String(mode)}`);
		const failAt = options.failAt === null ? -1 : (options.failAt ?? current.failAt);
		if (!Number.isInteger(failAt) || failAt < -1 || failAt > 0x7fffffff) {
			throw outOfRange('failAt', `must be a page index, -1 or null; received ${failAt}`);
		}
		const zapAfterMap = options.zapAfterMap ?? current.zapAfterMap;
		callNative(() => this.#binding.setMode(fd, { mapMode, zapAfterMap: zapAfterMap ? 1 : 0, failAt }), this.path);
		return this.info();
	}

	/** mmap()s length bytes of the device (a page multiple). */
	map(length: number | bigint, options: MapOptions = {}): Mapping {
		const fd = this.#live('map');
		const request = checkMapRequest(this.#binding, length, options);
		if (this.readOnly && request.prot === 'rw') {
			throw codedError('ERR_DEVICE_READ_ONLY', `cannot map ${this.path} with prot 'rw': the device was opened read-only`);
		}
		const native = callNative(() => this.#binding.mmap(fd, request.length, request.protBits, request.shared, request.offset), this.path);
		for (const ref of this.#mappings) if (ref.deref() === undefined) this.#mappings.delete(ref);
		// The device tracks its mappings weakly: one dropped without unmap can still be collected.
		const tracked: { ref?: WeakRef<Mapping> } = {};
		const mapping = new Mapping(
			native,
			{ path: this.path, pageSize: this.#binding.pageSize, prot: request.prot, shared: request.shared, offset: request.offset },
			() => {
				if (tracked.ref) this.#mappings.delete(tracked.ref);
			},
		);
		tracked.ref = new WeakRef(mapping);
		this.#mappings.add(tracked.ref);
		return mapping;
	}

	/** HYBRIDMEM_IOC_ZAP: the kernel takes the range's pages away from the mapping (zap_vma_ptes). */
	zap(target: RangeTarget): RangeResult {
		return this.#rangeIoctl('zap', target);
	}

	/** HYBRIDMEM_IOC_REMAP: the kernel maps fresh pages into the range again. */
	remap(target: RangeTarget): RangeResult {
		return this.#rangeIoctl('remap', target);
	}

	/**
	 * Unmaps the mappings made through this device, then closes the fd.
	 * Throws EBUSY (and closes nothing) while one of them runs an async fill/verify.
	 */
	close(): void {
		if (this.#fd < 0) return;
		const live = [...this.#mappings].map((ref) => ref.deref()).filter((m): m is Mapping => m !== undefined && !m.closed);
		if (live.some((m) => m.busy)) throw systemError(-16, 'close', this.path);
		for (const mapping of live) mapping.unmap();
		const fd = this.#fd;
		this.#fd = -1;
		callNative(() => this.#binding.close(fd), this.path);
	}

	[Symbol.dispose](): void {
		this.close();
	}

	/** Waits for running fill/verify calls of its mappings, then closes. */
	async [Symbol.asyncDispose](): Promise<void> {
		for (const ref of this.#mappings) await ref.deref()?.settled();
		this.close();
	}

	#live(operation: string): number {
		if (this.#fd < 0) throw deviceClosed(operation, this.path);
		return this.#fd;
	}

	#rangeIoctl(name: 'zap' | 'remap', target: RangeTarget): RangeResult {
		const fd = this.#live(name);
		const { address, length } = resolveRange(target, this.#binding.pageSize);
		const call = name === 'zap' ? this.#binding.zap : this.#binding.remap;
		const result = callNative(() => call(fd, address, length), this.path);
		return { pages: result.pages, flags: result.flags, noop: (result.flags & this.#binding.constants.RANGE_NOOP) !== 0 };
	}
}

function resolveRange(target: RangeTarget, pageSize: number): { address: bigint; length: number } {
	if (target instanceof Mapping) return rangeOf(target, 0, target.length, pageSize);
	if ('mapping' in target) {
		const offset = toIndex('offset', target.offset ?? 0);
		const length = toIndex('length', target.length ?? target.mapping.length - offset);
		return rangeOf(target.mapping, offset, length, pageSize);
	}
	if (typeof target.address !== 'bigint') throw invalidArgument('address', 'must be a bigint');
	const length = toIndex('length', target.length);
	if (target.address % BigInt(pageSize) !== 0n || length % pageSize !== 0) {
		throw outOfRange('address', `and length must be page aligned (${pageSize})`);
	}
	return { address: target.address, length };
}

function rangeOf(mapping: Mapping, offset: number, length: number, pageSize: number): { address: bigint; length: number } {
	if (mapping.closed) throw codedError('ERR_MAPPING_CLOSED', 'cannot act on the range: the mapping was unmapped');
	if (offset % pageSize !== 0 || length % pageSize !== 0) throw outOfRange('offset', `and length must be multiples of the page size (${pageSize})`);
	if (offset > mapping.length || length > mapping.length - offset) throw outOfRange('length', `with offset ${offset} reaches past the mapping (${mapping.length} bytes)`);
	return { address: mapping.address + BigInt(offset), length };
}

function toInfo(raw: NativeInfo): DeviceInfo {
	const mapMode = MAP_MODES[raw.mapMode];
	if (mapMode === undefined) throw codedError('ERR_HYBRIDMEM_UAPI', `the module reports unknown map_mode ${raw.mapMode}; the addon and module disagree on the uapi`);
	return {
		version: raw.version,
		pageSize: raw.pageSize,
		mapMode,
		zapAfterMap: raw.zapAfterMap !== 0,
		failAt: raw.failAt,
		allowBug: raw.allowBug !== 0,
		maxPages: Number(raw.maxPages),
		maxTotalPages: Number(raw.maxTotalPages),
		logPages: raw.logPages,
	};
}

function notCharDevice(path: string, kind: string): CodedError {
	const error = codedError(
		'ERR_NOT_CHAR_DEVICE',
		`${path} is ${kind}, not a character device; openDevice() needs the module's node (load hybridmem_test.ko, then ` +
			`mknod ${DEFAULT_DEVICE_PATH} c <major of "kex" in /proc/devices> 0) or another mmap-able device such as /dev/zero`,
	) as CodedError & { path: string };
	error.path = path;
	return error;
}

/** Opens a character device (default /dev/devKex) for mapping and the module's ioctls. */
export function openDevice(path: string = DEFAULT_DEVICE_PATH, options: OpenOptions = {}): KexDevice {
	if (typeof path !== 'string' || path === '') throw invalidArgument('path', `must be a non-empty string; received ${String(path)}`);
	const binding = loadBinding();
	const readOnly = options.readOnly === true;
	const flags = readOnly ? binding.constants.O_RDONLY : binding.constants.O_RDWR;
	const fd = callNative(() => binding.open(path, flags), path);
	try {
		const stat = fstatSync(fd);
		if (!stat.isCharacterDevice()) {
			const kind = stat.isFile() ? 'a regular file' : stat.isDirectory() ? 'a directory' : stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a block device';
			throw notCharDevice(path, kind);
		}
	} catch (error) {
		binding.close(fd);
		throw error;
	}
	return new KexDevice(binding, fd, path, readOnly);
}
