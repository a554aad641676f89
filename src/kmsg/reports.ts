// Assembles crash reports (oopses, BUGs, WARNINGs, KASAN/UBSAN, lockups,
// panics, bare call traces) from kernel messages fed one line at a time.
// Reports sit among unrelated lines and one log can hold several; a report
// ends at its end marker, at the next headline, or after a run of lines that
// do not look like report content.

import {
	continuesTrace,
	isCutHere,
	endMarker,
	isBodyLine,
	isOopsHeader,
	isRule,
	isSummaryLine,
	matchHeadline,
	parseFrame,
	parseFunctionLine,
	parseModulesLinkedIn,
	parseOldX86Frames,
	parseStackMarker,
	parseTaskLine,
	type Headline,
	type ReportKind,
	type StackFrame,
} from './report-lines.js';

export type { ReportKind, StackFrame } from './report-lines.js';

export interface CrashReport {
	/**
	 * What went wrong; 'trace' is a call trace without a headline (a pasted fragment, a dump_stack()).
	 * An OOM kill is no report: its dump_header() stack (2.6's out_of_memory() one) is not a 'trace' either.
	 */
	kind: ReportKind;
	/** The line naming the problem, log prefixes removed; a wrapped one joined with a blank. */
	headline: string;
	/** Source file and line when the headline names them ("kernel BUG at mm/memory.c:2055!"). */
	file?: string;
	line?: number;
	/** Named in the headline, else the first kernel-mode RIP/PC/NIP/EIP/epc/PSW/ERA line (user-mode RIPs and bare addresses ignored, and for a hung task the other CPUs' NMI backtraces; for 'trace': the top reliable frame). */
	function?: string;
	/** [module] on the line that named the function, else on the first frame below it (arm64's trace starts with the function itself); build ids stripped. */
	module?: string;
	/**
	 * The taint flags exactly as printed after "Tainted: ", inner spaces kept
	 * ("G        W", "G           OE"); absent (null in the corpus JSON) for
	 * "Not tainted" and when no line says. A SLUB debug headline carries it
	 * itself: "BUG kmalloc-64 (Tainted: G    B   ): Poison overwritten".
	 */
	tainted?: string;
	cpu?: number;
	pid?: number;
	comm?: string;
	uid?: number;
	/** Kernel release from the task line ("6.1.0-56-amd64"). */
	release?: string;
	hardware?: string;
	/** The oops header ("invalid opcode: 0000 [#1] PREEMPT SMP NOPTI", "Internal error: Oops - BUG: 0 [#1] SMP"). */
	oops?: string;
	/** "Modules linked in:" list, flags like (O) removed. */
	modules?: string[];
	/**
	 * The report's call trace, in printed order: the frames after its first
	 * "Call Trace:" / "Call trace:" / "Backtrace:" (or KFENCE's access line),
	 * else its first run of frames that no other header ("Allocated by task 1:",
	 * "Preemption disabled at:") introduced.
	 */
	frames: StackFrame[];
	/** Further traces (KASAN alloc/free stacks, NMI backtraces of other CPUs, lockdep chains). */
	moreTraces: StackFrame[][];
	/** Page frame number from a dump_page() line ("page:... pfn:0x1a2b3"), when one was printed. */
	pfn?: number;
	/** An end marker ("---[ end trace ...", "---[ end Kernel panic", KASAN's closing rule) was seen. */
	ended: boolean;
	/** Seconds since boot of the headline, when known. */
	ts?: number;
	/**
	 * The report's lines as they appeared in the input (a trailing CR removed,
	 * terminal escapes stripped): hex dumps (page poisoning, KASAN shadow bytes)
	 * can be decoded from here.
	 */
	lines: string[];
}

/** Consecutive non-report lines after which an open report without end marker is closed. */
const MISS_LIMIT = 8;
/** The same for lockdep reports, whose lock names and scenarios no other report prints. */
const LOOSE_MISS_LIMIT = 40;
/** Seconds of silence after which an open report is closed (timestamps permitting). */
const GAP_SECONDS = 10;
/** Safety cap for reports closed by a rule line (KASAN/UBSAN) whose rule never comes. */
const DELIMITED_MAX_LINES = 2000;
/** No report keeps more lines than this (input of nothing but indented lines would otherwise grow one without end). */
const REPORT_MAX_LINES = 20000;
/** Lines of other callers after which a caller's open report counts as finished (CallerReportAssembler). */
const STALE_LINES = 2000;
/** Lines after "cut here" / a rule / a task line that may precede a headline. */
const PENDING_MAX = 4;

interface Trace {
	frames: StackFrame[];
	/** What introduced it: a call-trace header, another header ("Allocated by task 1:"), nothing. */
	header: 'main' | 'side' | 'none';
}

interface OpenReport {
	report: CrashReport;
	mode: 'body' | 'delimited' | 'summary';
	hasHeader: boolean;
	functionModule: string | undefined;
	traces: Trace[];
	/** The trace frames go to now; a non-frame line that introduces something else ends it. */
	trace: Trace | undefined;
	/** The header seen since the last trace ended, for the next one. */
	header: 'main' | 'side' | undefined;
	context: string | undefined;
	misses: number;
	lastTs: number | undefined;
	/** A task line said "Tainted: ..." or "Not tainted": later ones do not override it. */
	taintSeen: boolean;
	/**
	 * The task line ended inside its taint flags ("Tainted: P        "), blanks
	 * kept: a terminal wrapped it, and the next line may go on with the rest.
	 */
	taintTail?: string | undefined;
	loose: boolean;
	/** Nothing came after the headline yet. */
	fresh: boolean;
	/** The headline was joined and ends in fn+0x../0x..: its " [module]" may come on the next line. */
	awaitModule?: boolean;
	/** Timestamp of the headline's line. */
	headTs: number | undefined;
	/** A repeated title ended without its function: its wrapped second half comes next. */
	skipWrap?: boolean;
	/** Lines without a timestamp in a row, in a report whose lines have them: a mailer's or terminal's wraps. */
	untimed: number;
	/** A hung-task report reached the detector's all-CPU NMI backtraces: their RIPs are other CPUs'. */
	otherCpus?: boolean;
	/** The printk caller whose dump (after its "NMI backtrace for cpu 1", "CPU1: stopping") is being kept apart, and its trace. */
	foreignOwner?: string;
	foreignTrace?: Trace;
	/** arm/arm64 "CPU1: stopping" came: the dumps after it are other CPUs' (side traces, even under "Backtrace:"). */
	stopping?: boolean;
}

interface Pending {
	lines: string[];
	texts: string[];
	ts: number | undefined;
	cut: boolean;
	age: number;
}

// First characters of messages that can open a report or its preamble.
const START_CHARS = new Set<number>(Array.from('kKBWwNIrUgOidsp8-=C[ ?\t', (ch) => ch.charCodeAt(0)));
/**
 * What a message must start with to be a headline (matchHeadline) or to start
 * something (startsSomething), by its first character; 0: indented or quoted
 * lines, whose frames and indented headlines wantsAt() looks at itself. Lets
 * wantsAt() drop the unrelated lines of a large log without copying them.
 * Keep in step with matchHeadline(), isOopsHeader(), isCutHere(), isRule(),
 * isPreamble() and parseFrame().
 */
const HEADLINE_PREFIXES = [
	['k', ['kernel BUG at ']],
	['K', ['Kernel ']],
	['B', ['BUG: ', 'BUG ', 'Bad page state ']],
	['W', ['WARNING: ', 'Watchdog detected hard LOCKUP', 'Watchdog CPU:']],
	['w', ['watchdog: ']],
	['N', ['NMI watchdog: ']],
	['I', ['INFO: ', 'Internal error: ']],
	['r', ['rcu: INFO: rcu']],
	['U', ['UBSAN: ', 'Unable to handle kernel ', 'Unhandled fault', 'Unhandled kernel unaligned']],
	['g', ['general protection fault']],
	['O', ['Oops']],
	['i', ['invalid opcode: ', 'int3: ']],
	['d', ['double fault: ']],
	['s', ['stack segment: ']],
	['p', ['pagealloc: ']],
	['8', ['8<--- cut here ---']],
	['-', ['------------[ cut here ]------------']],
	['=', ['====================']],
	['C', ['CPU: ', 'Call ', 'CPU ']],
] as const;
/** For each of START_CHARS: the prefixes, or 0 (see wantsAt). */
const START_PREFIXES: (readonly string[] | 0 | undefined)[] = [];
/** The same for the message without its indentation ("bare"), where isPreamble() also knows "Hardware name: ". */
const BARE_PREFIXES: (readonly string[] | undefined)[] = [];
for (const [first, prefixes] of HEADLINE_PREFIXES) {
	START_PREFIXES[first.charCodeAt(0)] = prefixes;
	BARE_PREFIXES[first.charCodeAt(0)] = prefixes;
}
for (const first of '[ ?\t') START_PREFIXES[first.charCodeAt(0)] = 0;
BARE_PREFIXES[0x48 /* H */] = ['Hardware name: '];
BARE_PREFIXES[0x5b /* [ */] = ['[ '];

function startsWithAny(s: string, i: number, prefixes: readonly string[]): boolean {
	for (let k = 0; k < prefixes.length; k++) if (s.startsWith(prefixes[k] as string, i)) return true;
	return false;
}

/** Longest message the classifiers look at (printk's own limit is 1 KiB): bounds the regex work per line. */
const MAX_TEXT = 4096;

/** The message without leading blanks (an indented or quoted paste), for matching. */
function bareOf(text: string): string {
	const first = text.charCodeAt(0);
	return first === 0x20 || first === 0x09 ? text.trimStart() : text;
}

// The order in which reports were started (their headlines appeared), across assemblers.
const startOrder = new WeakMap<CrashReport, number>();
let nextStart = 0;

export class ReportAssembler {
	private open: OpenReport | undefined;
	private pending: Pending | undefined;
	// The first "+0x" in markSource at or after markFrom (markSource.length: none), for hasOffsetMark().
	private markSource = '';
	private markFrom = 0;
	private nextMark = 0;

	constructor(private readonly emit: (report: CrashReport) => void) {}

	/** The start order of the open report (see startOrder), or undefined when none is open. */
	openOrder(): number | undefined {
		return this.open ? startOrder.get(this.open.report) : undefined;
	}

	/** Whether a "cut here" or other preamble waits for its headline. */
	hasPending(): boolean {
		return this.pending !== undefined;
	}

	/** Whether `firstChar` or the assembler's state make the line worth handing over. */
	wants(firstChar: number): boolean {
		return this.open !== undefined || this.pending !== undefined || START_CHARS.has(firstChar);
	}

	/**
	 * Whether the message starting at s[i] is worth handing over: like
	 * wants(s.charCodeAt(i)), but when nothing is open or pending it also drops
	 * lines that line() would drop for not starting anything, from their first
	 * characters, before anything is copied.
	 */
	wantsAt(s: string, i: number, end: number): boolean {
		if (this.open !== undefined || this.pending !== undefined) return true;
		const c = s.charCodeAt(i);
		const prefixes = START_PREFIXES[c];
		if (prefixes === undefined) return false;
		if (prefixes !== 0) return startsWithAny(s, i, prefixes);
		// "[", "?", blanks: startsSomething() wants a frame, which has "+0x" ...
		if (this.hasOffsetMark(s, i, end)) return true;
		// ... or "[ INFO: ...]" / "[ BUG: ...]" (matchHeadline) ...
		if (c === 0x5b /* [ */) return s.startsWith('[ ', i);
		if (c === 0x3f /* ? */) return false;
		// ... or, for an indented line, what the line without its blanks starts with.
		let k = i;
		while (k < end && (s.charCodeAt(k) === 0x20 || s.charCodeAt(k) === 0x09)) k++;
		if (k >= end) return false;
		const b = s.charCodeAt(k);
		// other whitespace (trimStart() removes it too) or non-ASCII: let line() decide
		if (b <= 0x20 || b >= 0x7f) return true;
		const bare = BARE_PREFIXES[b];
		return bare !== undefined && startsWithAny(s, k, bare);
	}

	/**
	 * Whether s[i, end) holds "+0x": parseFrame() finds no frame (not decoded) in
	 * a line without one. The lines of a whole log come in order, so the next
	 * "+0x" is looked up once and kept until a line is past it: one fast search
	 * over the log instead of a loop over every indented line.
	 */
	private hasOffsetMark(s: string, i: number, end: number): boolean {
		if (s !== this.markSource || i < this.markFrom || this.nextMark < i) {
			const next = s.indexOf('+0x', i);
			this.markSource = s;
			this.markFrom = i;
			this.nextMark = next < 0 ? s.length : next;
		}
		return this.nextMark + 3 <= end;
	}

	/**
	 * Feed one message (log prefixes removed), its raw line and timestamp. The
	 * raw line may instead be given as rawSource[rawStart, rawEnd): it is then
	 * only copied when the report keeps it.
	 */
	line(message: string, rawLine: string | undefined, ts: number | undefined, rawSource = '', rawStart = 0, rawEnd = 0): void {
		const open = this.open;
		if (open && ts !== undefined && open.lastTs !== undefined && ts - open.lastTs > GAP_SECONDS) this.close();

		// Trailing blanks go; the classifiers look at most at MAX_TEXT characters.
		let text = message.length > MAX_TEXT ? message.slice(0, MAX_TEXT) : message;
		const last = text.charCodeAt(text.length - 1);
		if (last === 0x20 || last === 0x09) text = text.trimEnd();
		// a blog's typography turned the "x" of offsets into a multiplication sign: "kobject_add+0×83/0xd7"
		// (inside a report only: wantsAt() lets through what starts one by its "+0x")
		if (this.open && text.includes('0\u00d7')) text = text.replace(/([+/]0)\u00d7(?=[0-9a-f])/g, '$1x');
		const bare = bareOf(text);
		const headline = matchHeadline(bare);
		if (!headline && !this.open && !this.pending && !startsSomething(text, bare)) return;
		const raw = rawLine ?? rawSource.slice(rawStart, rawEnd);
		if (headline) {
			if (this.open && this.joinsOpenReport(headline, bare)) {
				this.append(this.open, text, raw, ts);
				return;
			}
			// the same headline again right after itself, with no time that tells them apart (a syslog
			// line without the kernel's timestamp, an untimed paste): a second console's copy
			if (this.open?.fresh && ts === this.open.headTs && this.open.report.headline === bare && this.open.report.lines.length <= 2) {
				this.open.report.lines.push(raw);
				return;
			}
			if (this.open && repeatsTitle(this.open, bare)) {
				// syzbot prints the title once per inlined frame: the same report
				this.open.report.lines.push(raw);
				this.open.skipWrap = ts === undefined && /^WARNING: .* at [^\s:]+:\d+$/.test(bare);
				return;
			}
			this.close();
			this.start(headline, bare, raw, ts);
			return;
		}
		if (this.open?.skipWrap) {
			// the wrapped second half of a repeated title ("refcount_sub_and_test_checked+0x1d0/0x200 lib/refcount.c:180")
			this.open.skipWrap = false;
			if (ts === undefined && text === bare && findSymbolAtStart(bare)) {
				this.open.report.lines.push(raw);
				return;
			}
		}
		// the kernel printed the fault address as a record of its own (sh, OpenRISC, 4.9+ continuations):
		// "Unable to handle kernel paging request" / " at virtual address 0x7fc60f58"
		if (this.open?.fresh && text !== bare && bare.startsWith('at ') && splitsFaultHeadline(this.open.report.headline, bare)) {
			this.joinHeadline(this.open, bare, raw);
			return;
		}
		if (this.open && (this.open.fresh || this.open.awaitModule) && this.wrapsHeadline(this.open, text, bare, ts)) {
			this.joinHeadline(this.open, bare, raw);
			return;
		}
		if (this.open) {
			this.open.awaitModule = false;
			// a wrapped headline goes on in the very next line, never after a blank one
			if (bare.length === 0) this.open.fresh = false;
		}
		if (this.open && this.feedOpen(this.open, text, bare, raw, ts)) return;
		if (!this.open) this.outside(text, bare, raw, ts);
	}

	/**
	 * The line right after a headline is its second half when a mail client or
	 * a terminal wrapped it: it has no timestamp of its own where the headline
	 * had one (or neither has, and it goes on in lower case), the headline did
	 * not end a sentence, and the line is nothing a report prints.
	 */
	private wrapsHeadline(open: OpenReport, text: string, bare: string, ts: number | undefined): boolean {
		const headline = open.report.headline;
		if (ts !== undefined || bare.length === 0 || bare.length > 100) return false;
		// a gpf line ends in its oops counter "[#1] ...": a line that carries it is the rest, indented or not
		if (open.report.kind === 'gpf' && !headline.includes('[#')) return bare.includes('[#');
		if (text !== bare) return false;
		// an elision mark ("...", "[...]") is not the headline's rest
		if (!/[A-Za-z0-9]/.test(bare)) return false;
		// the module of the function that ends the headline, wrapped onto its own line
		if (/^\[[\w-]+\]$/.test(bare) && /\+0x[0-9a-f]+\/0x[0-9a-f]+$/.test(headline)) return true;
		if (!open.fresh) return false;
		// a headline that ends in a whole symbol ("... at lib/refcount.c:28 refcount_warn_saturate+0x110/0x15c")
		// is complete: only its module can follow (above); an untimed line after it is the report's next message
		if (/\+0x[0-9a-f]+\/0x[0-9a-f]+$/.test(headline)) return false;
		// "WARNING: CPU: 1 PID: 8 at block/blk-mq-sched.c:432" names no function yet: the next line is it
		if (open.report.kind === 'WARNING' && open.report.function === undefined && / at [^\s:]+:\d+$/.test(headline))
			return findSymbolAtStart(bare);
		// short headlines are whole, but one that ends in "at" or "in" goes on ("WARNING: CPU: 0 PID: 1 at", "UBSAN: ... in")
		const dangling = / (?:at|in)$/.test(headline);
		if (headline.length < 40 && !dangling) return false;
		// ends a sentence, or in a printk field ("val:-1", "pfn:02e44"), or in a source position
		// ("UBSAN: ... in drivers/x.c:135:35"): whole
		if (/[.!:\])]$/.test(headline) || /(?:^| )[a-z_]+:-?(?:0x)?[0-9a-f]+$/.test(headline) || /[^\s:]\.[a-z]+:\d+(?::\d+)?$/.test(headline)) return false;
		// a fault line ends in the faulting address ("... paging request at virtual address f899b670"): whole
		if (/ at (?:virtual address )?(?:0x)?[0-9a-f]{8,16}$/.test(headline)) return false;
		if (open.headTs === undefined && !/^[a-z0-9(/]/.test(bare)) return false;
		return !isBodyLine(bare) && (dangling || parseFrame(bare, true) === undefined);
	}

	private joinHeadline(open: OpenReport, bare: string, raw: string): void {
		const report = open.report;
		let h = matchHeadline(`${report.headline} ${bare}`);
		// A terminal wraps at a fixed width, inside a word: when only the join without
		// a blank names a source file and line ("net/w" + "ireless/sme.c:850"), it is that.
		const tight = h?.file === undefined ? matchHeadline(report.headline + bare) : undefined;
		if (tight?.file !== undefined) {
			h = tight;
			report.headline = report.headline + bare;
		} else report.headline = `${report.headline} ${bare}`;
		report.lines.push(raw);
		if (h) {
			if (report.file === undefined && h.file !== undefined) report.file = h.file;
			if (report.line === undefined && h.line !== undefined) report.line = h.line;
			if (report.function === undefined && h.fn) {
				report.function = h.fn.fn;
				open.functionModule = h.fn.module;
			} else if (h.fn && report.function === h.fn.fn && open.functionModule === undefined) open.functionModule = h.fn.module;
		}
		open.awaitModule = !open.awaitModule && /\+0x[0-9a-f]+\/0x[0-9a-f]+$/.test(report.headline);
		open.fresh = false;
	}

	/** A line that is not kernel output (another program's syslog line): counts as unrelated. */
	noise(): void {
		const open = this.open;
		if (!open || open.mode === 'delimited') return;
		if (open.mode === 'summary') this.close();
		else this.miss(open);
	}

	/** The log went quiet: a report past its end marker is complete (for following a live log). */
	idle(): void {
		if (this.open?.mode === 'summary') this.close();
	}

	/** Close whatever is open (end of input). */
	finish(): void {
		this.close();
		this.pending = undefined;
		this.markSource = '';
	}

	private joinsOpenReport(h: Headline, text: string): boolean {
		const open = this.open;
		if (!open) return false;
		// "kernel BUG at ..." is followed by its oops header; KASAN reports may contain anything.
		if (open.mode === 'delimited') return !isRule(text) && h.kind !== 'panic';
		if (h.header && open.mode === 'body' && !open.hasHeader && open.report.kind !== 'panic' && open.report.kind !== 'trace') return true;
		// 3.x reports hard lockups as a WARN whose message is "Watchdog detected hard LOCKUP on cpu 3"
		if (open.report.kind === 'WARNING' && h.kind === 'lockup' && open.fresh) return true;
		return false;
	}

	private start(h: Headline, text: string, raw: string, ts: number | undefined): void {
		const report: CrashReport = { kind: h.kind, headline: text, frames: [], moreTraces: [], ended: false, lines: [] };
		startOrder.set(report, nextStart++);
		if (h.file !== undefined) report.file = h.file;
		if (h.line !== undefined) report.line = h.line;
		if (h.fn) report.function = h.fn.fn;
		if (h.cpu !== undefined) report.cpu = h.cpu;
		if (h.pid !== undefined) report.pid = h.pid;
		if (h.comm !== undefined) report.comm = h.comm;
		if (h.header) report.oops = text;
		if (h.tainted) report.tainted = h.tainted;
		const pending = this.pending;
		this.pending = undefined;
		const tsOfReport = ts ?? pending?.ts;
		if (tsOfReport !== undefined) report.ts = tsOfReport;
		const open: OpenReport = {
			report,
			// UBSAN is rule-delimited up to 6.6 and cut-here/end-trace delimited after; KASAN always uses rules.
			mode: h.delimited && (h.kind === 'KASAN' || (pending !== undefined && !pending.cut)) ? 'delimited' : 'body',
			hasHeader: h.header === true,
			functionModule: h.fn?.module,
			traces: [],
			trace: undefined,
			header: undefined,
			context: undefined,
			misses: 0,
			lastTs: ts,
			taintSeen: h.tainted !== undefined,
			loose: h.loose === true,
			fresh: true,
			headTs: ts,
			untimed: 0,
		};
		this.open = open;
		if (pending) pending.texts.forEach((t, i) => this.append(open, t, pending.lines[i] ?? t, pending.ts));
		open.fresh = true;
		report.lines.push(raw);
	}

	/** Returns false when the line does not belong to the report (it may then start something else). */
	private feedOpen(open: OpenReport, text: string, bare: string, raw: string, ts: number | undefined): boolean {
		switch (open.mode) {
			case 'delimited':
				if (endMarker(text)) {
					open.report.lines.push(raw);
					open.report.ended = true;
					open.mode = 'summary';
					return true;
				}
				this.append(open, text, raw, ts);
				if (isRule(text)) {
					open.report.ended = true;
					this.close();
				} else if (open.report.lines.length > DELIMITED_MAX_LINES) this.close();
				return true;
			case 'summary':
				if (isSummaryLine(text)) {
					open.report.lines.push(raw);
					return true;
				}
				this.close();
				return false;
			case 'body': {
				if (open.taintTail !== undefined && this.joinsTaint(open, text, raw, ts)) return true;
				const end = endMarker(text);
				if (end) {
					open.report.lines.push(raw);
					open.report.ended = true;
					if (end === 'panic') this.close();
					else open.mode = 'summary';
					return true;
				}
				if (isCutHere(bare) || isRule(bare)) {
					this.close();
					return false;
				}
				// A headline-less trace is only frames; anything else ends it (and may start something).
				if (open.report.kind === 'trace') {
					if (parseFrame(text) !== undefined || continuesTrace(text)) {
						this.append(open, text, raw, ts);
						return true;
					}
					this.close();
					return false;
				}
				if (ts !== undefined) open.untimed = 0;
				if (isBodyLine(text) || (open.loose && isLockdepLine(bare))) {
					open.misses = 0;
					this.append(open, text, raw, ts);
					if (open.report.lines.length >= REPORT_MAX_LINES) this.close();
					return true;
				}
				// Not the report's, but a header still ends the trace before it.
				if (isSideHeader(bare)) {
					open.trace = undefined;
					open.header = 'side';
				}
				// In a timestamped report a line without one is the rest of a wrapped line (a module
				// list over ten lines of a mail): no miss, up to the limit lockdep reports get.
				if (ts === undefined && open.headTs !== undefined && bare.length > 0 && ++open.untimed < LOOSE_MISS_LIMIT) return true;
				this.miss(open);
				return true;
			}
		}
	}

	/** The rest of a wrapped task line ("W  OE   4.5.7-generic #1"): its flags go on the taint. */
	private joinsTaint(open: OpenReport, text: string, raw: string, ts: number | undefined): boolean {
		const tail = open.taintTail ?? '';
		open.taintTail = undefined;
		// the flags, then the release (or what a vendor put there: "kernel version xxxx")
		const m = ts === undefined ? /^([A-Z ]*[A-Z])? +(\S+)/.exec(text) : null;
		if (!m || (m[1] === undefined && !/^\d/.test(m[2] ?? ''))) return false;
		const report = open.report;
		report.tainted = (tail + (m[1] ?? '')).trimEnd();
		if (report.release === undefined && /^\d/.test(m[2] ?? '')) report.release = m[2];
		report.lines.push(raw);
		open.misses = 0;
		return true;
	}

	private miss(open: OpenReport): void {
		if (++open.misses >= (open.loose ? LOOSE_MISS_LIMIT : MISS_LIMIT)) this.close();
	}

	/**
	 * A line of another printk caller than the one that printed the open report's
	 * headline, that has nothing open itself (CallerReportAssembler). Only another
	 * CPU's dump that a header of that caller introduced ("NMI backtrace for cpu 1",
	 * "CPU1: stopping", "Task dump for CPU 1:") is taken, and kept apart from the
	 * report's own trace (in moreTraces); of its lines only the taint is the
	 * report's too, being the kernel's, not a task's. Anything else of that caller
	 * is not the report's and does not end it. Returns whether the line was taken.
	 */
	foreignLine(caller: string, message: string, rawLine: string | undefined, ts: number | undefined, rawSource = '', rawStart = 0, rawEnd = 0): boolean {
		const open = this.open;
		if (!open || open.mode !== 'body') return false;
		const text = (message.length > MAX_TEXT ? message.slice(0, MAX_TEXT) : message).trimEnd();
		const bare = bareOf(text);
		const report = open.report;
		if (isSideHeader(bare) || /^CPU\d+: stopping$/.test(bare) || bare.startsWith('NMI backtrace for')) {
			open.foreignOwner = caller;
			open.foreignTrace = undefined;
		} else if (open.foreignOwner !== caller) return false;
		else {
			const frame = parseFrame(text, true);
			if (frame) {
				if (!open.foreignTrace) {
					open.foreignTrace = { frames: [], header: 'side' };
					open.traces.push(open.foreignTrace);
				}
				open.foreignTrace.frames.push(frame);
			} else if (isMainHeader(bare)) open.foreignTrace = undefined;
			else if (!open.taintSeen) {
				const task = parseTaskLine(bare);
				if (task && (task.tainted !== undefined || task.untainted)) {
					open.taintSeen = true;
					if (task.tainted !== undefined) report.tainted = task.tainted;
				}
			}
		}
		report.lines.push(rawLine ?? rawSource.slice(rawStart, rawEnd));
		if (ts !== undefined) open.lastTs = ts;
		return true;
	}

	/** Lines while no report is open: preambles and headline-less call traces. */
	private outside(text: string, bare: string, raw: string, ts: number | undefined): void {
		if (isCutHere(bare) || isRule(bare)) {
			this.pending = { lines: [raw], texts: [text], ts, cut: isCutHere(bare), age: 0 };
			return;
		}
		const c = text.charCodeAt(0);
		const frame = c === 0x20 || c === 0x5b || c === 0x3f || c === 0x09 ? parseFrame(text) : undefined;
		if (frame) {
			this.startTrace(text, raw, ts);
			return;
		}
		const pending = this.pending;
		if (pending) {
			if (++pending.age <= PENDING_MAX && (pending.cut || isPreamble(bare))) {
				pending.lines.push(raw);
				pending.texts.push(text);
				return;
			}
			this.pending = undefined;
		}
		if (isPreamble(bare)) this.pending = { lines: [raw], texts: [text], ts, cut: false, age: 0 };
	}

	private startTrace(text: string, raw: string, ts: number | undefined): void {
		this.start({ kind: 'trace' }, text.trim(), raw, ts);
		const open = this.open;
		if (!open) return;
		// start() pushed the raw line; parse it as the first frame too.
		open.report.lines.pop();
		this.append(open, text, raw, ts);
	}

	private append(open: OpenReport, text: string, raw: string, ts: number | undefined): void {
		const report = open.report;
		report.lines.push(raw);
		open.fresh = false;
		if (ts !== undefined) open.lastTs = ts;

		// 2.6 x86_64 prints several frames to a line, the first after "Call Trace:"
		const lead = bareOf(text);
		const old = lead.charCodeAt(0) === 0x3c /* < */ || isMainHeader(lead) ? parseOldX86Frames(text) : undefined;
		if (old) {
			if (isMainHeader(lead)) {
				open.trace = undefined;
				open.header = 'main';
				open.context = undefined;
			}
			if (!open.trace) {
				open.trace = { frames: [], header: open.header ?? 'none' };
				open.traces.push(open.trace);
				open.header = undefined;
			}
			open.trace.frames.push(...old);
			return;
		}
		// 2.6 i386 printed two frames to a line: " [<c0149a90>] zap_pte_range+0x105/0x25a  [<c0149ccb>] unmap_page_range+0xe6/0x110"
		const second = lead.charCodeAt(0) === 0x5b /* [ */ ? lead.indexOf('  [<', 4) : -1;
		if (second > 0) {
			const a = parseFrame(lead.slice(0, second), true);
			const b = parseFrame(lead.slice(second).trimStart(), true);
			if (a && b) {
				if (open.context !== undefined) a.context = b.context = open.context;
				if (!open.trace) {
					open.trace = { frames: [], header: open.header ?? 'none' };
					open.traces.push(open.trace);
					open.header = undefined;
				}
				open.trace.frames.push(a, b);
				return;
			}
		}
		const frame = parseFrame(text, true);
		if (frame) {
			if (open.context !== undefined) frame.context = open.context;
			if (!open.trace) {
				open.trace = { frames: [], header: open.header ?? 'none' };
				open.traces.push(open.trace);
				open.header = undefined;
			}
			open.trace.frames.push(frame);
			return;
		}
		const marker = parseStackMarker(text);
		if (marker) {
			open.context = marker.open ? marker.name : undefined;
			return;
		}
		const bare = bareOf(text);
		if (isMainHeader(bare)) {
			open.trace = undefined;
			open.header = open.stopping ? 'side' : 'main';
			open.context = undefined;
			// m68k and old i386 print the first frame on the header's line: "Call Trace: [<003c0caa>] dump_stack+0xc/0x10"
			const first = bare.length > 12 && bare.charCodeAt(10) === 0x3a /* : */ ? parseFrame(bare.slice(11)) : undefined;
			if (first) {
				open.trace = { frames: [first], header: 'main' };
				open.traces.push(open.trace);
				open.header = undefined;
			}
			return;
		}
		const side = isSideHeader(bare);
		// panic()'s smp_send_stop() on arm/arm64: each other CPU prints "CPU1: stopping" and its dump
		if (bare.charCodeAt(0) === 0x43 /* C */ && /^CPU\d+: stopping$/.test(bare)) open.stopping = true;
		const nmi = bare.startsWith('NMI backtrace for');
		if (nmi && report.kind === 'lockup' && report.headline.startsWith('INFO: task ')) open.otherCpus = true;
		if (side || nmi || /^(?:CPU: \d+ (?:UID: \d+ )?PID: |Pid: \d+, comm: )/.test(bare)) {
			// "Allocated by task 1:", "Preemption disabled at:", lockdep's "-> #1 (lock){..}:",
			// page_owner's stacks, another task's dump
			open.trace = undefined;
			open.header = side ? 'side' : undefined;
			open.context = undefined;
		}

		if (report.function === undefined && !open.otherCpus) {
			const sym = parseFunctionLine(bare);
			if (sym) {
				report.function = sym.fn;
				open.functionModule = sym.module;
				return;
			}
		}
		const task = parseTaskLine(bare);
		if (task) {
			if (report.cpu === undefined && task.cpu !== undefined) report.cpu = task.cpu;
			if (report.pid === undefined && task.pid !== undefined) report.pid = task.pid;
			if (report.comm === undefined && task.comm !== undefined) report.comm = task.comm;
			if (report.uid === undefined && task.uid !== undefined) report.uid = task.uid;
			if (!open.taintSeen && (task.tainted !== undefined || task.untainted)) {
				open.taintSeen = true;
				if (task.tainted !== undefined) report.tainted = task.tainted;
				// nothing after the flags: the line may go on in the next one
				if (task.tainted !== undefined && task.release === undefined) {
					const tail = raw.slice(raw.lastIndexOf('Tainted: ') + 9).replace(/\r$/, '');
					if (/^[A-Z][A-Z ]*$/.test(tail)) open.taintTail = tail;
				}
			}
			if (report.release === undefined && task.release !== undefined) report.release = task.release;
			return;
		}
		if (report.hardware === undefined && bare.startsWith('Hardware name: ')) {
			report.hardware = bare.slice(15).trim();
			return;
		}
		if (report.modules === undefined) {
			const modules = parseModulesLinkedIn(bare);
			if (modules) {
				report.modules = modules;
				return;
			}
		}
		if (report.oops === undefined && isOopsHeader(bare)) {
			report.oops = bare;
			open.hasHeader = true;
			return;
		}
		// dump_page(): "page:ffffea0000a1b2c0 refcount:0 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x286c8"
		if (report.pfn === undefined && bare.startsWith('page:')) {
			const m = /\bpfn:(?:0x)?([0-9a-f]+)\b/.exec(bare);
			if (m) report.pfn = parseInt(m[1] ?? '', 16);
			return;
		}
		// 6.12's verbose taint line "Tainted: [O]=OOT_MODULE, [W]=WARN"
		if (!open.taintSeen && bare.startsWith('Tainted: [')) {
			open.taintSeen = true;
			report.tainted = Array.from(bare.matchAll(/\[([A-Z])\]=/g), (m) => m[1]).join('');
		}
	}

	private close(): void {
		const open = this.open;
		if (!open) return;
		this.open = undefined;
		const report = open.report;
		// The call trace: the first one a call-trace header introduced, else the first one no header did.
		const main = open.traces.find((t) => t.header === 'main') ?? open.traces.find((t) => t.header === 'none');
		report.frames = main?.frames ?? [];
		report.moreTraces = open.traces.filter((t) => t !== main).map((t) => t.frames);
		// The OOM killer's dump_header() stack (2.6's printed from out_of_memory() itself): the kernel
		// enforcing its memory policy, not a crash report.
		if (report.kind === 'trace' && report.frames.some((f) => f.fn === 'dump_header' || f.fn.startsWith('oom_kill_process') || f.fn === 'out_of_memory'))
			return;
		// A headline-less trace is named by its top reliable frame; the frames above it ("? " ones) are not below it.
		let below: StackFrame | undefined;
		let belowKnown = false;
		if (report.kind === 'trace' && report.function === undefined) {
			let at = report.frames.findIndex((f) => f.reliable);
			if (at < 0) at = 0;
			const top = report.frames[at];
			if (top) {
				report.function = top.fn;
				if (open.functionModule === undefined) open.functionModule = top.module;
				below = report.frames[at + 1];
				belowKnown = true;
			}
		}
		// arm64 and others print the faulting function as the trace's first frame, x86 does not: the first frame is then its caller.
		const first = belowKnown ? below : report.frames[0]?.fn === report.function ? report.frames[1] : report.frames[0];
		const module = report.function !== undefined && open.functionModule !== undefined ? open.functionModule : first?.module;
		if (module !== undefined) report.module = module;
		this.emit(report);
	}
}

/**
 * Lines that introduce a stack that is not the report's call trace: KASAN's
 * and KFENCE's allocation and free stacks, lockdep's dependency chain,
 * page_owner's, "Preemption disabled at:", another task's or CPU's dump.
 */
function isSideHeader(bare: string): boolean {
	return /^(?:Allocated by task|Freed by task|Last potentially related|Second to last potentially|Uninit was|Local variable .* created at:|kfence-#\d+ .*(?:allocated|freed) by task|freed by task|allocated by task|-> #\d+ .*:$|\{[A-Z_-]+\} state was registered at:$|(?:INFO: )?(?:Allocated|Freed) in \S+(?: \[[\w-]+\])? age=|Preemption disabled at|page_owner |page last |page allocated |Task dump for CPU|Sending NMI|Last Breaking-Event-Address|rcu: (?:RCU grace-period kthread stack dump|Stack dump where)|Showing busy workqueues)/.test(
		bare,
	);
}

/** A fault headline without its address, and the record that gives it (" at virtual address ..."). */
function splitsFaultHeadline(headline: string, bare: string): boolean {
	return /^(?:BUG: )?[Uu]nable to handle kernel [^,]*$/.test(headline) && !headline.includes(' at ') && /^at (?:virtual )?address /.test(bare);
}

/** A line that starts with a symbol: "fn+0x1/0x2 ...", "fn file.c:12 [inline]". */
function findSymbolAtStart(bare: string): boolean {
	return /^[A-Za-z_.$][\w.$]*(?:\+0x[0-9a-f]+\/0x[0-9a-f]+| [^\s:()]+:\d+)/.test(bare);
}

/**
 * syzbot names every inlined frame of the faulting site in a title of its own
 * ("BUG: KMSAN: uninit-value in a f.c:1 [inline]", then "... in b+0x1/0x2 f.c:2"):
 * a title with the same text before the site, after one that ended "[inline]".
 */
function repeatsTitle(open: OpenReport, bare: string): boolean {
	const head = open.report.headline;
	if (!head.endsWith('[inline]') || open.report.lines.length > 8) return false;
	const cut = head.startsWith('WARNING: ') ? head.search(/ at [^\s:]+:\d+/) : head.indexOf(' in ');
	if (cut < 0) return false;
	const prefix = head.slice(0, cut + 4);
	return bare.startsWith(prefix);
}

/** What lockdep prints besides frames and task lines: lock names, the scenario, held locks. */
function isLockdepLine(bare: string): boolean {
	return /^(?:#\d+|-> #|\(|[0-9a-f]{8,16} \(|but |which |the |other info|Possible|CPU\d|-{4}|lock\(|\*\*\*|May be|\d+ locks? held|no locks held|stack backtrace|\S+\/\d+ is trying|\S+ is trying|Chain exists|context-|\[ BUG|\d+\.\d+\S* #)/.test(bare);
}

/** What outside() would keep when nothing is open or pending: a preamble, a cut-here or rule line, a frame. */
function startsSomething(text: string, bare: string): boolean {
	if (isCutHere(bare) || isRule(bare) || isPreamble(bare)) return true;
	const c = text.charCodeAt(0);
	return (c === 0x20 || c === 0x5b || c === 0x3f || c === 0x09) && parseFrame(text) !== undefined;
}

/** Lines after which the frames are the report's call trace (KFENCE names the access instead). */
function isMainHeader(bare: string): boolean {
	const c = bare.charCodeAt(0);
	if (c === 0x43 /* C */) return bare.startsWith('Call Trace:') || bare.startsWith('Call trace:');
	if (c === 0x42 /* B */) return bare.startsWith('Backtrace:');
	if (c === 0x73 /* s */) return bare === 'stack backtrace:';
	// KFENCE's access line; KCSAN's accesses ("read to 0x... of 8 bytes by task 1 on cpu 7:"),
	// the first of which is the report's trace and the others further ones
	return (
		/^(?:Out-of-bounds|Use-after-free|Invalid (?:free|read|write|access)|Corrupted memory)\b.* at 0x.*:$/.test(bare) ||
		/^(?:race at unknown origin, with )?(?:read|write|read-write)(?: \(marked\))? to 0x[0-9a-f]+ of \d+ bytes by (?:task \d+|interrupt) on cpu \d+:$/.test(bare)
	);
}

/** Lines that introduce a dump without naming a problem: task line, hardware, "Call Trace:". */
function isPreamble(text: string): boolean {
	return (
		text.startsWith('CPU: ') || text.startsWith('Hardware name: ') || text.startsWith('Call Trace:') || text.startsWith('Call trace:')
	);
}

/**
 * Reports assembled per printk caller ("[ T1234]" task, "[ C1]" cpu): when
 * lines carry caller ids, two tasks' reports (or a report and another CPU's
 * unrelated lines) can interleave line by line. A report belongs to the caller
 * that printed its headline: that caller's lines go to it, a headline from
 * another caller starts a report of its own without ending it, and lines of a
 * caller that has nothing open (another CPU's NMI backtrace for a hung task or
 * an RCU stall, a line without caller id) go where they would go without
 * caller ids, to the report last written to. Without caller ids this is one
 * ReportAssembler. Reports are emitted in the order their headlines appeared.
 */
export class CallerReportAssembler {
	// The assembler of each caller that has something open or pending (idle ones are dropped:
	// a log can show thousands of task ids), and of the first caller seen.
	private readonly byCaller = new Map<string, ReportAssembler>();
	// Assemblers with a report open or a preamble pending, and the line count when each last got a line.
	private readonly active = new Map<ReportAssembler, number>();
	// Reports opened, in start order ({assembler, order}); an entry is stale once its report closed.
	private readonly opened: { a: ReportAssembler; order: number }[] = [];
	private openedHead = 0;
	private readonly plain: ReportAssembler;
	private last: ReportAssembler;
	private sawCaller = false;
	private lines = 0;
	private readonly done: CrashReport[] = [];

	constructor(private readonly emit: (report: CrashReport) => void) {
		this.plain = this.make();
		this.last = this.plain;
	}

	private make(): ReportAssembler {
		return new ReportAssembler((report) => {
			this.done.push(report);
		});
	}

	/** Emit the completed reports that no open one started before. */
	private release(final = false): void {
		if (this.done.length === 0) return;
		let min = Infinity;
		if (!final) {
			const opened = this.opened;
			while (this.openedHead < opened.length) {
				const e = opened[this.openedHead] as { a: ReportAssembler; order: number };
				if (e.a.openOrder() === e.order) {
					min = e.order;
					break;
				}
				this.openedHead++;
			}
			if (this.openedHead > 1024 && this.openedHead * 2 > opened.length) {
				opened.splice(0, this.openedHead);
				this.openedHead = 0;
			}
		}
		if (this.done.length > 1) this.done.sort((a, b) => (startOrder.get(a) ?? 0) - (startOrder.get(b) ?? 0));
		while (this.done.length > 0 && (startOrder.get(this.done[0] as CrashReport) ?? 0) < min) this.emit(this.done.shift() as CrashReport);
	}

	/** After a line went to `a` (of `caller`, opening a report or not): keep it among the active ones or let it go. */
	private track(a: ReportAssembler, caller: string | undefined, before: number | undefined): void {
		const order = a.openOrder();
		if (order !== undefined && order !== before) this.opened.push({ a, order });
		if (order !== undefined || a.hasPending()) this.active.set(a, this.lines);
		else {
			this.active.delete(a);
			if (caller !== undefined && a !== this.plain) this.byCaller.delete(caller);
		}
		// A caller that printed nothing for a long while has finished its report (or never will).
		if ((this.lines & 255) === 0 && this.active.size > 0) {
			for (const [b, seen] of this.active)
				if (this.lines - seen > STALE_LINES) {
					b.finish();
					this.active.delete(b);
				}
		}
		this.release();
	}

	wantsAt(s: string, i: number, end: number): boolean {
		return this.active.size > 0 || this.last.wantsAt(s, i, end);
	}

	/** Feed one message with the printk caller id of its line (undefined: none shown). */
	line(caller: string | undefined, message: string, rawLine: string | undefined, ts: number | undefined, rawSource = '', rawStart = 0, rawEnd = 0): void {
		this.lines++;
		if (caller === undefined) {
			const a = this.last;
			const before = a.openOrder();
			a.line(message, rawLine, ts, rawSource, rawStart, rawEnd);
			this.track(a, undefined, before);
			return;
		}
		let own = this.byCaller.get(caller);
		if (own === undefined) {
			// the first caller id seen takes over what was assembled without one
			own = this.sawCaller ? this.make() : this.plain;
			this.sawCaller = true;
			this.byCaller.set(caller, own);
		}
		const before = own.openOrder();
		const other = before === undefined && !own.hasPending() ? this.openElsewhere(own) : undefined;
		if (other) {
			const text = message.length > MAX_TEXT ? message.slice(0, MAX_TEXT) : message;
			const bare = bareOf(text.trimEnd());
			// a line of this caller that starts nothing while another caller's report is open:
			// another CPU's dump that report asked for, or nobody's (and it does not end that report)
			if (!matchHeadline(bare) && !isCutHere(bare) && !isRule(bare)) {
				if (other.foreignLine(caller, message, rawLine, ts, rawSource, rawStart, rawEnd)) {
					this.active.set(other, this.lines);
					return;
				}
				// a task line or "Hardware name:" may begin this caller's own dump_stack() or report
				if (!isPreamble(bare) && parseFrame(text) === undefined) {
					if (own !== this.plain) this.byCaller.delete(caller);
					return;
				}
			}
		}
		this.last = own;
		own.line(message, rawLine, ts, rawSource, rawStart, rawEnd);
		this.track(own, caller, before);
	}

	/** The assembler other than `own` that holds the most recently started open report. */
	private openElsewhere(own: ReportAssembler): ReportAssembler | undefined {
		const opened = this.opened;
		for (let k = opened.length - 1, seen = 0; k >= this.openedHead && seen < 64; k--, seen++) {
			const e = opened[k] as { a: ReportAssembler; order: number };
			if (e.a.openOrder() !== e.order) {
				if (k === opened.length - 1) opened.pop();
				continue;
			}
			if (e.a !== own) return e.a;
		}
		return undefined;
	}

	/** A line that is not kernel output, of `caller` when it showed one. */
	noise(caller?: string): void {
		const a = caller === undefined ? this.last : this.byCaller.get(caller);
		if (!a) return;
		const before = a.openOrder();
		a.noise();
		this.track(a, caller, before);
	}

	/** The log went quiet (live): reports past their end marker are complete, and are emitted now even if a report begun before them is still open. */
	idle(): void {
		for (const a of [...this.active.keys()]) {
			const before = a.openOrder();
			a.idle();
			this.track(a, undefined, before);
		}
		this.release(true);
	}

	finish(): void {
		this.plain.finish();
		for (const a of this.active.keys()) a.finish();
		this.active.clear();
		this.release(true);
	}
}
