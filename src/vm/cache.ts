// Where the runner keeps what it derives from a kernel (uncompressed vmlinux,
// initramfs, the KVM verdict): $HYBRIDMEM_CACHE, else $XDG_CACHE_HOME/hybridmem,
// else ~/.cache/hybridmem.  Entries are keyed by content, so a stale one is
// never looked up again; each use refreshes an entry's mtime, and building a
// new entry removes those nobody used for UNUSED_DAYS (a vmlinux is 60 MB).
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';

/** The cache directory's path, without creating it. */
export function cachePath(): string {
	return process.env.HYBRIDMEM_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'hybridmem');
}

/** The cache directory, created if needed. */
export function cacheDir(): string {
	const dir = cachePath();
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

export const UNUSED_DAYS = 14;

/** Records that a cache entry was used, so pruning keeps it. */
export function markUsed(file: string): void {
	const now = new Date();
	try {
		utimesSync(file, now, now);
	} catch {
		/* read-only cache or gone: pruning may then take it, which only costs a rebuild */
	}
}

/**
 * True when `file` is in the cache (and marks it used); otherwise prunes
 * entries nobody used lately, since the caller is about to build a new one.
 */
export function cached(file: string): boolean {
	if (existsSync(file)) {
		markUsed(file);
		return true;
	}
	pruneUnused();
	return false;
}

/** Removes cache entries not used for `days` days; called when a new entry is built. */
export function pruneUnused(dir = cacheDir(), days = UNUSED_DAYS, now = Date.now()): string[] {
	const removed: string[] = [];
	for (const name of readdirSync(dir)) {
		const file = path.join(dir, name);
		try {
			if (now - statSync(file).mtimeMs > days * 86_400_000) {
				rmSync(file, { force: true });
				removed.push(file);
			}
		} catch {
			/* raced with another run: fine */
		}
	}
	return removed;
}

/**
 * The newest modification time of the files under `dir`, the directory
 * `skip` left out; 0 when `dir` is missing.  A rebuild of the CLI changes it
 * (the warm guest's key, the guest bundles' freshness).
 */
export function newestMtime(dir: string, skip?: string): number {
	let newest = 0;
	const walk = (d: string) => {
		for (const e of readdirSync(d, { withFileTypes: true })) {
			const p = path.join(d, e.name);
			if (e.isDirectory()) {
				if (p !== skip) walk(p);
			} else newest = Math.max(newest, statSync(p).mtimeMs);
		}
	};
	try {
		walk(dir);
	} catch {
		/* missing: 0 */
	}
	return newest;
}
