// Building the module for a fetched kernel with the compiler that kernel was
// built with, where this machine cannot: a minimal chroot of the kernel's
// suite made with mmdebstrap (Debian's own tool), holding make, the kernel's
// compiler and what its kbuild tools link against (trixie's need glibc 2.38,
// bookworm has 2.36).  One chroot per suite and package set, cached under
// <cache>/debian/chroot/ and reused; the kernel's unpacked headers are copied
// in at the paths the packages would have installed them to.
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { hashKey } from '../vm/cache.js';
import { debianDir, listFetched, SUITES } from '../vm/debian.js';
import { makeDebianRoot, ROOT_READY as READY } from '../vm/mmdebstrap.js';
import type { KernelInfo } from '../vm/kernels.js';
import { SetupError } from './errors.js';
import { KMOD_SOURCE_DIR } from './paths.js';

const TRIPLET = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
/** Besides the compiler: make, and perl for the kernel-doc run of a W=1 build (Pod::Usage, not in perl-base). */
const BASE_PACKAGES = ['make', 'perl'];

/** Where the chroot of `suite` with `packages` lives (made or not). */
export function chrootDir(suite: string, packages: string[]): string {
	return path.join(debianDir(), 'chroot', `${suite}-${hashKey(suite, ...BASE_PACKAGES, ...[...packages].sort())}`);
}

/** The chroot of `suite` with `packages` (and BASE_PACKAGES), made with mmdebstrap on first use. */
export async function suiteChroot(suite: string, packages: string[], onProgress?: (m: string) => void): Promise<{ dir: string; madeMs?: number }> {
	const dir = chrootDir(suite, packages);
	if (existsSync(path.join(dir, READY))) return { dir };
	if (process.getuid?.() !== 0) throw new SetupError('ERR_BUILD', `making a ${suite} chroot to build the module needs root (mmdebstrap --mode=root, chroot)`);
	const mm = await execa('mmdebstrap', ['--version'], { reject: false });
	if (mm.exitCode !== 0) throw new SetupError('ERR_BUILD', 'mmdebstrap not found: apt-get install mmdebstrap (`hybridmem bootstrap` installs it)');
	if (!SUITES[suite]) throw new SetupError('ERR_BUILD', `no chroot for unknown suite ${suite}`);
	onProgress?.(`making a ${suite} chroot with ${packages.join(', ')} (mmdebstrap, once)`);
	const madeMs = await makeDebianRoot({
		dir,
		suite,
		variant: 'apt',
		include: [...BASE_PACKAGES, ...packages],
		label: packages,
		what: suite,
		error: (message) => new SetupError('ERR_BUILD', message),
	});
	return { dir, madeMs };
}

/**
 * Builds the module for fetched `kernel` inside its suite's chroot and puts
 * hybridmem_test.ko in `outDir`; `module` builds another out-of-tree module
 * from its own sources the same way (the test fixture hm_warn.ko).
 */
export async function buildInChroot(
	kernel: KernelInfo,
	outDir: string,
	w1: boolean,
	compiler: string | undefined,
	onProgress?: (m: string) => void,
	module: { sourceDir: string; name: string } = { sourceDir: KMOD_SOURCE_DIR, name: 'hybridmem_test' },
): Promise<{ ok: boolean; output: string; describe: string }> {
	const record = listFetched().find((f) => f.kernel.release === kernel.version);
	if (!record || !kernel.suite) throw new SetupError('ERR_BUILD', `${kernel.version} is not a fetched kernel`);
	const { dir, madeMs } = await suiteChroot(kernel.suite, record.kernel.buildDepends, onProgress);
	// The headers and kbuild at the paths their packages install to (/usr/src, /usr/lib/linux-kbuild-*).
	const root = record.root;
	for (const sub of ['usr/src', 'usr/lib']) {
		for (const name of readdirSafe(path.join(root, sub))) {
			if (sub === 'usr/lib' && !name.startsWith('linux-kbuild-')) continue;
			const to = path.join(dir, sub, name);
			if (!existsSync(to)) cpSync(path.join(root, sub, name), to, { recursive: true, verbatimSymlinks: true });
		}
	}
	const work = `/tmp/hybridmem-${module.name}-${kernel.version}-${process.pid}`;
	const inside = path.join(dir, work);
	rmSync(inside, { recursive: true, force: true });
	mkdirSync(inside, { recursive: true });
	try {
		for (const name of readdirSync(module.sourceDir))
			if (/\.(c|h)$|^Kbuild$/.test(name)) cpSync(path.join(module.sourceDir, name), path.join(inside, name));
		// A /proc of its own (7.2's objtool reads /proc/self/limits), in a mount and pid
		// namespace that ends with make: nothing stays mounted in the cached chroot.
		const args = [
			'--fork',
			'--pid',
			`--mount-proc=${path.join(dir, 'proc')}`,
			'chroot',
			dir,
			'make',
			'-C',
			`/usr/src/linux-headers-${kernel.version}`,
			`M=${work}`,
			...(w1 ? ['W=1'] : []),
			'modules',
		];
		const r = await execa('unshare', args, {
			reject: false,
			all: true,
			env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root' },
			extendEnv: false,
		});
		const ko = path.join(inside, `${module.name}.ko`);
		const ok = r.exitCode === 0 && existsSync(ko);
		if (ok) {
			mkdirSync(outDir, { recursive: true });
			cpSync(ko, path.join(outDir, `${module.name}.ko`));
		}
		// sid's gcc-16 is only there by its triplet name (x86_64-linux-gnu-gcc-16).
		let cc = await execa('chroot', [dir, compiler ?? 'gcc', '--version'], { reject: false });
		if (cc.exitCode !== 0 && compiler) cc = await execa('chroot', [dir, `${TRIPLET}-${compiler}`, '--version'], { reject: false });
		return {
			ok,
			output: r.all ?? '',
			describe: `chroot (${kernel.suite} in ${dir}${madeMs !== undefined ? `, made in ${(madeMs / 1000).toFixed(0)} s` : ''}: ${compiler ?? 'gcc'}: ${cc.stdout.split('\n')[0]!.trim()})`,
		};
	} finally {
		rmSync(inside, { recursive: true, force: true });
	}
}

function readdirSafe(dir: string): string[] {
	try {
		return readdirSync(dir);
	} catch {
		return [];
	}
}
