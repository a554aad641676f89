// io_uring's submission queue entries (IORING_OFF_SQES), sized to the pages
// asked for: kernel memory of __get_free_pages(__GFP_COMP | __GFP_ZERO) put
// in place with remap_pfn_range (6.1) or vm_insert_pages.
import type { Recipe } from './context.js';

export const ioUring: Recipe = {
	name: 'io-uring',
	description: 'an io_uring instance (io_uring_setup), its SQE array mapped at IORING_OFF_SQES',
	open(ctx) {
		const ring = ctx.openIoUring(Math.max(1, (ctx.pages * ctx.pageSize) / 64));
		const length = Math.ceil(ring.sqesBytes / ctx.pageSize) * ctx.pageSize;
		return { device: ring.device, offset: ring.params.offSqes, length, close: () => !ring.device.closed && ring.device.close() };
	},
};
