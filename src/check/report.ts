// How check results read: a table (one line per check with its decisive
// numbers), KTAP as kselftest prints it, and JUnit XML.
import type { CheckReport, CheckResult } from './types.js';

const STATUS = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP', info: 'INFO' } as const;

export function formatCheck(r: CheckResult, verbose = false): string {
	const lines = [`${STATUS[r.status]} ${r.category.padEnd(14)} ${r.name.padEnd(32)} ${r.summary}`];
	if (verbose || r.status === 'fail') for (const e of r.evidence) lines.push(`     ${e}`);
	return lines.join('\n');
}

export function counts(report: CheckReport): Record<CheckResult['status'], number> {
	const c = { pass: 0, fail: 0, skip: 0, info: 0 };
	for (const r of report.checks) c[r.status]++;
	return c;
}

export function formatReport(report: CheckReport, verbose = false): string {
	const c = counts(report);
	const lines = [`hybridmem check: ${report.target.label} on ${report.kernel}`, ...report.checks.map((r) => formatCheck(r, verbose))];
	if (report.crash) lines.push(`guest kernel crashed${report.crash.afterCheck ? ` during ${report.crash.afterCheck}` : ''}: ${report.crash.headline}`, ...report.crash.frames.map((f) => `  ${f}`));
	lines.push(`${c.pass} passed, ${c.fail} failed, ${c.skip} skipped, ${c.info} info — ${report.passed ? 'no check failed' : 'FAILED'}`);
	return lines.join('\n');
}

function ktapLine(s: string): string {
	return s.replace(/[#\n]/g, ' ');
}

/** KTAP (Documentation/dev-tools/ktap.rst), one suite per kernel. */
export function ktap(reports: CheckReport[]): string {
	const out = ['KTAP version 1', `1..${reports.length}`];
	reports.forEach((report, i) => {
		out.push(`    KTAP version 1`, `    # Subtest: ${ktapLine(`${report.target.label} on ${report.kernel}`)}`, `    1..${report.checks.length}`);
		report.checks.forEach((r, j) => {
			const directive = r.status === 'skip' ? ` # SKIP ${ktapLine(r.summary)}` : '';
			out.push(`    # ${r.category}: ${ktapLine(r.summary)}`);
			for (const e of r.status === 'fail' ? r.evidence : []) out.push(`    # ${ktapLine(e)}`);
			out.push(`    ${r.status === 'fail' ? 'not ok' : 'ok'} ${j + 1} ${r.name}${directive}`);
		});
		const c = counts(report);
		out.push(`    # Totals: pass:${c.pass + c.info} fail:${c.fail} xfail:0 xpass:0 skip:${c.skip} error:0`);
		out.push(`${report.passed ? 'ok' : 'not ok'} ${i + 1} ${ktapLine(report.kernel)}`);
	});
	return `${out.join('\n')}\n`;
}

function xml(s: string): string {
	return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

export function junit(reports: CheckReport[]): string {
	const suites = reports.map((report) => {
		const c = counts(report);
		const cases = report.checks.map((r) => {
			const head = `    <testcase classname="hybridmem.check.${xml(r.category)}" name="${xml(r.name)}">`;
			const body = r.status === 'fail' ? `      <failure message="${xml(r.summary)}">${xml(r.evidence.join('\n'))}</failure>` : r.status === 'skip' ? `      <skipped message="${xml(r.summary)}"/>` : `      <system-out>${xml([r.summary, ...r.evidence].join('\n'))}</system-out>`;
			return [head, body, '    </testcase>'].join('\n');
		});
		return [`  <testsuite name="${xml(`${report.target.label} on ${report.kernel}`)}" tests="${report.checks.length}" failures="${c.fail}" skipped="${c.skip}" errors="0">`, ...cases, '  </testsuite>'].join('\n');
	});
	return ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites name="hybridmem check">', ...suites, '</testsuites>', ''].join('\n');
}
