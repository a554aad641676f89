// Inside a guest with hybridmem_test loaded: the cost of the PFN trace per
// mapped page.  Alternates untraced and traced rounds of map + fill + unmap
// of PAGES pages (remap_pfn: one kprobe hit per page; insert_page: one per
// page plus pagemap), reports medians.  Used by bench/trace-cost.mjs.
import { openDevice } from '../../dist/device/index.js';
import { PfnTrace, readPagemap } from '../../dist/evidence/index.js';

const PAGES = Number(process.argv[2] ?? 1024);
const ROUNDS = Number(process.argv[3] ?? 7);
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const out = {};
for (const mode of ['remap_pfn', 'insert_page']) {
	const dev = openDevice('/dev/devKex');
	dev.setMode({ mode, zapAfterMap: false, failAt: null });
	const round = async (traced) => {
		const t0 = process.hrtime.bigint();
		const trace = traced ? await PfnTrace.start() : undefined;
		const t1 = process.hrtime.bigint();
		trace?.mark('map');
		const m = dev.map(PAGES * dev.pageSize);
		m.fillSync({ pattern: 'counter' });
		if (traced && mode === 'insert_page') readPagemap(m.address, PAGES);
		trace?.mark('unmap');
		m.unmap();
		const t2 = process.hrtime.bigint();
		const log = trace?.stop();
		const t3 = process.hrtime.bigint();
		return { setupMs: Number(t1 - t0) / 1e6, workMs: Number(t2 - t1) / 1e6, readMs: Number(t3 - t2) / 1e6, events: log?.events.length ?? 0 };
	};
	await round(false);
	const plain = [];
	const traced = [];
	for (let i = 0; i < ROUNDS; i++) {
		plain.push(await round(false));
		traced.push(await round(true));
	}
	const w0 = median(plain.map((r) => r.workMs));
	const w1 = median(traced.map((r) => r.workMs));
	const total1 = median(traced.map((r) => r.setupMs + r.workMs + r.readMs));
	out[mode] = {
		pages: PAGES,
		untracedMs: w0,
		tracedMs: w1,
		ratio: w1 / w0,
		perPageUs: ((w1 - w0) * 1000) / PAGES,
		startMs: median(traced.map((r) => r.setupMs)),
		stopAndParseMs: median(traced.map((r) => r.readMs)),
		stopPerPageUs: (median(traced.map((r) => r.readMs)) * 1000) / PAGES,
		tracedTotalMs: total1,
		events: traced[0].events,
	};
	dev.close();
}
console.log(JSON.stringify(out));
