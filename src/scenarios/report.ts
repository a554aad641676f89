// How results read: one line per scenario with PASS/FAIL and the decisive
// numbers, the per-page map, a crash's headline and top frames with the
// module frame marked, and the failed checks; plus JUnit XML for CI systems.
import type { ScenarioResult } from './types.js';

const MAP_WIDTH = 64;
const PAGE_LEGEND = 'pages: M mapped+verified  Z zapped (SIGBUS on touch)  F faulting  X mismatch  . not present';

function wrap(map: string): string[] {
	const rows: string[] = [];
	for (let i = 0; i < map.length; i += MAP_WIDTH) rows.push(map.slice(i, i + MAP_WIDTH));
	return rows;
}

export function formatResult(r: ScenarioResult): string {
	const lines = [`${r.passed ? 'PASS' : 'FAIL'} ${r.name.padEnd(16)} ${r.summary} (${r.durationMs} ms)`];
	const indent = '     ';
	if (r.pageMap) wrap(r.pageMap).forEach((row, i) => lines.push(`${indent}${i === 0 ? 'pages ' : '      '}${row}`));
	if (r.crash) {
		const c = r.crash;
		lines.push(`${indent}${c.headline}${c.file ? `  (${c.file}:${c.line ?? '?'})` : ''}`);
		c.frames.forEach((f, i) =>
			lines.push(`${indent}  #${i} ${f.reliable ? '' : '? '}${f.text}${f.module === 'hybridmem_test' ? '   <-- hybridmem_test' : ''}`),
		);
		if (c.consoleLog) lines.push(`${indent}console log: ${c.consoleLog}`);
	}
	if (r.verdict) lines.push(`${indent}verdict: ${r.verdict}`);
	if (r.evidence && (r.verdict || !r.passed)) for (const e of r.evidence) lines.push(`${indent}  ${e}`);
	if (!r.passed) {
		lines.push(`${indent}expected: ${r.expectation}`);
		if (r.error) lines.push(`${indent}error: ${r.error}`);
		for (const c of r.checks.filter((x) => !x.ok)) lines.push(`${indent}✗ ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
	}
	return lines.join('\n');
}

export function formatSummary(results: ScenarioResult[]): string {
	const passed = results.filter((r) => r.passed).length;
	const kernels = [...new Set(results.map((r) => `${r.kernel} (${r.where})`))].join(', ');
	const lines = [`${passed} passed, ${results.length - passed} failed` + (kernels ? ` — on ${kernels}` : '')];
	if (results.some((r) => r.pageMap)) lines.unshift(PAGE_LEGEND);
	return lines.join('\n');
}

function xml(s: string): string {
	return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

export function junitXml(results: ScenarioResult[]): string {
	const failures = results.filter((r) => !r.passed).length;
	const seconds = (ms: number) => (ms / 1000).toFixed(3);
	const total = results.reduce((t, r) => t + r.durationMs, 0);
	const cases = results.map((r) => {
		const head = `  <testcase classname="hybridmem.${xml(r.kernel)}" name="${xml(r.name)}" time="${seconds(r.durationMs)}">`;
		const out = `    <system-out>${xml([r.summary, ...r.checks.map((c) => `${c.ok ? 'ok' : 'FAILED'} ${c.name}${c.detail ? `: ${c.detail}` : ''}`)].join('\n'))}</system-out>`;
		if (r.passed) return [head, out, '  </testcase>'].join('\n');
		const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}${c.detail ? `: ${c.detail}` : ''}`);
		const message = r.error ?? failed[0] ?? 'failed';
		return [head, `    <failure message="${xml(message)}">${xml([`expected: ${r.expectation}`, ...failed].join('\n'))}</failure>`, out, '  </testcase>'].join('\n');
	});
	return [
		'<?xml version="1.0" encoding="UTF-8"?>',
		`<testsuites name="hybridmem" tests="${results.length}" failures="${failures}" time="${seconds(total)}">`,
		`<testsuite name="hybridmem scenarios" tests="${results.length}" failures="${failures}" errors="0" skipped="0" time="${seconds(total)}">`,
		...cases,
		'</testsuite>',
		'</testsuites>',
		'',
	].join('\n');
}

/** KTAP (the kselftest format): the header and plan, printed before any result. */
export function ktapHeader(count: number): string {
	return `KTAP version 1\n1..${count}`;
}

function ktapDescription(name: string): string {
	return name.replace(/#/g, '_').replace(/\s+/g, '_');
}

/** One scenario's KTAP test line (number `n`), its diagnostics as '# ' lines before it. */
export function ktapResult(r: ScenarioResult, n: number): string {
	const lines = [`# ${r.name}: ${r.summary}`.replace(/\n/g, ' ')];
	if (!r.passed) {
		if (r.error) lines.push(...r.error.split('\n').map((l) => `# error: ${l}`));
		for (const c of r.checks.filter((x) => !x.ok)) lines.push(`# failed: ${c.name}${c.detail ? `: ${c.detail}` : ''}`.replace(/\n/g, ' '));
	}
	lines.push(`${r.passed ? 'ok' : 'not ok'} ${n} ${ktapDescription(r.name)}`);
	return lines.join('\n');
}

/** kselftest's closing totals line. */
export function ktapTotals(results: ScenarioResult[]): string {
	const pass = results.filter((r) => r.passed).length;
	return `# Totals: pass:${pass} fail:${results.length - pass} xfail:0 xpass:0 skip:0 error:0`;
}
