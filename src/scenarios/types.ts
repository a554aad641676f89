// What a scenario is and what it reports.  Each scenario states its
// expectation up front and backs its verdict with checks on evidence: kernel
// events, verify and probe results, the module's counters.

export interface Check {
	name: string;
	ok: boolean;
	/** What was seen, when it is worth showing (always for a failed check). */
	detail?: string;
}

/** One character per page: M mapped and verified, Z zapped, F faulting, X mismatch, . not present. */
export type PageMark = 'M' | 'Z' | 'F' | 'X' | '.';

export interface CrashSummary {
	headline: string;
	file?: string;
	line?: number;
	function?: string;
	module?: string;
	/** Top frames, "fn+0xoff/0xsize [module]". */
	frames: { text: string; module?: string; reliable: boolean }[];
	consoleLog?: string;
}

export interface ScenarioOutcome {
	checks: Check[];
	/** The decisive numbers, one short line. */
	summary: string;
	pageMap?: string;
	crash?: CrashSummary;
	/** What the kernel's evidence showed, when the verdict rests on it: one line each (PFNs, frees, log lines, counters). */
	evidence?: string[];
	/** The defect the scenario set out to show, when it showed it ("use-after-free"). */
	verdict?: string;
	/** What this kernel does where kernels differ, in a few words (the matrix table shows it). */
	finding?: string;
}

export interface ScenarioResult extends ScenarioOutcome {
	name: string;
	title: string;
	expectation: string;
	passed: boolean;
	durationMs: number;
	kernel: string;
	where: 'native' | 'vm';
	/** An unexpected exception, when the scenario could not finish. */
	error?: string;
}

export interface Scenario {
	name: string;
	title: string;
	/** What the scenario expects, in a sentence a kernel developer would write. */
	expectation: string;
	/** Needs a VM of its own (it crashes the kernel). */
	crashes?: boolean;
	/**
	 * Damages the kernel on purpose without crashing it (a use-after-free, a
	 * leak): runs in a VM boot of its own, and natively only with allowCrash.
	 */
	ownVm?: boolean;
	run(ctx: import('./context.js').ScenarioContext): Promise<ScenarioOutcome>;
}
