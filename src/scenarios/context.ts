// What a scenario runs against: the device, opened with the settings the
// scenario asks for, and the kernel log of each step it takes.
import { openDevice, type KexDevice, type ModeOptions } from '../device/index.js';
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

export class ScenarioContext {
	constructor(readonly devicePath: string) {}

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
