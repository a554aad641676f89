// hybridmem check: conformance checks for any driver's mmap
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CATEGORIES, type Category, type CheckReport } from '../../check/types.js';
import { formatCheck, formatReport, junit, ktap } from '../../check/report.js';
import { RECIPES } from '../../check/recipes/index.js';
import { buildKmodDir, runChecksHere, runChecksInVm } from '../../check/run.js';
import { canRunNatively } from '../../scenarios/run.js';
import { chooseKernel } from '../../vm/kernels.js';
import { CliError } from '../errors.js';
import { abortOnSignals, parse } from '../options.js';
import { TARGET_OPTIONS, targetSpec } from '../target-options.js';

export const summary = "check what any driver's mmap does, in a throwaway VM, with kernel evidence";

export const help = `Usage: hybridmem check --module FILE.ko [--param K=V ...] (--device /dev/NODE | --chrdev NAME)
       hybridmem check --kmod-dir DIR [--module NAME.ko] (--device ... | --chrdev ...)
       hybridmem check --recipe NAME|FILE.mjs
   options: [--length BYTES] [--max-length BYTES] [--offset BYTES] [--kernel VER ...] [--vm | --native]
            [--only CATEGORY,...] [--json] [--junit FILE] [--tap] [--verbose]

Maps the target the way user space will, with a PFN trace (kprobes on the
mapping APIs, kmem:mm_page_free), pagemap, page poisoning and the kernel log
as evidence, and reports one line per check:
  data            write/read round trip (address-tag pattern), re-map after munmap
  aliasing        distinct user pages are distinct physical pages
  uninitialised   a fresh mapping exposes no stale data (zero, or the recipe's fill)
  use-after-free  no mapped page freed while mapped: map, close while mapped,
                  fork + child exit, parent exit with a child still mapping
  leak            pages come back after munmap and close, over 32 cycles
  bounds          absurd offsets/lengths refused; partial munmap; mremap move and growth
  fork            a shared mapping stays shared across fork, both ways
  private         MAP_PRIVATE refused, or copy-on-write correct
  lifecycle       rmmod refused while open or mapped, done afterwards
  concurrency     4 threads touching while another maps and unmaps; 4 processes at once
  kernel-log      no WARN/BUG/Oops/Bad page/poison report, no new taint

Target:
  --module FILE.ko    load this module (insmod, with --param K=V ...) in the guest
  --kmod-dir DIR      a kbuild directory: built for each guest kernel first
  --device /dev/NODE  a node that appears by itself (misc and class devices)
  --chrdev NAME       a register_chrdev() driver: NAME from /proc/devices, mknod'ed
  --minor N           minor for --chrdev (default 0)
  --recipe NAME|FILE  an fd that needs ioctls first; shipped: ${RECIPES.map((r) => r.name).join(', ')}
  --length BYTES      how much to map (default 16 pages)
  --max-length BYTES  the largest mapping the driver should accept (default: --length);
                      bounds checks map beyond it and must be refused
  --offset BYTES      mmap offset (default 0)

Where: in a throwaway VM booted with page_poison=1 (the default), or in this
kernel with --native (root; only with HYBRIDMEM_NATIVE=1 unless --native is
given).  A guest crash is a result: the checks done so far, the crash, the
rest not run.

Output: a table; --json prints {target, kernel, checks: [{name, category,
status, summary, evidence}], passed} (an array of those for several
kernels); --tap prints KTAP; --junit FILE writes JUnit XML.
Exit status: 0 no check failed, 1 a check failed, 2 usage, 4 the target is
not in any kernel checked (every check skipped, as kselftest's KSFT_SKIP),
125 the guest crashed before any verdict.`;

function categories(value: string | undefined): Category[] | undefined {
	if (!value) return undefined;
	const list = value.split(',').map((s) => s.trim()).filter(Boolean);
	const bad = list.filter((c) => !(CATEGORIES as readonly string[]).includes(c));
	if (bad.length) throw new CliError(`check: unknown categor${bad.length > 1 ? 'ies' : 'y'} ${bad.join(', ')}; known: ${CATEGORIES.join(', ')}`, 2);
	return list as Category[];
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('check', () =>
		parseArgs({
			args: argv,
			strict: true,
			allowPositionals: false,
			options: {
				...TARGET_OPTIONS,
				kernel: { type: 'string', multiple: true },
				vm: { type: 'boolean' },
				native: { type: 'boolean' },
				only: { type: 'string' },
				json: { type: 'boolean' },
				junit: { type: 'string' },
				tap: { type: 'boolean' },
				verbose: { type: 'boolean' },
				results: { type: 'string' }, // internal: the inner run of a VM writes here
			},
		}),
	);
	if (values.vm && values.native) throw new CliError('check: --vm and --native exclude each other', 2);
	const spec = targetSpec('check', values, values.native);
	const only = categories(values.only);
	const quiet = !!values.json || !!values.tap;
	const progress = (m: string) => {
		if (!quiet && process.stderr.isTTY) process.stderr.write(`${m}\n`);
	};

	// The inner run of a VM: the results file is what the host reads.
	if (values.results) {
		const report = await runChecksHere(spec, { resultsFile: values.results, ...(only ? { only } : {}), onResult: (r) => console.log(formatCheck(r)) });
		return report.passed ? 0 : 1;
	}

	const reports: CheckReport[] = [];
	let crashedBeforeVerdict = false;
	const native = values.native || (!values.vm && canRunNatively());
	if (native) {
		if (values['kmod-dir']) spec.module = await buildKmodDir(values['kmod-dir'], (await import('node:os')).release(), values.module);
		reports.push(await runChecksHere(spec, { ...(only ? { only } : {}), onProgress: progress, onResult: (r) => !quiet && console.log(formatCheck(r, values.verbose)) }));
	} else {
		const kernels = values.kernel?.length ? values.kernel : [chooseKernel().version];
		const signals = abortOnSignals();
		try {
			for (const kernel of kernels) {
				const { report, crashed } = await runChecksInVm(spec, {
					kernel,
					...(values['kmod-dir'] ? { kmodDir: values['kmod-dir'] } : {}),
					...(only ? { only } : {}),
					onProgress: progress,
					signal: signals.signal,
				});
				if (crashed && !report.checks.some((c) => c.status === 'pass' || c.status === 'info')) crashedBeforeVerdict = true;
				reports.push(report);
				if (!quiet) console.log(formatReport(report, values.verbose));
			}
		} finally {
			signals.dispose();
		}
	}
	if (values.junit) writeFileSync(values.junit, junit(reports));
	if (values.tap) process.stdout.write(ktap(reports));
	else if (values.json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
	else if (native) console.log(formatReport(reports[0]!, false).split('\n').at(-1));
	if (crashedBeforeVerdict) return 125;
	if (reports.every((r) => r.checks.length > 0 && r.checks.every((c) => c.status === 'skip' && c.summary.startsWith('not in this kernel')))) return 4;
	return reports.every((r) => r.passed) ? 0 : 1;
}
