// The device suite's C clients (node cannot fork with a live mapping, nor
// run threads against one): built on the host before any device suite runs,
// by scripts/test.mjs and scripts/matrix.mjs.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const CLIENTS = [
	// fork_munmap: fork + partial munmap (test/device/ownership.test.ts).
	{ name: 'fork_munmap client build', args: ['-Wall', '-Wextra', '-Werror', '-O2', '-I', 'kmod', '-o', 'build/fixtures/fork_munmap', 'test/fixtures/fork-munmap/fork_munmap.c'] },
	// hm_review: the issue-14 client (threads, fork, madvise, signals) of test/device/review.test.ts and test/vm/review-vm.test.ts.
	{ name: 'hm_review client build', args: ['-Wall', '-Wextra', '-Werror', '-O2', '-pthread', '-I', 'kmod', '-o', 'build/fixtures/hm_review', 'test/fixtures/review/hm_review.c'] },
	// hm_mapper: another process mapping the device (test/device/trace.test.ts).
	{ name: 'hm_mapper client build', args: ['-Wall', '-Wextra', '-Werror', '-O2', '-o', 'build/fixtures/hm_mapper', 'test/fixtures/trace-mapper/hm_mapper.c'] },
];

/** Builds each client with cc in `root`; returns its name and whether it built. */
export function buildClients(root) {
	mkdirSync(path.join(root, 'build', 'fixtures'), { recursive: true });
	return CLIENTS.map((c) => ({ name: c.name, ok: (spawnSync('cc', c.args, { cwd: root, stdio: 'inherit' }).status ?? 1) === 0 }));
}
