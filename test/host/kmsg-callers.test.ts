// Reports whose lines interleave with another caller's, when the log shows
// printk caller ids ("[  74.488762][ T6529] ", CONFIG_PRINTK_CALLER).
//
// The interleaved log is CONSTRUCTED, not captured: no public log with two
// whole reports interleaved line by line was found. It is derived from three
// real syzbot logs of the corpus (test/fixtures/kmsg/real-world/): the lines
// of a gpf report (caller T2809) and of a "sleeping function called from
// invalid context" report (caller T6529) are taken verbatim and alternated
// one by one after the gpf's headline, with netdevsim/audit lines of two more
// tasks (T76, T30) from an RCU-stall log and the RCU stall's own NMI-style
// CPU dump left out. Timestamps are renumbered to keep the log monotonic;
// messages and caller ids are untouched. Each report must come out as it
// does from its own log alone.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseKernelLog, parseRecords } from '../../src/kmsg/parse.js';
import type { CrashReport } from '../../src/kmsg/reports.js';

const dir = 'test/fixtures/kmsg/real-world';
const read = (name: string) => readFileSync(path.join(dir, `${name}.log`), 'utf8').split('\n').filter((l) => l.length > 0);

/** "[ts][ T1] msg" -> caller and message. */
function split(line: string): { caller: string; msg: string } {
	const m = /^\[\s*\d+\.\d+\]\[\s*([TC]\d+)\] (.*)$/.exec(line);
	if (!m) throw new Error(`no caller id: ${line}`);
	return { caller: m[1] as string, msg: m[2] as string };
}

const GPF = 'syzbot-x86_64-5.8-gpf-kasan-null';
const SLEEP = 'syzbot-x86_64-5.15-sleeping-in-atomic';
const OTHERS = read('syzbot-x86_64-6.x-rcu-tasks-stall-other-callers-interleaved')
	.map(split)
	.filter((l) => l.caller === 'T76' || l.caller === 'T30');

/** The lines of `a` and `b` alternated after a's first line, another task's line every fifth; `utilLinux`: "[ts] [ T1] " as util-linux dmesg prints it. */
function interleave(utilLinux: boolean): string {
	const a = read(GPF).map(split);
	const b = read(SLEEP).map(split);
	const out: { caller: string; msg: string }[] = [a.shift() as { caller: string; msg: string }];
	let other = 0;
	while (a.length > 0 || b.length > 0) {
		if (b.length > 0) out.push(b.shift() as { caller: string; msg: string });
		if (a.length > 0) out.push(a.shift() as { caller: string; msg: string });
		if (out.length % 5 === 0 && OTHERS.length > 0) out.push(OTHERS[other++ % OTHERS.length] as { caller: string; msg: string });
	}
	return out
		.map((l, i) => {
			const ts = `[${(100 + i * 0.0005).toFixed(6).padStart(12)}]`;
			const id = `[${l.caller.padStart(6)}]`;
			return `${ts}${utilLinux ? ' ' : ''}${id} ${l.msg}`;
		})
		.join('\n');
}

const fields = (r: CrashReport | undefined) =>
	r && {
		kind: r.kind,
		headline: r.headline,
		file: r.file,
		line: r.line,
		function: r.function,
		module: r.module,
		tainted: r.tainted,
		frames: r.frames.map((f) => (f.reliable ? '' : '? ') + f.fn),
		pid: r.pid,
		comm: r.comm,
	};

describe('printk caller ids: each report from its own caller\'s lines', () => {
	const alone = [parseKernelLog(read(GPF).join('\n')).reports, parseKernelLog(read(SLEEP).join('\n')).reports];
	test('the two source logs give one report each', () => {
		expect(alone.map((r) => r.length)).toEqual([1, 1]);
	});

	test.each([false, true])('two reports interleaved line by line, with other tasks\' lines (util-linux form: %s)', (utilLinux) => {
		const log = interleave(utilLinux);
		const { reports } = parseKernelLog(log);
		expect(reports).toHaveLength(2);
		// in the order their headlines appeared: the gpf's first
		expect(fields(reports[0])).toEqual(fields(alone[0]?.[0]));
		expect(fields(reports[1])).toEqual(fields(alone[1]?.[0]));
		expect(fields(reports[0])?.function).toBe('rb_erase');
		// no line of another caller in a report
		expect(reports[0]?.lines.every((l) => l.includes('[ T2809]'))).toBe(true);
		expect(reports[1]?.lines.every((l) => l.includes('[ T6529]'))).toBe(true);
	});

	test('the same from /dev/kmsg records, whose caller= field names the caller', () => {
		const records = interleave(false)
			.split('\n')
			.map((l, seq) => {
				const m = /^\[\s*(\d+)\.(\d+)\]\[\s*([TC]\d+)\] (.*)$/.exec(l) as RegExpExecArray;
				return { seq, tsUsec: Number(m[1]) * 1e6 + Number(m[2]), facility: 0, level: 4, flag: '-', caller: m[3], text: m[4] as string, dict: {} };
			});
		const { reports } = parseRecords(records);
		expect(reports.map(fields)).toEqual([fields(alone[0]?.[0]), fields(alone[1]?.[0])]);
	});

	test('without caller ids the log reads as before: one caller\'s lines do not stay apart', () => {
		const plain = interleave(false).replace(/^(\[[^\]]*\])\[\s*[TC]\d+\] /gm, '$1 ');
		const { reports } = parseKernelLog(plain);
		// the gpf's body is cut short by the other report's headline: not the gpf alone
		expect(fields(reports[0])).not.toEqual(fields(alone[0]?.[0]));
	});

	test('another CPU\'s dump that a report asked for stays with it, apart from its trace', () => {
		// real arm32 syzbot log: the panic by T5109, then "CPU1: stopping" and CPU1's dump by C1
		const log = readFileSync(path.join(dir, 'syzbot-arm32-5.10-null-deref-panic-other-cpu-stopping.log'), 'utf8');
		const panic = parseKernelLog(log).reports.find((r) => r.kind === 'panic');
		expect(panic?.frames).toEqual([]);
		expect(panic?.moreTraces.length).toBeGreaterThan(0);
		expect(panic?.tainted).toBe('G      D'); // the kernel's taint, printed on CPU1's task line
		expect(panic?.lines.some((l) => l.includes('[    C1] CPU1: stopping'))).toBe(true);
	});
});
