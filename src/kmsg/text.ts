// Plain-text kernel log lines come wrapped in whatever the tool that printed them
// added: dmesg's "[  123.456789] ", printk caller ids "[ T2553]", syslog and
// journalctl "Nov 24 12:00:00 host kernel: ", "<4>" levels, dmesg -x
// "kern  :warn  : ", serial-console "\r". This module finds where the kernel's own
// text starts, without copying the line: the parser runs it on every line of
// logs of hundreds of megabytes.

/** Where the kernel's message sits inside a line, and what the wrapping said. */
export interface LineScan {
	/** Index of the first character of the message. */
	start: number;
	/** Index one past its last character (trailing \r removed). */
	end: number;
	/**
	 * Timestamp in seconds from "[  123.456789]", NaN when the line had none
	 * (always a number: the field is then stored in place, not boxed anew per line).
	 */
	ts: number;
	/** printk caller id ("T2553", "C1"), when shown. */
	caller: string | undefined;
	/** Level from a "<4>" prefix or a dmesg -x "kern  :warn  : " prefix. */
	level: number | undefined;
	/** False for syslog/journal lines of another program than the kernel. */
	kernel: boolean;
}

export function newLineScan(): LineScan {
	return { start: 0, end: 0, ts: NaN, caller: undefined, level: undefined, kernel: true };
}

const SPACE = 0x20;
const CR = 0x0d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

export function isDigit(c: number): boolean {
	return c >= 0x30 && c <= 0x39;
}
function isUpper(c: number): boolean {
	return c >= 0x41 && c <= 0x5a;
}
function isLower(c: number): boolean {
	return c >= 0x61 && c <= 0x7a;
}

const LEVEL_NAMES: Record<string, number> = { emerg: 0, alert: 1, crit: 2, err: 3, warn: 4, notice: 5, info: 6, debug: 7 };
const DMESG_X_PREFIX = /^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7]) *:(emerg|alert|crit|err|warn|notice|info|debug) *: /;
// dmesg -T "[Sun Nov 24 12:00:00 2024]" and dmesg -H "[Nov24 12:00]".
const HUMAN_TIME = /^\[(?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} ?[ \d]?\d \d\d:\d\d(?::\d\d)?(?: \d{4})?\]/;

/**
 * Index of a dmesg timestamp "[  12.345678]" after a blank inside s(from, to),
 * else -1: several log lines re-flowed into one by a web form or mail client.
 */
export function embeddedTimestamp(s: string, from: number, to: number): number {
	let k = s.indexOf(' [', from);
	while (k >= 0 && k < to - 10) {
		if (isTimestampAt(s, k + 1)) {
			let j = k + 2;
			while (s.charCodeAt(j) === SPACE || isDigit(s.charCodeAt(j))) j++;
			if (s.charCodeAt(j) === 0x2e) {
				j++;
				while (isDigit(s.charCodeAt(j))) j++;
				if (s.charCodeAt(j) === RBRACKET && j - k > 6) return k + 1;
			}
		}
		k = s.indexOf(' [', k + 2);
	}
	return -1;
}

/**
 * Where a kernel line quoted as markdown inline code starts inside a sentence
 * ("Last line looks significant to me: `Feb 21 13:52:21 host kernel: BUG: ...`"):
 * the index after the backtick at `tick` when a syslog time or a dmesg timestamp
 * follows it, else -1.
 */
export function inlineCodeLogStart(s: string, tick: number, end: number): number {
	const i = tick + 1;
	if (end - i < 17) return -1;
	const c = s.charCodeAt(i);
	if (c === LBRACKET) return isTimestampAt(s, i) ? i : -1;
	return (isUpper(c) || isDigit(c)) && afterSyslogTime(s, i, end) > 0 ? i : -1;
}

/** Whether a dmesg timestamp "[  12.345678]" starts at `i`. */
export function isTimestampAt(s: string, i: number): boolean {
	let j = i + 1;
	while (s.charCodeAt(j) === SPACE) j++;
	if (!isDigit(s.charCodeAt(j))) return false;
	while (isDigit(s.charCodeAt(j))) j++;
	return s.charCodeAt(j) === 0x2e /* . */;
}

/**
 * Index after "kernel: " when `s` at `i` is "<host> kernel: ", else -1.
 * `hostName`: the host is a name (journalctl), which holds no ':' or '[': the
 * search stops there, early in most kernel messages ("usb 1-1:", "audit:",
 * "systemd[1]:"); syslog may name the host by an IPv6 address.
 */
function afterHostKernel(s: string, i: number, end: number, hostName = false): number {
	const limit = Math.min(end, i + 80);
	let j = i;
	if (hostName)
		for (; j < limit; j++) {
			const c = s.charCodeAt(j);
			if (c === SPACE) break;
			if (c === 0x3a /* : */ || c === LBRACKET) return -1;
		}
	else while (j < limit && s.charCodeAt(j) !== SPACE) j++;
	if (j === i || j >= limit || s.charCodeAt(j + 1) !== 0x6b /* k */) return -1;
	if (s.startsWith('kernel: ', j + 1)) return j + 9;
	if (s.startsWith('kernel:', j + 1) && j + 8 === end) return end;
	return -1;
}

/** Index after a syslog/journal timestamp at `i` ("Nov 24 12:00:00[.123456] " or ISO 8601), else -1. */
/**
 * Index after a month name in another locale at `i` ("июл", "févr.", "Mär",
 * "12月") followed by " DD HH:", else -1: journalctl and syslog print %b.
 */
function localMonth(s: string, i: number, end: number): number {
	let j = i;
	const limit = Math.min(end, i + 9);
	while (j < limit) {
		const c = s.charCodeAt(j);
		if (c === SPACE) break;
		if (!(c > 0x7f || isLower(c) || isUpper(c) || c === 0x2e /* . */ || isDigit(c))) return -1;
		j++;
	}
	if (j === i || j >= limit) return -1;
	j++;
	if (s.charCodeAt(j) === SPACE) j++;
	if (!isDigit(s.charCodeAt(j))) return -1;
	j++;
	if (isDigit(s.charCodeAt(j))) j++;
	if (s.charCodeAt(j) !== SPACE || !isDigit(s.charCodeAt(j + 1)) || !isDigit(s.charCodeAt(j + 2)) || s.charCodeAt(j + 3) !== 0x3a) return -1;
	return j + 1;
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function afterSyslogTime(s: string, i: number, end: number): number {
	const c0 = s.charCodeAt(i);
	if (c0 > 0x7f || isLower(c0)) {
		const t = localMonth(s, i, end);
		if (t < 0) return -1;
		let j = t;
		while (j < end && s.charCodeAt(j) !== SPACE) j++;
		return j + 1;
	}
	if (isUpper(c0)) {
		// OpenWrt logread: "Sun Sep  1 19:30:19 2019 kern.warn kernel: " (weekday, then the year after the time)
		if (s.charCodeAt(i + 3) === SPACE && isUpper(s.charCodeAt(i + 4)) && WEEKDAYS.includes(s.slice(i, i + 3))) {
			const t = afterSyslogTime(s, i + 4, end);
			if (t < 0) return -1;
			let j = t;
			while (j < t + 4 && isDigit(s.charCodeAt(j))) j++;
			return j === t + 4 && s.charCodeAt(j) === SPACE ? j + 1 : t;
		}
		// "Nov 24 12:00:00 " / "Nov  4 12:00:00.123456 "
		if (!isLower(s.charCodeAt(i + 1)) || !isLower(s.charCodeAt(i + 2)) || s.charCodeAt(i + 3) !== SPACE) {
			// "Okt", "Mär", "Sept." ... in other locales
			const t = isLower(s.charCodeAt(i + 1)) || s.charCodeAt(i + 1) > 0x7f ? localMonth(s, i, end) : -1;
			if (t < 0) return -1;
			let j = t;
			while (j < end && s.charCodeAt(j) !== SPACE) j++;
			return j + 1;
		}
		// the day: "24", " 4", or "4" where a renderer collapsed the double blank ("Jul 3 10:52:37")
		let k = i + 4;
		if (s.charCodeAt(k) === SPACE) k++;
		if (!isDigit(s.charCodeAt(k))) return -1;
		k++;
		if (isDigit(s.charCodeAt(k)) && k === i + 5) k++;
		if (s.charCodeAt(k) !== SPACE) return -1;
		k++;
		if (!isDigit(s.charCodeAt(k)) || s.charCodeAt(k + 2) !== 0x3a /* : */) return -1;
		let j = k + 3;
		while (j < end && s.charCodeAt(j) !== SPACE) j++;
		return j + 1;
	}
	if (isDigit(c0)) {
		// "2024-11-24T12:00:00.123456+00:00 " or "2024-11-24 12:00:00 "
		if (s.charCodeAt(i + 4) !== 0x2d || s.charCodeAt(i + 7) !== 0x2d || !isDigit(s.charCodeAt(i + 3))) {
			// "8月 14 10:24:12 " (a month named with a number and a suffix)
			const t = s.charCodeAt(i + 1) > 0x7f || s.charCodeAt(i + 2) > 0x7f ? localMonth(s, i, end) : -1;
			if (t < 0) return -1;
			let j = t;
			while (j < end && s.charCodeAt(j) !== SPACE) j++;
			return j + 1;
		}
		const sep = s.charCodeAt(i + 10);
		if (sep !== 0x54 /* T */ && sep !== SPACE) return -1;
		if (s.charCodeAt(i + 13) !== 0x3a) return -1;
		let j = i + 11;
		while (j < end && s.charCodeAt(j) !== SPACE) j++;
		return j + 1;
	}
	return -1;
}

// Powers of ten a double holds exactly (up to 1e22).
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/**
 * The value of the decimal s[from, to) ("123.456789"), the same double as
 * Number(s.slice(from, to)) without the copy: when all its digits fit in 2^53
 * (`digits`, read by the caller) and 10^fracDigits is exact, one IEEE division
 * of the two exact integers rounds once, to the nearest double, as Number()
 * does. Longer numbers go through Number().
 */
function timestampValue(s: string, from: number, to: number, digits: number, fracDigits: number): number {
	if (to - from - 1 <= 15 && fracDigits < POW10.length) return digits / (POW10[fracDigits] as number);
	return Number(s.slice(from, to));
}

/** Index of the "]" after a wall clock "11-23 23:47:23.872" at `i`, else -1. */
function wallClockEnd(s: string, i: number, end: number): number {
	if (end - i < 15 || s.charCodeAt(i + 2) !== 0x2d /* - */ || s.charCodeAt(i + 5) !== SPACE || s.charCodeAt(i + 8) !== 0x3a /* : */ || s.charCodeAt(i + 11) !== 0x3a) return -1;
	let j = i + 14;
	if (s.charCodeAt(j) === 0x2e /* . */) {
		j++;
		while (j < i + 24 && isDigit(s.charCodeAt(j))) j++;
	}
	return s.charCodeAt(j) === RBRACKET ? j : -1;
}

/** Index after a terminal program's "[HH:MM:SS:mmm] " / "[HH:MM:SS.mmm]" at `i`, else -1. */
function terminalClockEnd(s: string, i: number, end: number): number {
	if (end - i < 12 || s.charCodeAt(i + 6) !== 0x3a /* : */ || !isDigit(s.charCodeAt(i + 2)) || !isDigit(s.charCodeAt(i + 8))) return -1;
	const sep = s.charCodeAt(i + 9);
	if (sep !== 0x3a && sep !== 0x2e /* . */ && sep !== 0x2c /* , */) return -1;
	let j = i + 10;
	while (j < i + 16 && isDigit(s.charCodeAt(j))) j++;
	if (j === i + 10 || s.charCodeAt(j) !== RBRACKET) return -1;
	return s.charCodeAt(j + 1) === SPACE ? j + 2 : j + 1;
}

/**
 * Index where the line goes on after what a console or a paste put before it, or `i`:
 * a getty prompt ("syzkaller login: "), a shell prompt before a timestamp ("/ # [  12.3]"),
 * a serial terminal's own clock ("[22:22:59:896] "), a timestamp that lost its "["
 * ("407819.286867] ", whose time goes into `out`).
 */
function pastePrefixEnd(s: string, i: number, end: number, out: LineScan): number {
	let c = s.charCodeAt(i);
	// a console's getty prompt the message came after: "syzkaller login: Unable to handle kernel ..."
	if (isLower(c) && end - i > 16) {
		let j = i + 1;
		const limit = Math.min(end, i + 64);
		while (j < limit && s.charCodeAt(j) !== SPACE) j++;
		if (j < limit && s.startsWith(' login: ', j) && j + 8 < end) c = s.charCodeAt((i = j + 8));
	}
	// a console's shell prompt the message came after: "/ # [  12.345678] ...", "root@host:~# [ ..."
	if ((c === 0x2f /* / */ || c === 0x23 /* # */ || c === 0x7e /* ~ */ || (c === 0x72 /* r */ && s.startsWith('root@', i))) && end - i > 16) {
		const limit = Math.min(end - 2, i + 48);
		let j = i + 1;
		while (j < limit && s.charCodeAt(j) !== LBRACKET) j++;
		const p = s.charCodeAt(j - 2);
		if (j < limit && s.charCodeAt(j - 1) === SPACE && (p === 0x23 /* # */ || p === 0x24) /* $ */ && isTimestampAt(s, j)) c = s.charCodeAt((i = j));
	}
	// a serial terminal's own clock before the kernel's line: "[22:22:59:896] [    0.632863] ..."
	if (c === LBRACKET && isDigit(s.charCodeAt(i + 1)) && s.charCodeAt(i + 3) === 0x3a /* : */) {
		const k = terminalClockEnd(s, i, end);
		if (k > 0) c = s.charCodeAt((i = k));
	}
	// a dmesg line pasted without its first character: "407819.286867] BUG: ..."
	if (isDigit(c)) {
		let j = i + 1;
		while (j < i + 9 && isDigit(s.charCodeAt(j))) j++;
		if (s.charCodeAt(j) === 0x2e /* . */ && s.charCodeAt(j + 7) === RBRACKET && s.charCodeAt(j + 8) === SPACE) {
			let k = j + 1;
			while (k < j + 7 && isDigit(s.charCodeAt(k))) k++;
			if (k === j + 7) {
				out.ts = Number(s.slice(i, k));
				i = k + 2;
			}
		}
	}
	return i;
}

/**
 * Index after an uptime written "1276.705430:" and blanks at `i`, when a "<1>" level
 * or a "(01-28 07:22:33.304698634)" wall clock follows (both are skipped, the level
 * and the time go into `out`), else -1: Android kernels' log dumps (last_kmsg tools).
 */
function uptimeColonEnd(s: string, i: number, end: number, out: LineScan): number {
	let j = i;
	while (j < i + 9 && isDigit(s.charCodeAt(j))) j++;
	if (j === i || s.charCodeAt(j) !== 0x2e /* . */) return -1;
	const point = j++;
	while (j < point + 10 && isDigit(s.charCodeAt(j))) j++;
	if (j < point + 4 || s.charCodeAt(j) !== 0x3a /* : */ || s.charCodeAt(j + 1) !== SPACE) return -1;
	const ts = Number(s.slice(i, j));
	j++;
	while (s.charCodeAt(j) === SPACE && j < end) j++;
	let level: number | undefined;
	if (s.charCodeAt(j) === 0x3c /* < */ && isDigit(s.charCodeAt(j + 1)) && s.charCodeAt(j + 2) === 0x3e /* > */) {
		level = (s.charCodeAt(j + 1) - 0x30) & 7;
		j += 3;
		while (s.charCodeAt(j) === SPACE && j < end) j++;
	}
	let clock = false;
	if (s.charCodeAt(j) === 0x28 /* ( */ && isDigit(s.charCodeAt(j + 1)) && isDigit(s.charCodeAt(j + 2)) && s.charCodeAt(j + 3) === 0x2d /* - */) {
		const close = s.indexOf(')', j);
		if (close > 0 && close < j + 40 && /^\(\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\)$/.test(s.slice(j, close + 1))) {
			clock = true;
			j = close + 1;
			if (s.charCodeAt(j) === SPACE) j++;
		}
	}
	if (level === undefined && !clock) return -1;
	out.ts = ts;
	if (level !== undefined) out.level = level;
	return j;
}

/**
 * Find the message inside s[start, end). Writes into `out` (reused across lines
 * so that the parser allocates nothing for lines it does not keep).
 */
export function scanLine(s: string, start: number, end: number, out: LineScan): LineScan {
	while (end > start && (s.charCodeAt(end - 1) === CR || s.charCodeAt(end - 1) === 0x0a)) end--;
	// a serial capture pasted as a pager showed it: the CR as the two characters "^M"
	if (end - start > 1 && s.charCodeAt(end - 1) === 0x4d /* M */ && s.charCodeAt(end - 2) === 0x5e /* ^ */) end -= 2;
	// a terminal that shows control characters as their Unicode pictures: CR LF as "␍␊"
	else if (end > start && s.charCodeAt(end - 1) === 0x240a /* ␊ */) end -= end - start > 1 && s.charCodeAt(end - 2) === 0x240d /* ␍ */ ? 2 : 1;
	while (start < end && s.charCodeAt(start) === CR) start++;
	out.ts = NaN;
	out.caller = undefined;
	out.level = undefined;
	out.kernel = true;

	let i = start;
	let c = s.charCodeAt(i);
	// a mail client's rendering of italics or bold around a pasted block: "/Jan 22 00:45:35 kernel: ...",
	// or markdown's inline code around a pasted line: "`Jul 3 10:52:37 host kernel: ...`"
	if ((c === 0x2f /* / */ || c === 0x2a /* * */ || c === 0x60) /* ` */ && end - i > 17 && (isUpper(s.charCodeAt(i + 1)) || s.charCodeAt(i + 1) === LBRACKET)) {
		const n = s.charCodeAt(i + 1);
		if (n === LBRACKET ? isTimestampAt(s, i + 1) : afterSyslogTime(s, i + 1, end) > 0) {
			if (c === 0x60 && s.charCodeAt(end - 1) === 0x60) end--;
			c = s.charCodeAt(++i);
		}
	}
	// a mail reply's quoting: "> ", ">> ", "> > "
	if (c === 0x3e /* > */) {
		while (c === 0x3e) {
			i++;
			if (s.charCodeAt(i) === SPACE) i++;
			c = s.charCodeAt(i);
		}
	}

	// what a console or a paste put before the line (prompts, a terminal's clock, a lost "["): rare,
	// so one comparison for a dmesg line that starts with its timestamp
	if (c !== LBRACKET || (isDigit(s.charCodeAt(i + 1)) && s.charCodeAt(i + 3) === 0x3a) /* : */) {
		const k = pastePrefixEnd(s, i, end, out);
		if (k !== i) c = s.charCodeAt((i = k));
	}
	// a pasted log indented as a block (markdown), or numbered by a viewer ("11745 [ 1.0] ..."):
	// the blanks and the number go when a kernel log prefix follows them
	if (c === SPACE || c === 0x09 || isDigit(c)) {
		let j = i;
		while ((s.charCodeAt(j) === SPACE || s.charCodeAt(j) === 0x09) && j < i + 40) j++;
		if (isDigit(s.charCodeAt(j))) {
			let k = j;
			while (isDigit(s.charCodeAt(k)) && k < j + 9) k++;
			const sep = s.charCodeAt(k);
			if (sep === SPACE || sep === 0x09) {
				while (s.charCodeAt(k) === SPACE || s.charCodeAt(k) === 0x09) k++;
				if (s.charCodeAt(k) === LBRACKET && isTimestampAt(s, k)) j = k;
			}
		}
		const d = s.charCodeAt(j);
		// an Android log tool's "  1276.705430:   <1> (01-28 07:22:33.304698634) ": uptime with a colon
		const u = isDigit(d) ? uptimeColonEnd(s, j, end, out) : -1;
		if (u > 0) {
			i = u;
			c = s.charCodeAt(i);
		} else if (j === i) {
			// nothing to skip
		} else if (
			(d === LBRACKET && isTimestampAt(s, j)) ||
			// syslogd's wall message to logged-in users: " kernel:BUG: soft lockup ..."
			// or a journal/syslog line whose time and host were cut, leaving the blank: " kernel: ..."
			(d === 0x6b /* k */ && s.startsWith('kernel:', j)) ||
			(d === 0x3c /* < */ && isDigit(s.charCodeAt(j + 1)) && s.charCodeAt(j + 2) === 0x3e) ||
			((isUpper(d) || isDigit(d)) && end - j > 16 && afterSyslogTime(s, j, end) > 0)
		) {
			i = j;
			c = d;
		}
	}

	// syslog / journalctl: "<time> <host> kernel: "
	if ((isUpper(c) || isDigit(c) || c > 0x7f || (isLower(c) && localMonth(s, i, end) > 0)) && end - i > 16) {
		const t = afterSyslogTime(s, i, end);
		if (t > 0) {
			// "<time> kernel: " without a host name (some syslog daemons, copied logs)
			const k = s.startsWith('kernel: ', t) ? t + 8 : afterHostKernel(s, t, end);
			if (k > 0) {
				i = k;
				// rsyslog writes a newline inside a message as "#012" (lockdep starts lines with one)
				while (s.startsWith('#012', i)) i += 4;
			} else out.kernel = false;
			c = s.charCodeAt(i);
		}
	}
	// a journal or syslog line with its time and host cut off: "kernel: msg"; the wall message's " kernel:msg"
	if (c === 0x6b /* k */ && s.startsWith('kernel:', i)) {
		if (s.charCodeAt(i + 7) === SPACE) i += 8;
		else if (i > start && s.charCodeAt(i - 1) === SPACE) i += 7;
		c = s.charCodeAt(i);
	}
	// "<4>" level (dmesg -r, console captures)
	if (c === 0x3c /* < */ && isDigit(s.charCodeAt(i + 1))) {
		let j = i + 1;
		let level = 0;
		while (j < end && isDigit(s.charCodeAt(j)) && j < i + 5) level = level * 10 + s.charCodeAt(j++) - 0x30;
		if (s.charCodeAt(j) === 0x3e /* > */) {
			out.level = level & 7;
			i = j + 1;
			c = s.charCodeAt(i);
		}
	}
	// dmesg -x "kern  :warn  : "
	if ((c === 0x6b /* k */ || c === 0x75 /* u */) && (s.startsWith('kern', i) || s.startsWith('user', i))) {
		const m = DMESG_X_PREFIX.exec(s.slice(i, Math.min(end, i + 24)));
		if (m) {
			out.level = LEVEL_NAMES[m[1] ?? ''];
			i += m[0].length;
			c = s.charCodeAt(i);
		}
	}
	if (c === LBRACKET) {
		let close = -1;
		// printk's own "[%5lu.%06lu]", most lines of a dmesg: read at fixed places
		if (s.charCodeAt(i + 13) === RBRACKET && s.charCodeAt(i + 6) === 0x2e /* . */) {
			let k = i + 1;
			while (k < i + 5 && s.charCodeAt(k) === SPACE) k++;
			let digits = 0;
			for (; k < i + 13; k++) {
				if (k === i + 6) continue;
				const d = s.charCodeAt(k) - 0x30;
				if (d < 0 || d > 9) break;
				digits = digits * 10 + d;
			}
			if (k === i + 13) {
				close = k;
				// the same double as timestampValue() gives for six decimals
				out.ts = digits / 1e6;
			}
		}
		if (close < 0) {
			let j = i + 1;
			while (s.charCodeAt(j) === SPACE) j++;
			let relative = false;
			if (s.charCodeAt(j) === 0x2b /* + */) {
				relative = true;
				j++;
			}
			const numStart = j;
			// The digits as one integer and the count after the point: "123.456789" is 123456789 / 1e6.
			let digits = 0;
			while (isDigit(s.charCodeAt(j))) digits = digits * 10 + (s.charCodeAt(j++) - 0x30);
			if (j > numStart && s.charCodeAt(j) === 0x2e /* . */) {
				j++;
				const fracStart = j;
				while (isDigit(s.charCodeAt(j))) digits = digits * 10 + (s.charCodeAt(j++) - 0x30);
				if (s.charCodeAt(j) === RBRACKET) {
					close = j;
					if (!relative) out.ts = timestampValue(s, numStart, j, digits, j - fracStart);
				} else if (s.charCodeAt(j) === SPACE && s.charCodeAt(j + 1) === 0x2f /* / */ && s.charCodeAt(j + 2) === SPACE) {
					// Android kernels' uptime and wall clock: "[  197.301431 / 11-23 23:47:23.872]"
					const k = wallClockEnd(s, j + 3, end);
					if (k > 0) {
						close = k;
						out.ts = timestampValue(s, numStart, j, digits, j - fracStart);
					}
				}
			} else if (isUpper(s.charCodeAt(i + 1))) {
				const m = HUMAN_TIME.exec(s.slice(i, Math.min(end, i + 32)));
				if (m) close = i + m[0].length - 1;
			}
		}
		if (close > 0) {
			i = close + 1;
			// caller id: "[ts][ T123]" (console) or "[ts] [ T123]" (util-linux dmesg)
			const b = s.charCodeAt(i) === LBRACKET ? i : s.charCodeAt(i) === SPACE && s.charCodeAt(i + 1) === LBRACKET ? i + 1 : -1;
			let callerEnd = -1;
			if (b >= 0) {
				let k = b + 1;
				while (s.charCodeAt(k) === SPACE) k++;
				const kind = s.charCodeAt(k);
				if (kind === 0x70 /* p */ && s.startsWith('pid:', k)) {
					// vendor kernels: "[ts] [pid:0,cpu0,swapper/0]"
					const close = s.indexOf(']', k);
					if (close > 0 && close < k + 64) {
						out.caller = s.slice(k, close);
						callerEnd = close + 1;
					}
				} else if (kind === 0x54 /* T */ || kind === 0x43 /* C */) {
					const idStart = k;
					k++;
					const digitsStart = k;
					while (isDigit(s.charCodeAt(k))) k++;
					if (k > digitsStart && s.charCodeAt(k) === RBRACKET) {
						out.caller = s.slice(idStart, k);
						callerEnd = k + 1;
					}
				}
			}
			if (callerEnd > 0) i = callerEnd;
			if (s.charCodeAt(i) === SPACE) i++;
			// journalctl -o short-monotonic: "[  123.456789] host kernel: ", and with
			// --no-hostname "[  123.456789] kernel: "
			c = s.charCodeAt(i);
			if (c === 0x6b /* k */ && s.startsWith('kernel: ', i)) i += 8;
			else if (c !== SPACE && c !== LBRACKET) {
				const k = afterHostKernel(s, i, end, true);
				if (k > 0) i = k;
			}
		}
	}
	// markdown bold a reporter put around a message: "kernel: **UBSAN: ... in f.c:1717:69**"
	// (as markdown reads it: no blank inside either pair of stars; banners of stars stay)
	if (s.charCodeAt(i) === 0x2a /* * */ && s.charCodeAt(i + 1) === 0x2a && end - i > 6 && s.charCodeAt(end - 1) === 0x2a && s.charCodeAt(end - 2) === 0x2a) {
		const a = s.charCodeAt(i + 2);
		const b = s.charCodeAt(end - 3);
		if (a !== 0x2a && a !== SPACE && b !== 0x2a && b !== SPACE) {
			i += 2;
			end -= 2;
		}
	}
	out.start = i;
	out.end = end;
	return out;
}

/** A line with its wrapping removed. */
export interface NormalisedLine {
	text: string;
	ts?: number;
	caller?: string;
	level?: number;
	/** False for syslog/journal lines written by other programs. */
	kernel: boolean;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;

/** Remove terminal escape sequences (colours, cursor moves) from serial-console captures. */
export function stripAnsi(s: string): string {
	return s.includes('\x1b') ? s.replace(ANSI, '') : s;
}

/** Normalise one plain-text line: the kernel's message and what its prefixes said. */
export function normaliseLine(line: string): NormalisedLine {
	const clean = stripAnsi(line);
	const scan = scanLine(clean, 0, clean.length, newLineScan());
	const out: NormalisedLine = { text: clean.slice(scan.start, scan.end), kernel: scan.kernel };
	if (!Number.isNaN(scan.ts)) out.ts = scan.ts;
	if (scan.caller !== undefined) out.caller = scan.caller;
	if (scan.level !== undefined) out.level = scan.level;
	return out;
}
