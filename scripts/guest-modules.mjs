// The native packages vitest needs in a guest of another architecture: npm
// installs only this machine's optional bindings (rolldown's, lightningcss's),
// and an arm64 guest runs the device suite from the same node_modules.  The
// lockfile's entries for linux-ARCH-glibc are fetched with npm pack, checked
// against the lockfile's integrity, and unpacked into
// build/guest-modules/ARCH/node_modules, which scripts/device-suite.mjs puts
// on NODE_PATH (rolldown's loader resolves its binding with require).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

/** Where the guest's bindings for Node arch `arch` live, relative to the package root. */
export const guestModulesDir = (arch) => path.join('build', 'guest-modules', arch, 'node_modules');

/** The lockfile's linux glibc packages for Node arch `arch`: name, version, integrity. */
export function lockedBindings(root, arch) {
	const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
	return Object.entries(lock.packages ?? {})
		.filter(([, p]) => p.optional && p.os?.includes('linux') && p.cpu?.includes(arch) && !p.libc?.includes('musl'))
		.map(([where, p]) => ({ name: where.replace(/^.*node_modules\//, ''), version: p.version, integrity: p.integrity }));
}

/**
 * Fetches what is missing; returns one line per package for the log, and
 * whether all are there.  Never touches node_modules.
 */
export function ensureGuestModules(root, arch) {
	root = path.resolve(root);
	const dir = path.join(root, guestModulesDir(arch));
	const lines = [];
	let ok = true;
	for (const b of lockedBindings(root, arch)) {
		const into = path.join(dir, b.name);
		const have = path.join(into, 'package.json');
		if (existsSync(have) && JSON.parse(readFileSync(have, 'utf8')).version === b.version) continue;
		const tmp = path.join(root, 'build', 'guest-modules', `.pack-${process.pid}`);
		rmSync(tmp, { recursive: true, force: true });
		mkdirSync(tmp, { recursive: true });
		try {
			const pack = spawnSync('npm', ['pack', `${b.name}@${b.version}`, '--pack-destination', tmp, '--json', '--loglevel=error'], { cwd: tmp, encoding: 'utf8' });
			const file = pack.status === 0 ? JSON.parse(pack.stdout)[0]?.filename : undefined;
			if (!file) {
				lines.push(`${b.name}@${b.version}: npm pack failed (${(pack.stderr || pack.error?.message || '').trim().split('\n').at(-1)})`);
				ok = false;
				continue;
			}
			const tarball = path.join(tmp, file);
			const [algo, want] = (b.integrity ?? '').split('-', 2);
			const got = algo ? createHash(algo).update(readFileSync(tarball)).digest('base64') : undefined;
			if (!want || got !== want) {
				lines.push(`${b.name}@${b.version}: the tarball's ${algo ?? 'hash'} is not package-lock.json's integrity; not unpacked`);
				ok = false;
				continue;
			}
			rmSync(into, { recursive: true, force: true });
			mkdirSync(into, { recursive: true });
			const tar = spawnSync('tar', ['-xzf', tarball, '-C', into, '--strip-components=1'], { encoding: 'utf8' });
			if (tar.status !== 0) {
				lines.push(`${b.name}@${b.version}: tar failed: ${tar.stderr.trim()}`);
				ok = false;
				continue;
			}
			lines.push(`${b.name}@${b.version}: fetched for ${arch} (integrity checked)`);
		} finally {
			rmSync(tmp, { recursive: true, force: true });
		}
	}
	return { ok, lines };
}
