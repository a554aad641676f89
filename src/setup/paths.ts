// Where the package's own files are, wherever it is installed or run from.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachePath, hashKey } from '../vm/cache.js';

/** The package root: two levels above this file in both src/ and dist/. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

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
