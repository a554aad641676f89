// hybridmem build: the module via kbuild, for one kernel or several side by
// side in the per-user cache (paths.ts moduleBuildDir), and the addon; work
// already done is skipped.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cachedAddonFile, compileAddon, fittingPrebuild } from './addon.js';
import { SetupError } from './errors.js';
import { KMOD_SOURCE_DIR, MODULE_NAME, PACKAGE_ROOT, moduleBuildDir, moduleFile } from './paths.js';
import { buildInChroot } from './chroot.js';
import { findKernel } from '../vm/kernels.js';

export interface BuildResult {
	kver: string;
	file: string;
	built: boolean;
	/** Compiler warnings, one per line; a clean build has none. */
	warnings: string[];
	/** Which compiler built it, in words (toolchain.txt beside the module when up to date). */
	toolchain?: string;
}

/** Which compiler built the module: the kernel's own, the host's default one, or the kernel's own in a chroot of its suite. */
export type Toolchain = 'kernel-compiler' | 'host-gcc' | 'chroot';

/** Builds hybridmem_test.ko for kernel `kver` unless one built from these sources exists. */
export async function buildModule(
	kver: string,
	opts: { force?: boolean; extraWarnings?: boolean; toolchain?: 'auto' | Toolchain; onProgress?: (m: string) => void } = {},
): Promise<BuildResult> {
	const dir = moduleBuildDir(kver);
	const file = moduleFile(kver);
	// A W=1 build leaves its warnings beside the module, so an up-to-date
	// module can still answer "was it built clean with W=1?".
	const warningsFile = path.join(dir, 'w1-warnings.txt');
	const toolchainFile = path.join(dir, 'toolchain.txt');
	const wanted = opts.toolchain ?? (process.env.HYBRIDMEM_TOOLCHAIN as Toolchain | undefined) ?? 'auto';
	const usedBefore = existsSync(toolchainFile) ? readFileSync(toolchainFile, 'utf8').trim() : undefined;
	// Checked before the headers: inside the VM the module is already built, and a fetched kernel's headers may not be found there.
	if (!opts.force && existsSync(file) && (!opts.extraWarnings || existsSync(warningsFile)) && (wanted === 'auto' || usedBefore?.startsWith(wanted)))
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
				: /-(amd64|arm64|cloud-amd64|rt-amd64)$/.test(kver)
					? `no headers for kernel ${kver} at ${headers}: apt-get install linux-headers-${kver} (\`hybridmem bootstrap\` installs those of the VM runner's kernels), or fetch it: hybridmem kernels --fetch ${kver}`
					: `no headers for kernel ${kver} at ${headers}, and it is not a Debian kernel apt has headers for; build for a VM kernel instead: hybridmem build --kernel VER (see \`hybridmem kernels\`)`,
		);
	const own = kernelCompiler(headers);
	const ownOnHost = own !== undefined && (await onPath(own));
	// A cross-built kernel (arm64) has no host-gcc fallback: the host's gcc makes amd64 code.
	const cross = kernel.arch !== undefined && kernel.arch !== 'amd64';
	const order: Toolchain[] =
		wanted !== 'auto' ? [wanted] : ownOnHost ? ['kernel-compiler'] : kernel.origin === 'fetched' ? (cross ? ['chroot'] : ['host-gcc', 'chroot']) : ['host-gcc'];
	const attempts: { toolchain: Toolchain; output: string }[] = [];
	// Built beside its final place and moved into it: two runs (checkouts
	// with the same sources share the cache) never see each other's half.
	const work = `${dir}.${process.pid}.tmp`;
	try {
		for (const toolchain of order) {
			rmSync(work, { recursive: true, force: true });
			mkdirSync(work, { recursive: true });
			let r: { ok: boolean; output: string; describe: string };
			if (toolchain === 'chroot') {
				if (kernel.origin !== 'fetched' || !kernel.root || !kernel.suite)
					throw new SetupError('ERR_BUILD', `a chroot build needs a fetched kernel (hybridmem kernels --fetch); ${kver} is installed`);
				opts.onProgress?.(`building the module for ${kver} in a ${kernel.suite} chroot with ${own ?? "the suite's compiler"}`);
				r = await buildInChroot(kernel, work, !!opts.extraWarnings, own, opts.onProgress);
			} else {
				const args = ['-C', KMOD_SOURCE_DIR, `KVER=${kver}`, `KDIR=${headers}`, `OUT=${work}`];
				// The host's gcc for a kernel built with another: the kernel's variables name a compiler this machine lacks.
				if (toolchain === 'host-gcc' && !ownOnHost) args.push('CC=gcc');
				if (opts.extraWarnings) args.push('W=1');
				const m = await execa('make', args, { reject: false, all: true });
				const cc = toolchain === 'host-gcc' && !ownOnHost ? 'gcc' : (own ?? 'gcc');
				r = { ok: m.exitCode === 0 && existsSync(path.join(work, `${MODULE_NAME}.ko`)), output: m.all ?? '', describe: `${toolchain} (${cc}: ${await compilerVersion(cc)})` };
			}
			if (!r.ok) {
				attempts.push({ toolchain, output: r.output });
				continue;
			}
			const warnings = r.output.split('\n').filter((l) => /warning:/i.test(l));
			const describe = `${r.describe}${own ? ` for a kernel built with ${own}` : ''}${attempts.length ? `; before it ${attempts.map((a) => a.toolchain).join(', ')} failed` : ''}`;
			if (opts.extraWarnings) writeFileSync(path.join(work, 'w1-warnings.txt'), warnings.map((w) => `${w}\n`).join(''));
			// Each file replaces its old self in one rename: a run loading the
			// module meanwhile gets the old one or the new one, never none.
			mkdirSync(dir, { recursive: true });
			writeFileSync(path.join(work, 'toolchain.txt'), `${describe}\n`);
			renameSync(path.join(work, 'toolchain.txt'), toolchainFile);
			if (attempts.length) writeFileSync(path.join(dir, 'failed-attempts.log'), attempts.map((a) => `== ${a.toolchain}\n${a.output}\n`).join(''));
			if (opts.extraWarnings) renameSync(path.join(work, 'w1-warnings.txt'), warningsFile);
			renameSync(path.join(work, `${MODULE_NAME}.ko`), file);
			return { kver, file, built: true, warnings, toolchain: describe };
		}
	} finally {
		rmSync(work, { recursive: true, force: true });
	}
	throw new SetupError(
		'ERR_BUILD',
		`building the module for ${kver} failed:\n${attempts.map((a) => `-- with ${a.toolchain}:\n${a.output.split('\n').slice(-30).join('\n')}`).join('\n')}`,
	);
}

/** The compiler a Debian kernel's headers name (gcc-10, gcc-14, aarch64-linux-gnu-gcc-14 for a cross-built one), from .kernelvariables. */
export function kernelCompiler(headers: string): string | undefined {
	try {
		const text = readFileSync(path.join(headers, '.kernelvariables'), 'utf8');
		const m = /^CC\s*=.*?(\$\(CROSS_COMPILE\))?\b(gcc-\d+)\s*$/m.exec(text);
		const cross = m?.[1] ? (/^override CROSS_COMPILE = (\S+)\s*$/m.exec(text)?.[1] ?? '') : '';
		return m ? `${cross}${m[2]}` : undefined;
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

export interface AddonBuildResult {
	/** 'built': compiled just now; 'up to date': a build that is current; 'prebuilt': the package's binary for this platform. */
	state: 'built' | 'up to date' | 'prebuilt';
	file: string;
}

/**
 * Makes sure the N-API addon exists.  In a development checkout (it has
 * scripts/build-addon.mjs): node-gyp into build/Release, skipped when up to
 * date.  In an installed package: the prebuilt binary when one fits this
 * platform, else a source build into the per-user cache.
 */
export async function buildAddon(opts: { force?: boolean } = {}): Promise<AddonBuildResult> {
	const devScript = path.join(PACKAGE_ROOT, 'scripts', 'build-addon.mjs');
	if (existsSync(devScript) && existsSync(path.join(PACKAGE_ROOT, 'binding.gyp'))) {
		const r = await execa('node', [devScript, ...(opts.force ? ['--force'] : [])], { reject: false, all: true, cwd: PACKAGE_ROOT });
		if (r.exitCode !== 0) throw new SetupError('ERR_BUILD', `building the addon failed:\n${r.all ?? ''}`);
		const file = path.join(PACKAGE_ROOT, 'build', 'Release', 'hybridmem.node');
		return { state: /is up to date/.test(r.all ?? '') ? 'up to date' : 'built', file };
	}
	const prebuilt = fittingPrebuild();
	if (prebuilt) return { state: 'prebuilt', file: prebuilt };
	const file = cachedAddonFile();
	if (existsSync(file) && !opts.force) return { state: 'up to date', file };
	try {
		await compileAddon({ out: file });
	} catch (err) {
		throw new SetupError('ERR_BUILD', `building the addon from source failed: ${(err as Error).message}`);
	}
	return { state: 'built', file };
}
