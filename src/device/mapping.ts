// A Mapping: one mmap'ed region of a device (or memfd) with a Uint8Array over
// it, and fill/verify/probe that never crash node (faulting pages are
// reported, not raised). unmap() releases the driver's mapping; while a view
// of the bytes is alive the address range stays reserved by zero-filled
// scratch memory (see native/mapping.h), so I/O still holding the old
// pointer can never reach another mapping. Afterwards every use of the
// Mapping throws ERR_MAPPING_CLOSED.
import type { NativeMapping, NativeRegionOptions } from './binding.js';
import { callNative, codedError, mappingClosed, outOfRange, withPath, type CodedError } from './errors.js';
import { resolvePattern, type PatternOptions, type ResolvedPattern } from './patterns.js';
import { validateBoolean, validateIndex, validateInteger, validateOptions } from './validate.js';
import { vmFlagsAt } from './vmflags.js';

/** Regions at least this large are filled and verified on a worker thread. */
export const ASYNC_THRESHOLD = 4 * 1024 * 1024;

export type Protection = 'r' | 'rw' | 'none';

// Signatures take `RegionOptions & object`: a string has a `length`, so it
// would otherwise satisfy these all-optional types (verifySync('random')).
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

interface Region {
	offset: number;
	length: number;
}

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
	/** Running fill/verify calls: this mapping's, shared with its device when it has one. */
	readonly #pending: Set<Promise<unknown>>;
	#bytes: Uint8Array | undefined;

	private constructor(native: NativeMapping, description: MappingDescription, pending: Set<Promise<unknown>>) {
		this.#native = native;
		this.address = native.address;
		this.length = native.length;
		this.pageSize = description.pageSize;
		this.prot = description.prot;
		this.shared = description.shared;
		this.fileOffset = description.offset;
		this.path = description.path;
		this.#pending = pending;
	}

	/** @internal Used by KexDevice.map() and MemFile.map(); not part of the API. */
	static fromNative(native: NativeMapping, description: MappingDescription, pending: Set<Promise<unknown>> = new Set()): Mapping {
		return new Mapping(native, description, pending);
	}

	get closed(): boolean {
		return this.#native.closed;
	}

	/** True while an async fill/verify runs on a worker thread (unmap then fails with EBUSY). */
	get busy(): boolean {
		return this.#native.busy;
	}

	/**
	 * The mapped bytes. After unmap() views taken from it keep their length
	 * but show zero-filled scratch memory, never another mapping's bytes.
	 */
	get bytes(): Uint8Array {
		const buffer = this.#live('read bytes').buffer;
		if (!buffer) throw mappingClosed('read bytes');
		if (this.#bytes?.buffer !== buffer) this.#bytes = new Uint8Array(buffer);
		return this.#bytes;
	}

	fillSync(options?: RegionOptions & object): FillResult {
		const { args } = this.#prepare('fill', options);
		return callNative(() => this.#native.fillSync(args), this.path);
	}

	verifySync(options?: VerifyOptions & object): VerifyResult {
		const { args, pattern } = this.#prepare('verify', options);
		return toVerifyResult(
			callNative(() => this.#native.verifySync(args), this.path),
			pattern,
		);
	}

	/** Fills the region; on a worker thread when it is at least ASYNC_THRESHOLD bytes. */
	async fill(options?: RegionOptions & object): Promise<FillResult> {
		const { args } = this.#prepare('fill', options);
		if (args.length < ASYNC_THRESHOLD) return callNative(() => this.#native.fillSync(args), this.path);
		return this.#track(callNative(() => this.#native.fillAsync(args), this.path));
	}

	/** Verifies the region; on a worker thread when it is at least ASYNC_THRESHOLD bytes. */
	async verify(options?: VerifyOptions & object): Promise<VerifyResult> {
		const { args, pattern } = this.#prepare('verify', options);
		if (args.length < ASYNC_THRESHOLD) return toVerifyResult(callNative(() => this.#native.verifySync(args), this.path), pattern);
		const raw = await this.#track(callNative(() => this.#native.verifyAsync(args), this.path));
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
	probe(options?: ProbeOptions & object): ProbeResult {
		const opts = validateOptions(options);
		if (opts.touch !== undefined) validateBoolean(opts.touch, 'options.touch');
		const native = this.#live('probe');
		const { offset, length } = this.#region(opts, this.pageSize, `a multiple of the page size (${this.pageSize})`);
		const touch = opts.touch === true;
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
	 * Releases the mapping (the driver's vma is gone when this returns), once.
	 * While a view of the bytes is still reachable (held by a pending fs.read,
	 * stream.write, zlib call, or by your code) the address range stays
	 * reserved by zero-filled scratch memory of the same protection, so it
	 * cannot be handed to another mapping: the old views read zeros and writes
	 * to them go nowhere. The reservation goes when the last view is collected.
	 * Throws EBUSY while an async fill/verify runs; a second call does nothing.
	 */
	unmap(): void {
		if (this.#native.closed) return;
		callNative(() => this.#native.unmap(), this.path);
		this.#bytes = undefined;
	}

	/** Resolves when no fill/verify of this mapping (or of its device's mappings) is running. */
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

	/** offset/length of an options object, inside the mapping and multiples of `unit`. */
	#region(options: { offset?: unknown; length?: unknown }, unit: number, multiple: string): Region {
		const offset = options.offset === undefined ? 0 : validateIndex(options.offset, 'options.offset');
		if (offset > this.length) throw outOfRange('options.offset', `<= ${this.length} (the mapping's length)`, options.offset);
		if (offset % unit !== 0) throw outOfRange('options.offset', multiple, options.offset);
		const length = options.length === undefined ? this.length - offset : validateIndex(options.length, 'options.length');
		if (length > this.length - offset) {
			throw outOfRange('options.length', `<= ${this.length - offset} (the mapping's ${this.length} bytes from offset ${offset})`, options.length);
		}
		if (length % unit !== 0) throw outOfRange('options.length', multiple, options.length);
		return { offset, length };
	}

	#prepare(operation: 'fill' | 'verify', options: VerifyOptions | undefined): { args: NativeRegionOptions; pattern: ResolvedPattern } {
		const opts = validateOptions(options);
		const pattern = resolvePattern(opts);
		const maxMismatches = opts.maxMismatches === undefined ? 16 : validateInteger(opts.maxMismatches, 'options.maxMismatches', 0, 2 ** 32 - 1);
		this.#live(operation);
		if (operation === 'fill' && this.prot !== 'rw') throw notWritable(this.prot);
		if (operation === 'verify' && this.prot === 'none') throw codedError('ERR_MAPPING_NOT_READABLE', 'cannot verify: the mapping was made with prot none');
		const { offset, length } = this.#region(opts, pattern.unit, `a multiple of 8 (the ${pattern.name} pattern compares 64-bit words)`);
		return { args: { pattern: pattern.code, seed: pattern.seed, value: pattern.value, offset, length, maxMismatches }, pattern };
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
export function toIndex(name: string, value: unknown): number {
	return validateIndex(value, name);
}
