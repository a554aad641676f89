// hybridmem build: the module via kbuild, for one kernel or several side by
// side in the per-user cache (paths.ts moduleBuildDir), and the addon; work
// already done is skipped.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cachedAddonFile, compileAddon, fittingPrebuild } from './addon.js';
import { SetupError } from './errors.js';
import { KMOD_SOURCE_DIR, MODULE_NAME, PACKAGE_ROOT, moduleBuildDir, moduleFile } from './paths.js';

export interface BuildResult {
	kver: string;
	file: string;
	built: boolean;
	/** Compiler warnings, one per line; a clean build has none. */
	warnings: string[];
}

/** Builds hybridmem_test.ko for kernel `kver` unless one built from these sources exists. */
export async function buildModule(kver: string, opts: { force?: boolean; extraWarnings?: boolean } = {}): Promise<BuildResult> {
	const dir = moduleBuildDir(kver);
	const file = moduleFile(kver);
	const headers = `/lib/modules/${kver}/build`;
	if (!existsSync(path.join(headers, 'Makefile')))
		throw new SetupError(
			'ERR_BUILD',
			/-(amd64|arm64|cloud-amd64|rt-amd64)$/.test(kver)
				? `no headers for kernel ${kver} at ${headers}: apt-get install linux-headers-${kver} (\`hybridmem bootstrap\` installs those of the VM runner's kernels)`
				: `no headers for kernel ${kver} at ${headers}, and it is not a Debian kernel apt has headers for; build for a VM kernel instead: hybridmem build --kernel VER (see \`hybridmem kernels\`)`,
		);
	// A W=1 build leaves its warnings beside the module, so an up-to-date
	// module can still answer "was it built clean with W=1?".
	const warningsFile = path.join(dir, 'w1-warnings.txt');
	if (!opts.force && existsSync(file) && (!opts.extraWarnings || existsSync(warningsFile)))
		return { kver, file, built: false, warnings: opts.extraWarnings ? readFileSync(warningsFile, 'utf8').split('\n').filter(Boolean) : [] };
	// Built beside its final place and moved into it: two runs (checkouts
	// with the same sources share the cache) never see each other's half.
	const work = `${dir}.${process.pid}.tmp`;
	rmSync(work, { recursive: true, force: true });
	mkdirSync(work, { recursive: true });
	try {
		const args = ['-C', KMOD_SOURCE_DIR, `KVER=${kver}`, `OUT=${work}`];
		if (opts.extraWarnings) args.push('W=1');
		const r = await execa('make', args, { reject: false, all: true });
		const warnings = (r.all ?? '').split('\n').filter((l) => /warning:/i.test(l));
		if (r.exitCode !== 0 || !existsSync(path.join(work, `${MODULE_NAME}.ko`)))
			throw new SetupError('ERR_BUILD', `building the module for ${kver} failed:\n${(r.all ?? '').split('\n').slice(-30).join('\n')}`);
		if (opts.extraWarnings) writeFileSync(path.join(work, 'w1-warnings.txt'), warnings.map((w) => `${w}\n`).join(''));
		// Each file replaces its old self in one rename: a run loading the
		// module meanwhile gets the old one or the new one, never none.
		mkdirSync(dir, { recursive: true });
		if (opts.extraWarnings) renameSync(path.join(work, 'w1-warnings.txt'), warningsFile);
		renameSync(path.join(work, `${MODULE_NAME}.ko`), file);
		return { kver, file, built: true, warnings };
	} finally {
		rmSync(work, { recursive: true, force: true });
	}
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
