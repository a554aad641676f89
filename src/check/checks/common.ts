// What the checks share: open-map-use-close with cleanup on every path, and
// a PFN trace of a sequence of steps with the user pages' PFNs from the
// mapping APIs' kprobes and pagemap.
import { loadBinding } from '../../device/index.js';
import { callNative } from '../../device/errors.js';
import { Mapping } from '../../device/mapping.js';
import { analyzeLifecycle, describeLifecycle, pagesFromPagemap, pagesFromTrace, type Lifecycle } from '../../evidence/lifecycle.js';
import { readPagemap, type PagemapEntry } from '../../evidence/pagemap.js';
import { PfnTrace, type PfnTraceLog } from '../../evidence/pfn-trace.js';
import type { CheckTarget, OpenedTarget } from '../types.js';

export function mapOf(o: OpenedTarget, t: CheckTarget, opts: { shared?: boolean; length?: number; offset?: bigint } = {}): Mapping {
	return o.device.map(opts.length ?? o.length, { offset: opts.offset ?? o.offset, shared: opts.shared ?? true, prot: t.expect.readOnly ? 'r' : 'rw' });
}

/**
 * A shared mapping that outlives close() of its fd, as an mmap does: the
 * device's own map() ties mappings to the device object, which unmaps them
 * when it closes.
 */
export function mapDetached(o: OpenedTarget, t: CheckTarget): Mapping {
	const binding = loadBinding();
	const prot = t.expect.readOnly ? 1 : 3; // PROT_READ | PROT_WRITE
	const native = callNative(() => binding.mmap(o.device.fd, o.length, prot, true, o.offset), o.device.path);
	return Mapping.fromNative(native, { path: o.device.path, pageSize: binding.pageSize, prot: t.expect.readOnly ? 'r' : 'rw', shared: true, offset: o.offset });
}

/** Opens the target, runs fn, and closes everything fn left open. */
export async function withOpened<T>(t: CheckTarget, fn: (o: OpenedTarget) => Promise<T> | T): Promise<T> {
	const o = await t.open();
	try {
		return await fn(o);
	} finally {
		o.close();
	}
}

export function errCode(err: unknown): string {
	return (err as { code?: string }).code ?? String(err);
}

/** Runs fn and returns its error code, or undefined when it succeeded. */
export function refusal(fn: () => unknown): string | undefined {
	try {
		fn();
		return undefined;
	} catch (err) {
		return errCode(err);
	}
}

export interface TracedMapping {
	log: PfnTraceLog;
	lifecycle: Lifecycle;
	evidence: string[];
}

/**
 * A PFN trace around steps that map one mapping and end it: `steps` marks
 * 'map' before mmap, calls mapped(m) right after, and marks 'unmap' when the
 * last user of the pages is gone; 'end' comes after.
 */
export async function traceMapping(pageSize: number, steps: (trace: PfnTrace, mapped: (m: Mapping) => void) => Promise<void> | void): Promise<TracedMapping> {
	const trace = await PfnTrace.start({ pageSize });
	let address = 0n;
	let length = 0;
	let entries: PagemapEntry[] = [];
	let log: PfnTraceLog;
	try {
		await steps(trace, (m) => {
			address = m.address;
			length = m.length;
			entries = readPagemap(m.address, m.length / m.pageSize, { pageSize: m.pageSize });
		});
		trace.mark('end');
	} finally {
		log = trace.stop();
	}
	// A failed mmap leaves no mapping: its pages are the ones this process's map events named.
	if (!length) {
		const first = log.events.find((e) => e.type === 'map' && (e.tgid ?? process.pid) === process.pid);
		if (first?.type === 'map') [address, length] = [first.address, Math.max(...log.events.map((e) => (e.type === 'map' ? Number(e.address - first.address) + e.pages * pageSize : 0)))];
	}
	const window = { address, length, tgid: process.pid, from: 'map', until: 'unmap', end: 'end' };
	const lifecycle = analyzeLifecycle(log, window, [...pagesFromTrace(log, window), ...pagesFromPagemap(entries, window, log)]);
	return { log, lifecycle, evidence: describeLifecycle(lifecycle) };
}

export const hex = (n: number | bigint) => `0x${n.toString(16)}`;
