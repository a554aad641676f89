// snd-dummy, ALSA's dummy sound card: a playback PCM after HW_PARAMS with
// MMAP_INTERLEAVED access.  With its default fake_buffer=1 the fault handler
// (dummy_pcm_page) returns one page for every offset: aliasing by design.
import { openNode, type Recipe } from './context.js';

const A = 0x41; // 'A'
// struct snd_pcm_hw_params (608 bytes): flags; 3 masks of 8 u32 at 4; 5
// reserved masks; 12 intervals {min, max, flags} at 260; 9 reserved; rmask
// at 512; ... The kernel refines "any" and chooses each parameter.
const HW_PARAMS_SIZE = 608;
const MASKS = 4;
const INTERVALS = 260;
const RMASK = 512;
const BUFFER_BYTES = INTERVALS + (18 - 8) * 12; // SNDRV_PCM_HW_PARAM_BUFFER_BYTES
const SNDRV_PCM_ACCESS_MMAP_INTERLEAVED = 0;
let node: string | undefined;

export const sndDummy: Recipe = {
	name: 'snd-dummy',
	description: 'snd-dummy playback PCM (default fake_buffer=1): HW_PARAMS with MMAP_INTERLEAVED, the data area mapped at offset 0',
	expect: { aliasing: 'snd-dummy with fake_buffer=1 maps one dummy page at every offset of the buffer (dummy_pcm_page)' },
	async prepare(ctx) {
		await ctx.modprobe('snd-dummy');
		const card = await ctx.classDevice('sound', (id, entry) => /^card\d+$/.test(entry) && id === 'Dummy', 'id');
		if (!card) throw Object.assign(new Error('snd-dummy is loaded but no /sys/class/sound/cardN has id Dummy'), { code: 'ERR_RECIPE_DEVICE' });
		node = `/dev/snd/pcmC${card.slice(4)}D0p`;
	},
	open(ctx) {
		return openNode(ctx, node!, (device, buf) => {
			const p = buf.call(device.fd, ctx.ioc('rw', A, 0x11, HW_PARAMS_SIZE), HW_PARAMS_SIZE, (v) => {
				// As alsa-lib's snd_pcm_hw_params_any(), with access narrowed to MMAP_INTERLEAVED.
				for (let i = 0; i < 3 * 8; i++) v.setUint32(MASKS + 4 * i, 0xffffffff, true);
				for (let i = 0; i < 8; i++) v.setUint32(MASKS + 4 * i, i === 0 ? 1 << SNDRV_PCM_ACCESS_MMAP_INTERLEAVED : 0, true);
				for (let i = 0; i < 12; i++) v.setUint32(INTERVALS + 12 * i + 4, 0xffffffff, true);
				v.setUint32(RMASK, 0xffffffff, true);
				v.setUint32(RMASK + 8, 0xffffffff, true); // info
			});
			const bytes = p.getUint32(BUFFER_BYTES, true);
			const length = Math.ceil(bytes / ctx.pageSize) * ctx.pageSize;
			return { device, offset: 0n, length, close: () => device.close() };
		});
	},
};
