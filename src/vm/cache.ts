// Where the runner keeps what it derives from a kernel (uncompressed vmlinux,
// initramfs, the KVM verdict): $HYBRIDMEM_CACHE, else $XDG_CACHE_HOME/hybridmem,
// else ~/.cache/hybridmem.  Entries are keyed by content, so a stale one is
// simply never looked up again.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';

export function cacheDir(): string {
	const dir =
		process.env.HYBRIDMEM_CACHE ??
		path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'hybridmem');
	mkdirSync(dir, { recursive: true });
	return dir;
}

export function hashKey(...parts: (string | number | Buffer)[]): string {
	const h = createHash('sha256');
	for (const p of parts) h.update(typeof p === 'number' ? String(p) : p).update('\0');
	return h.digest('hex').slice(0, 16);
}

/** Writes a cache file atomically so two runs building the same entry never see half of it. */
export function writeAtomic(file: string, data: Buffer | string): void {
	const tmp = `${file}.${process.pid}.tmp`;
	writeFileSync(tmp, data);
	renameSync(tmp, file);
}
