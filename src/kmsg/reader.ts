// Capture exactly the kernel messages one run produced: open /dev/kmsg
// non-blocking, read up to "now" (one read() returns one record; EAGAIN means
// there is nothing newer), then collect what was added since. Node has no
// lseek(SEEK_END), so "seek to the end" is "read until EAGAIN" and keep the
// last sequence number. When /dev/kmsg cannot be opened, fall back to the
// `dmesg` command where that works (dmesg-fallback.ts).

import { closeSync, constants, openSync, readSync } from 'node:fs';
import { kmsgRecordSeq, parseKmsgRecord, type KmsgRecord } from './record.js';
import { SequenceTracker } from './sequence.js';
import { accessError, DmesgCapture, readAllWithDmesg } from './dmesg-fallback.js';

export const KMSG_PATH = '/dev/kmsg';

export interface CaptureResult {
	/** Records added since the capture started, oldest first. */
	records: KmsgRecord[];
	/** Records the kernel overwrote before they were read (seq gaps after EPIPE). */
	lost: number;
	/** Where the records came from. */
	source: 'kmsg' | 'dmesg';
	/** True when records were lost, or (dmesg) the start point scrolled out of the ring. */
	overrun: boolean;
}

export type RecordPredicate = string | RegExp | ((record: KmsgRecord) => boolean);

/** What startCapture() returns, whichever source it reads. */
export interface KernelLogCapture {
	readonly source: 'kmsg' | 'dmesg';
	/** Read what is available now (done by a timer too); returns how many records were added. */
	poll(): Promise<number>;
	/** Poll until a record since the start matches (a substring, a RegExp or a function); undefined on timeout. */
	waitFor(predicate: RecordPredicate, timeoutMs: number): Promise<KmsgRecord | undefined>;
	/** Records not returned by an earlier take(), read up to now (for following the log live). */
	take(): Promise<KmsgRecord[]>;
	/** The records since the start, read up to now; the capture goes on. */
	collect(): Promise<CaptureResult>;
	/** collect() and release the file descriptor and timer. */
	stop(): Promise<CaptureResult>;
	[Symbol.asyncDispose](): Promise<void>;
}

export interface CaptureOptions {
	/** Device to read (tests only; default /dev/kmsg). */
	path?: string;
	/** Background poll interval in ms, so that a long run does not overrun the ring; 0 = only when asked. Default 50. */
	pollIntervalMs?: number;
	/** 'auto' (default): /dev/kmsg, else dmesg. 'kmsg' or 'dmesg' force one. */
	source?: 'auto' | 'kmsg' | 'dmesg';
}

// Records are at most 8 KiB of text (CONSOLE_EXT_LOG_MAX) plus the dictionary; a
// too-small buffer makes read() fail with EINVAL, so start generous and grow.
const INITIAL_BUFFER = 16 * 1024;
const MAX_BUFFER = 1024 * 1024;

type ReadResult = Buffer | 'again' | 'overrun';

/** Non-blocking reader of /dev/kmsg records. */
export class KmsgReader {
	private buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
	private fd: number | undefined;

	constructor(readonly path: string = KMSG_PATH) {
		try {
			this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
		} catch (err) {
			throw accessError(err as NodeJS.ErrnoException, path);
		}
	}

	/** One record, 'again' when none is available, 'overrun' when records were overwritten (EPIPE). */
	read(): ReadResult {
		if (this.fd === undefined) throw Object.assign(new Error(`${this.path} is closed`), { code: 'EBADF' });
		for (;;) {
			try {
				const n = readSync(this.fd, this.buffer, 0, this.buffer.length, null);
				return n === 0 ? 'again' : this.buffer.subarray(0, n);
			} catch (err) {
				const code = (err as NodeJS.ErrnoException).code;
				if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 'again';
				if (code === 'EPIPE') return 'overrun';
				if (code === 'EINVAL' && this.buffer.length < MAX_BUFFER) {
					this.buffer = Buffer.allocUnsafe(this.buffer.length * 4);
					continue;
				}
				throw err;
			}
		}
	}

	close(): void {
		if (this.fd !== undefined) closeSync(this.fd);
		this.fd = undefined;
	}
}

function toPredicate(p: RecordPredicate): (record: KmsgRecord) => boolean {
	if (typeof p === 'function') return p;
	if (typeof p === 'string') return (r) => r.text.includes(p);
	return (r) => p.test(r.text);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Feed one read result into a record list: the code path shared by the live
 * reader and the tests that replay overruns.
 */
export function ingest(result: ReadResult, tracker: SequenceTracker, into: KmsgRecord[]): boolean {
	if (result === 'again') return false;
	if (result === 'overrun') {
		tracker.overrun();
		return true;
	}
	const record = parseKmsgRecord(result);
	if (tracker.accept(record.seq)) into.push(record);
	return true;
}

/** A capture on /dev/kmsg. */
export class KmsgCapture implements KernelLogCapture {
	readonly source = 'kmsg' as const;
	private readonly records: KmsgRecord[] = [];
	private readonly tracker: SequenceTracker;
	private timer: NodeJS.Timeout | undefined;
	private failure: unknown;
	private stopped: CaptureResult | undefined;
	private readonly startedAfter: number | undefined;

	private constructor(
		private readonly reader: KmsgReader,
		private readonly pollIntervalMs: number,
	) {
		this.startedAfter = KmsgCapture.drain(reader);
		this.tracker = new SequenceTracker(this.startedAfter);
		if (pollIntervalMs > 0) {
			this.timer = setInterval(() => {
				try {
					this.pollSync();
				} catch (err) {
					this.failure ??= err;
				}
			}, pollIntervalMs);
			this.timer.unref();
		}
	}

	/** Open /dev/kmsg and move to its end. Throws KmsgAccessError when it cannot be read. */
	static start(options: CaptureOptions = {}): KmsgCapture {
		return new KmsgCapture(new KmsgReader(options.path), options.pollIntervalMs ?? 50);
	}

	// Read everything that is there without decoding it; the last seq marks "now".
	private static drain(reader: KmsgReader): number | undefined {
		let last: number | undefined;
		for (;;) {
			const result = reader.read();
			if (result === 'again') return last;
			if (result !== 'overrun') last = kmsgRecordSeq(result);
		}
	}

	/** seq of the last record before the capture started (undefined when the ring was empty). */
	get startSeq(): number | undefined {
		return this.startedAfter;
	}

	get lost(): number {
		return this.tracker.lost;
	}

	pollSync(): number {
		if (this.stopped) return 0;
		const before = this.records.length;
		while (ingest(this.reader.read(), this.tracker, this.records));
		return this.records.length - before;
	}

	poll(): Promise<number> {
		return Promise.resolve(this.pollSync());
	}

	async waitFor(predicate: RecordPredicate, timeoutMs: number): Promise<KmsgRecord | undefined> {
		const test = toPredicate(predicate);
		const deadline = Date.now() + timeoutMs;
		let checked = 0;
		for (;;) {
			this.pollSync();
			for (; checked < this.records.length; checked++) {
				const record = this.records[checked];
				if (record && test(record)) return record;
			}
			if (this.stopped || Date.now() >= deadline) return undefined;
			await sleep(Math.min(this.pollIntervalMs || 50, Math.max(1, deadline - Date.now())));
		}
	}

	private taken = 0;

	take(): Promise<KmsgRecord[]> {
		if (this.failure) return Promise.reject(this.failure as Error);
		this.pollSync();
		const fresh = this.records.slice(this.taken);
		this.taken = this.records.length;
		return Promise.resolve(fresh);
	}

	collect(): Promise<CaptureResult> {
		if (this.stopped) return Promise.resolve(this.stopped);
		if (this.failure) return Promise.reject(this.failure as Error);
		this.pollSync();
		const lost = this.tracker.lost;
		return Promise.resolve({ records: [...this.records], lost, source: this.source, overrun: lost > 0 || this.tracker.overruns > 0 });
	}

	async stop(): Promise<CaptureResult> {
		if (this.stopped) return this.stopped;
		try {
			const result = await this.collect();
			this.stopped = result;
			return result;
		} finally {
			if (this.timer) clearInterval(this.timer);
			this.timer = undefined;
			this.reader.close();
		}
	}

	async [Symbol.asyncDispose](): Promise<void> {
		await this.stop();
	}
}

/**
 * Start capturing at "now": only records logged after this call are returned.
 * Uses /dev/kmsg, or `dmesg` when /dev/kmsg cannot be opened (then records
 * have no real sequence numbers and overruns are detected less precisely).
 */
export async function startCapture(options: CaptureOptions = {}): Promise<KernelLogCapture> {
	const source = options.source ?? 'auto';
	if (source === 'dmesg') return DmesgCapture.start(options);
	try {
		return KmsgCapture.start(options);
	} catch (err) {
		if (source === 'kmsg') throw err;
		return DmesgCapture.start(options, err as Error);
	}
}

/** Every record still in the kernel's ring buffer (what `dmesg` shows). */
export async function readKernelLog(options: Pick<CaptureOptions, 'path' | 'source'> = {}): Promise<CaptureResult> {
	const source = options.source ?? 'auto';
	if (source !== 'dmesg') {
		let reader: KmsgReader;
		try {
			reader = new KmsgReader(options.path);
		} catch (err) {
			if (source === 'kmsg') throw err;
			return readAllWithDmesg(err as Error);
		}
		try {
			const records: KmsgRecord[] = [];
			const tracker = new SequenceTracker();
			while (ingest(reader.read(), tracker, records));
			// Records overwritten while we read count as lost; those before the first one are history, not loss.
			return { records, lost: tracker.lost, source: 'kmsg', overrun: tracker.lost > 0 };
		} finally {
			reader.close();
		}
	}
	return readAllWithDmesg();
}
