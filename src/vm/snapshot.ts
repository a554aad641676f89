// Fresh guests from a QEMU snapshot instead of a boot (`hybridmem vm
// --snapshot`).  The init script stops just before it mounts the host root
// (virtio-9p refuses migration only while mounted) and waits for its spec on
// the console; the first run of a configuration saves the guest there with
// QMP `migrate`, later runs start QEMU with `-incoming` from that file and let
// it go on.  Every run still gets the kernel as it was right after boot: the
// snapshot is never written again once saved.
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import net from 'node:net';
import path from 'node:path';
import { cacheDir, hashKey, markUsed, pruneUnused } from './cache.js';

export interface Qmp {
	command(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
	close(): void;
}

/**
 * The snapshot file of a QEMU command line, left out of the key: `runDir`
 * (this run's own sockets and status file) and the host directories of the
 * writable shares (`shareDirs`, a fresh temporary directory per run for
 * check and run).  A share's host path is QEMU's side of the 9p device
 * only: the guest has not mounted it when the snapshot is taken, so the
 * migrated state holds its tag, never its path (test/vm/snapshot.test.ts
 * restores one snapshot with other directories).
 */
export function snapshotPath(args: string[], runDir: string, shareDirs: readonly string[] = []): string {
	const dir = path.join(cacheDir(), 'snapshots');
	mkdirSync(dir, { recursive: true });
	const general = (a: string) => shareDirs.reduce((s, d, i) => s.replaceAll(`path=${d},`, `path=<share ${i}>,`), a.replaceAll(runDir, '<run>'));
	return path.join(dir, `${hashKey(...args.map(general))}.migration`);
}

/**
 * The snapshot to restore (QEMU reads it as fd 3), or where to save one: QEMU
 * migrates to a Unix socket this process listens on and writes into a
 * temporary file, renamed into place once complete.  No shell is involved
 * (QEMU's `exec:` migration would take a shell string).
 */
export function openSnapshot(file: string): { fd: number | undefined; restoring: boolean; commit(): void; discard(): void } {
	if (existsSync(file)) {
		markUsed(file);
		const fd = openSync(file, 'r');
		return { fd, restoring: true, commit: () => closeSync(fd), discard: () => (closeSync(fd), rmSync(file, { force: true })) };
	}
	const tmp = saveTarget(file);
	pruneSnapshots(path.dirname(file));
	return { fd: undefined, restoring: false, commit: () => renameSync(tmp, file), discard: () => rmSync(tmp, { force: true }) };
}

/** At most this many bytes of snapshots (about 100 MB each, more with node in the initramfs) stay in the cache. */
export const SNAPSHOT_CACHE_BYTES = 2 * 1024 ** 3;

/** Before a new snapshot is saved: those unused for UNUSED_DAYS go, then the least recently used until the rest fit in SNAPSHOT_CACHE_BYTES. */
export function pruneSnapshots(dir: string, limit = SNAPSHOT_CACHE_BYTES): string[] {
	const removed = pruneUnused(dir);
	const entries = readdirSync(dir)
		.filter((n) => n.endsWith('.migration'))
		.map((n) => {
			const st = statSync(path.join(dir, n), { throwIfNoEntry: false });
			return { file: path.join(dir, n), size: st?.size ?? 0, used: st?.mtimeMs ?? 0 };
		})
		.sort((a, b) => b.used - a.used);
	let total = 0;
	for (const e of entries) {
		total += e.size;
		if (total > limit) {
			rmSync(e.file, { force: true });
			removed.push(e.file);
		}
	}
	return removed;
}

/** The temporary file a save writes into before commit(). */
function saveTarget(file: string): string {
	return `${file}.${process.pid}.tmp`;
}

/** QEMU's arguments to restore from fd 3. */
export const INCOMING_ARGS = ['-incoming', 'fd:3'];

/**
 * Connects to QEMU's QMP socket, retrying while QEMU creates it or loads a
 * snapshot (it answers only then), for `deadlineMs` or until `running()`
 * says QEMU is gone.
 */
export async function connectQmp(socket: string, deadlineMs: number, running: () => boolean): Promise<Qmp> {
	const until = Date.now() + deadlineMs;
	for (;;) {
		try {
			return await tryQmp(socket);
		} catch (err) {
			if (!running()) throw new Error('QEMU exited');
			if (Date.now() > until) throw err;
			await new Promise((r) => setTimeout(r, 10));
		}
	}
}

async function tryQmp(socket: string): Promise<Qmp> {
	const s = await new Promise<net.Socket>((resolve, reject) => {
		const c = net.connect(socket, () => resolve(c));
		c.once('error', reject);
	});
	let buf = '';
	const lines: Record<string, unknown>[] = [];
	let wake: (() => void) | undefined;
	let closed = false;
	s.on('data', (d) => {
		buf += String(d);
		for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
			lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
			buf = buf.slice(i + 1);
		}
		wake?.();
	});
	s.on('close', () => {
		closed = true;
		wake?.();
	});
	s.on('error', () => {});
	const next = async (): Promise<Record<string, unknown>> => {
		while (!lines.length) {
			if (closed) throw new Error('QMP: QEMU closed the connection');
			await new Promise<void>((r) => (wake = r));
		}
		return lines.shift()!;
	};
	const command = async (execute: string, args?: Record<string, unknown>) => {
		s.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
		for (;;) {
			const l = await next();
			if ('return' in l) return l.return as Record<string, unknown>;
			if ('error' in l) throw new Error(`QMP ${execute}: ${(l.error as { desc: string }).desc}`);
		}
	};
	try {
		await next(); // the greeting
		await command('qmp_capabilities');
	} catch (err) {
		s.destroy();
		throw err;
	}
	return { command, close: () => s.destroy() };
}

/** Stops the guest, saves it into `file` (committed by openSnapshot's commit()), and lets it run on. */
export async function saveAndContinue(q: Qmp, file: string, socket: string): Promise<void> {
	const out = createWriteStream(saveTarget(file));
	let received: Promise<void> | undefined;
	const server = net.createServer((conn) => {
		server.close();
		received = pipeline(conn, out);
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(socket, resolve);
	});
	await q.command('stop');
	try {
		await q.command('migrate', { uri: `unix:${socket}` });
		for (;;) {
			const m = await q.command('query-migrate');
			if (m.status === 'completed') break;
			if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`the snapshot was not saved: ${String(m['error-desc'] ?? m.status)}`);
			await new Promise((r) => setTimeout(r, 20));
		}
		if (!received) throw new Error('QEMU never connected to the snapshot socket');
		await received;
	} finally {
		server.close();
		out.destroy();
		await q.command('cont');
	}
}

/** Waits until the snapshot is loaded, then starts the guest. */
export async function resume(q: Qmp): Promise<void> {
	for (;;) {
		const s = await q.command('query-status');
		if (s.status !== 'inmigrate') break;
		await new Promise((r) => setTimeout(r, 5));
	}
	await q.command('cont');
}

/** The line the waiting init script reads: its spec directory and the host's clock. */
export function specLine(specDir: string): string {
	if (/\s/.test(specDir)) throw new Error(`the spec directory ${specDir} contains white space`);
	return `${specDir} ${Math.floor(Date.now() / 1000)}\n`;
}
