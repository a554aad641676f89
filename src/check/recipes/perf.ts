// A perf event's ring buffer: 1 + 2^n pages of alloc_pages(__GFP_ZERO) (the
// first holds struct perf_event_mmap_page, which the kernel fills), mapped
// read-only (overwrite mode; the data pages refuse writes by design), with
// VM_DONTCOPY.
import type { Recipe } from './context.js';

export const perf: Recipe = {
	name: 'perf',
	description: 'perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY) of this process, its ring (1 + 2^n pages) mapped read-only at 0',
	expect: { readOnly: true, header: { pages: 1, what: 'struct perf_event_mmap_page, which the kernel fills' } },
	open(ctx) {
		const data = 2 ** Math.floor(Math.log2(Math.max(1, ctx.pages - 1)));
		const device = ctx.openPerfEvent();
		return { device, offset: 0n, length: (1 + data) * ctx.pageSize, close: () => !device.closed && device.close() };
	},
};
