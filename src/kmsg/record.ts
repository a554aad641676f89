// One /dev/kmsg record: `prefix,seq,ts_usec,flag[,more...];text\n` followed by
// optional continuation lines ` KEY=value\n` (Documentation/ABI/testing/dev-kmsg).

/** A parsed /dev/kmsg record. */
export interface KmsgRecord {
	/** 64-bit sequence number; JS numbers are exact up to 2^53, far beyond any uptime. */
	seq: number;
	/** Monotonic timestamp in microseconds. */
	tsUsec: number;
	/** Syslog facility (0 = kernel, 1 = user, i.e. written to /dev/kmsg by a process). */
	facility: number;
	/** Syslog level 0 (emerg) .. 7 (debug). */
	level: number;
	/** '-' for a whole record, 'c' / '+' for fragments of a continued line on 3.x-4.x kernels. */
	flag: string;
	/** printk caller id ("T123" task, "C1" cpu) when CONFIG_PRINTK_CALLER is set. */
	caller?: string;
	/** Message text with \xNN escapes decoded; may contain '\n' for multi-line printks. */
	text: string;
	/** Continuation lines (SUBSYSTEM=, DEVICE=, ...), escapes decoded. */
	dict: Record<string, string>;
}

const BACKSLASH = 0x5c;

/** Decode the kernel's \xNN escapes (every byte < 0x20, >= 0x7f and '\' itself) and the UTF-8 they spell. */
export function unescapeKmsg(text: string): string {
	if (!text.includes('\\x')) return text;
	const bytes: number[] = [];
	let plain = true;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (c === BACKSLASH && text.charCodeAt(i + 1) === 0x78 /* x */) {
			const hex = text.slice(i + 2, i + 4);
			if (/^[0-9a-fA-F]{2}$/.test(hex)) {
				const byte = parseInt(hex, 16);
				if (byte >= 0x80) plain = false;
				bytes.push(byte);
				i += 3;
				continue;
			}
		}
		if (c >= 0x80) {
			// Not kernel output (the kernel escapes these); keep the character as it is.
			for (const b of Buffer.from(text[i] ?? '', 'utf8')) bytes.push(b);
			plain = false;
			continue;
		}
		bytes.push(c);
	}
	return Buffer.from(bytes).toString(plain ? 'latin1' : 'utf8');
}

/** Thrown for input that is not a /dev/kmsg record. */
export class KmsgFormatError extends Error {
	readonly code = 'EKMSGFORMAT';
	constructor(message: string) {
		super(message);
		this.name = 'KmsgFormatError';
	}
}

/**
 * Quick check for the record header shape `digits,digits,digits,...;` at `start`,
 * cheap enough to run on every line of a text log (a `cat /dev/kmsg > file` capture).
 * Returns the index of the ';' or -1.
 */
export function kmsgHeaderEnd(s: string, start = 0, end = s.length): number {
	let i = start;
	for (let field = 0; field < 3; field++) {
		const first = i;
		while (i < end) {
			const c = s.charCodeAt(i);
			if (c < 0x30 || c > 0x39) break;
			i++;
		}
		if (i === first || s.charCodeAt(i) !== 0x2c /* , */) return -1;
		i++;
	}
	const limit = Math.min(end, i + 256);
	for (; i < limit; i++) {
		const c = s.charCodeAt(i);
		if (c === 0x3b /* ; */) return i;
		if (c === 0x20 || c === 0x0a) return -1;
	}
	return -1;
}

/** Parse one record as read from /dev/kmsg (one read() = one record). */
export function parseKmsgRecord(input: string | Uint8Array): KmsgRecord {
	// The kernel escapes every non-ASCII byte, so latin1 decoding is lossless here.
	const raw = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
	const semi = kmsgHeaderEnd(raw);
	if (semi < 0) throw new KmsgFormatError(`not a /dev/kmsg record: ${JSON.stringify(raw.slice(0, 80))}`);
	const fields = raw.slice(0, semi).split(',');
	const prefix = Number(fields[0]);
	const record: KmsgRecord = {
		seq: Number(fields[1]),
		tsUsec: Number(fields[2]),
		facility: prefix >> 3,
		level: prefix & 7,
		flag: fields[3] ?? '-',
		text: '',
		dict: {},
	};
	for (let i = 4; i < fields.length; i++) {
		const field = fields[i] ?? '';
		// Unknown fields must be ignored (ABI document); caller= is the only one defined today.
		if (field.startsWith('caller=')) record.caller = field.slice(7);
	}
	let nl = raw.indexOf('\n', semi + 1);
	if (nl < 0) nl = raw.length;
	record.text = unescapeKmsg(raw.slice(semi + 1, nl));
	let pos = nl + 1;
	while (pos < raw.length) {
		let next = raw.indexOf('\n', pos);
		if (next < 0) next = raw.length;
		if (raw.charCodeAt(pos) === 0x20) {
			const line = raw.slice(pos + 1, next);
			const eq = line.indexOf('=');
			if (eq > 0) record.dict[line.slice(0, eq)] = unescapeKmsg(line.slice(eq + 1));
		}
		pos = next + 1;
	}
	return record;
}

/** Only the sequence number, for skipping records without decoding them. */
export function kmsgRecordSeq(raw: Uint8Array): number {
	let i = 0;
	while (i < raw.length && raw[i] !== 0x2c) i++;
	let seq = 0;
	for (i++; i < raw.length; i++) {
		const c = raw[i] ?? 0;
		if (c < 0x30 || c > 0x39) break;
		seq = seq * 10 + (c - 0x30);
	}
	return seq;
}

/** Text of a record as `dmesg` would show it (seconds with microseconds), for humans and logs. */
export function formatKmsgRecord(record: KmsgRecord): string {
	const secs = Math.floor(record.tsUsec / 1e6);
	const usec = String(record.tsUsec % 1e6).padStart(6, '0');
	return record.text
		.split('\n')
		.map((line) => `[${String(secs).padStart(5, ' ')}.${usec}] ${line}`)
		.join('\n');
}
