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
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashKey } from './cache.js';
import { ARCHIVE_KEYRING, carriedAptOptions, debianDir, SUITES } from './debian.js';

export const ARM64_ROOT_SUITE = 'trixie';

/**
 * What the guest runs: node and the CLI's commands (insmod, rmmod, modinfo
 * from kmod; mknod, chmod from coreutils; dmesg from util-linux; mount (tracefs); getconf from
 * libc-bin), /bin/sh, and busybox for the initramfs.
 */
export const ARM64_ROOT_PACKAGES = ['nodejs', 'kmod', 'busybox-static', 'dash', 'coreutils', 'util-linux', 'mount', 'libc-bin'];

const READY = '.hybridmem-ready';

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
	const started = Date.now();
	const tmp = `${dir}.tmp-${process.pid}`;
	rmSync(tmp, { recursive: true, force: true });
	mkdirSync(path.dirname(dir), { recursive: true });
	opts.onProgress?.(`making an arm64 ${ARM64_ROOT_SUITE} root with ${packages.join(', ')} (mmdebstrap, once)`);
	// The same reach as the kernel fetch: the machine's proxies and Valid-Until checks.
	const dump = await execa('apt-config', ['dump'], { reject: false });
	const aptopts = carriedAptOptions(dump.stdout ?? '').map((l) => `--aptopt=${l}`);
	const r = await execa(
		'mmdebstrap',
		[
			'--mode=root',
			'--variant=extract',
			'--architectures=arm64',
			'--quiet',
			...aptopts,
			`--include=${packages.join(',')}`,
			ARM64_ROOT_SUITE,
			tmp,
			...SUITES[ARM64_ROOT_SUITE]!.map((s) => `deb [signed-by=${ARCHIVE_KEYRING}] ${s.uri} ${s.suite} main`),
		],
		{ reject: false, all: true },
	);
	if (r.exitCode !== 0) {
		rmSync(tmp, { recursive: true, force: true });
		throw Object.assign(new Error(`mmdebstrap of an arm64 ${ARM64_ROOT_SUITE} root failed:\n${(r.all ?? '').split('\n').slice(-20).join('\n')}`), { code: 'ERR_ARM64_ROOT' });
	}
	// Unconfigured packages leave out what usrmerge and postinsts make: the
	// top-level links (the ELF interpreter is /lib/ld-linux-aarch64.so.1).
	for (const [link, target] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib']] as const)
		if (!existsSync(path.join(tmp, link))) symlinkSync(target, path.join(tmp, link));
	// Another run may have made it meanwhile: keep theirs.
	if (existsSync(path.join(dir, READY))) rmSync(tmp, { recursive: true, force: true });
	else {
		writeFileSync(path.join(tmp, READY), `${new Date().toISOString()} ${packages.join(' ')}\n`);
		rmSync(dir, { recursive: true, force: true });
		renameSync(tmp, dir);
	}
	return { dir, madeMs: Date.now() - started };
}
