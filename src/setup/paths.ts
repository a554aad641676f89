// Where the package's own files are, wherever it is installed or run from.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachePath, hashKey, newestMtime } from '../vm/cache.js';

/** The package root: two levels above this file in both src/ and dist/. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where tsc writes; scripts/bundle.mjs puts the guest's one-file programs in its guest/. */
const DIST = path.join(PACKAGE_ROOT, 'dist');

/**
 * The file a guest runs for the CLI or the warm agent: the one-file bundle
 * in dist/guest/ when it is at least as new as everything tsc wrote (under
 * TCG over 9p, loading the CLI's 244 modules one by one costs seconds), else
 * tsc's own output, so a stale bundle never runs in place of new code.
 */
export function guestProgram(name: 'cli' | 'warm-agent', dist = DIST): string {
	const unbundled = path.join(dist, ...(name === 'cli' ? ['cli', 'main.js'] : ['scenarios', 'warm-agent.js']));
	const bundle = path.join(dist, 'guest', `${name}.js`);
	return existsSync(bundle) && statSync(bundle).mtimeMs >= newestMtime(dist, path.join(dist, 'guest')) ? bundle : unbundled;
}

export const KMOD_SOURCE_DIR = path.join(PACKAGE_ROOT, 'kmod');
export const MODULE_NAME = 'hybridmem_test';
export const CHRDEV_NAME = 'kex';
/** The notes' node; one definition, the device API's default path. */
export { DEFAULT_DEVICE_PATH as DEFAULT_NODE } from '../device/device.js';
export const DEFAULT_MODE = '0660';
export const SYSFS_COUNTERS = `/sys/kernel/${MODULE_NAME}`;
export const SYSFS_MODULE = `/sys/module/${MODULE_NAME}`;

/** A short hash of the module's sources (missing files count as empty). */
export function kmodSourceKey(dir = KMOD_SOURCE_DIR): string {
	let names: string[];
	try {
		names = readdirSync(dir).filter((n) => /\.(c|h)$|^Kbuild$|^Makefile$/.test(n)).sort();
	} catch {
		names = [];
	}
	return hashKey(...names.flatMap((n) => [n, readFileSync(path.join(dir, n))]));
}

/**
 * Where `hybridmem build` puts the module for kernel `kver`: the per-user
 * cache (like the VM runner's), never the package directory, which may be
 * read-only (a global or store-based install) and is replaced by the next
 * install.  The directory is named by the sources' content, so a module found
 * there was built from exactly these sources, by any checkout or install.
 */
export function moduleBuildDir(kver: string): string {
	return path.join(cachePath(), 'kmod', kmodSourceKey(), kver);
}

export function moduleFile(kver: string): string {
	return path.join(moduleBuildDir(kver), `${MODULE_NAME}.ko`);
}
