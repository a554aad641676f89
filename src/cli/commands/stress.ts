// hybridmem stress: random sequences of mapping operations against the
// reference module or any driver (hybridmem check's target options), in a
// VM with page_poison=1, with invariants, a shrinker and a reproducer.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkReplayFor, runStressHere, runStressInVm, STRESS_DEFAULTS, type StressOptions, type StressReport } from '../../stress/run.js';
import { formatReproducer } from '../../stress/reproducer.js';
import { parseProgram } from '../../stress/program.js';
import { buildKmodDir } from '../../check/run.js';
import { chooseKernel } from '../../vm/kernels.js';
import { CliError } from '../errors.js';
import { abortOnSignals, parse } from '../options.js';
import { hasTarget, TARGET_OPTIONS, targetSpec } from '../target-options.js';

export const summary = 'random map/unmap/fork/ioctl sequences against the module or any driver, with invariants and a shrunk reproducer';

const D = STRESS_DEFAULTS;
export const help = `Usage: hybridmem stress [--seconds N] [--procs P] [--threads T] [--seed S] [--kernel K ...]
       hybridmem stress --replay FILE [--repeat N] [--kernel K ...]
       hybridmem stress TARGET [--seconds N ...]    any driver, TARGET as hybridmem check takes it:
         --module FILE.ko [--param K=V ...] (--device /dev/NODE | --chrdev NAME [--minor N])
         --kmod-dir DIR [--module NAME.ko] (--device ... | --chrdev ...)
         --recipe NAME|FILE.mjs [--module FILE.ko]
         [--length BYTES] [--offset BYTES]
   options: [--module FILE.ko] [--ops N] [--shrink-seconds N] [--json] [--native]

Runs programs of random operations on /dev/devKex (hybridmem_test.ko, every
map mode: SET_MODE picks remap_pfn, insert_page, insert_pages, remap_contig
and fault, with zap_after_map and fail_at sometimes, and the refused modes)
from P processes of T threads each: open, mmap, touch (write and read under
a SIGBUS/SIGSEGV guard), partial munmap, mremap (move, and grow: refused),
mprotect, madvise (DONTNEED, DONTFORK, PAGEOUT, ...), fork with the child
touching and exiting, close while mapped, the ZAP, REMAP and GET_STATS
ioctls, and collide (a ZAP/REMAP/touch/DONTNEED and an munmap/split/fork of
one mapping pinned to one moment in two threads).  Program N comes from
--seed and N alone: the same seed gives the same programs.  In a throwaway
VM (two vCPUs, page_poison=1, slub_debug=FZP) unless --native.

Invariants, after every program: no WARN/BUG/Oops/Bad page/poison/SLUB/
lockdep/hung-task report in the kernel log; no task in D state for more than
${D.dStateBoundMs / 1000} s; the executor ran to its end; the module's live_pages back to 0.
At the end: rmmod works, and free pages are back to the baseline measured
before insmod within ${D.freePagesThreshold} pages.

Another driver (--device, --chrdev or --recipe; loaded and found as
hybridmem check does it): the same programs without hybridmem_test's
ioctls (SET_MODE, ZAP, REMAP, GET_STATS): mmap at the target's offset of
at most its length (--length, default 16 pages, or the recipe's), with its
protections (a read-only recipe: PROT_READ, reads only).  A node is opened
by the executor, a fresh file per open; a recipe's fds are made here before
each program (three, one per fd slot), inherited by the executor, dup'ed by
open, and closed by every process before it exits with its mappings.
Invariants: the kernel log, D state and the executor as above; after every
program at most ${D.programFreePagesThreshold} free pages missing (fds closed, processes
gone); at the end free pages within ${D.freePagesThreshold} of the baseline (before insmod
of --module; for a recipe after its modprobe) and rmmod of --module works.

On a failure the program is shrunk (delta debugging: one thread's or one
process's operations alone first, then ddmin) and written as a reproducer, hybridmem-stress-repro-KERNEL-seedS.txt in the
current directory, with each operation explained; run it again with
--replay FILE (it runs --repeat times; any violation fails).

  --seconds N        how long to generate programs (default ${D.seconds})
  --procs P          processes per program (default ${D.procs})
  --threads T        threads per process (default ${D.threads})
  --ops N            operations per thread per program (default ${D.opsPerWorker})
  --seed S           the PRNG seed (default ${D.seed})
  --kernel K         guest kernel, repeatable (default: the newest usable)
  --module FILE.ko   another build of hybridmem_test (default: \`hybridmem build\`'s);
                     with --device, --chrdev or --recipe: the driver to insmod
  --replay FILE      run this program instead of generated ones
  --repeat N         times --replay runs it (default ${D.repeat})
  --shrink-seconds N time the shrinker may take per boot (default ${D.shrinkMs / 1000})
  --shrink-boots N   boots the shrinker may take when its tests crash the kernel
                     (each such test needs a fresh one; default ${D.shrinkBoots})
  --json             print the report(s) as JSON

Exit status: 0 nothing found, 1 an invariant broke (the report says which,
with its evidence), 2 usage.`;

function int(value: string | undefined, what: string, fallback: number, min = 1): number {
	if (value === undefined) return fallback;
	const n = Number(value);
	if (!Number.isSafeInteger(n) || n < min) throw new CliError(`stress: ${what} expects an integer of at least ${min}, got '${value}'`, 2);
	return n;
}

function countsLine(r: StressReport): string {
	return Object.entries(r.counts)
		.map(([op, o]) => `${op} ${Object.entries(o).map(([k, v]) => `${k}=${v}`).join(',')}`)
		.join('; ');
}

export function formatStress(r: StressReport): string {
	const lines = [
		`hybridmem stress on ${r.kernel}: ${r.passed ? 'no finding' : `${r.violations.length} violation(s)`} (${r.programs} programs, ${r.operations} operations, ${r.procs} procs x ${r.threads} threads, seed ${r.seed}, ${(r.durationMs / 1000).toFixed(1)} s)`,
		...(r.target ? [`  target: ${r.target}`] : []),
		`  outcomes: ${countsLine(r)}`,
		...(Object.keys(r.counters).length ? [`  module counters at the end: ${Object.entries(r.counters).map(([k, v]) => `${k} ${v}`).join(', ')}`] : []),
		`  ${r.livePages !== undefined ? `live_pages at the end ${r.livePages}; ` : ''}rmmod ${r.rmmod === null ? 'not ours to do (nothing loaded)' : r.rmmod ? 'ok' : 'failed'}${r.freePages ? `; free pages ${r.freePages.baseline} before, ${r.freePages.after} after (${r.freePages.missing} missing, threshold ${r.freePages.threshold})` : ''}`,
	];
	const per = r.programFreePages;
	if (per?.missing.length) lines.push(`  free pages each program left missing: ${per.missing.join(', ')} (max ${Math.max(...per.missing)}, threshold ${per.threshold})`);
	for (const v of r.violations) lines.push(`  VIOLATION ${v.invariant}: ${v.summary}`, ...v.evidence.slice(0, 8).map((e) => `      ${e}`));
	if (r.failedRound !== undefined) lines.push(`  first failing program: seed ${r.seed} round ${r.failedRound}`);
	if (r.shrink) lines.push(`  shrinking: ${r.shrink.tests} tests in ${(r.shrink.ms / 1000).toFixed(1)} s${r.shrink.exhausted ? ' (budget exhausted: not minimal)' : ''}`);
	if (r.reproducer) lines.push(formatReproducer(r.reproducer).split('\n').map((l) => `  ${l}`).join('\n'));
	if (r.crash) lines.push(`  the guest kernel crashed: ${r.crash.headline}${r.boots ? `; shrinking took ${r.boots} more boot(s)` : ''}`);
	return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('stress', () =>
		parseArgs({
			args: argv,
			strict: true,
			allowPositionals: false,
			options: {
				seconds: { type: 'string' },
				procs: { type: 'string' },
				threads: { type: 'string' },
				ops: { type: 'string' },
				seed: { type: 'string' },
				kernel: { type: 'string', multiple: true },
				...TARGET_OPTIONS,
				replay: { type: 'string' },
				repeat: { type: 'string' },
				'shrink-seconds': { type: 'string' },
				json: { type: 'boolean' },
				native: { type: 'boolean' },
				'shrink-boots': { type: 'string' },
				results: { type: 'string' }, // internal: the inner run of a VM writes here
				resume: { type: 'boolean' }, // internal: go on with the shrink saved in --results
			},
		}),
	);
	const procs = int(values.procs, '--procs', D.procs);
	const threads = int(values.threads, '--threads', D.threads);
	if (procs * threads > 64) throw new CliError(`stress: --procs x --threads is at most 64, got ${procs * threads}`, 2);
	if (values.replay && !existsSync(values.replay)) throw new CliError(`stress: no program at ${values.replay}: --replay takes a file a failing run wrote (hybridmem-stress-repro-*.txt)`, 2);
	if (values.module && !values['kmod-dir'] && !existsSync(values.module)) throw new CliError(`stress: no module at ${values.module}`, 2);
	if (values['max-length'] !== undefined) throw new CliError('stress: --max-length is hybridmem check\'s (its bounds checks); stress maps at most --length', 2);
	const driver = hasTarget(values);
	if (!driver && (values.param || values['kmod-dir'] || values.minor || values.length || values.offset))
		throw new CliError('stress: --param, --kmod-dir, --minor, --length and --offset describe another driver: add --device /dev/NODE, --chrdev NAME or --recipe NAME|FILE.mjs', 2);
	const target = driver ? targetSpec('stress', values, !!values.native || !!values.results) : undefined;
	if (target && values.replay) {
		try {
			checkReplayFor(parseProgram(readFileSync(values.replay, 'utf8')), target);
		} catch (err) {
			throw new CliError(`stress: ${(err as Error).message}`, 2);
		}
	}
	const opts: Omit<StressOptions, 'outDir'> = {
		seconds: int(values.seconds, '--seconds', D.seconds),
		procs,
		threads,
		seed: int(values.seed, '--seed', D.seed, 0),
		opsPerWorker: int(values.ops, '--ops', D.opsPerWorker, 2),
		repeat: int(values.repeat, '--repeat', D.repeat),
		shrinkMs: int(values['shrink-seconds'], '--shrink-seconds', D.shrinkMs / 1000, 0) * 1000,
		dStateBoundMs: D.dStateBoundMs,
		freePagesThreshold: D.freePagesThreshold,
		programFreePagesThreshold: D.programFreePagesThreshold,
		...(target ? { target } : values.module ? { module: path.resolve(values.module) } : {}),
		...(values['kmod-dir'] ? { kmodDir: path.resolve(values['kmod-dir']) } : {}),
		...(values.replay ? { replay: path.resolve(values.replay) } : {}),
		onProgress: (m) => (values.results ? console.log(`hybridmem stress: ${m}`) : !values.json && process.stderr.write(`${m}\n`)),
	};
	if (values.results) {
		const r = await runStressHere({ ...opts, outDir: values.results, ...(values.resume ? { resume: true } : {}) });
		console.log(formatStress(r));
		// After an oops a task of the program may never end (D state); the report is written: do not wait for it.
		process.exit(r.passed ? 0 : 1);
	}
	if (values.native) {
		const { mkdtempSync } = await import('node:fs');
		const os = await import('node:os');
		if (opts.target && opts.kmodDir) {
			opts.target = { ...opts.target, module: await buildKmodDir(opts.kmodDir, os.release(), opts.target.module) };
			delete opts.kmodDir;
		}
		const r = await runStressHere({ ...opts, outDir: mkdtempSync(path.join(os.tmpdir(), 'hybridmem-stress-')) });
		console.log(values.json ? JSON.stringify(r, null, 2) : formatStress(r));
		return r.passed ? 0 : 1;
	}
	const kernels = values.kernel?.length ? values.kernel : [chooseKernel().version];
	const signals = abortOnSignals();
	const reports: StressReport[] = [];
	try {
		for (const kernel of kernels) {
			const r = await runStressInVm({ ...opts, kernel, signal: signals.signal, shrinkBoots: int(values['shrink-boots'], '--shrink-boots', D.shrinkBoots, 0) });
			reports.push(r);
			if (!values.json) console.log(formatStress(r));
		}
	} finally {
		signals.dispose();
	}
	if (values.json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
	return reports.every((r) => r.passed) ? 0 : 1;
}
