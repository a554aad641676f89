// The userland of an arm64 guest: the host's root is amd64, so an arm64
// guest gets a minimal Debian trixie arm64 root laid over it (overlayfs,
// this root as the upper lower layer), which brings node 20 (trixie's
// nodejs; bookworm's is 18, below the package's engines), kmod, the
// coreutils the CLI runs, and busybox-static for the guest's initramfs.
// Every path the root lacks (the checkout, the cache, the spec directory
// under /tmp) falls through to the host's.  Made with mmdebstrap's extract
// variant: packages are unpacked, never configured, so no arm64 code runs
// on the host (no qemu-user, no binfmt_misc).  One root per package set,
// cached under <cache>/debian/arm64-root/ and reused.
import { existsSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { hashKey } from './cache.js';
import { debianDir } from './debian.js';
import { makeDebianRoot, ROOT_READY as READY } from './mmdebstrap.js';

export const ARM64_ROOT_SUITE = 'trixie';

/**
 * What the guest runs: node and the CLI's commands (insmod, rmmod, modinfo
 * from kmod; mknod, chmod from coreutils; dmesg from util-linux; mount (tracefs); getconf from
 * libc-bin), /bin/sh, and busybox for the initramfs.
 */
export const ARM64_ROOT_PACKAGES = ['nodejs', 'kmod', 'busybox-static', 'dash', 'coreutils', 'util-linux', 'mount', 'libc-bin'];

/** Where the arm64 root with `packages` lives (made or not). */
export function arm64RootDir(packages = ARM64_ROOT_PACKAGES, suite = ARM64_ROOT_SUITE): string {
	return path.join(debianDir(), 'arm64-root', `${suite}-${hashKey(suite, ...[...packages].sort())}`);
}

/** The root's busybox (static, arm64), for the initramfs. */
export function arm64Busybox(root: string): string {
	return path.join(root, 'usr', 'bin', 'busybox');
}

export interface Arm64Root {
	dir: string;
	/** Set when this call made it. */
	madeMs?: number;
}

/** The arm64 root, made with mmdebstrap on first use. */
export async function arm64Root(opts: { packages?: string[]; onProgress?: (m: string) => void } = {}): Promise<Arm64Root> {
	const packages = opts.packages ?? ARM64_ROOT_PACKAGES;
	const dir = arm64RootDir(packages);
	if (existsSync(path.join(dir, READY))) return { dir };
	if (process.getuid?.() !== 0) throw Object.assign(new Error('making the arm64 root needs root (mmdebstrap --mode=root)'), { code: 'ERR_ARM64_ROOT' });
	const { execa } = await import('execa'); // only when making the root: it takes 70 ms to load
	const mm = await execa('mmdebstrap', ['--version'], { reject: false });
	if (mm.exitCode !== 0) throw Object.assign(new Error('mmdebstrap not found: run `hybridmem bootstrap` (it installs mmdebstrap)'), { code: 'ERR_ARM64_ROOT' });
	opts.onProgress?.(`making an arm64 ${ARM64_ROOT_SUITE} root with ${packages.join(', ')} (mmdebstrap, once)`);
	const madeMs = await makeDebianRoot({
		dir,
		suite: ARM64_ROOT_SUITE,
		variant: 'extract',
		architecture: 'arm64',
		include: packages,
		label: packages,
		what: `an arm64 ${ARM64_ROOT_SUITE} root`,
		error: (message) => Object.assign(new Error(message), { code: 'ERR_ARM64_ROOT' }),
		// Unconfigured packages leave out what usrmerge and postinsts make: the
		// top-level links (the ELF interpreter is /lib/ld-linux-aarch64.so.1).
		finish(root) {
			for (const [link, target] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib']] as const)
				if (!existsSync(path.join(root, link))) symlinkSync(target, path.join(root, link));
		},
	});
	return { dir, madeMs };
}
