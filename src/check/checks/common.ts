// What the checks share: open-map-use-close with cleanup on every path, a
// mapping that outlives its fd, and (from the evidence layer) a PFN trace of
// one mapping's life.
import { loadBinding } from '../../device/index.js';
import { callNative } from '../../device/errors.js';
import { Mapping } from '../../device/mapping.js';
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

export { traceMapping, type TracedMapping } from '../../evidence/trace-mapping.js';

export const hex = (n: number | bigint) => `0x${n.toString(16)}`;
