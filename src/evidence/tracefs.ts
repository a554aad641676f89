// tracefs: a private trace instance (its own ring buffer, so the global one
// and other users of tracing are left alone), kprobe events defined under a
// group of our own, trace_marker writes, and the rendered trace read back.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { codedError } from './errors.js';

const CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Where tracefs is mounted, or undefined. */
export function findTracefs(): string | undefined {
	return CANDIDATES.find((dir) => existsSync(path.join(dir, 'README')));
}

/** The tracefs directory, mounted at /sys/kernel/tracing first when it is not (root only). */
export async function tracefsRoot(): Promise<string> {
	const found = findTracefs();
	if (found) return found;
	if (!existsSync('/sys/kernel/tracing'))
		throw codedError('ERR_TRACEFS_UNAVAILABLE', 'this kernel has no tracefs (/sys/kernel/tracing is missing: CONFIG_TRACING is off)');
	const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { encoding: 'utf8' });
	if (r.status !== 0 || !findTracefs())
		throw codedError('ERR_TRACEFS_UNAVAILABLE', `tracefs is not mounted and mounting it failed (${(r.stderr ?? '').trim() || r.error?.message || `exit ${r.status}`}): run as root, or mount -t tracefs nodev /sys/kernel/tracing`);
	return '/sys/kernel/tracing';
}

/** Writes a control file; the kernel's error (EINVAL, EBUSY, ...) becomes an Error naming the file. */
export function writeControl(file: string, value: string, append = false): void {
	try {
		writeFileSync(file, value, { flag: append ? 'a' : 'w' });
	} catch (err) {
		const e = err as NodeJS.ErrnoException;
		throw codedError('ERR_TRACEFS_WRITE', `writing ${JSON.stringify(value.trim())} to ${file} failed: ${e.code ?? e.message}`, { cause: err });
	}
}

export interface KprobeSpec {
	/** Event name inside the group. */
	event: string;
	/** Kernel function to probe. */
	symbol: string;
	/** Fetch arguments, e.g. "addr=$arg2:x64". */
	fetch: string[];
}

/** A private ring buffer under tracefs/instances, removed by close(). */
export class TraceInstance {
	readonly dir: string;
	#marker: number | undefined;

	private constructor(
		readonly root: string,
		readonly name: string,
	) {
		this.dir = path.join(root, 'instances', name);
	}

	static async create(name: string, opts: { bufferKb?: number } = {}): Promise<TraceInstance> {
		const root = await tracefsRoot();
		const inst = new TraceInstance(root, name);
		if (existsSync(inst.dir)) rmdirSync(inst.dir); // a leftover of a run that died: empty it
		mkdirSync(inst.dir);
		try {
			inst.write('tracing_on', '0');
			if (opts.bufferKb) inst.write('buffer_size_kb', String(opts.bufferKb));
			// One clock for all CPUs; tgid on every line (faults may come from any thread).
			inst.write('trace_clock', 'mono');
			inst.option('record-tgid', true);
			inst.option('irq-info', false);
		} catch (err) {
			inst.close();
			throw err;
		}
		return inst;
	}

	write(file: string, value: string): void {
		writeControl(path.join(this.dir, file), value);
	}

	/** Sets a trace option if this kernel has it; false when it does not. */
	option(name: string, on: boolean): boolean {
		const file = path.join(this.dir, 'options', name);
		if (!existsSync(file)) return false;
		writeControl(file, on ? '1' : '0');
		return true;
	}

	hasEvent(system: string, event: string): boolean {
		return existsSync(path.join(this.dir, 'events', system, event, 'enable'));
	}

	enable(system: string, event: string, on = true): void {
		this.write(path.join('events', system, event, 'enable'), on ? '1' : '0');
	}

	on(): void {
		this.write('tracing_on', '1');
	}

	off(): void {
		if (existsSync(this.dir)) this.write('tracing_on', '0');
	}

	/** A line in the trace between events: written by this process, ordered with the kernel's events. */
	mark(text: string): void {
		this.#marker ??= openSync(path.join(this.dir, 'trace_marker'), 'w');
		writeSync(this.#marker, text);
	}

	/** Empties the buffer: opening `trace` with O_TRUNC resets every CPU's ring, its overrun count too. */
	clear(): void {
		this.write('trace', '');
	}

	exists(): boolean {
		return existsSync(this.dir);
	}

	/** The rendered trace (non-consuming read). */
	read(): string {
		return readFileSync(path.join(this.dir, 'trace'), 'utf8');
	}

	/** The instance's per-CPU directories under per_cpu/ ("cpu0", ...). */
	cpus(): string[] {
		return readdirSafe(path.join(this.dir, 'per_cpu'));
	}

	/** Events the kernel dropped because the buffer was full (per-cpu "overrun" counts). */
	overruns(): number {
		let total = 0;
		const perCpu = path.join(this.dir, 'per_cpu');
		for (const cpu of this.cpus()) {
			try {
				const m = /^overrun: (\d+)$/m.exec(readFileSync(path.join(perCpu, cpu, 'stats'), 'utf8'));
				total += m ? Number(m[1]) : 0;
			} catch {
				/* a CPU that went away */
			}
		}
		return total;
	}

	close(): void {
		if (this.#marker !== undefined) closeSync(this.#marker);
		this.#marker = undefined;
		if (existsSync(this.dir)) {
			this.off();
			rmdirSync(this.dir);
		}
	}
}

function readdirSafe(dir: string): string[] {
	try {
		return readdirSync(dir).filter((n) => n.startsWith('cpu'));
	} catch {
		return [];
	}
}

/**
 * Kprobe events of one group, defined in kprobe_events (a global table) and
 * removed again by remove().  Only symbols this kernel has are defined.
 */
export class KprobeGroup {
	readonly defined: KprobeSpec[] = [];
	/** Specs the kernel refused, with its reason (mostly: no such function on this kernel). */
	readonly skipped: { spec: KprobeSpec; reason: string }[] = [];

	private constructor(
		readonly root: string,
		readonly group: string,
	) {}

	static available(root: string): boolean {
		return existsSync(path.join(root, 'kprobe_events'));
	}

	static define(root: string, group: string, specs: readonly KprobeSpec[]): KprobeGroup {
		const g = new KprobeGroup(root, group);
		g.remove(); // leftovers of a run that died
		const file = path.join(root, 'kprobe_events');
		// Trying each is cheaper than reading the kernel's symbol lists (MBs under emulation).
		for (const s of specs) {
			try {
				writeControl(file, `p:${group}/${s.event} ${s.symbol} ${s.fetch.join(' ')}\n`, true);
				g.defined.push(s);
			} catch (err) {
				g.skipped.push({ spec: s, reason: (err as Error).message });
			}
		}
		return g;
	}

	/** Removes this group's events; each must be disabled in every instance first. */
	remove(): void {
		const file = path.join(this.root, 'kprobe_events');
		if (!existsSync(file)) return;
		const mine = readFileSync(file, 'utf8')
			.split('\n')
			.map((l) => /^[pr]:([^/\s]+)\/(\S+)/.exec(l))
			.filter((m): m is RegExpExecArray => m !== null && m[1] === this.group);
		for (const m of mine) writeControl(file, `-:${m[1]}/${m[2]}\n`, true);
	}
}
