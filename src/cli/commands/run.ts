// hybridmem run [SCENARIO ...]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { toJson } from '../json.js';
import { abortOnSignals, parse } from '../options.js';
import { StatusLine } from '../progress.js';
import { SCENARIOS, selectScenarios } from '../../scenarios/catalog.js';
import { formatResult, formatSummary, junitXml, ktapHeader, ktapResult, ktapTotals } from '../../scenarios/report.js';
import { resultLine, runNatively, runScenarios, writeResults, type Where } from '../../scenarios/run.js';
import type { ScenarioResult } from '../../scenarios/types.js';
import type { WarmOutcome } from '../../scenarios/warm.js';

/** One line on what happened to the warm guest, with the failing checks' numbers when it was discarded. */
export function warmNote(w: WarmOutcome): string {
	const how = w.booted ? 'booted a warm guest' : 'reused the warm guest';
	if (w.kept) return `run: ${how}; proven clean afterwards (${w.proof?.checks.map((c) => c.name).join(', ')}): kept for the next run`;
	const failed = w.proof?.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`) ?? [];
	return `run: ${how}; discarded it: ${[...failed, ...(w.error ? [w.error] : [])].join('; ') || 'no proof'} (console log: ${w.consoleLog})`;
}

export const summary = "run the notes' scenarios end to end and report what the kernel did";

export const help = `Usage: hybridmem run [SCENARIO ...] [--all] [--vm | --native] [--kernel VER]
                     [--json | --tap] [--junit FILE] [--allow-crash] [--keep]

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
  --arch ARCH     amd64 (default) or arm64: the VM runner boots the newest fetched
                  arm64 kernel (4K pages first) unless --kernel names one
  --json          print the results as JSON at the end, nothing else
  --tap           print KTAP (the kselftest format), one test line per
                  scenario as it finishes, nothing else
  --junit FILE    also write a JUnit XML report

Output: one result line (and its details) per scenario as it finishes, then a
summary; in a terminal also a progress line on stderr (what is being built or
booted, and the elapsed time), which is never printed when stderr is not a
terminal.
  --allow-crash   let bug-pfnmap run natively: it takes this kernel down
  --keep          keep the VM up for the next run (the fast edit loop): the
                  safe scenarios run in a warm guest, reused only when the
                  run before it left the kernel provably clean (module
                  unloaded, no new kernel-log report, taint unchanged, live
                  pages zero, free pages back); otherwise it is discarded.
                  The crash scenario and those that damage the kernel still
                  get fresh VMs.  It powers off after 15 idle minutes
                  (HYBRIDMEM_WARM_IDLE seconds); --discard ends it now.
  --discard       end the warm guest of the kernel and exit

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
				arch: { type: 'string' },
				json: { type: 'boolean' },
				tap: { type: 'boolean' },
				junit: { type: 'string' },
				'allow-crash': { type: 'boolean' },
				keep: { type: 'boolean' },
				discard: { type: 'boolean' },
				results: { type: 'string' }, // internal: the inner run of a VM writes here
			},
		}),
	);
	if (values.vm && values.native) throw new CliError('run: --vm and --native exclude each other', 2);
	if (values.arch !== undefined && values.arch !== 'amd64' && values.arch !== 'arm64') throw new CliError(`run: --arch must be amd64 or arm64, not '${values.arch}'`, 2);
	if (values.arch === 'arm64' && values.native) throw new CliError('run: --arch arm64 runs in the VM runner; drop --native', 2);
	if (values.json && values.tap) throw new CliError('run: --json and --tap exclude each other', 2);
	if (values.discard) {
		const { chooseKernel } = await import('../../vm/kernels.js');
		const { discardWarmVm } = await import('../../vm/warm-vm.js');
		const k = chooseKernel(values.kernel).version;
		console.log(discardWarmVm(k) ? `run: discarded the warm guest of ${k}` : `run: no warm guest of ${k} was running`);
		return 0;
	}
	let scenarios;
	try {
		scenarios = selectScenarios(values.all ? [] : positionals);
	} catch (err) {
		throw new CliError(`run: ${(err as Error).message}`, 2);
	}
	const where: Where = values.vm ? 'vm' : values.native ? 'native' : 'auto';
	const quiet = !!values.json;
	const tap = !!values.tap;
	const status = new StatusLine(!quiet && !tap && !values.results && !!process.stderr.isTTY);
	const progress = (m: string) => status.set(m);
	let done = 0;
	const print = (r: ScenarioResult) => {
		done++;
		if (tap) console.log(ktapResult(r, done));
		else if (!quiet) status.print(formatResult(r));
		if (done < scenarios.length) status.set(`${done} of ${scenarios.length} scenarios done`);
	};

	// Inside a VM: one result line per scenario as it finishes (the outer run
	// reports them as they come), and all of them in a file at the end.
	if (values.results) {
		// The guest loads the module through the addon's syscalls: spawning insmod, mknod and chmod costs seconds under TCG.
		const results = await runNatively(scenarios, { onResult: (r) => console.log(resultLine(r)), allowCrash: !!values['allow-crash'], quickLoad: true });
		writeResults(values.results, results);
		return results.every((r) => r.passed) ? 0 : 1;
	}

	const signals = abortOnSignals();
	if (tap) console.log(ktapHeader(scenarios.length));
	try {
		let warm: WarmOutcome | undefined;
		const results = await runScenarios(scenarios, {
			where,
			...(values.keep ? { keep: true, onWarm: (o: WarmOutcome) => (warm = o) } : {}),
			...(values.kernel ? { kernel: values.kernel } : {}),
			...(values.arch === 'arm64' || values.arch === 'amd64' ? { arch: values.arch } : {}),
			allowCrash: !!values['allow-crash'],
			onResult: print,
			onProgress: progress,
			vmOutput: 'pipe',
			signal: signals.signal,
		});
		if (values.junit) writeFileSync(values.junit, junitXml(results));
		status.done();
		if (warm && !quiet && !tap) process.stderr.write(`${warmNote(warm)}\n`);
		if (quiet) console.log(toJson({ passed: results.every((r) => r.passed), results, ...(warm ? { warm } : {}) }));
		else if (tap) console.log(ktapTotals(results));
		else console.log(formatSummary(results));
		return signals.exitCodeFor() ?? (results.length > 0 && results.every((r) => r.passed) ? 0 : 1);
	} catch (err) {
		if ((err as { code?: string }).code === 'ERR_CRASH_REFUSED') throw new CliError(`run: ${(err as Error).message}`, 2);
		throw err;
	} finally {
		status.done();
		signals.dispose();
	}
}
