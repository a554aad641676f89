// Node itself in the initramfs, for guests whose command is node: started
// from the 9p root, node spends most of its start faulting its 99 MB binary
// in over 9p (under TCG about 1.9 s of a 2.3 s cold start on a busy host, 0.4 s
// once cached).  A second cpio archive appended to the guest's initramfs (the
// kernel unpacks concatenated archives) puts the binary in the overlay's
// upper layer at its host path, so the guest's chroot sees the same file,
// read from RAM.  HYBRIDMEM_NODE_LAYER=0 turns it off.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { cacheDir, cached, hashKey, writeAtomic } from './cache.js';
import { writeCpio, type CpioEntry } from './cpio.js';

export const NODE_LAYER_ENV = 'HYBRIDMEM_NODE_LAYER';

/** Whether a guest command starts this node (by name or by path). */
export function startsNode(argv: string[]): boolean {
	const cmd = argv[0];
	if (!cmd || process.env[NODE_LAYER_ENV] === '0') return false;
	if (cmd === 'node') return true;
	try {
		return path.isAbsolute(cmd) && realpathSync(cmd) === realpathSync(process.execPath);
	} catch {
		return false;
	}
}

/** `base` with this node appended in /upper; cached by both files' identity. */
export function initramfsWithNode(base: string): string {
	const node = realpathSync(process.execPath);
	const st = statSync(node);
	const file = path.join(cacheDir(), `initramfs-node-${hashKey(base, node, st.size, st.mtimeMs)}.cpio`);
	if (cached(file)) return file;
	const parts = node.split('/').filter(Boolean);
	const entries: CpioEntry[] = [];
	for (let i = 1; i < parts.length; i++) entries.push({ type: 'dir', name: ['upper', ...parts.slice(0, i)].join('/'), mode: 0o755 });
	entries.push({ type: 'file', name: ['upper', ...parts].join('/'), data: readFileSync(node), mode: 0o755 });
	writeAtomic(file, Buffer.concat([readFileSync(base), writeCpio(entries)]));
	return file;
}
