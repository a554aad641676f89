// aliasing, uninitialised, use-after-free: what physical pages the mapping
// hands out, what they hold when fresh, and whether any of them goes back to
// the allocator while user space can still reach it.
import type { Check, CheckResult } from '../types.js';
import { result } from '../types.js';
import { PAGE_POISON_BYTE } from '../../evidence/page-poison.js';
import { hex, mapDetached, mapOf, traceMapping, withOpened } from './common.js';

export const distinctPages: Check = {
	name: 'aliasing-distinct-pfns',
	category: 'aliasing',
	async run(t) {
		return withOpened(t, async (o) => {
			const traced = await traceMapping(t.pageSize, (trace, mapped) => {
				trace.mark('map');
				const m = mapOf(o, t);
				m.probe({ touch: true }); // fault every page in (lazy drivers)
				mapped(m);
				trace.mark('unmap');
				m.unmap();
			});
			const lc = traced.lifecycle;
			const pages = o.length / t.pageSize;
			if (lc.pages.length === 0) return result(this, 'skip', `no PFN of the ${pages} user pages was visible (no mapping-API kprobe hit, pagemap empty)`, traced.evidence);
			if (lc.aliases.length === 0)
				return result(this, 'pass', `${lc.pages.length} of ${pages} user pages have a known PFN, all distinct`, traced.evidence);
			const summary = `${lc.pages.length} user pages share ${lc.distinctPfns} PFNs (${lc.aliases.length} PFN${lc.aliases.length > 1 ? 's' : ''} behind several pages)`;
			if (t.expect.aliasing) return result(this, 'info', `${summary}: expected, ${t.expect.aliasing}`, traced.evidence);
			return result(this, 'fail', summary, traced.evidence);
		});
	},
};

export const freshContents: Check = {
	name: 'uninitialised-fresh-mapping',
	category: 'uninitialised',
	async run(t) {
		return withOpened(t, async (o) => {
			const m = mapOf(o, t);
			try {
				const fill = t.expect.fill ?? 0;
				const bytes = new Uint8Array(m.bytes.buffer, m.bytes.byteOffset, m.length);
				const probe = m.probe({ touch: true });
				const stale: number[] = [];
				const poisoned: number[] = [];
				const header = Math.min(t.expect.header?.pages ?? 0, m.length / t.pageSize);
				for (let p = header; p < m.length / t.pageSize; p++) {
					if (probe.pages[p] !== 'present') continue;
					const page = bytes.subarray(p * t.pageSize, (p + 1) * t.pageSize);
					if (page.every((b) => b === fill)) continue;
					(page.every((b) => b === PAGE_POISON_BYTE) ? poisoned : stale).push(p);
				}
				const checked = probe.pages.slice(header).filter((s) => s === 'present').length;
				const evidence = [`${checked} of ${m.length / t.pageSize - header} pages readable, ${probe.faulting} faulting`];
				if (header) evidence.unshift(`page${header > 1 ? 's' : ''} 0${header > 1 ? `-${header - 1}` : ''} not judged: ${t.expect.header!.what}`);
				if (poisoned.length) evidence.push(`pages ${poisoned.slice(0, 16).join(', ')}${poisoned.length > 16 ? ', ...' : ''} hold 0x${PAGE_POISON_BYTE.toString(16)} everywhere: page poisoning's fill of a freed page, so they were handed out without being cleared`);
				if (stale.length) evidence.push(`pages ${stale.slice(0, 16).join(', ')}${stale.length > 16 ? ', ...' : ''} hold bytes other than 0x${fill.toString(16)}`);
				if (!checked) return result(this, 'skip', 'no page of a fresh mapping could be read', evidence);
				if (!poisoned.length && !stale.length) return result(this, 'pass', `a fresh mapping reads 0x${fill.toString(16)} on all ${checked} readable pages`, evidence);
				return result(this, 'fail', `${poisoned.length + stale.length} of ${checked} pages of a fresh mapping expose stale data`, evidence);
			} finally {
				m.unmap();
			}
		});
	},
};

function judgeUaf(check: Pick<Check, 'name' | 'category'>, what: string, traced: Awaited<ReturnType<typeof traceMapping>>): CheckResult {
	const lc = traced.lifecycle;
	if (lc.pages.length === 0) return result(check, 'skip', `${what}: no PFN of the mapping was visible to the trace`, traced.evidence);
	if (traced.log.lost) return result(check, 'skip', `${what}: the trace lost ${traced.log.lost} events`, traced.evidence);
	if (lc.freedWhileMapped.length === 0)
		return result(check, 'pass', `${what}: none of ${lc.distinctPfns} mapped PFNs was freed while mapped (kmem:mm_page_free)`, traced.evidence);
	const first = lc.freedWhileMapped[0]!;
	return result(check, 'fail', `${what}: ${lc.pagesFreedWhileMapped.length} of ${lc.pages.length} user pages had their PFN freed while mapped (first: pfn ${hex(first.pfn)} by ${first.comm}-${first.pid})`, traced.evidence);
}

export const uafMapUnmap: Check = {
	name: 'use-after-free-map',
	category: 'use-after-free',
	async run(t) {
		return withOpened(t, async (o) => {
			const traced = await traceMapping(t.pageSize, async (trace, mapped) => {
				trace.mark('map');
				const m = mapOf(o, t);
				if (!t.expect.readOnly) await m.fill({ pattern: 'counter' });
				m.probe({ touch: true });
				// pagemap after the touch: a fault handler's pages (vmf->page) exist only then.
				mapped(m);
				trace.mark('unmap');
				m.unmap();
			});
			return judgeUaf(this, 'map, touch every page, munmap', traced);
		});
	},
};

export const uafCloseWhileMapped: Check = {
	name: 'use-after-free-close',
	category: 'use-after-free',
	async run(t, env) {
		const o = await t.open();
		let reads = '';
		let intact = true;
		const traced = await traceMapping(t.pageSize, async (trace, mapped) => {
			try {
				trace.mark('map');
				const m = mapDetached(o, t);
				if (!t.expect.readOnly) await m.fill({ pattern: 'address-tag', seed: 7n });
				m.probe({ touch: true });
				mapped(m);
				o.close(); // the mapping holds the file: nothing may be freed yet
				const v = t.expect.readOnly ? undefined : await m.verify({ pattern: 'address-tag', seed: 7n });
				const probe = m.probe({ touch: true });
				intact = (v?.ok ?? true) && probe.faulting === 0;
				reads = `after close(): ${v ? (v.ok ? 'data intact, ' : `${v.mismatchCount} words differ, `) : ''}${probe.present} pages present, ${probe.faulting} faulting`;
				trace.mark('unmap');
				m.unmap();
			} finally {
				o.close();
			}
		});
		const r = judgeUaf(this, 'map, close the fd, touch again, munmap', traced);
		r.evidence.unshift(reads);
		if (r.status === 'pass' && !intact && env.dataTrusted !== false) return { ...r, status: 'fail', summary: `the mapping outlived close() but not its contents: ${reads}` };
		return r;
	},
};
