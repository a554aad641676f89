// Under TCG a bzImage spends about 2.4 s decompressing itself.  Debian's
// kernels are built with CONFIG_PVH, so QEMU can boot the uncompressed ELF
// directly: extract it once per kernel image and keep it in the cache.
import { openSync, readSync, closeSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cacheDir, cached, hashKey, writeAtomic } from './cache.js';

const FORMATS: { name: string; magic: Buffer; command: string[] }[] = [
	{ name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), command: ['xz', '-dc'] },
	{ name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), command: ['zstd', '-dcq'] },
	{ name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), command: ['gzip', '-dc'] },
];

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

function isElf(file: string): boolean {
	const fd = openSync(file, 'r');
	try {
		const head = Buffer.alloc(4);
		return readSync(fd, head, 0, 4, 0) === 4 && head.equals(ELF_MAGIC);
	} finally {
		closeSync(fd);
	}
}

/**
 * Returns the path of an uncompressed vmlinux for `image`, extracting it on
 * first use; returns `image` itself when no payload can be found (QEMU then
 * boots the bzImage the slow way).
 */
export async function uncompressedKernel(image: string): Promise<string> {
	const st = statSync(image);
	const out = path.join(cacheDir(), `vmlinux-${path.basename(image)}-${hashKey(image, st.size, st.mtimeMs)}`);
	if (cached(out)) return out;
	const data = readFileSync(image);
	// Try formats in the order their magic appears: the payload is the first
	// compressed stream after the setup code; later matches are noise.
	const candidates = FORMATS.map((f) => ({ ...f, at: data.indexOf(f.magic) }))
		.filter((f) => f.at >= 0)
		.sort((a, b) => a.at - b.at);
	for (const f of candidates) {
		const [cmd, ...args] = f.command as [string, ...string[]];
		// The decompressors complain about the bzImage trailer after the
		// stream ("trailing garbage") and exit non-zero: judge by the output.
		const { execa } = await import('execa'); // only on a cache miss: it takes 70 ms to load
		const r = await execa(cmd, args, {
			input: data.subarray(f.at),
			encoding: 'buffer',
			reject: false,
			maxBuffer: 1 << 30,
		});
		const body = r.stdout as Uint8Array;
		if (body.length > 4 && Buffer.from(body.subarray(0, 4)).equals(ELF_MAGIC)) {
			writeAtomic(out, Buffer.from(body));
			if (isElf(out)) return out;
		}
	}
	return image;
}
