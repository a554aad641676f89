// hybridmem run [SCENARIO ...]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { toJson } from '../json.js';
import { abortOnSignals, parse } from '../options.js';
import { SCENARIOS, selectScenarios } from '../../scenarios/catalog.js';
import { formatResult, formatSummary, junitXml } from '../../scenarios/report.js';
import { runNatively, runScenarios, writeResults, type Where } from '../../scenarios/run.js';
import type { ScenarioResult } from '../../scenarios/types.js';

export const summary = "run the notes' scenarios end to end and report what the kernel did";

export const help = `Usage: hybridmem run [SCENARIO ...] [--all] [--vm | --native] [--kernel VER]
                     [--json] [--junit FILE] [--allow-crash]

Runs each scenario against the real module and checks its expectation against
the evidence: the kernel's log of that scenario, verify and probe results, the
module's counters before and after.  Without scenario names: all of them.

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(13)} ${s.title}`).join('\n')}

Where: natively when this machine can load the module (root, module support,
headers for the running kernel) and HYBRIDMEM_NATIVE=1 is set, otherwise all of
them in the VM runner; bug-pfnmap always in a VM boot of its own.

Options:
  --all           every scenario (the default when none is named)
  --vm            run in the VM runner even if this machine could load the module
  --native        run in this kernel (the module is loaded with its defaults)
  --kernel VER    kernel for the VM runner (default: newest with headers)
  --json          print the results as JSON (quiet otherwise)
  --junit FILE    also write a JUnit XML report
  --allow-crash   let bug-pfnmap run natively: it takes this kernel down

Exit status: 0 when every scenario passed, 1 when one failed, 2 on bad usage.`;

export async function main(argv: string[]): Promise<number> {
	const { values, positionals } = parse('run', () =>
		parseArgs({
			args: argv,
			strict: true,
			allowPositionals: true,
			options: {
				all: { type: 'boolean' },
				vm: { type: 'boolean' },
				native: { type: 'boolean' },
				kernel: { type: 'string' },
				json: { type: 'boolean' },
				junit: { type: 'string' },
				'allow-crash': { type: 'boolean' },
				results: { type: 'string' }, // internal: the inner run of a VM writes here
			},
		}),
	);
	if (values.vm && values.native) throw new CliError('run: --vm and --native exclude each other', 2);
	let scenarios;
	try {
		scenarios = selectScenarios(values.all ? [] : positionals);
	} catch (err) {
		throw new CliError(`run: ${(err as Error).message}`, 2);
	}
	const where: Where = values.vm ? 'vm' : values.native ? 'native' : 'auto';
	const quiet = !!values.json;
	const started = Date.now();
	const progress = (m: string) => {
		if (!quiet && process.stderr.isTTY) process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${m}\n`);
	};
	const print = (r: ScenarioResult) => {
		if (!quiet) console.log(formatResult(r));
	};

	// Inside a VM the outer run collects the results from a file.
	if (values.results) {
		const results = await runNatively(scenarios, { onResult: print, allowCrash: !!values['allow-crash'] });
		writeResults(values.results, results);
		return results.every((r) => r.passed) ? 0 : 1;
	}

	const signals = abortOnSignals();
	try {
		const results = await runScenarios(scenarios, {
			where,
			...(values.kernel ? { kernel: values.kernel } : {}),
			allowCrash: !!values['allow-crash'],
			onResult: print,
			onProgress: progress,
			vmOutput: 'pipe',
			signal: signals.signal,
		});
		if (values.junit) writeFileSync(values.junit, junitXml(results));
		if (quiet) console.log(toJson({ passed: results.every((r) => r.passed), results }));
		else console.log(formatSummary(results));
		return signals.exitCodeFor() ?? (results.length > 0 && results.every((r) => r.passed) ? 0 : 1);
	} catch (err) {
		if ((err as { code?: string }).code === 'ERR_CRASH_REFUSED') throw new CliError(`run: ${(err as Error).message}`, 2);
		throw err;
	} finally {
		signals.dispose();
	}
}
