// When /dev/kmsg cannot be opened (no such node in a container, a restrictive
// mode) the `dmesg` command may still read the log through syslog(2). It
// gives no sequence numbers, so a capture remembers the last record it saw at
// the start and returns what follows it later.

import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import type { KmsgRecord } from './record.js';
import type { CaptureOptions, CaptureResult, KernelLogCapture, RecordPredicate } from './reader.js';

/** /dev/kmsg (and the fallback) could not be read; message says why and what to do. */
export class KmsgAccessError extends Error {
	code: string;
	errno?: number;
	syscall?: string;
	path: string;
	constructor(message: string, props: { code: string; errno?: number; syscall?: string; path: string; cause?: unknown }) {
		super(message, { cause: props.cause });
		this.name = 'KmsgAccessError';
		this.code = props.code;
		if (props.errno !== undefined) this.errno = props.errno;
		if (props.syscall !== undefined) this.syscall = props.syscall;
		this.path = props.path;
	}
}

function dmesgRestrict(): string {
	try {
		return readFileSync('/proc/sys/kernel/dmesg_restrict', 'utf8').trim();
	} catch {
		return 'unknown';
	}
}

/** An fs error opening /dev/kmsg, turned into an error that says what to do. */
export function accessError(err: NodeJS.ErrnoException, path: string): Error {
	const code = err.code ?? 'EIO';
	let advice: string;
	if (code === 'EPERM' || code === 'EACCES') {
		const uid = process.getuid?.();
		advice =
			`reading the kernel log needs root or CAP_SYSLOG when kernel.dmesg_restrict=1 ` +
			`(it is ${dmesgRestrict()} here; this process runs as uid ${uid ?? '?'}). ` +
			`Run as root (sudo), or allow it with \`sudo sysctl kernel.dmesg_restrict=0\`, ` +
			`or give node the capability: \`sudo setcap cap_syslog+ep "$(command -v node)"\`.`;
	} else if (code === 'ENOENT') {
		advice = `${path} does not exist (a container without it?); mount or create it (mknod ${path} c 1 11) or run on the host.`;
	} else {
		advice = err.message;
	}
	return new KmsgAccessError(`cannot read ${path}: ${code}: ${advice}`, {
		code,
		errno: err.errno,
		syscall: err.syscall ?? 'open',
		path,
		cause: err,
	});
}

const DMESG_LINE = /^<(\d+)>(?:\[\s*(\d+)\.(\d+)\] ?)?(.*)$/;

/** Records from `dmesg --raw` output ("<6>[   12.345678] text"); seq is the position in this output. */
export function parseDmesgRaw(text: string): KmsgRecord[] {
	const records: KmsgRecord[] = [];
	for (const line of text.split('\n')) {
		const m = DMESG_LINE.exec(line);
		if (!m) {
			const last = records[records.length - 1];
			if (last && line.length > 0) last.text += '\n' + line;
			continue;
		}
		const prefix = Number(m[1]);
		const tsUsec = m[2] === undefined ? 0 : Number(m[2]) * 1e6 + Number((m[3] ?? '0').padEnd(6, '0').slice(0, 6));
		records.push({ seq: records.length, tsUsec, facility: prefix >> 3, level: prefix & 7, flag: '-', text: m[4] ?? '', dict: {} });
	}
	return records;
}

/** Run `dmesg --raw`; prefers the syslog(2) interface, whose levels util-linux 2.38 prints correctly. */
export async function runDmesg(cause?: Error): Promise<KmsgRecord[]> {
	const attempts = [['--syslog', '--raw'], ['--raw']];
	let last: unknown;
	for (const args of attempts) {
		try {
			const { stdout } = await execa('dmesg', args, { stripFinalNewline: false, timeout: 30_000 });
			return parseDmesgRaw(stdout);
		} catch (err) {
			last = err;
		}
	}
	const detail = (last as { stderr?: string; shortMessage?: string })?.stderr?.trim() || (last as Error)?.message;
	const message = cause
		? `${cause.message} The dmesg fallback failed too: ${detail}`
		: `cannot read the kernel log with dmesg: ${detail}`;
	const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'EPERM';
	throw new KmsgAccessError(message, { code, path: 'dmesg', cause: last });
}

export async function readAllWithDmesg(cause?: Error): Promise<CaptureResult> {
	return { records: await runDmesg(cause), lost: 0, source: 'dmesg', overrun: false };
}

const sameRecord = (a: KmsgRecord, b: KmsgRecord): boolean => a.tsUsec === b.tsUsec && a.text === b.text && a.level === b.level;

/** A capture through repeated `dmesg` runs. */
export class DmesgCapture implements KernelLogCapture {
	readonly source = 'dmesg' as const;
	private records: KmsgRecord[] = [];
	private overrun = false;
	private stopped: CaptureResult | undefined;

	private constructor(
		private readonly baseline: KmsgRecord | undefined,
		private readonly pollIntervalMs: number,
		private readonly cause: Error | undefined,
	) {}

	static async start(options: CaptureOptions = {}, cause?: Error): Promise<DmesgCapture> {
		const records = await runDmesg(cause);
		return new DmesgCapture(records[records.length - 1], Math.max(options.pollIntervalMs ?? 250, 100), cause);
	}

	async poll(): Promise<number> {
		if (this.stopped) return 0;
		const all = await runDmesg(this.cause);
		const before = this.records.length;
		const base = this.baseline;
		if (!base) this.records = all;
		else {
			let i = all.length - 1;
			while (i >= 0 && !sameRecord(all[i] as KmsgRecord, base)) i--;
			if (i >= 0) this.records = all.slice(i + 1);
			else {
				// The start point scrolled out of the ring: keep what is newer and say so.
				this.overrun = true;
				this.records = all.filter((r) => r.tsUsec > base.tsUsec);
			}
		}
		this.records.forEach((r, i) => (r.seq = i));
		return this.records.length - before;
	}

	async waitFor(predicate: RecordPredicate, timeoutMs: number): Promise<KmsgRecord | undefined> {
		const test = typeof predicate === 'function' ? predicate : typeof predicate === 'string' ? (r: KmsgRecord) => r.text.includes(predicate) : (r: KmsgRecord) => predicate.test(r.text);
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			await this.poll();
			const found = this.records.find(test);
			if (found || this.stopped || Date.now() >= deadline) return found;
			await new Promise((resolve) => setTimeout(resolve, Math.min(this.pollIntervalMs, Math.max(1, deadline - Date.now()))));
		}
	}

	private taken = 0;

	async take(): Promise<KmsgRecord[]> {
		await this.poll();
		const fresh = this.records.slice(this.taken);
		this.taken = this.records.length;
		return fresh;
	}

	async collect(): Promise<CaptureResult> {
		if (this.stopped) return this.stopped;
		await this.poll();
		return { records: [...this.records], lost: 0, source: this.source, overrun: this.overrun };
	}

	async stop(): Promise<CaptureResult> {
		this.stopped ??= await this.collect();
		return this.stopped;
	}

	async [Symbol.asyncDispose](): Promise<void> {
		await this.stop();
	}
}
