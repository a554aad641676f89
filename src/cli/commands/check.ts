// hybridmem check: conformance checks for any driver's mmap
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CATEGORIES, type Category, type CheckReport } from '../../check/types.js';
import { formatCheck, formatReport, junit, ktap } from '../../check/report.js';
import { RECIPES } from '../../check/recipes/index.js';
import { runTargetsHere } from '../../check/batch.js';
import { buildKmodDir, runChecksHere, runTargetsInVm } from '../../check/run.js';
import type { TargetSpec } from '../../check/target.js';
import { canRunNatively } from '../../scenarios/run.js';
import { chooseKernel } from '../../vm/kernels.js';
import { CliError } from '../errors.js';
import { abortOnSignals, parse } from '../options.js';
import { TARGET_OPTIONS, targetSpec, type TargetValues } from '../target-options.js';

export const summary = "check what any driver's mmap does, in a throwaway VM, with kernel evidence";

export const help = `Usage: hybridmem check --module FILE.ko [--param K=V ...] (--device /dev/NODE | --chrdev NAME)
       hybridmem check --kmod-dir DIR [--module NAME.ko] (--device ... | --chrdev ...)
       hybridmem check --recipe NAME|FILE.mjs [--recipe ...] | --recipe all
       hybridmem check --plan TARGETS.json
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
  --recipe NAME|FILE  an fd that needs ioctls first; shipped: ${RECIPES.map((r) => r.name).join(', ')};
                      repeat it, or say all, to check several in one run
  --plan FILE.json    several targets: a JSON array of objects keyed like these
                      options ({"module": "drv.ko", "params": {"mode": "2"},
                      "device": "/dev/drv"}, {"recipe": "vgem"}); paths relative
                      to the file
  --length BYTES      how much to map (default 16 pages)
  --max-length BYTES  the largest mapping the driver should accept (default: --length);
                      bounds checks map beyond it and must be refused
  --offset BYTES      mmap offset (default 0)

Where: in a throwaway VM booted with page_poison=1 (the default), or in this
kernel with --native (root; only with HYBRIDMEM_NATIVE=1 unless --native is
given).  A guest crash is a result: the checks done so far, the crash, the
rest not run.  Several targets share a VM, one after another: the next one
runs there only after a proof that the guest is as clean as at boot (the
modules the target loaded unloaded, no new kernel-log report or taint, free
pages back); a target that left it dirty or crashed it sends the rest to a
fresh VM.

Output: a table; --json prints {target, kernel, checks: [{name, category,
status, summary, evidence}], passed} (an array of those for several
kernels or targets, each then with guest: {vm, proofAfter}); --tap prints KTAP; --junit FILE writes JUnit XML.
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

/** The keys a --plan entry may have: the target options' names. */
const PLAN_KEYS = ['module', 'params', 'device', 'chrdev', 'minor', 'recipe', 'length', 'max-length', 'offset'];

/** The targets of a --plan file: a JSON array of objects named like the target options; relative paths are relative to the file. */
export function planSpecs(file: string, values: Pick<TargetValues, 'kmod-dir'>): TargetSpec[] {
	let plan: unknown;
	try {
		plan = JSON.parse(readFileSync(file, 'utf8'));
	} catch (err) {
		throw new CliError(`check: --plan ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 2);
	}
	if (!Array.isArray(plan) || !plan.length) throw new CliError(`check: --plan ${file} must hold a JSON array of targets, e.g. [{"module": "drv.ko", "params": {"mode": "1"}, "device": "/dev/drv"}, {"recipe": "vgem"}]`, 2);
	return plan.map((entry: unknown, i) => {
		const at = `check: --plan ${file}, target ${i}`;
		if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw new CliError(`${at}: not an object`, 2);
		const e = entry as Record<string, unknown>;
		const bad = Object.keys(e).filter((k) => !PLAN_KEYS.includes(k));
		if (bad.length) throw new CliError(`${at}: unknown key${bad.length > 1 ? 's' : ''} ${bad.join(', ')}; known: ${PLAN_KEYS.join(', ')}`, 2);
		const str = (k: string) => (e[k] === undefined ? undefined : String(e[k]));
		const params = e.params;
		if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) throw new CliError(`${at}: params must be an object of module parameters`, 2);
		const rel = (p: string | undefined) => (p === undefined || path.isAbsolute(p) ? p : path.resolve(path.dirname(file), p));
		const recipe = str('recipe');
		return targetSpec('check', {
			...(values['kmod-dir'] ? { 'kmod-dir': values['kmod-dir'] } : {}),
			module: values['kmod-dir'] ? str('module') : rel(str('module')),
			param: params ? Object.entries(params as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`) : undefined,
			device: str('device'),
			chrdev: str('chrdev'),
			minor: str('minor'),
			recipe: recipe?.endsWith('.mjs') ? rel(recipe) : recipe,
			length: str('length'),
			'max-length': str('max-length'),
			offset: str('offset'),
		});
	});
}

/** One target from the options, several from repeated --recipe (or --recipe all), or a --plan file. */
function targetSpecs(values: Omit<TargetValues, 'recipe'> & { recipe?: string[] | undefined; plan?: string | undefined; native?: boolean | undefined }): TargetSpec[] {
	const recipes = (values.recipe ?? []).flatMap((r) => (r === 'all' ? RECIPES.map((x) => x.name) : [r]));
	if (values.plan) {
		const given = (['module', 'param', 'device', 'chrdev', 'minor', 'length', 'max-length', 'offset'] as const).filter((k) => values[k] !== undefined);
		if (recipes.length || given.length) throw new CliError(`check: --plan describes the targets; drop ${[...(recipes.length ? ['--recipe'] : []), ...given.map((k) => `--${k}`)].join(', ')} (or put them in the plan)`, 2);
		return planSpecs(values.plan, { 'kmod-dir': values['kmod-dir'] });
	}
	if (recipes.length <= 1) return [targetSpec('check', { ...values, recipe: recipes[0] }, values.native)];
	return recipes.map((recipe) => targetSpec('check', { ...values, recipe }, values.native));
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
				recipe: { type: 'string', multiple: true },
				plan: { type: 'string' },
				'targets-file': { type: 'string' }, // internal: the inner run of a VM reads its targets here, writes results beside it
			},
		}),
	);
	if (values.vm && values.native) throw new CliError('check: --vm and --native exclude each other', 2);
	const only = categories(values.only);
	const quiet = !!values.json || !!values.tap;
	const progress = (m: string) => {
		if (!quiet && process.stderr.isTTY) process.stderr.write(`${m}\n`);
	};

	// The inner run of a VM: the result files are what the host reads; exit 3 when a clean proof stopped it early.
	if (values['targets-file']) {
		const { reports, all } = await runTargetsHere(values['targets-file'], { ...(only ? { only } : {}), onResult: (r) => console.log(formatCheck(r)) });
		if (!all) return 3;
		return reports.every((r) => r.passed) ? 0 : 1;
	}
	const specs = targetSpecs(values);

	const reports: CheckReport[] = [];
	let crashedBeforeVerdict = false;
	const native = values.native || (!values.vm && canRunNatively());
	if (native) {
		for (const spec of specs) {
			if (values['kmod-dir']) spec.module = await buildKmodDir(values['kmod-dir'], (await import('node:os')).release(), spec.module);
			reports.push(await runChecksHere(spec, { ...(only ? { only } : {}), onProgress: progress, onResult: (r) => !quiet && console.log(formatCheck(r, values.verbose)) }));
		}
	} else {
		const kernels = values.kernel?.length ? values.kernel : [chooseKernel().version];
		const signals = abortOnSignals();
		try {
			for (const kernel of kernels) {
				const results = await runTargetsInVm(specs, {
					kernel,
					...(values['kmod-dir'] ? { kmodDir: values['kmod-dir'] } : {}),
					...(only ? { only } : {}),
					onProgress: progress,
					signal: signals.signal,
				});
				for (const { report, crashed } of results) {
					if (crashed && !report.checks.some((c) => c.status === 'pass' || c.status === 'info')) crashedBeforeVerdict = true;
					reports.push(report);
					if (!quiet) console.log(formatReport(report, values.verbose));
				}
			}
		} finally {
			signals.dispose();
		}
	}
	if (values.junit) writeFileSync(values.junit, junit(reports));
	if (values.tap) process.stdout.write(ktap(reports));
	else if (values.json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
	else if (native) for (const r of reports) console.log(formatReport(r, false).split('\n').at(-1));
	if (crashedBeforeVerdict) return 125;
	if (reports.every((r) => r.checks.length > 0 && r.checks.every((c) => c.status === 'skip' && c.summary.startsWith('not in this kernel')))) return 4;
	return reports.every((r) => r.passed) ? 0 : 1;
}
