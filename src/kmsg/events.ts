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
// Only for the module's rare lines; the frequent ones are read by hand below.
const ZAP_NOOP = /zap_vma_ptes had no effect at 0x([0-9a-f]+): vma is not VM_PFNMAP \((\d+) pages\)[ \t\r]*$/my;
const MAP_FAILED = /map failed at page (-?\d+): error (-?\d+)[ \t\r]*$/my;
const SUPPRESSED = /(\d+) more per-page lines suppressed[ \t\r]*$/my;
const LOADED = /loaded: major (\d+)[ \t\r]*$/my;
const UNLOADED = /unloaded[ \t\r]*$/my;

function at(re: RegExp, s: string, i: number): RegExpExecArray | null {
	re.lastIndex = i;
	return re.exec(s);
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EventBody = DistributiveOmit<ModuleEvent, 'line'>;

/**
 * Where the parser keeps the current line's timestamp in seconds (NaN: none).
 * Events read it from here straight into their own field: a double passed as
 * an argument would be boxed into a new heap number on every call.
 */
export interface TimeSlot {
	ts: number;
}

// A 64-bit integer from its two 32-bit halves: written through a typed array,
// read back as one bigint. BigInt(aDouble) goes through the runtime and costs
// several times more, and the module prints an address on most of its lines.
const u64 = new BigUint64Array(1);
const u64Halves = new Uint32Array(u64.buffer);
const LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

function bigFromHalves(hi: number, lo: number): bigint {
	u64Halves[LOW] = lo;
	u64Halves[1 - LOW] = hi;
	return u64[0] as bigint;
}

/** An exact non-negative integer below 2^53 as a bigint. */
function bigFromSafe(v: number): bigint {
	const lo = v >>> 0;
	return bigFromHalves((v - lo) / 4294967296, lo);
}

/** Hex digits to bigint (ZAP_NOOP's capture). */
function hex(digits: string | undefined): bigint {
	if (digits === undefined) return 0n;
	return digits.length <= 13 ? bigFromSafe(parseInt(digits, 16)) : BigInt('0x' + digits);
}

// The module's frequent lines are read by hand, without regex match arrays or
// substrings, to keep large logs cheap. `cursor` is where the last number read
// ended (one module-level slot instead of a result object).
let cursor = 0;

/** The decimal digits at s[i, end) as a number (-1 when there are none), the same value as Number() gives. */
function decimalAt(s: string, i: number, end: number): number {
	let v = 0;
	let j = i;
	for (; j < end; j++) {
		const c = s.charCodeAt(j);
		if (c < 0x30 || c > 0x39) break;
		v = v * 10 + (c - 0x30);
	}
	cursor = j;
	if (j === i) return -1;
	// beyond 15 digits the running sum may round more than once
	return j - i <= 15 ? v : Number(s.slice(i, j));
}

/** The decimal digits at s[i, end) as a bigint (undefined when there are none). */
function bigDecimalAt(s: string, i: number, end: number): bigint | undefined {
	const v = decimalAt(s, i, end);
	if (v < 0) return undefined;
	return cursor - i <= 15 ? bigFromSafe(v) : BigInt(s.slice(i, cursor));
}

/** The hex digits at s[i, end) after an optional 0x, as a bigint (undefined when there are none). */
function hexAt(s: string, i: number, end: number): bigint | undefined {
	if (s.charCodeAt(i) === 0x30 && s.charCodeAt(i + 1) === 0x78) i += 2;
	// two 32-bit halves, shifted along digit by digit: integer arithmetic only
	let hi = 0;
	let lo = 0;
	let j = i;
	for (; j < end; j++) {
		const c = s.charCodeAt(j);
		const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
		if (d < 0) break;
		hi = ((hi << 4) | (lo >>> 28)) >>> 0;
		lo = ((lo << 4) | d) >>> 0;
	}
	cursor = j;
	if (j === i) return undefined;
	if (j - i > 16) return BigInt('0x' + s.slice(i, j));
	// written here, not through bigFromHalves(): a half above 2^31 passed to a call is boxed
	u64Halves[LOW] = lo;
	u64Halves[1 - LOW] = hi;
	return u64[0] as bigint;
}

function blankTo(s: string, i: number, end: number): boolean {
	for (; i < end; i++) {
		const c = s.charCodeAt(i);
		if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
	}
	return true;
}

/** The decimal after `literal` at s[i] (-1 when either is missing); `cursor` is then past the digits. */
function numberAfter(s: string, i: number, end: number, literal: string): number {
	if (!s.startsWith(literal, i)) return -1;
	return decimalAt(s, i + literal.length, end);
}

let pageIndex = 0;

/** "<literal><index> at <address>" (inserted page, fault-in page, remap page): the address, index in pageIndex. */
function pageAt(s: string, i: number, end: number, literal: string): bigint | undefined {
	pageIndex = numberAfter(s, i, end, literal);
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

/** "<literal><n><tail>" and blanks to the end: n, else -1 ("completed inserting 4 pages", "freed 4 pages"). */
function countLine(s: string, i: number, end: number, literal: string, tail: string): number {
	const n = numberAfter(s, i, end, literal);
	return n >= 0 && s.startsWith(tail, cursor) && blankTo(s, cursor + tail.length, end) ? n : -1;
}

/** Adds ts (when known) and line to an event body, in that key order. */
function finish(body: EventBody, time: TimeSlot, line: string): ModuleEvent {
	const event = body as ModuleEvent;
	const ts = time.ts;
	if (ts === ts) event.ts = ts;
	event.line = line;
	return event;
}

// The module's frequent events are built whole: the same keys in the same
// order as finish() gives, without growing each object twice. `ts === ts`:
// not NaN.
function pageEvent(type: 'pageInserted' | 'faultIn' | 'remap', index: number, address: bigint, time: TimeSlot, line: string): ModuleEvent {
	const ts = time.ts;
	return ts === ts ? { type, index, address, ts, line } : { type, index, address, line };
}

function zapEvent(address: bigint, time: TimeSlot, line: string): ModuleEvent {
	const ts = time.ts;
	return ts === ts ? { type: 'zap', address, ts, line } : { type: 'zap', address, line };
}

function countEvent(type: 'mapComplete' | 'freed', pages: number, time: TimeSlot, line: string): ModuleEvent {
	const ts = time.ts;
	return ts === ts ? { type, pages, ts, line } : { type, pages, line };
}

/** "vma->vm_end N vm_start N len N pages N vm_pgoff N" */
function mapStartAt(s: string, i: number, end: number, time: TimeSlot, line: string): ModuleEvent | undefined {
	if (!s.startsWith('vma->vm_end ', i)) return undefined;
	const vmEnd = bigDecimalAt(s, i + 12, end);
	if (vmEnd === undefined || !s.startsWith(' vm_start ', cursor)) return undefined;
	const vmStart = bigDecimalAt(s, cursor + 10, end);
	if (vmStart === undefined) return undefined;
	const len = numberAfter(s, cursor, end, ' len ');
	if (len < 0) return undefined;
	const pages = numberAfter(s, cursor, end, ' pages ');
	if (pages < 0) return undefined;
	const pgoff = numberAfter(s, cursor, end, ' vm_pgoff ');
	if (pgoff < 0 || !blankTo(s, cursor, end)) return undefined;
	const ts = time.ts;
	return ts === ts ? { type: 'mapStart', vmStart, vmEnd, len, pages, pgoff, ts, line } : { type: 'mapStart', vmStart, vmEnd, len, pages, pgoff, line };
}

/** The event the module message at s[i, end) (prefix already skipped) describes. */
function parseEventAt(s: string, i: number, end: number, bare: boolean, time: TimeSlot, line: string): ModuleEvent | undefined {
	let address: bigint | undefined;
	let n: number;
	let event: ModuleEvent | undefined;
	switch (s.charCodeAt(i)) {
		case 0x76 /* v */:
			if ((event = mapStartAt(s, i, end, time, line))) return event;
			break;
		case 0x69 /* i */:
			if ((address = pageAt(s, i, end, 'inserted page ')) !== undefined) return pageEvent('pageInserted', pageIndex, address, time, line);
			break;
		case 0x63 /* c */:
			if ((n = countLine(s, i, end, 'completed inserting ', ' pages')) >= 0) return countEvent('mapComplete', n, time, line);
			break;
		case 0x20 /* ' ' */:
			if ((address = zapAt(s, i, end)) !== undefined) return zapEvent(address, time, line);
			break;
		case 0x7a /* z */: {
			const m = at(ZAP_NOOP, s, i);
			if (m) return finish({ type: 'zapNoop', address: hex(m[1]), pages: Number(m[2]) }, time, line);
			if ((address = zapAt(s, i, end)) !== undefined) return zapEvent(address, time, line);
			break;
		}
	}
	if (bare) return undefined;
	const body = parseRareAt(s, i, end, time, line);
	return body === undefined || 'line' in body ? (body as ModuleEvent | undefined) : finish(body, time, line);
}

/** The module's other lines (after the prefix): the event, or its body without ts and line. */
function parseRareAt(s: string, i: number, end: number, time: TimeSlot, line: string): EventBody | ModuleEvent {
	let m: RegExpExecArray | null;
	let address: bigint | undefined;
	let n: number;
	switch (s.charCodeAt(i)) {
		case 0x66 /* f */:
			if ((address = pageAt(s, i, end, 'fault-in page ')) !== undefined) return pageEvent('faultIn', pageIndex, address, time, line);
			if ((n = countLine(s, i, end, 'freed ', ' pages')) >= 0) return countEvent('freed', n, time, line);
			break;
		case 0x72 /* r */:
			if ((address = pageAt(s, i, end, 'remap page ')) !== undefined) return pageEvent('remap', pageIndex, address, time, line);
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
 * The module event of the message at s[start, end), one line of a larger text
 * (a whole log), or undefined. `candidate` is eventCandidate(s, start); the
 * timestamp is read from `time`.
 */
export function parseModuleEventAt(s: string, start: number, end: number, candidate: 1 | 2, time: TimeSlot, line: string): ModuleEvent | undefined {
	return parseEventAt(s, candidate === 1 ? start + MODULE_PREFIX.length : start, end, candidate === 2, time, line);
}

/**
 * Parse a kernel message (log prefixes already removed) as a module event.
 * `line` is kept as the event's raw line (defaults to `message`).
 */
export function parseModuleEvent(message: string, ts?: number, line: string = message): ModuleEvent | undefined {
	const candidate = eventCandidate(message, 0);
	if (candidate === 0) return undefined;
	// the event is the message's first line
	const nl = message.indexOf('\n');
	return parseModuleEventAt(message, 0, nl < 0 ? message.length : nl, candidate, { ts: ts ?? NaN }, line);
}
