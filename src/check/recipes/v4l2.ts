// vivid, the virtual video test driver: a capture queue's MMAP buffer.
// videobuf2-vmalloc: vmalloc_user + remap_vmalloc_range (vm_insert_page per
// page), buffers refcounted by their vm_ops, so a mapping outlives close().
import { openNode, type Recipe } from './context.js';

const V = 0x56; // 'V'
const V4L2_BUF_TYPE_VIDEO_CAPTURE = 1;
const V4L2_MEMORY_MMAP = 1;
let node: string | undefined;

export const vivid: Recipe = {
	name: 'vivid',
	description: 'vivid video capture (node_types=1): REQBUFS (MMAP, 2 buffers), QUERYBUF of buffer 0, mmap at its m.offset',
	// vb2_mmap: "Invalid vma flags, VM_SHARED needed".
	expect: { privateRefused: true },
	async prepare(ctx) {
		await ctx.modprobe('vivid', ['n_devs=1', 'node_types=0x1']);
		const entry = await ctx.classDevice('video4linux', (name) => /^vivid-\d+-vid-cap$/.test(name));
		if (!entry) throw Object.assign(new Error('vivid is loaded but no /sys/class/video4linux entry is its vid-cap'), { code: 'ERR_RECIPE_DEVICE' });
		node = `/dev/${entry}`;
	},
	open(ctx) {
		return openNode(ctx, node!, (device, buf) => {
			// struct v4l2_requestbuffers { u32 count, type, memory, capabilities; u8 flags, reserved[3]; }
			buf.call(device.fd, ctx.ioc('rw', V, 8, 20), 20, (v) => {
				v.setUint32(0, 2, true);
				v.setUint32(4, V4L2_BUF_TYPE_VIDEO_CAPTURE, true);
				v.setUint32(8, V4L2_MEMORY_MMAP, true);
			});
			// struct v4l2_buffer (88 bytes on 64-bit): index 0, type 4, memory 60, m.offset 64, length 72.
			const b = buf.call(device.fd, ctx.ioc('rw', V, 9, 88), 88, (v) => {
				v.setUint32(0, 0, true);
				v.setUint32(4, V4L2_BUF_TYPE_VIDEO_CAPTURE, true);
				v.setUint32(60, V4L2_MEMORY_MMAP, true);
			});
			const offset = BigInt(b.getUint32(64, true));
			const length = Math.ceil(b.getUint32(72, true) / ctx.pageSize) * ctx.pageSize;
			return { device, offset, length, close: () => device.close() };
		});
	},
};
