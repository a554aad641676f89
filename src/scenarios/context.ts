// What a scenario runs against: the device, opened with the settings the
// scenario asks for, the module's trace events of each step it takes (the
// evidence), and the kernel log of a step (crash reports, and the notes'
// lines for people).
import { openDevice, type KexDevice, type ModeOptions } from '../device/index.js';
import { ModuleTrace, type ModuleTraceEvent } from '../evidence/module-trace.js';
import type { ModuleEvent } from '../kmsg/events.js';
import { parseRecords } from '../kmsg/parse.js';
import { startCapture } from '../kmsg/reader.js';
import type { CrashReport } from '../kmsg/reports.js';

export interface Logged<T> {
	value: T;
	/** The module's lines logged while the step ran, as events. */
	events: ModuleEvent[];
	/** Crash reports (BUG, WARNING, ...) logged while the step ran. */
	reports: CrashReport[];
	/** Records the kernel overwrote before they could be read. */
	lost: number;
	/** The text of every record, in order. */
	lines: string[];
}

export interface Traced<T> {
	value: T;
	/** The module's trace events this process caused while the step ran. */
	events: ModuleTraceEvent[];
}

export class ScenarioContext {
	#trace: ModuleTrace | undefined;

	constructor(readonly devicePath: string) {}

	/**
	 * The module's trace events of this process: one trace instance for all
	 * the scenarios of this context (making one costs about a second under
	 * TCG), started again when a module reload took its events away.
	 */
	async moduleTrace(): Promise<ModuleTrace> {
		if (this.#trace?.live()) return this.#trace;
		this.#trace?.[Symbol.dispose]();
		this.#trace = await ModuleTrace.start();
		return this.#trace;
	}

	/** Runs one step and returns the module's trace events it caused. */
	async traced<T>(fn: () => T | Promise<T>): Promise<Traced<T>> {
		return (await this.moduleTrace()).step(fn);
	}

	/** Removes the trace instance. */
	close(): void {
		this.#trace?.[Symbol.dispose]();
		this.#trace = undefined;
	}

	[Symbol.dispose](): void {
		this.close();
	}

	/** Opens the device and applies the scenario's per-fd settings. */
	open(mode: ModeOptions): KexDevice {
		const dev = openDevice(this.devicePath);
		try {
			dev.setMode(mode);
		} catch (err) {
			dev.close();
			throw err;
		}
		return dev;
	}

	/**
	 * Runs one step and returns what the kernel logged meanwhile.  printk
	 * stores a record before the syscall that caused it returns, so every
	 * line of the step is in the buffer when fn is done.
	 */
	async kernelLog<T>(fn: () => T | Promise<T>): Promise<Logged<T>> {
		const capture = await startCapture();
		let value: T;
		let collected;
		try {
			value = await fn();
		} finally {
			collected = await capture.stop();
		}
		const log = parseRecords(collected.records);
		return { value, events: log.events, reports: log.reports, lost: collected.lost, lines: collected.records.map((r) => r.text) };
	}
}
