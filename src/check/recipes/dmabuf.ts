// dma-bufs with no device behind them (6.12; not set in 6.1's config):
// udmabuf wraps a sealed memfd (VM_PFNMAP, vmf_insert_pfn on the pinned
// folios); the system dma-heap allocates pages itself (remap_pfn_range per
// page of alloc_pages(__GFP_ZERO), orders 8/4/0).
import { existsSync } from 'node:fs';
import { fdFromIoctl, type Recipe } from './context.js';

const UDMABUF_FLAGS_CLOEXEC = 1;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;

export const udmabuf: Recipe = {
	name: 'udmabuf',
	description: 'udmabuf: a memfd (F_SEAL_SHRINK) turned into a dma-buf with UDMABUF_CREATE, mapped at 0',
	expect: { privateRefused: true },
	prepare(ctx) {
		if (!existsSync('/dev/udmabuf')) ctx.unavailable('no /dev/udmabuf: CONFIG_UDMABUF is not set in this kernel');
	},
	open(ctx) {
		const length = ctx.pages * ctx.pageSize;
		return fdFromIoctl(ctx, '/dev/udmabuf', 'udmabuf dma-buf', (control, buf) => {
			using memfd = ctx.openSealedMemFile(length, 2 /* F_SEAL_SHRINK */, 'hybridmem-udmabuf');
			// struct udmabuf_create { u32 memfd, flags; u64 offset, size; }: the ioctl returns the dma-buf fd.
			const fd = buf.run(control.fd, ctx.ioc('w', 0x75, 0x42, 24), 24, (v) => {
				v.setUint32(0, memfd.fd, true);
				v.setUint32(4, UDMABUF_FLAGS_CLOEXEC, true);
				v.setBigUint64(16, BigInt(length), true);
			});
			return { fd, length };
		});
	},
};

export const dmaHeapSystem: Recipe = {
	name: 'dma-heap',
	description: 'the system dma-heap: DMA_HEAP_IOCTL_ALLOC on /dev/dma_heap/system, the returned dma-buf mapped at 0',
	prepare(ctx) {
		if (!existsSync('/dev/dma_heap/system')) ctx.unavailable('no /dev/dma_heap/system: CONFIG_DMABUF_HEAPS_SYSTEM is not set in this kernel');
	},
	open(ctx) {
		const length = ctx.pages * ctx.pageSize;
		return fdFromIoctl(ctx, '/dev/dma_heap/system', 'system dma-heap dma-buf', (heap, buf) => {
			// struct dma_heap_allocation_data { u64 len; out: u32 fd; u32 fd_flags; u64 heap_flags; }
			const fd = buf.call(heap.fd, ctx.ioc('rw', 0x48, 0, 24), 24, (v) => {
				v.setBigUint64(0, BigInt(length), true);
				v.setUint32(12, O_RDWR | O_CLOEXEC, true);
			}).getUint32(8, true);
			return { fd, length };
		});
	},
};
