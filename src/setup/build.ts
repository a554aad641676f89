// hybridmem build: the module via kbuild, for one kernel or several side by
// side (build/kmod/<kver>/), and the addon via node-gyp; work already done is
// skipped by comparing modification times with the sources.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from './errors.js';
import { KMOD_SOURCE_DIR, PACKAGE_ROOT, moduleBuildDir, moduleFile } from './paths.js';
import { buildInChroot } from './chroot.js';
import { findKernel } from '../vm/kernels.js';

export interface BuildResult {
	kver: string;
	file: string;
	built: boolean;
	/** Compiler warnings, one per line; a clean build has none. */
	warnings: string[];
	/** Which compiler built it, in words (from build/kmod/<kver>/toolchain.txt when up to date). */
	toolchain?: string;
}

/** Modification time of the newest module source (kmod/*.c, *.h, Kbuild, Makefile). */
export function newestKmodSource(dir = KMOD_SOURCE_DIR): number {
	let newest = 0;
	for (const name of readdirSync(dir)) {
		if (!/\.(c|h)$|^Kbuild$|^Makefile$/.test(name)) continue;
		newest = Math.max(newest, statSync(path.join(dir, name)).mtimeMs);
	}
	return newest;
}

/** Which compiler built the module: the kernel's own, the host's default one, or the kernel's own in a chroot of its suite. */
export type Toolchain = 'kernel-compiler' | 'host-gcc' | 'chroot';

/** Builds hybridmem_test.ko for kernel `kver` unless an up-to-date one exists. */
export async function buildModule(
	kver: string,
	opts: { force?: boolean; extraWarnings?: boolean; toolchain?: 'auto' | Toolchain; onProgress?: (m: string) => void } = {},
): Promise<BuildResult> {
	const file = moduleFile(kver);
	// A W=1 build leaves its warnings beside the module, so an up-to-date
	// module can still answer "was it built clean with W=1?".
	const warningsFile = path.join(moduleBuildDir(kver), 'w1-warnings.txt');
	const toolchainFile = path.join(moduleBuildDir(kver), 'toolchain.txt');
	const sources = newestKmodSource();
	const fresh = (f: string) => existsSync(f) && statSync(f).mtimeMs >= sources;
	const wanted = opts.toolchain ?? (process.env.HYBRIDMEM_TOOLCHAIN as Toolchain | undefined) ?? 'auto';
	const usedBefore = existsSync(toolchainFile) ? readFileSync(toolchainFile, 'utf8').trim() : undefined;
	// Checked before the headers: inside the VM the module is already built, and a fetched kernel's headers may not be found there.
	if (!opts.force && fresh(file) && (!opts.extraWarnings || fresh(warningsFile)) && (wanted === 'auto' || usedBefore?.startsWith(wanted)))
		return {
			kver,
			file,
			built: false,
			warnings: opts.extraWarnings ? readFileSync(warningsFile, 'utf8').split('\n').filter(Boolean) : [],
			...(usedBefore ? { toolchain: usedBefore } : {}),
		};
	const kernel = findKernel(kver);
	const headers = kernel.origin === 'fetched' ? realpathSync(kernel.headersDir) : `/lib/modules/${kver}/build`;
	if (!existsSync(path.join(headers, 'Makefile')))
		throw new SetupError(
			'ERR_BUILD',
			kernel.origin === 'fetched'
				? `no headers for fetched kernel ${kver} at ${headers}: hybridmem kernels --fetch ${kernel.suite}:${kver} --force`
				: `no headers for kernel ${kver} at ${headers}: apt-get install linux-headers-${kver} (scripts/bootstrap.sh installs Debian's)`,
		);
	const own = kernelCompiler(headers);
	const ownOnHost = own && (await onPath(own));
	const attempts: { toolchain: Toolchain; output: string }[] = [];
	const order: Toolchain[] =
		wanted !== 'auto' ? [wanted] : ownOnHost ? ['kernel-compiler'] : kernel.origin === 'fetched' ? ['host-gcc', 'chroot'] : ['host-gcc'];
	for (const toolchain of order) {
		let r: { ok: boolean; output: string; describe: string };
		if (toolchain === 'chroot') {
			if (kernel.origin !== 'fetched' || !kernel.root || !kernel.suite)
				throw new SetupError('ERR_BUILD', `a chroot build needs a fetched kernel (hybridmem kernels --fetch); ${kver} is installed`);
			opts.onProgress?.(`building the module for ${kver} in a ${kernel.suite} chroot with ${own ?? "the suite's compiler"}`);
			r = await buildInChroot(kernel, moduleBuildDir(kver), !!opts.extraWarnings, own, opts.onProgress);
		} else {
			const args = ['-C', KMOD_SOURCE_DIR, `KVER=${kver}`, `KDIR=${headers}`, `OUT=${moduleBuildDir(kver)}`];
			// The host's gcc for a kernel built with another: the kernel's variables name a compiler this machine lacks.
			if (toolchain === 'host-gcc' && !ownOnHost) args.push('CC=gcc');
			if (opts.extraWarnings) args.push('W=1');
			const m = await execa('make', args, { reject: false, all: true });
			const cc = toolchain === 'host-gcc' && !ownOnHost ? 'gcc' : (own ?? 'gcc');
			r = { ok: m.exitCode === 0 && existsSync(file), output: m.all ?? '', describe: `${toolchain} (${cc}: ${await compilerVersion(cc)})` };
		}
		if (!r.ok) {
			attempts.push({ toolchain, output: r.output });
			rmSync(file, { force: true });
			continue;
		}
		const warnings = r.output.split('\n').filter((l) => /warning:/i.test(l));
		const describe = `${r.describe}${own ? ` for a kernel built with ${own}` : ''}${attempts.length ? `; before it ${attempts.map((a) => a.toolchain).join(', ')} failed` : ''}`;
		writeFileSync(toolchainFile, `${describe}\n`);
		if (attempts.length) writeFileSync(path.join(moduleBuildDir(kver), 'failed-attempts.log'), attempts.map((a) => `== ${a.toolchain}\n${a.output}\n`).join(''));
		if (opts.extraWarnings) writeFileSync(warningsFile, warnings.map((w) => `${w}\n`).join(''));
		return { kver, file, built: true, warnings, toolchain: describe };
	}
	throw new SetupError(
		'ERR_BUILD',
		`building the module for ${kver} failed:\n${attempts.map((a) => `-- with ${a.toolchain}:\n${a.output.split('\n').slice(-30).join('\n')}`).join('\n')}`,
	);
}

/** The compiler a Debian kernel's headers name (gcc-10, gcc-14), from .kernelvariables. */
export function kernelCompiler(headers: string): string | undefined {
	try {
		const m = /^CC\s*=.*?\b(gcc-\d+)\s*$/m.exec(readFileSync(path.join(headers, '.kernelvariables'), 'utf8'));
		return m?.[1];
	} catch {
		return undefined;
	}
}

async function onPath(cmd: string): Promise<boolean> {
	const r = await execa(cmd, ['--version'], { reject: false });
	return r.exitCode === 0;
}

async function compilerVersion(cc: string): Promise<string> {
	const r = await execa(cc, ['--version'], { reject: false });
	return r.exitCode === 0 ? r.stdout.split('\n')[0]!.trim() : 'unknown';
}

/** Builds the N-API addon (node-gyp, offline) unless it is up to date. */
export async function buildAddon(): Promise<void> {
	const r = await execa('node', [path.join(PACKAGE_ROOT, 'scripts', 'build-addon.mjs')], { reject: false, all: true, cwd: PACKAGE_ROOT });
	if (r.exitCode !== 0) throw new SetupError('ERR_BUILD', `building the addon failed:\n${r.all ?? ''}`);
}
