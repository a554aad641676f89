// hybridmem build: the module via kbuild, for one kernel or several side by
// side (build/kmod/<kver>/), and the addon via node-gyp; work already done is
// skipped by comparing modification times with the sources.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from './errors.js';
import { KMOD_SOURCE_DIR, PACKAGE_ROOT, moduleBuildDir, moduleFile } from './paths.js';

export interface BuildResult {
	kver: string;
	file: string;
	built: boolean;
	/** Compiler warnings, one per line; a clean build has none. */
	warnings: string[];
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

/** Builds hybridmem_test.ko for kernel `kver` unless an up-to-date one exists. */
export async function buildModule(kver: string, opts: { force?: boolean; extraWarnings?: boolean } = {}): Promise<BuildResult> {
	const file = moduleFile(kver);
	const headers = `/lib/modules/${kver}/build`;
	if (!existsSync(path.join(headers, 'Makefile')))
		throw new SetupError('ERR_BUILD', `no headers for kernel ${kver} at ${headers}: apt-get install linux-headers-${kver} (scripts/bootstrap.sh installs Debian's)`);
	// A W=1 build leaves its warnings beside the module, so an up-to-date
	// module can still answer "was it built clean with W=1?".
	const warningsFile = path.join(moduleBuildDir(kver), 'w1-warnings.txt');
	const sources = newestKmodSource();
	const fresh = (f: string) => existsSync(f) && statSync(f).mtimeMs >= sources;
	if (!opts.force && fresh(file) && (!opts.extraWarnings || fresh(warningsFile)))
		return { kver, file, built: false, warnings: opts.extraWarnings ? readFileSync(warningsFile, 'utf8').split('\n').filter(Boolean) : [] };
	const args = ['-C', KMOD_SOURCE_DIR, `KVER=${kver}`, `OUT=${moduleBuildDir(kver)}`];
	if (opts.extraWarnings) args.push('W=1');
	const r = await execa('make', args, { reject: false, all: true });
	const warnings = (r.all ?? '').split('\n').filter((l) => /warning:/i.test(l));
	if (r.exitCode !== 0 || !existsSync(file))
		throw new SetupError('ERR_BUILD', `building the module for ${kver} failed:\n${(r.all ?? '').split('\n').slice(-30).join('\n')}`);
	if (opts.extraWarnings) writeFileSync(warningsFile, warnings.map((w) => `${w}\n`).join(''));
	// kbuild leaves the .ko alone when only a file it does not depend on
	// changed (the Makefile): mark it as built from these sources, or every
	// later call would run make again (about 100 s under TCG).
	const now = new Date();
	utimesSync(file, now, now);
	return { kver, file, built: true, warnings };
}

/** Builds the N-API addon (node-gyp, offline) unless it is up to date. */
export async function buildAddon(): Promise<void> {
	const r = await execa('node', [path.join(PACKAGE_ROOT, 'scripts', 'build-addon.mjs')], { reject: false, all: true, cwd: PACKAGE_ROOT });
	if (r.exitCode !== 0) throw new SetupError('ERR_BUILD', `building the addon failed:\n${r.all ?? ''}`);
}
