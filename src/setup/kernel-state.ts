// What the running kernel says about the module: loaded or not, its major in
// /proc/devices, its parameters and counters in sysfs, whether this kernel
// can load modules at all.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CHRDEV_NAME, SYSFS_COUNTERS, SYSFS_MODULE } from './paths.js';

export function isLoaded(): boolean {
	return existsSync(SYSFS_MODULE) && existsSync(path.join(SYSFS_MODULE, 'parameters'));
}

/** The major of a character device driver by its /proc/devices name. */
export function chrdevMajor(name = CHRDEV_NAME, procDevices = readFileSync('/proc/devices', 'utf8')): number | undefined {
	let inChar = false;
	for (const line of procDevices.split('\n')) {
		if (line.startsWith('Character devices:')) inChar = true;
		else if (line.startsWith('Block devices:')) inChar = false;
		else if (inChar) {
			const m = /^\s*(\d+)\s+(\S+)$/.exec(line);
			if (m && m[2] === name) return Number(m[1]);
		}
	}
	return undefined;
}

function readDir(dir: string): Record<string, string> {
	const out: Record<string, string> = {};
	if (!existsSync(dir)) return out;
	for (const name of readdirSync(dir).sort()) {
		try {
			out[name] = readFileSync(path.join(dir, name), 'utf8').trim();
		} catch {
			/* write-only or vanished: not a value to show */
		}
	}
	return out;
}

/** The loaded module's parameters as sysfs shows them. */
export function loadedParams(): Record<string, string> {
	return readDir(path.join(SYSFS_MODULE, 'parameters'));
}

/** The module's counters, /sys/kernel/hybridmem_test/<name>, as bigints. */
export function counters(): Record<string, bigint> {
	const out: Record<string, bigint> = {};
	for (const [k, v] of Object.entries(readDir(SYSFS_COUNTERS))) if (/^-?\d+$/.test(v)) out[k] = BigInt(v);
	return out;
}

/** Whether this kernel was built with loadable module support. */
export function kernelLoadsModules(): boolean {
	return existsSync('/proc/modules');
}
