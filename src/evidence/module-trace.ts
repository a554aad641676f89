// The test module's own tracepoints (kmod/hybridmem_trace.h, tracefs
// events/hybridmem/) as typed events of one process: a private trace
// instance with only those events, filtered in the kernel by pid
// (set_event_pid, with event-fork so threads started later count too), read
// as binary records from per_cpu/cpuN/trace_pipe_raw and decoded with the
// field offsets of each event's format file.  The module's log lines carry
// the same steps for people; these carry them for programs, every page, with
// no rate limit or budget in between.
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { MAP_MODES, type MapMode } from '../device/device.js';
import { codedError } from './errors.js';
import { TraceInstance } from './tracefs.js';

export const MODULE_TRACE_SYSTEM = 'hybridmem';

/** The module's events, by tracepoint name. */
export const MODULE_TRACE_EVENTS = ['hybridmem_map', 'hybridmem_page', 'hybridmem_map_end', 'hybridmem_fault', 'hybridmem_remap', 'hybridmem_zap', 'hybridmem_free'] as const;
export type ModuleTracepoint = (typeof MODULE_TRACE_EVENTS)[number];

interface Who {
	/** Trace timestamp, seconds (CLOCK_MONOTONIC). */
	ts: number;
	/** Thread that caused the event (common_pid). */
	pid: number;
	cpu: number;
}

/** A page of a mapping at a user address, and the PFN behind it. */
interface PageFields extends Who {
	address: bigint;
	pfn: number;
	/** Index of the page in the mapping. */
	index: number;
}

export type ModuleTraceEvent =
	/** An mmap passed validation: the vma's start, its length in bytes, the map_mode. */
	| (Who & { type: 'map'; start: bigint; length: number; mode: MapMode | number })
	/** That mmap returns `error` (0 or a negative errno); pages: how many it mapped, or the failing page's index. */
	| (Who & { type: 'mapEnd'; start: bigint; pages: number; error: number })
	/** mmap mapped the page (hybridmem_page), the fault handler did (hybridmem_fault), REMAP did again (hybridmem_remap). */
	| (PageFields & { type: 'page' })
	| (PageFields & { type: 'fault' })
	| (PageFields & { type: 'remap' })
	/** zap_vma_ptes() of `pages` pages from address; noop: the kernel's zap cannot act on this vma. */
	| (Who & { type: 'zap'; address: bigint; pages: number; noop: boolean })
	/** A mapping object gave its pages back to the page allocator. */
	| (Who & { type: 'free'; pages: number });

export type ModulePageEvent = Extract<ModuleTraceEvent, { type: 'page' | 'fault' | 'remap' }>;

export type ModuleTraceType = ModuleTraceEvent['type'];

export interface ModuleTraceLog {
	events: ModuleTraceEvent[];
	/** The process traced. */
	pid: number;
	/** Events the kernel dropped (the buffer overran), or -1 when a page says some were lost without a count. */
	lost: number;
}

export interface ModuleTraceOptions {
	/** Process whose events to keep (default: this one). */
	pid?: number;
	/** Ring buffer per CPU, KiB (default 512: thousands of events). */
	bufferKb?: number;
}

/** One field of an event record, from its format file. */
export interface FormatField {
	name: string;
	offset: number;
	size: number;
	signed: boolean;
}

export interface EventFormat {
	name: string;
	id: number;
	fields: FormatField[];
}

/** Parses an event's format file ("field:unsigned long addr;\toffset:8;\tsize:8;\tsigned:0;"). */
export function parseFormat(text: string): EventFormat {
	const name = /^name: (\S+)$/m.exec(text)?.[1];
	const id = /^ID: (\d+)$/m.exec(text)?.[1];
	if (!name || !id) throw codedError('ERR_TRACE_FORMAT', `not an event format file (no name or ID line): ${JSON.stringify(text.slice(0, 80))}`);
	const fields: FormatField[] = [];
	for (const m of text.matchAll(/^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d);/gm)) {
		// The declaration's last identifier is the name ("unsigned long addr", "char buf[]").
		const fname = /([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*$/.exec(m[1]!)?.[1];
		if (fname) fields.push({ name: fname, offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' });
	}
	return { name, id: Number(id), fields };
}

/** A field's value in a record (little-endian: x86_64 and arm64): bigint for 8 bytes, number below. */
function readField(buf: Buffer, at: number, f: FormatField): bigint | number {
	const o = at + f.offset;
	switch (f.size) {
		case 8:
			return f.signed ? buf.readBigInt64LE(o) : buf.readBigUInt64LE(o);
		case 4:
			return f.signed ? buf.readInt32LE(o) : buf.readUInt32LE(o);
		case 2:
			return f.signed ? buf.readInt16LE(o) : buf.readUInt16LE(o);
		case 1:
			return f.signed ? buf.readInt8(o) : buf.readUInt8(o);
		default:
			throw codedError('ERR_TRACE_FORMAT', `field ${f.name} has size ${f.size}: only 1, 2, 4 and 8 byte fields are read`);
	}
}

export interface RawRecord {
	/** Trace clock, nanoseconds. */
	ns: bigint;
	/** The record: common fields first (common_type at 0). */
	data: Buffer;
	/** Offset of the record in data. */
	at: number;
	length: number;
}

// The ring buffer's sub-buffer and event headers (tracefs events/header_page
// and header_event; kernel/trace/ring_buffer.c): a u64 timestamp, a local_t
// commit (the data size in its low 27 bits, flags in bits 31 and 30), then events
// of a 32-bit header: type_len in bits 0-4, time_delta in bits 5-31.
const COMMIT_MASK = (1 << 27) - 1;
const MISSED_EVENTS = 2 ** 31;
const MISSED_STORED = 2 ** 30;
const TYPE_PADDING = 29;
const TYPE_TIME_EXTEND = 30;
const TYPE_TIME_STAMP = 31;

/**
 * The records of one sub-buffer read from trace_pipe_raw (64-bit kernel,
 * little-endian: x86_64 and arm64), and the events it says were lost before
 * it (-1: some, count unknown).  Records point into buf: decode them before
 * it is read into again.
 */
export function parseSubbuffer(buf: Buffer, length = buf.length): { records: RawRecord[]; lost: number } {
	const records: RawRecord[] = [];
	if (length < 16) return { records, lost: 0 };
	let ns = buf.readBigUInt64LE(0);
	const commit = buf.readUInt32LE(8); // flags in bits 31 and 30 of the local_t
	const size = commit & COMMIT_MASK;
	const end = Math.min(16 + size, length);
	let lost = 0;
	if (commit >= MISSED_EVENTS) lost = commit % MISSED_EVENTS >= MISSED_STORED && end + 8 <= length ? Number(buf.readBigUInt64LE(end)) : -1;
	let p = 16;
	while (p + 4 <= end) {
		const head = buf.readUInt32LE(p);
		const type = head & 0x1f;
		const delta = BigInt(head >>> 5);
		p += 4;
		if (type === TYPE_PADDING) {
			if (delta === 0n) break; // the rest of the sub-buffer is empty
			p += buf.readUInt32LE(p); // a discarded event: array[0] is its length
			continue;
		}
		if (type === TYPE_TIME_EXTEND || type === TYPE_TIME_STAMP) {
			const t = (BigInt(buf.readUInt32LE(p)) << 27n) + delta;
			ns = type === TYPE_TIME_EXTEND ? ns + t : t;
			p += 4;
			continue;
		}
		let len: number;
		if (type === 0) {
			len = ((buf.readUInt32LE(p) - 4 + 3) & ~3) >>> 0;
			p += 4;
		} else len = type * 4;
		ns += delta;
		if (p + len > end) break;
		records.push({ ns, data: buf, at: p, length: len });
		p += len;
	}
	return { records, lost };
}

/** This process's threads (or another's), by tid. */
function tasksOf(pid: number): Set<number> {
	try {
		return new Set(readdirSync(`/proc/${pid}/task`).map(Number));
	} catch {
		return new Set([pid]);
	}
}

/** The kernel's pid to tgid map (tracefs saved_tgids, kept with the record-tgid option), when it has one. */
function savedTgids(root: string): Map<number, number> {
	const map = new Map<number, number>();
	try {
		for (const line of readFileSync(path.join(root, 'saved_tgids'), 'utf8').split('\n')) {
			const [tid, tgid] = line.split(' ').map(Number);
			if (tid && tgid) map.set(tid, tgid);
		}
	} catch {
		/* a kernel without it */
	}
	return map;
}

function modeOf(n: number): MapMode | number {
	return MAP_MODES[n] ?? n;
}

let sequence = 0;

/**
 * A running trace of the module's events for one process.  take() returns
 * the events since the last take (reading trace_pipe_raw consumes them);
 * step() those of one call; stop() the rest, and removes the instance.
 * Root only; the module must be loaded (its events exist only then).
 */
export class ModuleTrace {
	#formats = new Map<number, EventFormat>();
	#tasks: Set<number>;
	#stopped = false;
	#lost = 0;

	private constructor(
		readonly instance: TraceInstance,
		readonly pid: number,
		formats: EventFormat[],
	) {
		for (const f of formats) this.#formats.set(f.id, f);
		this.#tasks = tasksOf(pid);
	}

	static async start(opts: ModuleTraceOptions = {}): Promise<ModuleTrace> {
		const pid = opts.pid ?? process.pid;
		const instance = await TraceInstance.create(`hybridmem_module_${process.pid}_${sequence++}`, { bufferKb: opts.bufferKb ?? 512 });
		try {
			if (!instance.hasEvent(MODULE_TRACE_SYSTEM, 'hybridmem_map'))
				throw codedError('ERR_TRACEPOINT_UNAVAILABLE', `no ${MODULE_TRACE_SYSTEM} events in ${path.join(instance.dir, 'events')}: load hybridmem_test first (hybridmem setup)`);
			const formats = MODULE_TRACE_EVENTS.filter((e) => instance.hasEvent(MODULE_TRACE_SYSTEM, e)).map((e) =>
				parseFormat(readFileSync(path.join(instance.dir, 'events', MODULE_TRACE_SYSTEM, e, 'format'), 'utf8')),
			);
			// In the kernel: the process's threads now, and every task they start from here on.
			instance.option('event-fork', true);
			instance.write('set_event_pid', [...tasksOf(pid)].join(' '));
			for (const f of formats) instance.enable(MODULE_TRACE_SYSTEM, f.name);
			instance.on();
			return new ModuleTrace(instance, pid, formats);
		} catch (err) {
			instance.close();
			throw err;
		}
	}

	/**
	 * Whether the trace still sees the module: unloading it removes its
	 * events from the instance, and a reload brings them back disabled.
	 */
	live(): boolean {
		if (this.#stopped) return false;
		try {
			const dir = path.join(this.instance.dir, 'events', MODULE_TRACE_SYSTEM, 'hybridmem_map');
			const { id } = parseFormat(readFileSync(path.join(dir, 'format'), 'utf8'));
			return this.#formats.get(id)?.name === 'hybridmem_map' && readFileSync(path.join(dir, 'enable'), 'utf8').trim() === '1';
		} catch {
			return false;
		}
	}

	/** The tracepoints this module has (an older build may lack newer ones). */
	get tracepoints(): string[] {
		return [...this.#formats.values()].map((f) => f.name);
	}

	/** The events since the last take(), in time order. */
	take(): ModuleTraceEvent[] {
		if (this.#stopped) throw codedError('ERR_TRACE_STOPPED', 'this trace was stopped already');
		const out: ModuleTraceEvent[] = [];
		for (const cpu of this.instance.cpus()) out.push(...this.#readCpu(cpu));
		// Children the kernel followed (event-fork) are other processes: only this one's threads count,
		// those alive at the start or now, and one that came and went if the kernel recorded its tgid.
		for (const t of tasksOf(this.pid)) this.#tasks.add(t);
		const unknown = out.filter((e) => !this.#tasks.has(e.pid));
		if (unknown.length) for (const [tid, tgid] of savedTgids(this.instance.root)) if (tgid === this.pid) this.#tasks.add(tid);
		return out.filter((e) => this.#tasks.has(e.pid)).sort((a, b) => a.ts - b.ts);
	}

	/** Runs fn and returns what it returned with the events it caused (those before it are dropped). */
	async step<T>(fn: () => T | Promise<T>): Promise<{ value: T; events: ModuleTraceEvent[] }> {
		this.take();
		const value = await fn();
		return { value, events: this.take() };
	}

	/** The events not taken yet; stops tracing and removes the instance. */
	stop(): ModuleTraceLog {
		const events = this.take();
		this.#stopped = true;
		try {
			// Both count the same overwritten events: the per-CPU stats, and the sub-buffers' own flags.
			const over = this.instance.overruns();
			return { events, pid: this.pid, lost: this.#lost < 0 && over === 0 ? -1 : Math.max(over, this.#lost) };
		} finally {
			this.instance.close();
		}
	}

	[Symbol.dispose](): void {
		if (!this.#stopped) {
			this.#stopped = true;
			this.instance.close();
		}
	}

	#readCpu(cpu: string): ModuleTraceEvent[] {
		const file = path.join(this.instance.dir, 'per_cpu', cpu, 'trace_pipe_raw');
		if (!existsSync(file)) return [];
		const cpuNo = Number(cpu.slice(3));
		const out: ModuleTraceEvent[] = [];
		// One sub-buffer per read; 64 KiB holds the largest page size.
		const buf = Buffer.alloc(64 * 1024);
		const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
		try {
			for (;;) {
				let n: number;
				try {
					n = readSync(fd, buf, 0, buf.length, null);
				} catch (err) {
					if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
					throw err;
				}
				if (n <= 0) break;
				const { records, lost } = parseSubbuffer(buf, n);
				if (lost) this.#lost = lost < 0 || this.#lost < 0 ? -1 : this.#lost + lost;
				for (const r of records) {
					const e = decodeModuleRecord(r, this.#formats, cpuNo);
					if (e) out.push(e);
				}
			}
		} finally {
			closeSync(fd);
		}
		return out;
	}
}

/** The module event a record is, by its common_type; undefined for another event. */
export function decodeModuleRecord(r: RawRecord, formats: ReadonlyMap<number, EventFormat>, cpu: number): ModuleTraceEvent | undefined {
	const format = formats.get(r.data.readUInt16LE(r.at));
	if (!format) return undefined;
	const v: Record<string, bigint | number> = {};
	for (const f of format.fields) if (f.offset + f.size <= r.length) v[f.name] = readField(r.data, r.at, f);
	const who: Who = { ts: Number(r.ns) / 1e9, pid: Number(v.common_pid), cpu };
	const big = (name: string) => BigInt(v[name] ?? 0);
	const num = (name: string) => Number(v[name] ?? 0);
	switch (format.name as ModuleTracepoint) {
		case 'hybridmem_map':
			return { ...who, type: 'map', start: big('start'), length: num('len'), mode: modeOf(num('mode')) };
		case 'hybridmem_map_end':
			return { ...who, type: 'mapEnd', start: big('start'), pages: num('pages'), error: num('err') };
		case 'hybridmem_page':
		case 'hybridmem_fault':
		case 'hybridmem_remap':
			return { ...who, type: format.name === 'hybridmem_page' ? 'page' : format.name === 'hybridmem_fault' ? 'fault' : 'remap', address: big('addr'), pfn: num('pfn'), index: num('index') };
		case 'hybridmem_zap':
			return { ...who, type: 'zap', address: big('addr'), pages: num('pages'), noop: num('noop') !== 0 };
		case 'hybridmem_free':
			return { ...who, type: 'free', pages: num('pages') };
	}
	return undefined;
}

/** The events of one type. */
export function eventsOf<T extends ModuleTraceType>(events: readonly ModuleTraceEvent[], type: T): Extract<ModuleTraceEvent, { type: T }>[] {
	return events.filter((e): e is Extract<ModuleTraceEvent, { type: T }> => e.type === type);
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/** Consecutive runs of numbers as "a-b" ranges in hex ("0x1a2b0-0x1a2b3, 0x1c000"). */
function hexRuns(values: number[]): string {
	const runs: string[] = [];
	for (let i = 0; i < values.length; ) {
		let j = i;
		while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
		runs.push(j > i ? `${hex(values[i]!)}-${hex(values[j]!)}` : hex(values[i]!));
		i = j + 1;
	}
	return runs.length > 6 ? `${runs.slice(0, 6).join(', ')}, … (${runs.length} runs)` : runs.join(', ');
}

/** The events as short lines citing what they carry: consecutive page events of one kind become one line. */
export function describeModuleEvents(events: readonly ModuleTraceEvent[]): string[] {
	const lines: string[] = [];
	for (let i = 0; i < events.length; i++) {
		const e = events[i]!;
		switch (e.type) {
			case 'map':
				lines.push(`hybridmem_map start=${hex(e.start)} len=${e.length} mode=${e.mode} (pid ${e.pid})`);
				break;
			case 'mapEnd':
				lines.push(`hybridmem_map_end start=${hex(e.start)} pages=${e.pages} err=${e.error}`);
				break;
			case 'zap':
				lines.push(`hybridmem_zap addr=${hex(e.address)} pages=${e.pages} noop=${e.noop ? 1 : 0}`);
				break;
			case 'free':
				lines.push(`hybridmem_free pages=${e.pages}`);
				break;
			default: {
				const run: ModulePageEvent[] = [e];
				while (events[i + 1]?.type === e.type) run.push(events[++i] as ModulePageEvent);
				const first = run[0]!;
				const last = run[run.length - 1]!;
				const where = run.length > 1 ? `addr ${hex(first.address)}..${hex(last.address)} index ${first.index}..${last.index}` : `addr=${hex(first.address)} index=${first.index}`;
				lines.push(`hybridmem_${e.type} x${run.length}: ${where}, pfn ${hexRuns(run.map((p) => p.pfn))}`);
			}
		}
	}
	return lines;
}
