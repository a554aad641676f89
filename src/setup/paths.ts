// Where the package's own files are, wherever it is installed or run from.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Where `hybridmem build` puts the module for kernel `kver`. */
export function moduleBuildDir(kver: string): string {
	return path.join(PACKAGE_ROOT, 'build', 'kmod', kver);
}

export function moduleFile(kver: string): string {
	return path.join(moduleBuildDir(kver), `${MODULE_NAME}.ko`);
}
