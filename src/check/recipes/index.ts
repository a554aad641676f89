// Recipes: ways to get an mmap-able fd that needs more than open(), for
// in-tree drivers that exist without hardware in Debian's kernels.  A user's
// own recipe is an ES module exporting the same shape (default export or
// `recipe`); see README "hybridmem check".
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openDevice } from '../../device/index.js';
import type { OpenedTarget, TargetExpectations } from '../types.js';
import { ioc, IoctlBuffer } from './ioctl.js';

export interface RecipeContext {
	pageSize: number;
	/** Pages to map when the recipe lets the checker choose a size. */
	pages: number;
	openDevice: typeof openDevice;
	IoctlBuffer: typeof IoctlBuffer;
	ioc: typeof ioc;
	modprobe(name: string, params?: string[]): Promise<void>;
}

export interface Recipe {
	name: string;
	description: string;
	expect?: TargetExpectations;
	/** Loads modules and finds the device; runs once. */
	prepare?(ctx: RecipeContext): Promise<void> | void;
	/** A fresh fd (and buffer) to map; called once per check step. */
	open(ctx: RecipeContext): Promise<OpenedTarget> | OpenedTarget;
}

async function modprobe(name: string, params: string[] = []): Promise<void> {
	const r = await execa('modprobe', [name, ...params], { reject: false, all: true });
	if (r.exitCode !== 0) throw Object.assign(new Error(`modprobe ${name} failed: ${(r.all ?? '').trim() || `exit ${r.exitCode}`}`), { code: 'ERR_RECIPE_MODULE' });
}

export function recipeContext(pageSize: number, pages: number): RecipeContext {
	return { pageSize, pages, openDevice, IoctlBuffer, ioc, modprobe };
}

const DRM = 0x64; // 'd'
const DRM_IOCTL_MODE_CREATE_DUMB = ioc('rw', DRM, 0xb2, 32);
const DRM_IOCTL_MODE_MAP_DUMB = ioc('rw', DRM, 0xb3, 16);
const DRM_IOCTL_MODE_DESTROY_DUMB = ioc('rw', DRM, 0xb4, 4);

function drmCard(driver: string): string | undefined {
	const dir = '/sys/class/drm';
	for (const card of existsSync(dir) ? readdirSync(dir).filter((n) => /^card\d+$/.test(n)) : []) {
		// The bound driver's name; vgem's platform device has none, but is named after it.
		const link = path.join(dir, card, 'device', 'driver');
		const names = [existsSync(link) ? path.basename(readlinkSync(link)) : '', path.basename(realpathSync(path.join(dir, card, 'device')))];
		if (names.includes(driver)) return `/dev/dri/${card}`;
	}
	return undefined;
}

let vgemCard: string | undefined;

/** vgem: a DRM dumb buffer (drm_gem_shmem: pinned pages, VM_PFNMAP, vmf_insert_pfn from its fault handler). */
export const vgem: Recipe = {
	name: 'vgem',
	description: 'DRM vgem dumb buffer: CREATE_DUMB, MAP_DUMB, mmap of the card node at the returned offset',
	expect: { privateRefused: true },
	async prepare(ctx) {
		await ctx.modprobe('vgem');
		for (let i = 0; i < 50 && !(vgemCard = drmCard('vgem')); i++) await new Promise((r) => setTimeout(r, 20));
		if (!vgemCard) throw Object.assign(new Error('vgem is loaded but no /dev/dri/card* belongs to it'), { code: 'ERR_RECIPE_DEVICE' });
	},
	open(ctx) {
		const device = ctx.openDevice(vgemCard!);
		using buf = new ctx.IoctlBuffer(ctx.pageSize);
		try {
			// struct drm_mode_create_dumb { u32 height, width, bpp, flags; out: u32 handle, pitch; u64 size; }
			const made = buf.call(device.fd, DRM_IOCTL_MODE_CREATE_DUMB, 32, (v) => {
				v.setUint32(0, ctx.pages, true);
				v.setUint32(4, ctx.pageSize / 4, true);
				v.setUint32(8, 32, true);
			});
			const handle = made.getUint32(16, true);
			const size = Number(made.getBigUint64(24, true));
			// struct drm_mode_map_dumb { u32 handle, pad; out: u64 offset; }
			const offset = buf.call(device.fd, DRM_IOCTL_MODE_MAP_DUMB, 16, (v) => v.setUint32(0, handle, true)).getBigUint64(8, true);
			return {
				device,
				offset,
				length: size,
				close() {
					if (device.closed) return;
					try {
						using b = new ctx.IoctlBuffer(ctx.pageSize);
						b.call(device.fd, DRM_IOCTL_MODE_DESTROY_DUMB, 4, (v) => v.setUint32(0, handle, true));
					} catch {
						/* the fd's close destroys the handle too */
					}
					device.close();
				},
			};
		} catch (err) {
			device.close();
			throw err;
		}
	},
};

const FBIOGET_FSCREENINFO = 0x4602;
let vfbNode: string | undefined;

/** vfb: the virtual framebuffer (vmalloc_32_user + remap_vmalloc_range, i.e. vm_insert_page per page). */
export const vfb: Recipe = {
	name: 'vfb',
	description: 'the virtual framebuffer (vfb_enable=1): /dev/fbN whose name is "Virtual FB", its whole smem_len mapped at 0',
	async prepare(ctx) {
		await ctx.modprobe('vfb', ['vfb_enable=1']);
		for (let i = 0; i < 50 && !vfbNode; i++) {
			const dir = '/sys/class/graphics';
			for (const fb of existsSync(dir) ? readdirSync(dir).filter((n) => /^fb\d+$/.test(n)) : [])
				if (readFileSync(path.join(dir, fb, 'name'), 'utf8').trim() === 'Virtual FB' && existsSync(`/dev/${fb}`)) vfbNode = `/dev/${fb}`;
			if (!vfbNode) await new Promise((r) => setTimeout(r, 20));
		}
		if (!vfbNode) throw Object.assign(new Error('vfb is loaded but no /dev/fbN is the "Virtual FB"'), { code: 'ERR_RECIPE_DEVICE' });
		// fbcon draws kernel messages into the framebuffer: unbind it, or the console writes into the buffer under test.
		const vt = '/sys/class/vtconsole';
		for (const con of existsSync(vt) ? readdirSync(vt) : [])
			if (/frame buffer/i.test(readFileSync(path.join(vt, con, 'name'), 'utf8'))) writeFileSync(path.join(vt, con, 'bind'), '0');
	},
	open(ctx) {
		const device = ctx.openDevice(vfbNode!);
		try {
			using buf = new ctx.IoctlBuffer(ctx.pageSize);
			// struct fb_fix_screeninfo { char id[16]; unsigned long smem_start; __u32 smem_len; ... }
			const smem = buf.call(device.fd, FBIOGET_FSCREENINFO, 80).getUint32(24, true);
			const length = Math.ceil(smem / ctx.pageSize) * ctx.pageSize;
			return { device, offset: 0n, length, close: () => device.close() };
		} catch (err) {
			device.close();
			throw err;
		}
	},
};

export const RECIPES: readonly Recipe[] = [vgem, vfb];

/** A shipped recipe by name, or a user's from an ES module file. */
export async function loadRecipe(nameOrFile: string): Promise<Recipe> {
	const shipped = RECIPES.find((r) => r.name === nameOrFile);
	if (shipped) return shipped;
	if (!/\.(m?js)$/.test(nameOrFile) || !existsSync(nameOrFile))
		throw Object.assign(new Error(`unknown recipe ${nameOrFile}; shipped: ${RECIPES.map((r) => r.name).join(', ')}; or give the path of an ES module exporting a recipe`), { code: 'ERR_UNKNOWN_RECIPE' });
	const mod = (await import(pathToFileURL(path.resolve(nameOrFile)).href)) as { default?: Recipe; recipe?: Recipe };
	const r = mod.default ?? mod.recipe;
	if (!r || typeof r.open !== 'function') throw Object.assign(new Error(`${nameOrFile} exports no recipe (a default export or \`recipe\` with an open() function)`), { code: 'ERR_UNKNOWN_RECIPE' });
	return { ...r, name: r.name ?? path.basename(nameOrFile), description: r.description ?? nameOrFile };
}
