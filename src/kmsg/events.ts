// The test module's own log lines (pr_fmt "hybridmem_test: ") as typed events.
// The field notes print the same lines without the prefix (their module had no
// pr_fmt), so the notes' four shapes are accepted bare as well.

interface EventBase {
	/** Seconds since boot, from the record or the "[  123.456789]" prefix, when known. */
	ts?: number;
	/** The line as it appeared in the input. */
	line: string;
}

export interface MapStartEvent extends EventBase {
	type: 'mapStart';
	vmStart: bigint;
	vmEnd: bigint;
	len: number;
	pages: number;
	pgoff: number;
}
export interface PageInsertedEvent extends EventBase {
	type: 'pageInserted';
	index: number;
	address: bigint;
}
export interface MapCompleteEvent extends EventBase {
	type: 'mapComplete';
	pages: number;
}
export interface ZapEvent extends EventBase {
	type: 'zap';
	address: bigint;
}
export interface ZapNoopEvent extends EventBase {
	type: 'zapNoop';
	address: bigint;
	pages: number;
}
export interface FaultInEvent extends EventBase {
	type: 'faultIn';
	index: number;
	address: bigint;
}
export interface RemapEvent extends EventBase {
	type: 'remap';
	index: number;
	address: bigint;
}
export interface MapFailedEvent extends EventBase {
	type: 'mapFailed';
	index: number;
	/** Negative errno as the module printed it. */
	error: number;
}
export interface FreedEvent extends EventBase {
	type: 'freed';
	pages: number;
}
export interface SuppressedEvent extends EventBase {
	type: 'suppressed';
	count: number;
}
export interface LoadedEvent extends EventBase {
	type: 'loaded';
	major: number;
}
export interface UnloadedEvent extends EventBase {
	type: 'unloaded';
}
/** A "hybridmem_test: " line this parser does not know (kept so nothing the module said is lost). */
export interface OtherModuleEvent extends EventBase {
	type: 'other';
	text: string;
}

export type ModuleEvent =
	| MapStartEvent
	| PageInsertedEvent
	| MapCompleteEvent
	| ZapEvent
	| ZapNoopEvent
	| FaultInEvent
	| RemapEvent
	| MapFailedEvent
	| FreedEvent
	| SuppressedEvent
	| LoadedEvent
	| UnloadedEvent
	| OtherModuleEvent;

export type ModuleEventType = ModuleEvent['type'];

export const MODULE_PREFIX = 'hybridmem_test: ';

const MAP_START = /^vma->vm_end (\d+) vm_start (\d+) len (\d+) pages (\d+) vm_pgoff (\d+)\s*$/;
const PAGE_INSERTED = /^inserted page (\d+) at (?:0x)?([0-9a-f]+)\s*$/;
const MAP_COMPLETE = /^completed inserting (\d+) pages\s*$/;
const ZAP = /^ *zap_vma_ptes addr 0x([0-9a-f]+)\s*$/;
const ZAP_NOOP = /^zap_vma_ptes had no effect at 0x([0-9a-f]+): vma is not VM_PFNMAP \((\d+) pages\)\s*$/;
const FAULT_IN = /^fault-in page (\d+) at (?:0x)?([0-9a-f]+)\s*$/;
const REMAP = /^remap page (\d+) at (?:0x)?([0-9a-f]+)\s*$/;
const MAP_FAILED = /^map failed at page (-?\d+): error (-?\d+)\s*$/;
const FREED = /^freed (\d+) pages\s*$/;
const SUPPRESSED = /^(\d+) more per-page lines suppressed\s*$/;
const LOADED = /^loaded: major (\d+)\s*$/;
const UNLOADED = /^unloaded\s*$/;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EventBody = DistributiveOmit<ModuleEvent, 'line'>;

const hex = (digits: string): bigint => BigInt('0x' + digits);

function withBase<T extends ModuleEvent>(event: T, line: string, ts: number | undefined): T {
	if (ts !== undefined) event.ts = ts;
	event.line = line;
	return event;
}

/** The event a module message (prefix already removed) describes. */
function parseBody(body: string, bare: boolean): EventBody | undefined {
	let m: RegExpExecArray | null;
	switch (body.charCodeAt(0)) {
		case 0x76 /* v */:
			if ((m = MAP_START.exec(body)))
				return {
					type: 'mapStart',
					vmStart: BigInt(m[2] ?? 0),
					vmEnd: BigInt(m[1] ?? 0),
					len: Number(m[3]),
					pages: Number(m[4]),
					pgoff: Number(m[5]),
				};
			break;
		case 0x69 /* i */:
			if ((m = PAGE_INSERTED.exec(body))) return { type: 'pageInserted', index: Number(m[1]), address: hex(m[2] ?? '0') };
			break;
		case 0x63 /* c */:
			if ((m = MAP_COMPLETE.exec(body))) return { type: 'mapComplete', pages: Number(m[1]) };
			break;
		case 0x20 /* ' ' */:
			if ((m = ZAP.exec(body))) return { type: 'zap', address: hex(m[1] ?? '0') };
			break;
		case 0x7a /* z */:
			if ((m = ZAP_NOOP.exec(body))) return { type: 'zapNoop', address: hex(m[1] ?? '0'), pages: Number(m[2]) };
			if ((m = ZAP.exec(body))) return { type: 'zap', address: hex(m[1] ?? '0') };
			break;
	}
	if (bare) return undefined;
	switch (body.charCodeAt(0)) {
		case 0x66 /* f */:
			if ((m = FAULT_IN.exec(body))) return { type: 'faultIn', index: Number(m[1]), address: hex(m[2] ?? '0') };
			if ((m = FREED.exec(body))) return { type: 'freed', pages: Number(m[1]) };
			break;
		case 0x72 /* r */:
			if ((m = REMAP.exec(body))) return { type: 'remap', index: Number(m[1]), address: hex(m[2] ?? '0') };
			break;
		case 0x6d /* m */:
			if ((m = MAP_FAILED.exec(body))) return { type: 'mapFailed', index: Number(m[1]), error: Number(m[2]) };
			break;
		case 0x6c /* l */:
			if ((m = LOADED.exec(body))) return { type: 'loaded', major: Number(m[1]) };
			break;
		case 0x75 /* u */:
			if (UNLOADED.test(body)) return { type: 'unloaded' };
			break;
		default:
			if ((m = SUPPRESSED.exec(body))) return { type: 'suppressed', count: Number(m[1]) };
	}
	return { type: 'other', text: body };
}

/**
 * Cheap test on s at i before any regex: 1 when the message carries the module
 * prefix, 2 when it starts like one of the notes' bare lines, 0 otherwise.
 */
export function eventCandidate(s: string, i: number): 0 | 1 | 2 {
	switch (s.charCodeAt(i)) {
		case 0x68 /* h */:
			return s.startsWith(MODULE_PREFIX, i) ? 1 : 0;
		case 0x76 /* v */:
			return s.startsWith('vma->vm_end ', i) ? 2 : 0;
		case 0x69 /* i */:
			return s.startsWith('inserted page ', i) ? 2 : 0;
		case 0x63 /* c */:
			return s.startsWith('completed inserting ', i) ? 2 : 0;
		case 0x20 /* ' ' */:
			return s.startsWith(' zap_vma_ptes addr ', i) ? 2 : 0;
		case 0x7a /* z */:
			return s.startsWith('zap_vma_ptes ', i) ? 2 : 0;
	}
	return 0;
}

/**
 * Parse a kernel message (log prefixes already removed) as a module event.
 * `line` is kept as the event's raw line (defaults to `message`).
 */
export function parseModuleEvent(message: string, ts?: number, line: string = message): ModuleEvent | undefined {
	const candidate = eventCandidate(message, 0);
	if (candidate === 0) return undefined;
	const body = candidate === 1 ? message.slice(MODULE_PREFIX.length) : message;
	const event = parseBody(body, candidate === 2);
	return event ? withBase(event as ModuleEvent, line, ts) : undefined;
}
