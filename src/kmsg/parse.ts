// Kernel log -> module events and crash reports, for plain text (any of the
// shapes text.ts knows) and for /dev/kmsg records. The hot loop works on
// indices into the input and only copies lines it keeps: logs of hundreds of
// megabytes go through here.

import { eventCandidate, parseModuleEventAt, type ModuleEvent, type TimeSlot } from './events.js';
import { kmsgHeaderEnd, unescapeKmsg, type KmsgRecord } from './record.js';
import { matchHeadline } from './report-lines.js';
import { CallerReportAssembler, type CrashReport } from './reports.js';
import { embeddedTimestamp, inlineCodeLogStart, isDigit, newLineScan, scanLine, stripAnsi } from './text.js';

export interface KernelLog {
	events: ModuleEvent[];
	reports: CrashReport[];
	/** What the input looked like: tells a log without reports from something that is not a log at all. */
	input: InputStats;
}

/** Lines longer than this are cut for parsing (printk's own messages are at most 1 KiB). */
export const MAX_LINE = 64 * 1024;

export interface InputStats {
	/** Lines (or records) seen. */
	lines: number;
	/** Characters seen. */
	chars: number;
	/** The longest line in characters, before cutting. */
	longestLine: number;
	/** Lines longer than MAX_LINE: only their first MAX_LINE characters were parsed. */
	longLines: number;
	/** NUL bytes or many control or undecodable characters in the first 64 KiB: binary data, not text. */
	binary: boolean;
}

export interface KernelLogParserOptions {
	/** Called for each module event as soon as it is parsed. */
	onEvent?: (event: ModuleEvent) => void;
	/** Called for each crash report when it is complete. */
	onReport?: (report: CrashReport) => void;
}

const SPACE = 0x20;
const LOST_BRACKET_START = /^\d{1,8}\.\d{6}\] /;

/** Incremental parser: feed text chunks, lines or records, then end(). */
export class KernelLogParser {
	readonly events: ModuleEvent[] = [];
	readonly reports: CrashReport[] = [];
	private readonly scan = newLineScan();
	// The current line's timestamp (NaN: none), for message(): kept in a number
	// field instead of passed along, so that it is not boxed anew for every line.
	private readonly time: TimeSlot = { ts: NaN };
	private readonly assembler: CallerReportAssembler;
	// The printk caller id of the line being parsed ("T1234", "C1"), when shown.
	private caller: string | undefined;
	private partial = '';
	// Set after a "6,123,456,-;text" line: " KEY=value" lines that follow are its dictionary.
	private inKmsgDump = false;
	// Fragments of a continued line (flag 'c' then '+') from 3.x-4.x kernels.
	private fragment: { text: string; ts: number; caller: string | undefined } | undefined;
	// The previous timestamped message, to drop the copies a second console prints.
	private prev: { s: string; start: number; end: number; ts: number } | undefined;
	// Set once a headline came twice in a row with the same timestamp: two consoles write into this log.
	private twoConsoles = false;
	// Characters of the pending partial line, including those beyond MAX_LINE that were not kept.
	private partialLength = 0;
	private sampled = 0;
	// The next backtick in tickSource at or after tickFrom (see nextTick()).
	private tickSource = '';
	private tickFrom = 0;
	private tickAt = 0;
	private oddChars = 0;
	readonly input: InputStats = { lines: 0, chars: 0, longestLine: 0, longLines: 0, binary: false };

	constructor(private readonly options: KernelLogParserOptions = {}) {
		this.assembler = new CallerReportAssembler((report) => {
			this.reports.push(report);
			this.options.onReport?.(report);
		});
	}

	/**
	 * Feed a chunk of text; a trailing partial line waits for the next chunk or
	 * end(). Memory stays bounded whatever comes: a line is kept up to MAX_LINE
	 * characters, the rest of it is counted and dropped.
	 */
	write(chunk: string): void {
		this.inspect(chunk);
		const first = chunk.indexOf('\n');
		if (first < 0) {
			this.keepPartial(chunk, 0, chunk.length);
			return;
		}
		let from = 0;
		if (this.partialLength > 0) {
			// the pending line ends in this chunk
			this.keepPartial(chunk, 0, first);
			this.completePartial();
			from = first + 1;
		}
		const last = chunk.lastIndexOf('\n');
		if (last >= from) this.feedLines(from === 0 && last === chunk.length - 1 ? chunk : chunk.slice(from, last + 1));
		this.keepPartial(chunk, last + 1, chunk.length);
	}

	/** Feed complete text (all lines, the last one may lack its newline). */
	text(text: string): void {
		this.inspect(text);
		this.feedLines(text);
	}

	private feedLines(text: string): void {
		if (text.includes('\x1b')) text = stripAnsi(text);
		const n = text.length;
		const input = this.input;
		let pos = 0;
		while (pos < n) {
			let nl = text.indexOf('\n', pos);
			if (nl < 0) nl = n;
			const length = nl - pos;
			input.lines++;
			if (length > input.longestLine) input.longestLine = length;
			if (length > MAX_LINE) {
				input.longLines++;
				this.feed(text, pos, pos + MAX_LINE, undefined);
			} else if (length > 100 && text.charCodeAt(pos) === 0x5b /* [ */) {
				// A line holds a re-flowed second one only if it holds " [" past the timestamp and a
				// caller id ("[ 1234.567890] [ T1234] "). Searched as "[", which is rare inside a line
				// and starts the next one (blanks, which start " [", are everywhere): each search
				// ends by the next timestamped line.
				let open = text.indexOf('[', pos + 28);
				while (open > 0 && open < nl && text.charCodeAt(open - 1) !== SPACE) open = text.indexOf('[', open + 1);
				if (open > 0 && open < nl) this.feedJoined(text.slice(pos, nl));
				else this.feed(text, pos, nl, undefined);
			} else if (this.nextTick(text, pos) < nl && this.feedInlineCode(text, pos, nl)) {
				// done: a kernel line quoted as inline code inside a sentence
			} else if (length > 100 && this.feedFlattened(text, pos, nl)) {
				// done: text whose line breaks were lost (a PDF's or a web page's), records after some prose
			} else if (length > 30 && isDigit(text.charCodeAt(pos)) && LOST_BRACKET_START.test(text.slice(pos, pos + 20))) {
				// A console that lost the "[" of its timestamps can lose a newline too: the next record
				// then follows on the same line ("...ncpus=4) 105.845757] rcu: INFO: ..."); each part alone.
				this.feedLostBracket(text.slice(pos, nl));
			} else this.feed(text, pos, nl, undefined);
			pos = nl + 1;
		}
	}

	/**
	 * A long timestamped line that may hold several re-flowed ones
	 * ("[ 1.0] a [ 1.1] b"): each part alone. The line is its own string so
	 * that the searches stop at its end.
	 */
	private feedJoined(line: string): void {
		let start = 0;
		for (;;) {
			const next = embeddedTimestamp(line, start + 12, line.length);
			if (next < 0) break;
			this.feed(line, start, next - 1, undefined);
			start = next;
		}
		this.feed(line, start, line.length, undefined);
	}

	/**
	 * A long line that does not start with a timestamp but holds two or more
	 * ("... (x86_64) [ 266.491864] ------------[ cut here ]------------ [ 266.491904] kernel BUG at ..."):
	 * what comes before the first, then each record alone. One timestamp is not
	 * enough: a syslog line carries the kernel's own ("host kernel: [ 12.3] ...").
	 */
	private feedFlattened(text: string, pos: number, nl: number): boolean {
		const first = embeddedTimestamp(text, pos, nl);
		if (first < 0 || embeddedTimestamp(text, first + 12, nl) < 0) return false;
		const line = text.slice(pos, nl);
		this.feed(line, 0, first - pos - 1, undefined);
		const rest = line.slice(first - pos);
		this.feedJoined(rest);
		return true;
	}

	/**
	 * The next backtick at or after `pos` in `text` (text.length: none), looked up
	 * once and kept until a line is past it: most logs hold none, and a search per
	 * line would run to the end of the input each time.
	 */
	private nextTick(text: string, pos: number): number {
		if (text !== this.tickSource || pos < this.tickFrom || this.tickAt < pos) {
			const k = text.indexOf('`', pos);
			this.tickSource = text;
			this.tickFrom = pos;
			this.tickAt = k < 0 ? text.length : k;
		}
		return this.tickAt;
	}

	/** A line of prose with a kernel line in inline code after its first backtick: the prose, then the kernel line. */
	private feedInlineCode(text: string, pos: number, nl: number): boolean {
		const tick = this.nextTick(text, pos);
		if (tick === pos) return false; // at the line's start: scanLine() knows that shape
		const start = inlineCodeLogStart(text, tick, nl);
		if (start < 0) return false;
		let end = nl;
		while (end > start && (text.charCodeAt(end - 1) === 0x0d || text.charCodeAt(end - 1) === SPACE)) end--;
		if (text.charCodeAt(end - 1) === 0x60 /* ` */) end--;
		this.feed(text, pos, tick, undefined);
		this.feed(text, start, end, undefined);
		return true;
	}

	/** A line that starts with a timestamp without its "[" ("42.834124] "): split where another one starts. */
	private feedLostBracket(line: string): void {
		let start = 0;
		const next = / \d{1,8}\.\d{6}\] /g;
		next.lastIndex = 14;
		for (let m = next.exec(line); m; m = next.exec(line)) {
			this.feed(line, start, m.index, undefined);
			start = m.index + 1;
		}
		this.feed(line, start, line.length, undefined);
	}

	private keepPartial(chunk: string, from: number, to: number): void {
		if (to <= from) return;
		this.partialLength += to - from;
		const room = MAX_LINE - this.partial.length;
		if (room > 0) this.partial += chunk.slice(from, from + Math.min(room, to - from));
	}

	private completePartial(): void {
		const length = this.partialLength;
		const line = this.partial;
		this.partial = '';
		this.partialLength = 0;
		const input = this.input;
		input.lines++;
		if (length > input.longestLine) input.longestLine = length;
		if (length > MAX_LINE) input.longLines++;
		const clean = line.includes('\x1b') ? stripAnsi(line) : line;
		this.feed(clean, 0, clean.length, undefined);
	}

	/** Counts characters; NULs or odd characters in the first 64 KiB mark binary input. */
	private inspect(text: string): void {
		this.input.chars += text.length;
		if (this.input.binary || this.sampled >= 65536) return;
		if ((text.length > 65536 ? text.slice(0, 65536) : text).includes('\0')) {
			this.input.binary = true;
			return;
		}
		const n = Math.min(text.length, 65536 - this.sampled);
		for (let i = 0; i < n; i++) {
			const c = text.charCodeAt(i);
			if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x1b) || c === 0xfffd) this.oddChars++;
		}
		this.sampled += n;
		if (this.oddChars * 20 > this.sampled && this.sampled >= 64) this.input.binary = true;
	}

	/** Feed one line of text; `ts` (seconds) overrides what the line's prefix says. */
	line(line: string, ts?: number): void {
		this.inspect(line);
		const input = this.input;
		input.lines++;
		if (line.length > input.longestLine) input.longestLine = line.length;
		if (line.length > MAX_LINE) {
			input.longLines++;
			line = line.slice(0, MAX_LINE);
		}
		const clean = stripAnsi(line);
		this.feed(clean, 0, clean.length, ts);
	}

	/** Feed one /dev/kmsg record (its text may hold several lines). */
	record(record: KmsgRecord): void {
		const ts = record.tsUsec / 1e6;
		this.input.lines++;
		this.input.chars += record.text.length;
		if (record.text.length > this.input.longestLine) this.input.longestLine = record.text.length;
		if (record.flag === 'c' || record.flag === '+') {
			if (record.flag === '+' && this.fragment) {
				this.fragment.text += record.text;
				return;
			}
			this.flushFragment();
			this.fragment = { text: record.text, ts, caller: record.caller };
			return;
		}
		this.flushFragment();
		this.caller = record.caller;
		this.recordText(record.text, ts);
	}

	/** The input went quiet (live log): emit a report that is past its end marker. */
	idle(): void {
		this.assembler.idle();
	}

	/** Flush what is pending and return everything parsed so far. */
	end(): KernelLog {
		if (this.partialLength > 0) this.completePartial();
		this.flushFragment();
		this.assembler.finish();
		return { events: this.events, reports: this.reports, input: this.input };
	}

	private flushFragment(): void {
		const fragment = this.fragment;
		if (!fragment) return;
		this.fragment = undefined;
		this.caller = fragment.caller;
		this.recordText(fragment.text, fragment.ts);
	}

	private recordText(text: string, ts: number): void {
		if (text.includes('\n')) {
			for (const l of text.split('\n')) {
				this.time.ts = ts;
				this.message(l, 0, l.length, l);
			}
		} else {
			this.time.ts = ts;
			this.message(text, 0, text.length, text);
		}
	}

	/** One line of plain text: find the message, then classify it. */
	private feed(s: string, a: number, b: number, tsOverride: number | undefined): void {
		const scan = scanLine(s, a, b, this.scan);
		this.caller = scan.caller;
		if (!scan.kernel) {
			this.assembler.noise(this.caller);
			return;
		}
		const start = scan.start;
		const end = scan.end;
		const scanTs = scan.ts;
		if (scanTs === scanTs /* not NaN */) {
			const prev = this.prev;
			if (prev && prev.ts === scanTs && prev.end - prev.start === end - start && sameText(prev.s, prev.start, s, start, end - start)) {
				// The same message with the same timestamp again: a second console's copy. Identical
				// frames can follow each other legitimately, so copies are only dropped once a
				// headline came twice.
				if (this.twoConsoles) return;
				if (matchHeadline(s.slice(start, end).trim())) {
					this.twoConsoles = true;
					return;
				}
			}
			if (prev) {
				prev.s = s;
				prev.start = start;
				prev.end = end;
				prev.ts = scanTs;
			} else this.prev = { s, start, end, ts: scanTs };
		}
		const c = s.charCodeAt(start);
		if (c >= 0x30 && c <= 0x39) {
			const semi = kmsgHeaderEnd(s, start, end);
			if (semi > 0) {
				this.inKmsgDump = true;
				const header = s.slice(start, semi).split(',');
				const recordTs = tsOverride ?? Number(header[2]) / 1e6;
				const text = unescapeKmsg(s.slice(semi + 1, end));
				if (!text.includes('\n')) {
					this.time.ts = recordTs;
					this.message(text, 0, text.length, s.slice(a, scan.end));
				} else
					for (const l of text.split('\n')) {
						this.time.ts = recordTs;
						this.message(l, 0, l.length, l);
					}
				return;
			}
		} else if (c === SPACE && this.inKmsgDump && /^ [A-Z_]+=/.test(s.slice(start, start + 40))) {
			return;
		}
		// not `tsOverride ?? scanTs`: that makes one value of a double and undefined, a heap number per line
		if (tsOverride === undefined) this.time.ts = scanTs;
		else this.time.ts = tsOverride;
		this.message(s, start, end, undefined, a);
	}

	/**
	 * A message at s[start, end), its timestamp in this.time. `raw` is the line as
	 * it appeared, or undefined to take s[rawStart, end) lazily (only lines that
	 * are kept get copied).
	 */
	private message(s: string, start: number, end: number, raw: string | undefined, rawStart = start): void {
		const candidate = eventCandidate(s, start);
		if (candidate !== 0) {
			const line = raw ?? s.slice(rawStart, end);
			const event = parseModuleEventAt(s, start, end, candidate, this.time, line);
			if (event) {
				this.events.push(event);
				this.options.onEvent?.(event);
				// The module's lines are never part of a kernel report, but they do end one.
				this.assembler.noise(this.caller);
				return;
			}
		}
		if (this.assembler.wantsAt(s, start, end)) {
			const ts = this.time.ts;
			this.assembler.line(this.caller, s.slice(start, end), raw, ts === ts ? ts : undefined, s, rawStart, end);
		}
	}
}

function sameText(a: string, i: number, b: string, j: number, n: number): boolean {
	for (let k = 0; k < n; k++) if (a.charCodeAt(i + k) !== b.charCodeAt(j + k)) return false;
	return true;
}

/** Parse a plain-text kernel log (dmesg, journalctl -k, syslog, serial console, kmsg dump). */
export function parseKernelLog(text: string): KernelLog {
	const parser = new KernelLogParser();
	parser.text(text);
	return parser.end();
}

/** Parse /dev/kmsg records (from KmsgCapture or parseKmsgRecord). */
export function parseRecords(records: Iterable<KmsgRecord>): KernelLog {
	const parser = new KernelLogParser();
	for (const record of records) parser.record(record);
	return parser.end();
}
