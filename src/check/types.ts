// What `hybridmem check` reports: one result per check, each in one category
// of a fixed list, with a status, a one-line summary and its evidence.  The
// JSON shape of CheckReport is a contract for other tools.
import type { KexDevice } from '../device/index.js';

export const CATEGORIES = ['data', 'aliasing', 'uninitialised', 'use-after-free', 'leak', 'bounds', 'fork', 'private', 'lifecycle', 'concurrency', 'kernel-log'] as const;
export type Category = (typeof CATEGORIES)[number];

export type CheckStatus = 'pass' | 'fail' | 'skip' | 'info';

export interface CheckResult {
	name: string;
	category: Category;
	status: CheckStatus;
	/** One line with the decisive numbers (or, for a skip, why). */
	summary: string;
	/** Kernel events, PFNs, log lines, counters: what the status rests on. */
	evidence: string[];
}

export interface TargetDescription {
	/** What was checked, e.g. "/dev/hm_good_misc (module good_misc.ko)" or "recipe vgem". */
	label: string;
	module?: string;
	params?: Record<string, string>;
	device?: string;
	chrdev?: string;
	recipe?: string;
	offset: string;
	length: number;
	maxLength?: number;
}

export interface CheckReport {
	target: TargetDescription;
	kernel: string;
	checks: CheckResult[];
	passed: boolean;
	/** Set when the guest kernel crashed before the checks finished. */
	crash?: { headline: string; function?: string; module?: string; frames: string[]; afterCheck?: string };
	/**
	 * Only when several targets were checked in one run: which VM of the run
	 * checked this one (1, 2, ...), and the proof made after it that the guest
	 * was as clean as at boot (absent after the last target of a VM).  The
	 * next target ran in the same VM only when that proof held.
	 */
	guest?: { vm: number; proofAfter?: { clean: boolean; checks: { name: string; ok: boolean; detail: string }[] } };
}

/** One mappable thing, opened fresh: the fd to map, where, and how much. */
export interface OpenedTarget {
	device: KexDevice;
	offset: bigint;
	length: number;
	/** Releases what open() made (buffers, extra fds) and closes the device unless already closed. */
	close(): void;
}

/** What a target is known to do by design (recipes say so): checks report it as info, not as a failure. */
export interface TargetExpectations {
	/** Several user pages map one page on purpose (snd-dummy's fake buffer). */
	aliasing?: string;
	/** The byte a fresh mapping holds when it is not zero. */
	fill?: number;
	/** Leading pages the driver fills by design (a ring's control page): uninitialised judges the rest. */
	header?: { pages: number; what: string };
	/** Maps read-only (prot 'r'); write checks skip. */
	readOnly?: boolean;
	/** Maps past the end like a file (the pages there SIGBUS) instead of refusing: bounds accepts exactly that. */
	sigbusPastEnd?: string;
	/** MAP_PRIVATE is refused by design; accepted is still judged. */
	privateRefused?: boolean;
}

export interface CheckTarget {
	description: TargetDescription;
	expect: TargetExpectations;
	/** Opens a fresh fd and whatever the mapping needs (a buffer, a ring). */
	open(): Promise<OpenedTarget> | OpenedTarget;
	/** The largest mapping the driver should accept (default: the mapping's length). */
	maxLength?: number;
	/** The module to rmmod in the lifecycle check, when the target is a module we loaded. */
	moduleName?: string;
	pageSize: number;
}

export interface CheckEnv {
	/** Runs a C helper (fork, threads) on an fd of the target. */
	helper?: string;
	/** Records a result at once, before a step that may take the kernel down. */
	emit?(r: CheckResult): void;
	/**
	 * data-round-trip passed: contents can be judged.  When it failed (a
	 * driver that aliases or drops writes), later checks report what they
	 * saw of the contents as info instead of failing for the same defect.
	 */
	dataTrusted?: boolean;
}

export interface Check {
	name: string;
	category: Category;
	/** Runs last (it may unload the module). */
	last?: boolean;
	run(t: CheckTarget, env: CheckEnv): Promise<CheckResult | CheckResult[]>;
}

export function result(check: Pick<Check, 'name' | 'category'>, status: CheckStatus, summary: string, evidence: string[] = []): CheckResult {
	return { name: check.name, category: check.category, status, summary, evidence };
}
