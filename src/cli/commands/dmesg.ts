// hybridmem dmesg: the module's events and any crash reports in a kernel log
// (a file, the live ring buffer, or the log as it grows).
import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { abortOnSignals, parse } from '../options.js';
import type { ModuleEvent } from '../../kmsg/events.js';
import { toJson } from '../../kmsg/json.js';
import { KernelLogParser, MAX_LINE, parseRecords, type KernelLog } from '../../kmsg/parse.js';
import { readKernelLog, startCapture } from '../../kmsg/reader.js';
import type { CrashReport } from '../../kmsg/reports.js';

export const summary = 'module events and crash reports (BUG, oops, WARNING, KASAN, panics) in a kernel log';

export const help = `Usage: hybridmem dmesg [--file FILE | --follow] [--json] [--frames N]

Reads the kernel log (the ring buffer by default, FILE, or the live log with
--follow) and prints the hybridmem_test module's events and every crash report
found: its kind, headline, file:line, function, module and top stack frames.
Reads any shape of kernel log: dmesg with or without timestamps, dmesg -r/-x,
journalctl -k, syslog, serial-console captures, /dev/kmsg dumps; x86_64,
arm64, powerpc and riscv reports from 2.6 to 6.x kernels.

Exits 0 when reports are found (finding them is the point); 1 when the log
cannot be read or is not a kernel log at all (binary data, one endless line).

Options:
  --file FILE   parse FILE ('-' for standard input) instead of the ring buffer
  --follow      print events and reports as the kernel logs them, until Ctrl-C
  --json        print {"events": [...], "reports": [...], "input": {...}} (addresses
                as "0x..." strings). A report's headline has no log prefixes;
                file/line only when the headline names them; function from the
                headline, else the first kernel-mode RIP/PC/NIP/epc line; module
                from that line, else from the first frame; tainted is the flags
                as printed ("G        W"), absent when not tainted; frames are the
                call trace in printed order ("?" and "(unreliable)" ones marked)
  --frames N    stack frames to show per report (default 8)`;

function hex(value: bigint): string {
	return '0x' + value.toString(16);
}

function stamp(ts: number | undefined): string {
	return ts === undefined ? '' : `[${ts.toFixed(6).padStart(12)}] `;
}

/** One line for an event: its type and fields, addresses in hex. */
export function describeEvent(event: ModuleEvent): string {
	const fields = Object.entries(event)
		.filter(([key]) => key !== 'type' && key !== 'line' && key !== 'ts')
		.map(([key, value]) => `${key}=${typeof value === 'bigint' ? hex(value) : String(value)}`);
	return `${stamp(event.ts)}${event.type}${fields.length ? ' ' + fields.join(' ') : ''}`;
}

// Mapping-level events are listed; per-page ones are only counted (there can be thousands).
const LISTED = new Set<ModuleEvent['type']>(['mapStart', 'mapComplete', 'mapFailed', 'zapNoop', 'freed', 'suppressed', 'loaded', 'unloaded', 'other']);

export function describeEvents(events: ModuleEvent[]): string[] {
	const counts = new Map<string, number>();
	for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
	const lines = [`events: ${events.length}${counts.size ? ' (' + [...counts].map(([t, n]) => `${t} ${n}`).join(', ') + ')' : ''}`];
	for (const e of events) if (LISTED.has(e.type)) lines.push('  ' + describeEvent(e));
	return lines;
}

/** A report for people: headline, where, who, and the top frames with module frames marked. */
export function describeReport(report: CrashReport, index: number, maxFrames: number): string[] {
	const lines = [`#${index} ${report.kind}${report.ts !== undefined ? ` at ${report.ts.toFixed(6)}` : ''}: ${report.headline}`];
	const where: string[] = [];
	if (report.file !== undefined) where.push(`${report.file}:${report.line ?? '?'}`);
	if (report.function !== undefined) where.push(`in ${report.function}`);
	if (report.module !== undefined) where.push(`[${report.module}]`);
	if (where.length) lines.push(`   where: ${where.join(' ')}`);
	const who: string[] = [];
	if (report.comm !== undefined) who.push(`comm ${report.comm}`);
	if (report.pid !== undefined) who.push(`pid ${report.pid}`);
	if (report.cpu !== undefined) who.push(`cpu ${report.cpu}`);
	if (report.tainted !== undefined) who.push(`tainted '${report.tainted}'`);
	if (report.release !== undefined) who.push(`kernel ${report.release}`);
	if (who.length) lines.push(`   task: ${who.join(', ')}`);
	const reliable = report.frames.filter((f) => f.reliable);
	const shown = (reliable.length ? reliable : report.frames).slice(0, maxFrames);
	if (shown.length) {
		lines.push('   frames:');
		for (const f of shown) {
			const text = `${f.fn}+0x${f.offset.toString(16)}/0x${f.size.toString(16)}${f.module ? ` [${f.module}]` : ''}`;
			const marked = f.module !== undefined && (report.module === undefined || f.module === report.module);
			lines.push(`     ${f.module ? '>' : ' '} ${text}${marked ? '   <- module' : ''}`);
		}
		const hidden = report.frames.length - shown.length;
		if (hidden > 0) lines.push(`       (${hidden} more${reliable.length < report.frames.length ? ', including "?" guesses' : ''})`);
	}
	if (!report.ended && report.kind !== 'trace' && report.kind !== 'lockup') lines.push('   (no end marker: the report may be cut short)');
	return lines;
}

/** Why the input is not a kernel log at all, when it clearly is not one. */
export function notAKernelLog(log: KernelLog): string | undefined {
	if (log.events.length > 0 || log.reports.length > 0) return undefined;
	const input = log.input;
	if (input.binary) return 'binary data (NUL or control bytes), not text';
	if (input.longLines > 0 && input.longLines * 2 >= input.lines)
		return `a line of ${input.longestLine} characters; kernel messages are at most 1 KiB (only the first ${MAX_LINE} characters of a line are read)`;
	return undefined;
}

function printLog(log: KernelLog, json: boolean, maxFrames: number): void {
	if (json) {
		console.log(toJson({ events: log.events, reports: log.reports, input: log.input }, 2));
		return;
	}
	if (log.input.lines === 0) console.log('empty input: no kernel messages');
	for (const line of describeEvents(log.events)) console.log(line);
	console.log(`reports: ${log.reports.length}`);
	log.reports.forEach((r, i) => {
		for (const line of describeReport(r, i + 1, maxFrames)) console.log('  ' + line);
	});
}

async function parseFile(file: string): Promise<KernelLog> {
	const parser = new KernelLogParser();
	const stream = file === '-' ? process.stdin : createReadStream(file);
	stream.setEncoding('utf8');
	try {
		for await (const chunk of stream) parser.write(chunk as string);
	} catch (err) {
		const e = err as NodeJS.ErrnoException;
		throw new CliError(`dmesg: cannot read ${file}: ${e.message}`, 1);
	}
	return parser.end();
}

async function follow(json: boolean, maxFrames: number): Promise<KernelLog> {
	let reports = 0;
	const parser = new KernelLogParser(
		json
			? {}
			: {
					onEvent: (e) => console.log(describeEvent(e)),
					onReport: (r) => {
						for (const line of describeReport(r, ++reports, maxFrames)) console.log(line);
					},
				},
	);
	const capture = await startCapture({ pollIntervalMs: 100 });
	const signals = abortOnSignals();
	if (!json) console.error(`following the kernel log (${capture.source}); Ctrl-C to stop`);
	try {
		while (!signals.signal.aborted) {
			const records = await capture.take();
			for (const record of records) parser.record(record);
			if (records.length === 0) parser.idle();
			await sleep(100, undefined, { signal: signals.signal }).catch(() => undefined);
		}
		for (const record of await capture.take()) parser.record(record);
	} finally {
		signals.dispose();
		await capture.stop();
	}
	return parser.end();
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('dmesg', () =>
		parseArgs({
			args: argv,
			strict: true,
			options: {
				file: { type: 'string' },
				follow: { type: 'boolean' },
				json: { type: 'boolean' },
				frames: { type: 'string' },
			},
		}),
	);
	if (values.file !== undefined && values.follow) throw new CliError("dmesg: --file and --follow exclude each other; see 'hybridmem dmesg --help'", 2);
	const maxFrames = values.frames === undefined ? 8 : Number(values.frames);
	if (!Number.isInteger(maxFrames) || maxFrames < 0) throw new CliError(`dmesg: --frames expects a count, got '${values.frames}'`, 2);
	const json = values.json === true;

	if (values.follow) {
		const log = await follow(json, maxFrames);
		if (json) printLog(log, true, maxFrames);
		return 0;
	}
	let log: KernelLog;
	if (values.file !== undefined) {
		log = await parseFile(values.file);
		const why = notAKernelLog(log);
		if (why) throw new CliError(`dmesg: ${values.file} is not a kernel log: ${why}`, 1);
	}
	else {
		const captured = await readKernelLog().catch((err: Error) => {
			throw new CliError(`dmesg: ${err.message}`, 1);
		});
		log = parseRecords(captured.records);
	}
	printLog(log, json, maxFrames);
	return 0;
}
