// A Mapping: one mmap'ed region of a device (or memfd) with a Uint8Array over
// it, and fill/verify/probe that never crash node (faulting pages are
// reported, not raised). unmap() detaches the buffer before the address is
// returned to the kernel; afterwards every use throws ERR_MAPPING_CLOSED.
import type { NativeMapping, NativeRegionOptions } from './binding.js';
import { callNative, codedError, mappingClosed, outOfRange, withPath, type CodedError } from './errors.js';
import { resolvePattern, type PatternOptions, type ResolvedPattern } from './patterns.js';
import { vmFlagsAt } from './vmflags.js';

/** Regions at least this large are filled and verified on a worker thread. */
export const ASYNC_THRESHOLD = 4 * 1024 * 1024;

export type Protection = 'r' | 'rw' | 'none';

export interface RegionOptions extends PatternOptions {
	/** Byte offset of the region inside the mapping (default 0). */
	offset?: number | bigint;
	/** Bytes (default: to the end of the mapping). */
	length?: number | bigint;
}

export interface VerifyOptions extends RegionOptions {
	/** How many mismatches to report in detail (default 16); all are counted. */
	maxMismatches?: number;
}

export interface FillResult {
	/** Bytes written (faulting pages excluded). */
	bytes: number;
	/** Indices (from the start of the mapping) of pages that raised SIGBUS/SIGSEGV. */
	faultingPages: number[];
	ns: number;
}

export interface Mismatch {
	/** Byte offset inside the mapping. */
	offset: number;
	/** number for byte patterns, bigint (a 64-bit word) for word patterns. */
	expected: number | bigint;
	actual: number | bigint;
}

export interface VerifyResult extends FillResult {
	/** No mismatch and no faulting page. */
	ok: boolean;
	pattern: ResolvedPattern['name'];
	/** Bytes per compared unit: 1 (counter, constant) or 8 (random, address-tag). */
	unit: 1 | 8;
	mismatches: Mismatch[];
	mismatchCount: number;
}

export type PageState = 'present' | 'absent' | 'faulting';

export interface ProbeOptions {
	/** Give each non-resident page one guarded read: it becomes 'present' or 'faulting'. */
	touch?: boolean;
	offset?: number | bigint;
	length?: number | bigint;
}

export interface ProbeResult {
	/** One state per page of the probed range. */
	pages: PageState[];
	present: number;
	absent: number;
	faulting: number;
	touched: boolean;
}

export interface MappingDescription {
	path: string;
	pageSize: number;
	prot: Protection;
	shared: boolean;
	offset: bigint;
}

const STATES: readonly PageState[] = ['absent', 'present', 'faulting'];

export class Mapping implements Disposable, AsyncDisposable {
	readonly address: bigint;
	readonly length: number;
	readonly pageSize: number;
	readonly prot: Protection;
	readonly shared: boolean;
	/** Offset of the mapping in the device (mmap's last argument). */
	readonly fileOffset: bigint;
	readonly path: string;
	readonly #native: NativeMapping;
	readonly #pending = new Set<Promise<unknown>>();
	#bytes: Uint8Array | undefined;
	readonly #onUnmap: ((mapping: Mapping) => void) | undefined;

	/** @internal Created by KexDevice.map() or MemFile.map(). */
	constructor(native: NativeMapping, description: MappingDescription, onUnmap?: (mapping: Mapping) => void) {
		this.#native = native;
		this.address = native.address;
		this.length = native.length;
		this.pageSize = description.pageSize;
		this.prot = description.prot;
		this.shared = description.shared;
		this.fileOffset = description.offset;
		this.path = description.path;
		this.#onUnmap = onUnmap;
	}

	get closed(): boolean {
		return this.#native.closed;
	}

	/** True while an async fill/verify runs on a worker thread (unmap then fails with EBUSY). */
	get busy(): boolean {
		return this.#native.busy;
	}

	/** The mapped bytes. Views taken from it drop to length 0 on unmap. */
	get bytes(): Uint8Array {
		const buffer = this.#live('read bytes').buffer;
		if (!buffer) throw mappingClosed('read bytes');
		this.#bytes ??= new Uint8Array(buffer);
		return this.#bytes;
	}

	fillSync(options: RegionOptions = {}): FillResult {
		return this.#run('fill', options, false, (native, args) => native.fillSync(args));
	}

	verifySync(options: VerifyOptions = {}): VerifyResult {
		const pattern = resolvePattern(options);
		const raw = this.#run('verify', options, true, (native, args) => native.verifySync(args));
		return toVerifyResult(raw, pattern);
	}

	/** Fills the region; on a worker thread when it is at least ASYNC_THRESHOLD bytes. */
	async fill(options: RegionOptions = {}): Promise<FillResult> {
		const length = this.#regionLength(options);
		if (length < ASYNC_THRESHOLD) return this.fillSync(options);
		return this.#track(this.#run('fill', options, false, (native, args) => native.fillAsync(args)));
	}

	/** Verifies the region; on a worker thread when it is at least ASYNC_THRESHOLD bytes. */
	async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
		const length = this.#regionLength(options);
		if (length < ASYNC_THRESHOLD) return this.verifySync(options);
		const pattern = resolvePattern(options);
		const raw = await this.#track(this.#run('verify', options, true, (native, args) => native.verifyAsync(args)));
		return toVerifyResult(raw, pattern);
	}

	/**
	 * The state of each page. Without touch: mincore(2) residency, nothing is
	 * read. The kernel's page walkers skip VM_PFNMAP vmas (remap_pfn_range,
	 * vmf_insert_pfn; vmFlags() has 'pf'), so mincore says 'absent' for every
	 * page of those even when mapped. With touch: each absent page gets one
	 * guarded read and becomes 'present' or 'faulting' (SIGBUS/SIGSEGV caught);
	 * on a vma with a fault handler that read may map the page in.
	 */
	probe(options: ProbeOptions = {}): ProbeResult {
		const native = this.#live('probe');
		const offset = toIndex('offset', options.offset ?? 0);
		const length = toIndex('length', options.length ?? this.length - offset);
		if (offset % this.pageSize !== 0 || length % this.pageSize !== 0) {
			throw outOfRange('offset', `and length must be multiples of the page size (${this.pageSize}) to probe`);
		}
		this.#checkRange(offset, length);
		const touch = options.touch === true;
		const raw = callNative(() => native.probe({ touch, offset, length }), this.path);
		const pages = Array.from(raw, (code) => STATES[code] ?? 'faulting');
		const count = (state: PageState): number => pages.reduce((n, s) => (s === state ? n + 1 : n), 0);
		return { pages, present: count('present'), absent: count('absent'), faulting: count('faulting'), touched: touch };
	}

	/**
	 * The vma's VmFlags from /proc/self/smaps ('pf' VM_PFNMAP, 'mm' VM_MIXEDMAP,
	 * 'io', 'sh', 'dd', ...), as the kernel set them for this mapping.
	 */
	vmFlags(): string[] {
		this.#live('read vm flags');
		const flags = vmFlagsAt(this.address);
		if (!flags) throw codedError('ERR_MAPPING_NOT_FOUND', `no vma at 0x${this.address.toString(16)} in /proc/self/smaps`);
		return flags;
	}

	/**
	 * Detaches the bytes (all views drop to length 0) and munmaps, once.
	 * Throws EBUSY while an async fill/verify runs; a second call does nothing.
	 */
	unmap(): void {
		if (this.#native.closed) return;
		callNative(() => this.#native.unmap(), this.path);
		this.#bytes = undefined;
		this.#onUnmap?.(this);
	}

	/** Resolves when no fill/verify of this mapping is running. */
	async settled(): Promise<void> {
		while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
	}

	[Symbol.dispose](): void {
		this.unmap();
	}

	async [Symbol.asyncDispose](): Promise<void> {
		await this.settled();
		this.unmap();
	}

	#live(operation: string): NativeMapping {
		if (this.#native.closed) throw mappingClosed(operation);
		return this.#native;
	}

	#regionLength(options: RegionOptions): number {
		const offset = toIndex('offset', options.offset ?? 0);
		return options.length === undefined ? Math.max(0, this.length - offset) : toIndex('length', options.length);
	}

	#checkRange(offset: number, length: number): void {
		if (offset > this.length || length > this.length - offset) {
			throw outOfRange('length', `with offset ${offset} reaches past the end of the mapping (${this.length} bytes); received ${length}`);
		}
	}

	#run<T>(operation: 'fill' | 'verify', options: VerifyOptions, verify: boolean, call: (native: NativeMapping, args: NativeRegionOptions) => T): T {
		const native = this.#live(operation);
		if (operation === 'fill' && this.prot !== 'rw') {
			throw notWritable(this.prot);
		}
		if (verify && this.prot === 'none') throw codedError('ERR_MAPPING_NOT_READABLE', 'cannot verify: the mapping was made with prot none');
		const pattern = resolvePattern(options);
		const offset = toIndex('offset', options.offset ?? 0);
		const length = toIndex('length', options.length ?? this.length - offset);
		this.#checkRange(offset, length);
		if (pattern.unit === 8 && (offset % 8 !== 0 || length % 8 !== 0)) {
			throw outOfRange('offset', `and length must be multiples of 8 for the ${pattern.name} pattern; received ${offset}, ${length}`);
		}
		const maxMismatches = options.maxMismatches ?? 16;
		if (!Number.isSafeInteger(maxMismatches) || maxMismatches < 0) {
			throw outOfRange('maxMismatches', `must be a non-negative integer; received ${maxMismatches}`);
		}
		const args: NativeRegionOptions = { pattern: pattern.code, seed: pattern.seed, value: pattern.value, offset, length, maxMismatches };
		return callNative(() => call(native, args), this.path);
	}

	async #track<T>(promise: Promise<T>): Promise<T> {
		this.#pending.add(promise);
		try {
			return await promise;
		} catch (error) {
			throw withPath(error, this.path);
		} finally {
			this.#pending.delete(promise);
		}
	}
}

function notWritable(prot: Protection): CodedError {
	return codedError('ERR_MAPPING_NOT_WRITABLE', `cannot fill: the mapping was made with prot '${prot}'; map with prot 'rw' to write`);
}

function toVerifyResult(raw: { bytes: number; faultingPages: number[]; ns: number; mismatches: Mismatch[]; mismatchCount: number; unit: 1 | 8 }, pattern: ResolvedPattern): VerifyResult {
	return {
		ok: raw.mismatchCount === 0 && raw.faultingPages.length === 0,
		pattern: pattern.name,
		unit: raw.unit,
		bytes: raw.bytes,
		mismatches: raw.mismatches,
		mismatchCount: raw.mismatchCount,
		faultingPages: raw.faultingPages,
		ns: raw.ns,
	};
}

/** A non-negative safe integer from a number or bigint argument. */
export function toIndex(name: string, value: number | bigint): number {
	if (typeof value === 'bigint') {
		if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw outOfRange(name, `must be from 0 to 2^53-1; received ${value}`);
		return Number(value);
	}
	if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
		throw outOfRange(name, `must be a non-negative integer; received ${String(value)}`);
	}
	return value;
}
