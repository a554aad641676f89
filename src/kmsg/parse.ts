// Kernel log -> module events and crash reports, for plain text (any of the
// shapes text.ts knows) and for /dev/kmsg records. The hot loop works on
// indices into the input and only copies lines it keeps: logs of hundreds of
// megabytes go through here.

import { eventCandidate, parseModuleEventAt, type ModuleEvent } from './events.js';
import { kmsgHeaderEnd, unescapeKmsg, type KmsgRecord } from './record.js';
import { matchHeadline } from './report-lines.js';
import { ReportAssembler, type CrashReport } from './reports.js';
import { newLineScan, scanLine, stripAnsi } from './text.js';

export interface KernelLog {
	events: ModuleEvent[];
	reports: CrashReport[];
}

export interface KernelLogParserOptions {
	/** Called for each module event as soon as it is parsed. */
	onEvent?: (event: ModuleEvent) => void;
	/** Called for each crash report when it is complete. */
	onReport?: (report: CrashReport) => void;
}

const SPACE = 0x20;

/** Incremental parser: feed text chunks, lines or records, then end(). */
export class KernelLogParser {
	readonly events: ModuleEvent[] = [];
	readonly reports: CrashReport[] = [];
	private readonly scan = newLineScan();
	private readonly assembler: ReportAssembler;
	private partial = '';
	// Set after a "6,123,456,-;text" line: " KEY=value" lines that follow are its dictionary.
	private inKmsgDump = false;
	// Fragments of a continued line (flag 'c' then '+') from 3.x-4.x kernels.
	private fragment: { text: string; ts: number } | undefined;
	// The previous timestamped message, to drop the copies a second console prints.
	private prev: { s: string; start: number; end: number; ts: number } | undefined;
	// Set once a headline came twice in a row with the same timestamp: two consoles write into this log.
	private twoConsoles = false;

	constructor(private readonly options: KernelLogParserOptions = {}) {
		this.assembler = new ReportAssembler((report) => {
			this.reports.push(report);
			this.options.onReport?.(report);
		});
	}

	/** Feed a chunk of text; a trailing partial line waits for the next chunk or end(). */
	write(chunk: string): void {
		let text = this.partial + chunk;
		const last = text.lastIndexOf('\n');
		if (last < 0) {
			this.partial = text;
			return;
		}
		this.partial = text.slice(last + 1);
		text = text.slice(0, last + 1);
		this.text(text);
	}

	/** Feed complete text (all lines, the last one may lack its newline). */
	text(text: string): void {
		if (text.includes('\x1b')) text = stripAnsi(text);
		const n = text.length;
		let pos = 0;
		while (pos < n) {
			let nl = text.indexOf('\n', pos);
			if (nl < 0) nl = n;
			this.feed(text, pos, nl, undefined);
			pos = nl + 1;
		}
	}

	/** Feed one line of text; `ts` (seconds) overrides what the line's prefix says. */
	line(line: string, ts?: number): void {
		const clean = stripAnsi(line);
		this.feed(clean, 0, clean.length, ts);
	}

	/** Feed one /dev/kmsg record (its text may hold several lines). */
	record(record: KmsgRecord): void {
		const ts = record.tsUsec / 1e6;
		if (record.flag === 'c' || record.flag === '+') {
			if (record.flag === '+' && this.fragment) {
				this.fragment.text += record.text;
				return;
			}
			this.flushFragment();
			this.fragment = { text: record.text, ts };
			return;
		}
		this.flushFragment();
		this.recordText(record.text, ts);
	}

	/** The input went quiet (live log): emit a report that is past its end marker. */
	idle(): void {
		this.assembler.idle();
	}

	/** Flush what is pending and return everything parsed so far. */
	end(): KernelLog {
		if (this.partial) {
			const rest = this.partial;
			this.partial = '';
			this.text(rest);
		}
		this.flushFragment();
		this.assembler.finish();
		return { events: this.events, reports: this.reports };
	}

	private flushFragment(): void {
		const fragment = this.fragment;
		if (!fragment) return;
		this.fragment = undefined;
		this.recordText(fragment.text, fragment.ts);
	}

	private recordText(text: string, ts: number): void {
		if (text.includes('\n')) for (const l of text.split('\n')) this.message(l, 0, l.length, ts, l);
		else this.message(text, 0, text.length, ts, text);
	}

	/** One line of plain text: find the message, then classify it. */
	private feed(s: string, a: number, b: number, tsOverride: number | undefined): void {
		const scan = scanLine(s, a, b, this.scan);
		if (!scan.kernel) {
			this.assembler.noise();
			return;
		}
		const start = scan.start;
		const end = scan.end;
		const ts = tsOverride ?? scan.ts;
		if (scan.ts !== undefined) {
			const prev = this.prev;
			if (prev && prev.ts === scan.ts && prev.end - prev.start === end - start && sameText(prev.s, prev.start, s, start, end - start)) {
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
				prev.ts = scan.ts;
			} else this.prev = { s, start, end, ts: scan.ts };
		}
		const c = s.charCodeAt(start);
		if (c >= 0x30 && c <= 0x39) {
			const semi = kmsgHeaderEnd(s, start, end);
			if (semi > 0) {
				this.inKmsgDump = true;
				const header = s.slice(start, semi).split(',');
				const recordTs = tsOverride ?? Number(header[2]) / 1e6;
				const text = unescapeKmsg(s.slice(semi + 1, end));
				if (text.includes('\n')) for (const l of text.split('\n')) this.message(l, 0, l.length, recordTs, l);
				else this.message(text, 0, text.length, recordTs, s.slice(a, scan.end));
				return;
			}
		} else if (c === SPACE && this.inKmsgDump && /^ [A-Z_]+=/.test(s.slice(start, start + 40))) {
			return;
		}
		this.message(s, start, end, ts, undefined, a);
	}

	/**
	 * A message at s[start, end). `raw` is the line as it appeared, or undefined to
	 * take s[rawStart, end) lazily (only lines that are kept get copied).
	 */
	private message(s: string, start: number, end: number, ts: number | undefined, raw: string | undefined, rawStart = start): void {
		const candidate = eventCandidate(s, start);
		if (candidate !== 0) {
			const line = raw ?? s.slice(rawStart, end);
			const event = parseModuleEventAt(s, start, end, candidate, ts, line);
			if (event) {
				this.events.push(event);
				this.options.onEvent?.(event);
				// The module's lines are never part of a kernel report, but they do end one.
				this.assembler.noise();
				return;
			}
		}
		if (this.assembler.wants(s.charCodeAt(start))) {
			this.assembler.line(s.slice(start, end), raw ?? s.slice(rawStart, end), ts);
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
