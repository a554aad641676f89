// The device suite's C clients (node cannot fork with a live mapping, nor
// run threads against one): built on the host before any device suite runs,
// by scripts/test.mjs and scripts/matrix.mjs, one directory per architecture
// (Node's names: build/fixtures/x64/, build/fixtures/arm64/), since the
// checkout is shared with guests of both (test/device/device-env.ts
// clientPath picks the running one's).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const CLIENTS = [
	// fork_munmap: fork + partial munmap (test/device/ownership.test.ts).
	{ name: 'fork_munmap', source: 'test/fixtures/fork-munmap/fork_munmap.c', flags: [] },
	// hm_review: the issue-14 client (threads, fork, madvise, signals) of test/device/review.test.ts and test/vm/review-vm.test.ts.
	{ name: 'hm_review', source: 'test/fixtures/review/hm_review.c', flags: ['-pthread'] },
	// hm_mapper: another process mapping the device (test/device/trace.test.ts).
	{ name: 'hm_mapper', source: 'test/fixtures/trace-mapper/hm_mapper.c', flags: [] },
];

/**
 * The compiler for `arch` on this machine: cc for its own, else the cross
 * compiler (bootstrap installs g++-aarch64-linux-gnu for the arm64 prebuild),
 * linking statically so the guest root's libc (trixie's) need not match the
 * cross libc (bookworm's).
 */
export function clientCompiler(arch) {
	if (arch === process.arch) return { cc: 'cc', flags: [] };
	if (arch === 'arm64') return { cc: 'aarch64-linux-gnu-gcc', flags: ['-static'] };
	throw new Error(`no compiler for ${arch} clients on ${process.arch}`);
}

/** Where `name` is built for `arch`, relative to the package root. */
export const clientFile = (name, arch = process.arch) => path.join('build', 'fixtures', arch, name);

/** Builds each client for each of `arches` in `root`; returns its check name and whether it built. */
export function buildClients(root, arches = [process.arch]) {
	const out = [];
	for (const arch of arches) {
		mkdirSync(path.join(root, 'build', 'fixtures', arch), { recursive: true });
		const { cc, flags } = clientCompiler(arch);
		for (const c of CLIENTS) {
			const args = ['-Wall', '-Wextra', '-Werror', '-O2', ...flags, ...c.flags, '-I', 'kmod', '-o', clientFile(c.name, arch), c.source];
			const r = spawnSync(cc, args, { cwd: root, stdio: 'inherit' });
			if (r.error) console.error(`${cc}: ${r.error.message}`);
			// The host's check names stay as they were; another arch's say which.
			out.push({ name: `${c.name} client build${arch === process.arch ? '' : ` (${arch})`}`, ok: (r.status ?? 1) === 0 });
		}
	}
	return out;
}
