// `hybridmem vm --snapshot`: the first run of a configuration saves the guest
// just before it mounts the host root, later runs restore it instead of
// booting; each restored guest starts from the saved state (nothing of an
// earlier run survives), gets the host's clock, its own command, stdin and
// exit status; a snapshot that will not load is removed and the run boots.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const CLI = path.resolve('dist/cli/main.js');
// A kernel word of this test's own makes its configuration, and so its snapshot, new.
const tag = `hm.snaptest=${randomBytes(6).toString('hex')}`;
let snapshotFile: string | undefined;
afterAll(() => {
	if (snapshotFile) rmSync(snapshotFile, { force: true });
});

function vm(command: string[], input?: string, options: string[] = []) {
	return execa('node', [CLI, 'vm', '--snapshot', '--verbose', '--append', tag, ...options, '--', ...command], {
		reject: false,
		timeout: 180_000,
		...(input !== undefined ? { input } : { stdin: 'ignore' as const }),
	});
}

const MARKER = '/var/tmp/hybridmem-snapshot-test-marker';

describe('hybridmem vm --snapshot', () => {
	test('saves on the first run, restores on the next: the earlier run left nothing, the clock is the host\'s, stdin, stdout and the exit status are this run\'s', async () => {
		const first = await vm(['sh', '-c', `echo one > ${MARKER}; grep -o 'hm\\.[a-z]*' /proc/cmdline | sort -u | tr '\\n' ' '`]);
		expect(first.exitCode, first.stderr).toBe(0);
		expect(first.stderr).toMatch(/saved a snapshot for later runs in \d+\.\d s/);
		// The spec comes on the console, not the command line, which the snapshot fixed.
		expect(first.stdout.trim()).toBe('hm.snapshot hm.snaptest');

		const second = await vm(['sh', '-c', `test -e ${MARKER} && echo survived || echo fresh; read x; echo "got $x"; echo $(( $(date +%s) - ${Math.floor(Date.now() / 1000)} )); exit 7`], 'hello\n');
		const restored = /restored from the snapshot (\S+\.migration)/.exec(second.stderr);
		expect(restored, second.stderr).not.toBeNull();
		snapshotFile = restored![1]!;
		expect(second.exitCode).toBe(7);
		const [state, got, skew] = second.stdout.trim().split('\n');
		expect(state).toBe('fresh');
		expect(got).toBe('got hello');
		// Seconds between this test's clock reading and the guest's: the restore set the guest's clock.
		expect(Number(skew)).toBeGreaterThanOrEqual(0);
		expect(Number(skew)).toBeLessThan(180);
	});

	test('a snapshot that does not load is removed and the run boots, saving a new one', async () => {
		expect(snapshotFile && existsSync(snapshotFile)).toBe(true);
		truncateSync(snapshotFile!, 4096);
		const r = await vm(['true']);
		expect(r.exitCode, r.stderr).toBe(0);
		expect(r.stderr).toMatch(/the snapshot did not load \(.*\): removed it; booting/);
		expect(r.stderr).toMatch(/saved a snapshot for later runs/);
		const again = await vm(['true']);
		expect(again.exitCode, again.stderr).toBe(0);
		expect(again.stderr).toContain(`restored from the snapshot ${snapshotFile}`);
	});

	test('a writable share is no part of the key: one snapshot serves runs sharing other directories, each writing into its own', async () => {
		const dirs = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'hm-snap-rw-')));
		try {
			const runs = [];
			for (const [i, dir] of dirs.entries()) runs.push(await vm(['sh', '-c', `echo run${i} > ${dir}/out`], undefined, ['--rw', dir]));
			for (const r of runs) expect(r.exitCode, r.stderr).toBe(0);
			expect(runs[0]!.stderr).toMatch(/saved a snapshot for later runs|restored from the snapshot/);
			// The second run restores what the first saved (or an earlier run of this configuration did).
			const restored = /restored from the snapshot (\S+\.migration)/.exec(runs[1]!.stderr);
			expect(restored, runs[1]!.stderr).not.toBeNull();
			expect(dirs.map((d) => readFileSync(path.join(d, 'out'), 'utf8').trim())).toEqual(['run0', 'run1']);
			rmSync(restored![1]!, { force: true });
		} finally {
			for (const d of dirs) rmSync(d, { recursive: true, force: true });
		}
	});
});
