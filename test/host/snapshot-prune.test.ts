// The snapshot cache's bound (src/vm/snapshot.ts pruneSnapshots): unused
// snapshots go first, then the least recently used until the rest fit.
import { existsSync, mkdtempSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { UNUSED_DAYS } from '../../src/vm/cache.js';
import { pruneSnapshots } from '../../src/vm/snapshot.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-snapprune-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function snapshot(name: string, bytes: number, ageDays: number): string {
	const file = path.join(dir, `${name}.migration`);
	writeFileSync(file, '');
	truncateSync(file, bytes); // sparse: the size is what counts
	const t = new Date(Date.now() - ageDays * 86_400_000);
	utimesSync(file, t, t);
	return file;
}

describe('pruneSnapshots', () => {
	test('removes the unused, then the least recently used beyond the byte limit, and keeps the rest', () => {
		const old = snapshot('old', 10, UNUSED_DAYS + 1);
		const a = snapshot('a', 100, 0.1); // newest
		const b = snapshot('b', 100, 0.2);
		const c = snapshot('c', 100, 0.3); // least recently used of the three
		const removed = pruneSnapshots(dir, 250);
		expect(removed.sort()).toEqual([c, old].sort());
		expect([a, b].every((f) => existsSync(f))).toBe(true);
		expect(pruneSnapshots(dir, 250)).toEqual([]);
	});
});
