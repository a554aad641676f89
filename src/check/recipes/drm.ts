// vgem, DRM's virtual GEM provider: a dumb buffer mapped through the card
// node, and the same buffer exported as a dma-buf.  drm_gem_shmem: pages
// pinned at mmap, VM_PFNMAP, vmf_insert_pfn from the fault handler.
import path from 'node:path';
import { readlinkSync, realpathSync, existsSync } from 'node:fs';
import type { KexDevice } from '../../device/index.js';
import type { OpenedTarget } from '../types.js';
import { closingOnError, fdFromIoctl, type Recipe, type RecipeContext } from './context.js';

const DRM = 0x64; // 'd'
const DRM_IOCTL_MODE_CREATE_DUMB = (ctx: RecipeContext) => ctx.ioc('rw', DRM, 0xb2, 32);
const DRM_IOCTL_MODE_MAP_DUMB = (ctx: RecipeContext) => ctx.ioc('rw', DRM, 0xb3, 16);
const DRM_IOCTL_MODE_DESTROY_DUMB = (ctx: RecipeContext) => ctx.ioc('rw', DRM, 0xb4, 4);
const DRM_IOCTL_PRIME_HANDLE_TO_FD = (ctx: RecipeContext) => ctx.ioc('rw', DRM, 0x2d, 12);
const DRM_CLOEXEC = 0o2000000;
const DRM_RDWR = 2;

let vgemCard: string | undefined;

async function prepareVgem(ctx: RecipeContext): Promise<void> {
	await ctx.modprobe('vgem');
	// The bound driver's name; vgem's platform device has none, but is named after it.
	const card = await ctx.classDevice('drm', (_, entry) => {
		if (!/^card\d+$/.test(entry)) return false;
		const dev = path.join('/sys/class/drm', entry, 'device');
		const link = path.join(dev, 'driver');
		return [existsSync(link) ? path.basename(readlinkSync(link)) : '', path.basename(realpathSync(dev))].includes('vgem');
	}, 'dev');
	if (!card) throw Object.assign(new Error('vgem is loaded but no /dev/dri/card* belongs to it'), { code: 'ERR_RECIPE_DEVICE' });
	vgemCard = `/dev/dri/${card}`;
}

interface Dumb {
	handle: number;
	size: number;
	destroy(): void;
}

// struct drm_mode_create_dumb { u32 height, width, bpp, flags; out: u32 handle, pitch; u64 size; }
function createDumb(ctx: RecipeContext, card: KexDevice): Dumb {
	using buf = new ctx.IoctlBuffer(ctx.pageSize);
	const made = buf.call(card.fd, DRM_IOCTL_MODE_CREATE_DUMB(ctx), 32, (v) => {
		v.setUint32(0, ctx.pages, true);
		v.setUint32(4, ctx.pageSize / 4, true);
		v.setUint32(8, 32, true);
	});
	const handle = made.getUint32(16, true);
	return {
		handle,
		size: Number(made.getBigUint64(24, true)),
		destroy() {
			if (card.closed) return;
			try {
				using b = new ctx.IoctlBuffer(ctx.pageSize);
				b.call(card.fd, DRM_IOCTL_MODE_DESTROY_DUMB(ctx), 4, (v) => v.setUint32(0, handle, true));
			} catch {
				/* the fd's close destroys the handle too */
			}
		},
	};
}

export const vgem: Recipe = {
	name: 'vgem',
	description: 'DRM vgem dumb buffer: CREATE_DUMB, MAP_DUMB, mmap of the card node at the returned offset',
	expect: { privateRefused: true },
	prepare: prepareVgem,
	open(ctx): OpenedTarget {
		const device = ctx.openDevice(vgemCard!);
		return closingOnError(
			() => device.close(),
			() => {
				const dumb = createDumb(ctx, device);
				using buf = new ctx.IoctlBuffer(ctx.pageSize);
				// struct drm_mode_map_dumb { u32 handle, pad; out: u64 offset; }
				const offset = buf.call(device.fd, DRM_IOCTL_MODE_MAP_DUMB(ctx), 16, (v) => v.setUint32(0, dumb.handle, true)).getBigUint64(8, true);
				return {
					device,
					offset,
					length: dumb.size,
					close() {
						dumb.destroy();
						if (!device.closed) device.close();
					},
				};
			},
		);
	},
};

export const vgemDmabuf: Recipe = {
	name: 'vgem-dmabuf',
	description: 'a vgem dumb buffer exported with PRIME_HANDLE_TO_FD (DRM_RDWR): the dma-buf fd mapped at 0, the card closed first',
	expect: { privateRefused: true },
	prepare: prepareVgem,
	open(ctx): OpenedTarget {
		// The dma-buf holds the GEM object: what is checked is the buffer without its card fd.
		return fdFromIoctl(ctx, vgemCard!, `dma-buf of ${vgemCard} dumb buffer`, (card, buf) => {
			const dumb = createDumb(ctx, card);
			// struct drm_prime_handle { u32 handle; u32 flags; out: s32 fd; }
			const fd = buf.call(card.fd, DRM_IOCTL_PRIME_HANDLE_TO_FD(ctx), 12, (v) => {
				v.setUint32(0, dumb.handle, true);
				v.setUint32(4, DRM_CLOEXEC | DRM_RDWR, true);
			}).getInt32(8, true);
			return { fd, length: dumb.size };
		});
	},
};
