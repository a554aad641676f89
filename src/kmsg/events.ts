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

// Sticky + multiline: matched in place at an index of a whole log, no copy of the line.
const MAP_START = /vma->vm_end (\d+) vm_start (\d+) len (\d+) pages (\d+) vm_pgoff (\d+)[ \t\r]*$/my;
const MAP_COMPLETE = /completed inserting (\d+) pages[ \t\r]*$/my;
const ZAP_NOOP = /zap_vma_ptes had no effect at 0x([0-9a-f]+): vma is not VM_PFNMAP \((\d+) pages\)[ \t\r]*$/my;
const MAP_FAILED = /map failed at page (-?\d+): error (-?\d+)[ \t\r]*$/my;
const FREED = /freed (\d+) pages[ \t\r]*$/my;
const SUPPRESSED = /(\d+) more per-page lines suppressed[ \t\r]*$/my;
const LOADED = /loaded: major (\d+)[ \t\r]*$/my;
const UNLOADED = /unloaded[ \t\r]*$/my;

function at(re: RegExp, s: string, i: number): RegExpExecArray | null {
	re.lastIndex = i;
	return re.exec(s);
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EventBody = DistributiveOmit<ModuleEvent, 'line'>;

/** Hex digits to bigint; through a double when exact (user addresses), which is several times faster. */
function hex(digits: string | undefined): bigint {
	if (digits === undefined) return 0n;
	return digits.length <= 13 ? BigInt(parseInt(digits, 16)) : BigInt('0x' + digits);
}

// Per-page lines are most of what the module logs; they are read by hand,
// without regex match arrays, to keep large logs cheap. `cursor` is where the
// last number read ended (one module-level slot instead of a result object).
let cursor = 0;

function decimalAt(s: string, i: number, end: number): number {
	let v = 0;
	let j = i;
	for (; j < end; j++) {
		const c = s.charCodeAt(j);
		if (c < 0x30 || c > 0x39) break;
		v = v * 10 + (c - 0x30);
	}
	cursor = j;
	return j === i ? -1 : v;
}

function hexAt(s: string, i: number, end: number): bigint | undefined {
	if (s.charCodeAt(i) === 0x30 && s.charCodeAt(i + 1) === 0x78) i += 2;
	let v = 0;
	let j = i;
	for (; j < end; j++) {
		const c = s.charCodeAt(j);
		const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
		if (d < 0) break;
		v = v * 16 + d;
	}
	cursor = j;
	if (j === i) return undefined;
	return j - i <= 13 ? BigInt(v) : BigInt('0x' + s.slice(i, j));
}

function blankTo(s: string, i: number, end: number): boolean {
	for (; i < end; i++) {
		const c = s.charCodeAt(i);
		if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
	}
	return true;
}

let pageIndex = 0;

/** "<literal><index> at <address>" (inserted page, fault-in page, remap page): the address, index in pageIndex. */
function pageAt(s: string, i: number, end: number, literal: string): bigint | undefined {
	if (!s.startsWith(literal, i)) return undefined;
	pageIndex = decimalAt(s, i + literal.length, end);
	if (pageIndex < 0 || !s.startsWith(' at ', cursor)) return undefined;
	const address = hexAt(s, cursor + 4, end);
	if (address === undefined || !blankTo(s, cursor, end)) return undefined;
	return address;
}

function zapAt(s: string, i: number, end: number): bigint | undefined {
	while (s.charCodeAt(i) === 0x20) i++;
	if (!s.startsWith('zap_vma_ptes addr 0x', i)) return undefined;
	const address = hexAt(s, i + 20, end);
	return address !== undefined && blankTo(s, cursor, end) ? address : undefined;
}

/** Adds ts (when known) and line to an event body, in that key order. */
function finish(body: EventBody, ts: number | undefined, line: string): ModuleEvent {
	const event = body as ModuleEvent;
	if (ts !== undefined) event.ts = ts;
	event.line = line;
	return event;
}

// The per-page events, most of what the module logs, are built whole: the same
// keys in the same order as finish() gives, without growing each object twice.
function pageEvent(type: 'pageInserted' | 'faultIn' | 'remap', index: number, address: bigint, ts: number | undefined, line: string): ModuleEvent {
	return ts !== undefined ? { type, index, address, ts, line } : { type, index, address, line };
}

function zapEvent(address: bigint, ts: number | undefined, line: string): ModuleEvent {
	return ts !== undefined ? { type: 'zap', address, ts, line } : { type: 'zap', address, line };
}

/** The event the module message at s[i, end) (prefix already skipped) describes. */
function parseEventAt(s: string, i: number, end: number, bare: boolean, ts: number | undefined, line: string): ModuleEvent | undefined {
	const body = parseBodyAt(s, i, end, bare, ts, line);
	return body === undefined || 'line' in body ? (body as ModuleEvent | undefined) : finish(body, ts, line);
}

/** The event (or its body, without ts and line) the module message at s[i, end) (prefix already skipped) describes. */
function parseBodyAt(s: string, i: number, end: number, bare: boolean, ts: number | undefined, line: string): EventBody | ModuleEvent | undefined {
	let m: RegExpExecArray | null;
	let address: bigint | undefined;
	switch (s.charCodeAt(i)) {
		case 0x76 /* v */:
			if ((m = at(MAP_START, s, i)))
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
			if ((address = pageAt(s, i, end, 'inserted page ')) !== undefined) return pageEvent('pageInserted', pageIndex, address, ts, line);
			break;
		case 0x63 /* c */:
			if ((m = at(MAP_COMPLETE, s, i))) return { type: 'mapComplete', pages: Number(m[1]) };
			break;
		case 0x20 /* ' ' */:
			if ((address = zapAt(s, i, end)) !== undefined) return zapEvent(address, ts, line);
			break;
		case 0x7a /* z */:
			if ((m = at(ZAP_NOOP, s, i))) return { type: 'zapNoop', address: hex(m[1]), pages: Number(m[2]) };
			if ((address = zapAt(s, i, end)) !== undefined) return zapEvent(address, ts, line);
			break;
	}
	if (bare) return undefined;
	switch (s.charCodeAt(i)) {
		case 0x66 /* f */:
			if ((address = pageAt(s, i, end, 'fault-in page ')) !== undefined) return pageEvent('faultIn', pageIndex, address, ts, line);
			if ((m = at(FREED, s, i))) return { type: 'freed', pages: Number(m[1]) };
			break;
		case 0x72 /* r */:
			if ((address = pageAt(s, i, end, 'remap page ')) !== undefined) return pageEvent('remap', pageIndex, address, ts, line);
			break;
		case 0x6d /* m */:
			if ((m = at(MAP_FAILED, s, i))) return { type: 'mapFailed', index: Number(m[1]), error: Number(m[2]) };
			break;
		case 0x6c /* l */:
			if ((m = at(LOADED, s, i))) return { type: 'loaded', major: Number(m[1]) };
			break;
		case 0x75 /* u */:
			if (at(UNLOADED, s, i)) return { type: 'unloaded' };
			break;
		default:
			if ((m = at(SUPPRESSED, s, i))) return { type: 'suppressed', count: Number(m[1]) };
	}
	return { type: 'other', text: s.slice(i, end) };
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
 * The module event of the message at s[start, end) of a larger text (a whole
 * log), or undefined. `candidate` is eventCandidate(s, start).
 */
export function parseModuleEventAt(s: string, start: number, end: number, candidate: 1 | 2, ts: number | undefined, line: string): ModuleEvent | undefined {
	// A regex anchored with $ must not run past this line when s holds more than one.
	const nl = s.indexOf('\n', start);
	if (nl >= 0 && nl < end) end = nl;
	return parseEventAt(s, candidate === 1 ? start + MODULE_PREFIX.length : start, end, candidate === 2, ts, line);
}

/**
 * Parse a kernel message (log prefixes already removed) as a module event.
 * `line` is kept as the event's raw line (defaults to `message`).
 */
export function parseModuleEvent(message: string, ts?: number, line: string = message): ModuleEvent | undefined {
	const candidate = eventCandidate(message, 0);
	if (candidate === 0) return undefined;
	return parseModuleEventAt(message, 0, message.length, candidate, ts, line);
}
