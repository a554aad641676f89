// vfb, the virtual framebuffer: vmalloc_32_user + remap_vmalloc_range, i.e.
// vm_insert_page per page.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openNode, type Recipe } from './context.js';

const FBIOGET_FSCREENINFO = 0x4602;
let vfbNode: string | undefined;

export const vfb: Recipe = {
	name: 'vfb',
	description: 'the virtual framebuffer (vfb_enable=1): /dev/fbN whose name is "Virtual FB", its whole smem_len mapped at 0',
	async prepare(ctx) {
		await ctx.modprobe('vfb', ['vfb_enable=1']);
		const fb = await ctx.classDevice('graphics', (name, entry) => name === 'Virtual FB' && existsSync(`/dev/${entry}`));
		if (!fb) throw Object.assign(new Error('vfb is loaded but no /dev/fbN is the "Virtual FB"'), { code: 'ERR_RECIPE_DEVICE' });
		vfbNode = `/dev/${fb}`;
		// fbcon draws kernel messages into the framebuffer: unbind it, or the console writes into the buffer under test.
		const vt = '/sys/class/vtconsole';
		for (const con of existsSync(vt) ? readdirSync(vt) : [])
			if (/frame buffer/i.test(readFileSync(path.join(vt, con, 'name'), 'utf8'))) writeFileSync(path.join(vt, con, 'bind'), '0');
	},
	open(ctx) {
		return openNode(ctx, vfbNode!, (device, buf) => {
			// struct fb_fix_screeninfo { char id[16]; unsigned long smem_start; __u32 smem_len; ... }
			const smem = buf.call(device.fd, FBIOGET_FSCREENINFO, 80).getUint32(24, true);
			const length = Math.ceil(smem / ctx.pageSize) * ctx.pageSize;
			return { device, offset: 0n, length, close: () => device.close() };
		});
	},
};
