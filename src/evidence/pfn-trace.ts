// The PFN lifecycle of user mappings, recorded by the kernel itself: kprobe
// events on the mapping APIs (which physical pages went to which user
// address) and the kmem:mm_page_free tracepoint (every page given back to the
// allocator, by whom), in a private trace instance, with markers written by
// user space between the steps.  Nothing here depends on the driver under
// test: it sees any driver that maps through these APIs.
import path from 'node:path';
import { KprobeGroup, TraceInstance, tracefsRoot, type KprobeSpec } from './tracefs.js';
import { codedError } from './errors.js';
import { kernelPageSize } from './page-size.js';

/**
 * The mapping APIs and where their arguments are.  $argN is the Nth C
 * argument (HAVE_FUNCTION_ARG_ACCESS_API: x86_64 and arm64, 4.20+); the
 * signatures below are those of mm/memory.c and mm/vmalloc.c in 6.1 and 6.12.
 */
export const MAPPING_PROBES: readonly KprobeSpec[] = [
	// remap_pfn_range(vma, addr, pfn, size, prot): io_remap_pfn_range is a macro or inline for it on x86 and arm64.
	{ event: 'hm_remap_pfn_range', symbol: 'remap_pfn_range', fetch: ['addr=$arg2:x64', 'pfn=$arg3:x64', 'size=$arg4:x64'] },
	// Architectures with an io_remap_pfn_range() of their own (e.g. sparc, mips).
	{ event: 'hm_io_remap_pfn_range', symbol: 'io_remap_pfn_range', fetch: ['addr=$arg2:x64', 'pfn=$arg3:x64', 'size=$arg4:x64'] },
	// vmf_insert_pfn_prot(vma, addr, pfn, pgprot); vmf_insert_pfn(vma, addr, pfn) calls it but may have it inlined: probe both, dedupe.
	{ event: 'hm_vmf_insert_pfn_prot', symbol: 'vmf_insert_pfn_prot', fetch: ['addr=$arg2:x64', 'pfn=$arg3:x64'] },
	{ event: 'hm_vmf_insert_pfn', symbol: 'vmf_insert_pfn', fetch: ['addr=$arg2:x64', 'pfn=$arg3:x64'] },
	// vmf_insert_mixed(vma, addr, pfn_t pfn): pfn_t is one u64 with flags in its top bits (6.1, 6.12); a plain pfn in newer kernels.
	{ event: 'hm_vmf_insert_mixed', symbol: 'vmf_insert_mixed', fetch: ['addr=$arg2:x64', 'pfn=$arg3:x64'] },
	// vm_insert_page(vma, addr, struct page *): the PFN comes from pagemap (these ptes are normal).
	{ event: 'hm_vm_insert_page', symbol: 'vm_insert_page', fetch: ['addr=$arg2:x64', 'page=$arg3:x64'] },
	// vm_insert_pages(vma, addr, struct page **, unsigned long *num): num is read at entry.
	{ event: 'hm_vm_insert_pages', symbol: 'vm_insert_pages', fetch: ['addr=$arg2:x64', 'num=+0($arg4):u64'] },
	// remap_vmalloc_range(vma, void *kaddr, pgoff): inserts each page with vm_insert_page, traced above.
	{ event: 'hm_remap_vmalloc_range', symbol: 'remap_vmalloc_range', fetch: ['kaddr=$arg2:x64', 'pgoff=$arg3:x64'] },
	// zap_vma_ptes(vma, address, size); 7.1 renamed it zap_special_vma_range (same arguments). A kernel has one of them.
	{ event: 'hm_zap_vma_ptes', symbol: 'zap_vma_ptes', fetch: ['addr=$arg2:x64', 'size=$arg3:x64'] },
	{ event: 'hm_zap_special_vma_range', symbol: 'zap_special_vma_range', fetch: ['addr=$arg2:x64', 'size=$arg3:x64'] },
];

/** The mapping API an event came from: the probed symbol. */
export type MappingApi =
	| 'remap_pfn_range'
	| 'io_remap_pfn_range'
	| 'vmf_insert_pfn_prot'
	| 'vmf_insert_pfn'
	| 'vmf_insert_mixed'
	| 'vm_insert_page'
	| 'vm_insert_pages'
	| 'remap_vmalloc_range';

interface Who {
	/** Trace timestamp, seconds (CLOCK_MONOTONIC). */
	ts: number;
	/** Thread id. */
	pid: number;
	/** Process id, when the kernel recorded it. */
	tgid?: number;
	comm: string;
}

export type TraceEvent =
	| (Who & {
			type: 'map';
			api: MappingApi;
			/** User address of the first page. */
			address: bigint;
			/** First PFN, when the API's arguments give it. */
			pfn?: number;
			pages: number;
			/** struct page pointer (vm_insert_page), when the PFN is not known. */
			page?: bigint;
	  })
	| (Who & { type: 'zap'; address: bigint; pages: number })
	| (Who & { type: 'free'; pfn: number; order: number })
	| (Who & { type: 'marker'; text: string });

export interface PfnTraceLog {
	events: TraceEvent[];
	/** The mapping APIs that were probed on this kernel (empty without kprobe support). */
	probed: string[];
	/** Events the kernel dropped (the instance's buffer overran). */
	lost: number;
	pageSize: number;
	/** The rendered trace, when asked for with keepText. */
	text?: string;
}

export interface PfnTraceOptions {
	/** Keep the rendered trace text in the log (for saving it as evidence). */
	keepText?: boolean;
	/** Ring buffer per CPU, KiB (default 16384). */
	bufferKb?: number;
	/** Probe the mapping APIs (default: when the kernel has kprobe events). */
	kprobes?: boolean;
	pageSize?: number;
}

const PFN_T_MASK = (1n << 52n) - 1n; // pfn_t's flags live in bits 52..63

// comm-pid (tgid) [cpu] ts: event: body; irq-info is off, tgid may be "-------".
const LINE = /^\s*(.*?)-(\d+)\s+(?:\(\s*([\d-]+)\)\s+)?\[(\d+)\]\s+(\d+\.\d+):\s+([\w.]+):\s?(.*)$/;

function field(body: string, name: string): bigint | undefined {
	const m = new RegExp(`(?:^|\\s)${name}=(0x[0-9a-f]+|\\d+)`).exec(body);
	return m ? BigInt(m[1]!) : undefined;
}

/** Parses the rendered trace of a PfnTrace instance. */
export function parseTrace(text: string, pageSize = kernelPageSize()): TraceEvent[] {
	const out: TraceEvent[] = [];
	const shift = BigInt(Math.log2(pageSize));
	for (const line of text.split('\n')) {
		if (line.startsWith('#') || !line.trim()) continue;
		const m = LINE.exec(line);
		if (!m) continue;
		const who: Who = { comm: m[1]!, pid: Number(m[2]), ts: Number(m[5]), ...(m[3] && /^\d+$/.test(m[3]) ? { tgid: Number(m[3]) } : {}) };
		const event = m[6]!;
		const body = m[7]!;
		if (event === 'mm_page_free') {
			const pfn = field(body, 'pfn');
			const order = field(body, 'order');
			if (pfn !== undefined) out.push({ ...who, type: 'free', pfn: Number(pfn), order: Number(order ?? 0n) });
		} else if (event === 'tracing_mark_write') {
			out.push({ ...who, type: 'marker', text: body.trimEnd() });
		} else if (event.startsWith('hm_')) {
			const api = event.slice(3);
			const addr = field(body, 'addr');
			if (api === 'zap_vma_ptes' || api === 'zap_special_vma_range') {
				if (addr !== undefined) out.push({ ...who, type: 'zap', address: addr, pages: Number((field(body, 'size') ?? 0n) >> shift) });
				continue;
			}
			if (api === 'remap_vmalloc_range') continue; // its pages arrive as vm_insert_page events
			if (addr === undefined) continue;
			const pfn = field(body, 'pfn');
			const base = { ...who, type: 'map' as const, api: api as MappingApi, address: addr };
			if (api === 'remap_pfn_range' || api === 'io_remap_pfn_range') {
				const size = field(body, 'size') ?? 0n;
				out.push({ ...base, pfn: Number(pfn ?? 0n), pages: Number((size + BigInt(pageSize) - 1n) >> shift) });
			} else if (api === 'vm_insert_page') {
				out.push({ ...base, pages: 1, ...(field(body, 'page') !== undefined ? { page: field(body, 'page')! } : {}) });
			} else if (api === 'vm_insert_pages') {
				out.push({ ...base, pages: Number(field(body, 'num') ?? 0n) });
			} else if (pfn !== undefined) {
				out.push({ ...base, pfn: Number(api === 'vmf_insert_mixed' ? pfn & PFN_T_MASK : pfn), pages: 1 });
			}
		}
	}
	return dedupeInsertPfn(out);
}

/** vmf_insert_pfn() calls vmf_insert_pfn_prot(): keep one event per insert. */
function dedupeInsertPfn(events: TraceEvent[]): TraceEvent[] {
	const out: TraceEvent[] = [];
	for (const e of events) {
		const prev = out[out.length - 1];
		if (
			e.type === 'map' &&
			e.api === 'vmf_insert_pfn_prot' &&
			prev?.type === 'map' &&
			prev.api === 'vmf_insert_pfn' &&
			prev.pid === e.pid &&
			prev.address === e.address &&
			prev.pfn === e.pfn
		)
			continue;
		out.push(e);
	}
	return out;
}

let sequence = 0;

/** A stopped trace's instance and probes, kept for the next start inside withReusedTraces(). */
interface IdleTrace {
	instance: TraceInstance;
	kprobes: KprobeGroup | undefined;
	bufferKb: number;
}
let reuseDepth = 0;
const idle: IdleTrace[] = [];

function removeTrace(t: Pick<IdleTrace, 'instance' | 'kprobes'>): void {
	t.instance.close();
	t.kprobes?.remove();
}

/**
 * Runs `fn` with PFN traces reused: a trace stopped inside it keeps its
 * instance and probes (off) for the next start, which empties the buffer
 * (and its overrun counts) before it turns tracing on again; when the
 * outermost call returns they are all removed.  Making a trace defines the
 * kprobes and allocates the ring buffer, which under TCG costs more than
 * most of the steps it traces; a run of scenarios, or one target's checks,
 * makes one trace this way instead of one per mapping.  Callers keep the
 * scope off windows that count free pages: the buffer stays allocated until
 * the scope ends.
 */
export async function withReusedTraces<T>(fn: () => Promise<T>): Promise<T> {
	reuseDepth++;
	try {
		return await fn();
	} finally {
		if (--reuseDepth === 0) for (const t of idle.splice(0)) removeTrace(t);
	}
}

/**
 * A running PFN trace.  Root only; needs tracefs (and kprobe events for the
 * PFNs of VM_PFNMAP mappings, which pagemap cannot see).  Under QEMU's TCG,
 * enabling the probes patches kernel text: run traced guests with one vCPU
 * (see src/evidence/README in the package docs).
 */
export class PfnTrace {
	#stopped = false;

	private constructor(
		readonly instance: TraceInstance,
		readonly kprobes: KprobeGroup | undefined,
		readonly pageSize: number,
		readonly keepText: boolean,
		readonly bufferKb: number,
	) {}

	static async start(opts: PfnTraceOptions = {}): Promise<PfnTrace> {
		const root = await tracefsRoot();
		const tag = `hybridmem_${process.pid}_${sequence++}`;
		const useKprobes = opts.kprobes ?? KprobeGroup.available(root);
		if (useKprobes && !KprobeGroup.available(root))
			throw codedError('ERR_KPROBES_UNAVAILABLE', `this kernel has no kprobe events (${root}/kprobe_events is missing: CONFIG_KPROBE_EVENTS is off)`);
		const bufferKb = opts.bufferKb ?? 16384;
		const pageSize = opts.pageSize ?? kernelPageSize();
		const reused = reuseDepth ? idle.findIndex((t) => t.bufferKb === bufferKb && !!t.kprobes === useKprobes && t.instance.exists()) : -1;
		if (reused >= 0) {
			const t = idle.splice(reused, 1)[0]!;
			try {
				t.instance.clear();
				t.instance.on();
			} catch (err) {
				removeTrace(t);
				throw err;
			}
			return new PfnTrace(t.instance, t.kprobes, pageSize, !!opts.keepText, bufferKb);
		}
		const kprobes = useKprobes ? KprobeGroup.define(root, tag, MAPPING_PROBES) : undefined;
		let instance: TraceInstance | undefined;
		try {
			instance = await TraceInstance.create(tag, { bufferKb });
			if (!instance.hasEvent('kmem', 'mm_page_free'))
				throw codedError('ERR_TRACEPOINT_UNAVAILABLE', 'this kernel has no kmem:mm_page_free tracepoint');
			instance.enable('kmem', 'mm_page_free');
			for (const p of kprobes?.defined ?? []) instance.enable(tag, p.event);
			instance.on();
		} catch (err) {
			instance?.close();
			kprobes?.remove();
			throw err;
		}
		return new PfnTrace(instance, kprobes, pageSize, !!opts.keepText, bufferKb);
	}

	/** The instance's trace_marker: another process may write "hybridmem: <label>" markers to it. */
	get markerFile(): string {
		return path.join(this.instance.dir, 'trace_marker');
	}

	/** Marks a point between steps ("hybridmem: <label>"), ordered with the kernel's events. */
	mark(label: string): void {
		this.instance.mark(`hybridmem: ${label}`);
	}

	/** Stops tracing, reads the events and removes the instance and probes. */
	stop(): PfnTraceLog {
		if (this.#stopped) throw codedError('ERR_TRACE_STOPPED', 'this trace was stopped already');
		this.#stopped = true;
		try {
			this.instance.off();
			const text = this.instance.read();
			const lost = this.instance.overruns();
			return {
				events: parseTrace(text, this.pageSize),
				probed: (this.kprobes?.defined ?? []).map((p) => p.symbol),
				lost,
				pageSize: this.pageSize,
				...(this.keepText ? { text } : {}),
			};
		} finally {
			if (reuseDepth && this.instance.exists()) idle.push({ instance: this.instance, kprobes: this.kprobes, bufferKb: this.bufferKb });
			else removeTrace(this);
		}
	}
}

/** The timestamp of marker `label`, or undefined. */
export function markerTime(log: PfnTraceLog, label: string): number | undefined {
	const want = `hybridmem: ${label}`;
	return log.events.find((e) => e.type === 'marker' && e.text === want)?.ts;
}
