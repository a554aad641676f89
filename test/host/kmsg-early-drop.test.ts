// The parser's early drop (ReportAssembler.wantsAt) keeps its own table of
// what a report's first line can start with, apart from the matchers that
// decide it (matchHeadline, the preamble, frames).  This keeps the two in
// step: every message of every fixture log, and its indented, tabbed and
// bracketed variants, that opens something in a fresh assembler must be one
// wantsAt() lets through (wants(), its first-character filter, kept the rest
// out before too).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { ReportAssembler } from '../../src/kmsg/reports.js';

const DIR = path.resolve('test/fixtures/kmsg');
// The log prefixes the parser strips before the assembler sees a message: timestamps, syslog/journal heads, caller ids.
const PREFIX = /^(?:<\d+>)?(?:\S+ +\d+ [\d:]+ \S+ kernel: |[A-Z][a-z]{2} \d+ [\d:]+ \S+ kernel: )?(?:\[ *\d+\.\d+\] ?)?(?:\[ *[TC]\d+\] ?)?/;

test('every message that opens a report or its preamble passes the early drop', () => {
	// What the parser did before the early drop: a message that wants() by its first character, handed to line().
	const opened = (m: string) => {
		const a = new ReportAssembler(() => undefined);
		if (!a.wants(m.charCodeAt(0))) return false;
		a.line(m, m, 0);
		const s = a as unknown as { open?: unknown; pending?: unknown };
		return s.open !== undefined || s.pending !== undefined;
	};
	let checked = 0;
	let opening = 0;
	const missed: string[] = [];
	const files = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(path.join(dir, n)).isDirectory() ? files(path.join(dir, n)) : [path.join(dir, n)]));
	for (const file of files(DIR)) {
		for (const raw of readFileSync(file, 'utf8').split('\n')) {
			const m = raw.replace(PREFIX, '');
			for (const v of [m, `  ${m}`, `\t${m}`, `[ ${m}]`, `? ${m}`]) {
				checked++;
				if (!opened(v)) continue;
				opening++;
				if (!new ReportAssembler(() => undefined).wantsAt(v, 0, v.length)) missed.push(`${path.relative(DIR, file)}: ${v}`);
			}
		}
	}
	expect(missed.slice(0, 10)).toEqual([]);
	expect(opening).toBeGreaterThan(100);
	expect(checked).toBeGreaterThan(5000);
});
