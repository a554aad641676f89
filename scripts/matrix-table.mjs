// The kernel matrix's table: one column per kernel, one row per scenario
// (plus the module's W=1 build and the device suite's counts), each cell
// pass or FAIL with what that kernel did where kernels differ, and the
// findings: the rows whose per-kernel facts are not the same everywhere.
// Pure functions over the results scripts/matrix.mjs collects (and
// test/host/matrix-table.test.ts checks).

/**
 * @typedef {{ version: string, origin?: string, suite?: string, flavour?: string, arch?: string, pageSize?: string }} MatrixKernel
 * @typedef {{ name: string, passed: boolean, finding?: string, crash?: { file?: string, line?: number }, summary?: string, error?: string }} MatrixScenario
 * @typedef {{ passed: number, failed: number, skipped: number }} Counts
 * @typedef {{
 *   kernel: MatrixKernel,
 *   build?: { ok: boolean, detail?: string },
 *   scenarios?: MatrixScenario[],
 *   scenariosError?: string,
 *   device?: Counts,
 *   deviceError?: string,
 * }} MatrixRun
 */

/** Where a kernel came from, and its architecture and page size when known (x86 and arm64 share a table), for the column header. */
export function kernelLabel(k) {
	const from = k.origin === 'fetched' ? `${k.suite ?? 'fetched'}${k.flavour && k.flavour !== 'amd64' && k.flavour !== k.arch ? `:${k.flavour}` : ''}` : 'installed';
	const machine = [k.arch, k.pageSize].filter(Boolean).join(' ');
	return `${k.version} (${from}${machine ? `, ${machine}` : ''})`;
}

/** The per-kernel fact a result carries: its own finding, else a crash's location. */
export function resultFinding(r) {
	if (r.finding) return r.finding;
	if (r.crash?.file) return `BUG at ${r.crash.file}${r.crash.line !== undefined ? `:${r.crash.line}` : ''}`;
	return undefined;
}

function cell(r) {
	if (!r) return { text: 'not run', ok: false };
	const fact = resultFinding(r);
	return { text: `${r.passed ? 'pass' : 'FAIL'}${fact ? `: ${fact}` : ''}`, ok: r.passed };
}

/**
 * Builds the table.  Returns the header, the rows (name + one cell per
 * kernel), the findings and whether every cell passed.
 * @param {MatrixRun[]} runs
 */
export function matrixTable(runs) {
	const names = [];
	for (const run of runs) for (const r of run.scenarios ?? []) if (!names.includes(r.name)) names.push(r.name);
	const rows = [];
	rows.push({
		name: 'module build (W=1, no warnings)',
		cells: runs.map((run) => (run.build ? { text: run.build.ok ? 'ok' : `FAIL${run.build.detail ? `: ${run.build.detail}` : ''}`, ok: run.build.ok } : { text: 'not run', ok: false })),
	});
	for (const name of names) {
		rows.push({
			name,
			cells: runs.map((run) => (run.scenariosError && !run.scenarios?.length ? { text: `FAIL: ${run.scenariosError}`, ok: false } : cell(run.scenarios?.find((r) => r.name === name)))),
		});
	}
	const withDevice = runs.some((run) => run.device || run.deviceError);
	if (withDevice)
		rows.push({
			name: 'device suite (passed/failed/skipped)',
			cells: runs.map((run) =>
				run.device
					? { text: `${run.device.passed}/${run.device.failed}/${run.device.skipped}`, ok: run.device.failed === 0 && !run.deviceError }
					: { text: `FAIL: ${run.deviceError ?? 'not run'}`, ok: false },
			),
		});
	const findings = [];
	for (const name of names) {
		const facts = runs.map((run) => {
			const r = run.scenarios?.find((s) => s.name === name);
			return r ? resultFinding(r) : undefined;
		});
		const distinct = [...new Set(facts.filter((f) => f !== undefined))];
		if (distinct.length < 2) continue;
		findings.push({
			scenario: name,
			groups: distinct.map((fact) => ({ fact, kernels: runs.filter((_, i) => facts[i] === fact).map((run) => run.kernel.version) })),
		});
	}
	const passed = rows.every((row) => row.cells.every((c) => c.ok));
	const scenarioCells = rows.slice(1, 1 + names.length).flatMap((row) => row.cells);
	return {
		header: runs.map((run) => kernelLabel(run.kernel)),
		rows,
		findings,
		passed,
		counts: { passed: scenarioCells.filter((c) => c.ok).length, failed: scenarioCells.filter((c) => !c.ok).length },
	};
}

const escape = (s) => s.replace(/\|/g, '\\|');

/** The table as markdown, with a heading line and the findings under it. */
export function matrixMarkdown(table, { date, title = 'Kernel matrix' } = {}) {
	const lines = [`### ${title}${date ? ` (${date})` : ''}`, ''];
	lines.push(`| scenario | ${table.header.map(escape).join(' | ')} |`);
	lines.push(`|---|${table.header.map(() => '---').join('|')}|`);
	for (const row of table.rows) lines.push(`| ${escape(row.name)} | ${row.cells.map((c) => escape(c.text)).join(' | ')} |`);
	lines.push('');
	if (table.findings.length) {
		lines.push('Where the kernels differ:', '');
		for (const f of table.findings) lines.push(`- ${f.scenario}: ${f.groups.map((g) => `${g.kernels.join(', ')}: ${g.fact}`).join('; ')}`);
		lines.push('');
	}
	lines.push(`${table.counts.passed} scenario runs passed, ${table.counts.failed} failed${table.passed ? '' : ' (or a build or device suite failed)'}.`);
	return `${lines.join('\n')}\n`;
}

/** The table for a terminal: fixed-width columns. */
export function matrixText(table) {
	const widths = [Math.max(8, ...table.rows.map((r) => r.name.length)), ...table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => r.cells[i].text.length)))];
	const line = (cols) => cols.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
	const out = [line(['scenario', ...table.header]), ...table.rows.map((r) => line([r.name, ...r.cells.map((c) => c.text)]))];
	for (const f of table.findings) out.push(`finding ${f.scenario}: ${f.groups.map((g) => `${g.kernels.join(', ')}: ${g.fact}`).join('; ')}`);
	return out.join('\n');
}
