// KexDevice: an open /dev/devKex (or any mmap-able character device such as
// /dev/zero) with the module's ioctls and map(). Module-specific calls on
// another device fail with the kernel's ENOTTY, as a normal Error.
import { fstatSync } from 'node:fs';

import { loadBinding, type NativeBinding, type NativeGroup, type NativeInfo, type NativeStats } from './binding.js';
import { callNative, codedError, deviceClosed, invalidArgType, invalidArgValue, outOfRange, type CodedError } from './errors.js';
import { Mapping } from './mapping.js';
import { checkMapRequest, type MapOptions } from './protection.js';
import { validateBoolean, validateIndex, validateInteger, validateOneOf, validateOptions, validateString } from './validate.js';

export const DEFAULT_DEVICE_PATH = '/dev/devKex';

/** The module's map_mode names, in the order of enum hybridmem_map_mode. */
export const MAP_MODES = ['remap_pfn', 'insert_page', 'insert_pages', 'remap_contig', 'fault', 'mixed', 'free_after_map', 'leak_on_error'] as const;
export type MapMode = (typeof MAP_MODES)[number];

export interface OpenOptions {
	/** Open O_RDONLY instead of O_RDWR (maps then need prot 'r'). */
	readOnly?: boolean;
}

/**
 * HYBRIDMEM_IOC_GET_INFO: the module's settings. Numbers, all of them: these
 * are sizes and page indices you compute map lengths from (maxPages * pageSize),
 * and info() refuses (ERR_HYBRIDMEM_UAPI) a value beyond Number.MAX_SAFE_INTEGER
 * rather than round it.
 */
export interface DeviceInfo {
	version: number;
	pageSize: number;
	mapMode: MapMode;
	zapAfterMap: boolean;
	/** Page index the module's mmap fails at; -1 = off. */
	failAt: number;
	allowBug: boolean;
	/** Most bytes one mmap may have (module parameter max_map_bytes). */
	maxMapBytes: number;
	/** Most bytes all mappings may hold together (max_total_bytes). */
	maxTotalBytes: number;
	/** maxMapBytes in whole pages. */
	maxPages: number;
	/** maxTotalBytes in whole pages. */
	maxTotalPages: number;
	/** Per-page log lines one operation prints at most (log_pages). */
	logPages: number;
	/** Log lines one open file may cause, all operations together (log_budget). */
	logBudget: number;
}

/**
 * HYBRIDMEM_IOC_GET_STATS: module-wide event counters, bigints (the addon's
 * NativeStats): the kernel's u64 counters, compared by difference
 * (after.maps - before.maps === 1n) and never rounded.
 */
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
	/** The addon's list of this device's unclosed mappings (it holds none of them alive). */
	readonly #group: NativeGroup;
	/** Running fill/verify calls of this device's mappings. */
	readonly #pending = new Set<Promise<unknown>>();

	private constructor(binding: NativeBinding, fd: number, path: string, readOnly: boolean) {
		this.#binding = binding;
		this.#fd = fd;
		this.path = path;
		this.readOnly = readOnly;
		this.#group = binding.createGroup();
	}

	/** @internal Used by openDevice(); not part of the API. */
	static fromFd(binding: NativeBinding, fd: number, path: string, readOnly: boolean): KexDevice {
		return new KexDevice(binding, fd, path, readOnly);
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
		// Every argument is checked before the first ioctl.
		if (options === undefined) throw invalidArgType('options', 'of type object', options);
		const opts = validateOptions(options);
		const mode = opts.mode === undefined ? undefined : validateOneOf(opts.mode, 'options.mode', MAP_MODES);
		if (opts.zapAfterMap !== undefined) validateBoolean(opts.zapAfterMap, 'options.zapAfterMap');
		const failAtIn = opts.failAt === null ? -1 : opts.failAt === undefined ? undefined : validateInteger(opts.failAt, 'options.failAt', -1, 0x7fffffff);
		const fd = this.#live('set the mode');
		const current = mode === undefined || opts.zapAfterMap === undefined || failAtIn === undefined ? this.info() : undefined;
		const mapMode = MAP_MODES.indexOf(mode ?? current!.mapMode);
		const failAt = failAtIn ?? current!.failAt;
		const zapAfterMap = opts.zapAfterMap ?? current!.zapAfterMap;
		callNative(() => this.#binding.setMode(fd, { mapMode, zapAfterMap: zapAfterMap ? 1 : 0, failAt }), this.path);
		return this.info();
	}

	/** mmap()s length bytes of the device (a page multiple). */
	map(length: number | bigint, options?: MapOptions): Mapping {
		const request = checkMapRequest(this.#binding, length, options);
		const fd = this.#live('map');
		if (this.readOnly && request.prot === 'rw') {
			throw codedError('ERR_DEVICE_READ_ONLY', `cannot map ${this.path} with prot 'rw': the device was opened read-only`);
		}
		const native = callNative(() => this.#binding.mmap(fd, request.length, request.protBits, request.shared, request.offset, this.#group), this.path);
		return Mapping.fromNative(
			native,
			{ path: this.path, pageSize: this.#binding.pageSize, prot: request.prot, shared: request.shared, offset: request.offset },
			this.#pending,
		);
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
		callNative(() => this.#binding.closeGroup(this.#group), this.path);
		const fd = this.#fd;
		this.#fd = -1;
		callNative(() => this.#binding.close(fd), this.path);
	}

	[Symbol.dispose](): void {
		this.close();
	}

	/** Waits for running fill/verify calls of its mappings, then closes. */
	async [Symbol.asyncDispose](): Promise<void> {
		while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
		this.close();
	}

	#live(operation: string): number {
		if (this.#fd < 0) throw deviceClosed(operation, this.path);
		return this.#fd;
	}

	#rangeIoctl(name: 'zap' | 'remap', target: RangeTarget): RangeResult {
		const { address, length } = resolveRange(target, this.#binding.pageSize);
		const fd = this.#live(name);
		const call = name === 'zap' ? this.#binding.zap : this.#binding.remap;
		const result = callNative(() => call(fd, address, length), this.path);
		return { pages: result.pages, flags: result.flags, noop: (result.flags & this.#binding.constants.RANGE_NOOP) !== 0 };
	}
}

function resolveRange(target: RangeTarget, pageSize: number): { address: bigint; length: number } {
	if (target instanceof Mapping) return rangeOf(target, 0, target.length, pageSize, 'target');
	if (typeof target !== 'object' || target === null || Array.isArray(target)) {
		throw invalidArgType('target', 'an instance of Mapping or of type object', target);
	}
	if ('mapping' in target) {
		if (!(target.mapping instanceof Mapping)) throw invalidArgType('target.mapping', 'an instance of Mapping', target.mapping);
		const offset = target.offset === undefined ? 0 : validateIndex(target.offset, 'target.offset');
		if (offset > target.mapping.length) throw outOfRange('target.offset', `<= ${target.mapping.length} (the mapping's length)`, target.offset);
		const length = target.length === undefined ? target.mapping.length - offset : validateIndex(target.length, 'target.length');
		return rangeOf(target.mapping, offset, length, pageSize, 'target');
	}
	if (!('address' in target)) throw invalidArgValue('target', target, 'must be a Mapping, {mapping, offset?, length?} or {address, length}');
	if (typeof target.address !== 'bigint') throw invalidArgType('target.address', 'of type bigint', target.address);
	const length = validateIndex(target.length, 'target.length');
	if (target.address % BigInt(pageSize) !== 0n) throw outOfRange('target.address', `a multiple of the page size (${pageSize})`, target.address);
	if (length % pageSize !== 0) throw outOfRange('target.length', `a multiple of the page size (${pageSize})`, target.length);
	return { address: target.address, length };
}

function rangeOf(mapping: Mapping, offset: number, length: number, pageSize: number, where: string): { address: bigint; length: number } {
	if (offset % pageSize !== 0) throw outOfRange(`${where}.offset`, `a multiple of the page size (${pageSize})`, offset);
	if (length % pageSize !== 0) throw outOfRange(`${where}.length`, `a multiple of the page size (${pageSize})`, length);
	if (length > mapping.length - offset) {
		throw outOfRange(`${where}.length`, `<= ${mapping.length - offset} (the mapping's ${mapping.length} bytes from offset ${offset})`, length);
	}
	if (mapping.closed) throw codedError('ERR_MAPPING_CLOSED', 'cannot act on the range: the mapping was unmapped');
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
		maxMapBytes: safeNumber(raw.maxMapBytes, 'max_map_bytes'),
		maxTotalBytes: safeNumber(raw.maxTotalBytes, 'max_total_bytes'),
		maxPages: Math.floor(safeNumber(raw.maxMapBytes, 'max_map_bytes') / raw.pageSize),
		maxTotalPages: Math.floor(safeNumber(raw.maxTotalBytes, 'max_total_bytes') / raw.pageSize),
		logPages: raw.logPages,
		logBudget: raw.logBudget,
	};
}

function safeNumber(value: bigint, field: string): number {
	if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw codedError('ERR_HYBRIDMEM_UAPI', `the module reports ${field} = ${value}, more than a number holds exactly`);
	return Number(value);
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
export function openDevice(path: string = DEFAULT_DEVICE_PATH, options?: OpenOptions): KexDevice {
	validateString(path, 'path');
	if (path === '' || path.includes('\0')) throw invalidArgValue('path', path, 'must be a non-empty string without null bytes');
	const opts = validateOptions(options);
	if (opts.readOnly !== undefined) validateBoolean(opts.readOnly, 'options.readOnly');
	const binding = loadBinding();
	const readOnly = opts.readOnly === true;
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
	return KexDevice.fromFd(binding, fd, path, readOnly);
}
