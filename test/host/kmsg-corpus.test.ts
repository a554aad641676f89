// The parser on real crash reports copied verbatim from public sources
// (test/fixtures/kmsg/real-world/: syzbot, distribution bug trackers, LKML,
// GitHub issues). Each NAME.log has a NAME.json with the fields read off the
// log by a person and the log's source. Prints a per-field score and holds the
// total at 0.97 or better.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseKernelLog } from '../../src/kmsg/parse.js';
import type { CrashReport } from '../../src/kmsg/reports.js';

interface Expected {
	kind: string;
	headline: string;
	file: string | null;
	line: number | null;
	function: string | null;
	module: string | null;
	tainted: string | null;
	/** Frame names in printed order, "? " in front of unreliable ones. */
	frames: string[];
}
interface Case {
	source: string;
	arch: string;
	kinds: string[];
	shapes: string[];
	reports: Expected[];
}

const dir = new URL('../fixtures/kmsg/real-world/', import.meta.url);
const names = readdirSync(dir)
	.filter((f) => f.endsWith('.log'))
	.map((f) => f.slice(0, -4))
	.sort();

const FIELDS = ['kind', 'headline', 'file', 'line', 'function', 'module', 'tainted', 'frames'] as const;
type Field = (typeof FIELDS)[number] | 'reports';

function actualField(r: CrashReport, field: (typeof FIELDS)[number]): unknown {
	switch (field) {
		case 'frames':
			return r.frames.map((f) => (f.reliable ? '' : '? ') + f.fn);
		default:
			return r[field] ?? null;
	}
}

interface Score {
	right: Record<Field, number>;
	total: Record<Field, number>;
	misses: string[];
}

/** Compare one log's reports with its JSON; a report missing counts all its fields wrong, an extra one counts one. */
function score(name: string, into: Score): void {
	const expected = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as Case;
	const { reports } = parseKernelLog(readFileSync(new URL(`${name}.log`, dir), 'utf8'));
	expected.reports.forEach((e, i) => {
		const r = reports[i];
		for (const field of FIELDS) {
			into.total[field]++;
			const want = e[field];
			const got = r ? actualField(r, field) : undefined;
			if (JSON.stringify(got) === JSON.stringify(want)) into.right[field]++;
			else into.misses.push(`${name} #${i} ${field}: want ${JSON.stringify(want)} got ${JSON.stringify(got)}`);
		}
	});
	into.total.reports++;
	if (reports.length === expected.reports.length) into.right.reports++;
	else into.misses.push(`${name}: want ${expected.reports.length} reports, got ${reports.length} (${reports.map((r) => r.kind).join(', ')})`);
}

describe('real-world crash-report corpus', () => {
	it('has at least 60 logs, each with its source and expected reports', () => {
		expect(names.length).toBeGreaterThanOrEqual(60);
		for (const name of names) {
			const c = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as Case;
			expect(c.source, name).toMatch(/\S/);
			// a log with no report must say why (an OOM kill is not a crash report)
			if (c.reports.length === 0) expect(c.kinds, name).toContain('not-a-report');
		}
	});

	it('per-field score over the corpus is at least 0.97', () => {
		const zero = (): Record<Field, number> => Object.fromEntries([...FIELDS, 'reports'].map((f) => [f, 0])) as Record<Field, number>;
		const s: Score = { right: zero(), total: zero(), misses: [] };
		for (const name of names) score(name, s);
		const lines = [...FIELDS, 'reports' as const].map((f) => `  ${f.padEnd(9)} ${s.right[f]}/${s.total[f]}`);
		const right = Object.values(s.right).reduce((a, b) => a + b, 0);
		const total = Object.values(s.total).reduce((a, b) => a + b, 0);
		lines.push(`  total     ${right}/${total} = ${(right / total).toFixed(4)} over ${names.length} logs`);
		console.log(`crash-report corpus, fields right / fields total:\n${lines.join('\n')}`);
		if (s.misses.length) console.log(`misses:\n  ${s.misses.join('\n  ')}`);
		expect(right / total).toBeGreaterThanOrEqual(0.97);
	});
});
