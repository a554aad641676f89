// The module's load and unload inside the VM runner's guests, without
// spawning insmod, mknod, chmod or rmmod: under TCG each spawn costs a few
// hundred milliseconds, and a warm run spent more time in them than in its
// scenario.  Same syscalls as those tools (finit_module, mknod, delete_module,
// through the addon); when one fails, setup()/teardown() run the tools after
// all, for their explained error messages.
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { loadBinding } from '../device/binding.js';
import { chrdevMajor, counters, isLoaded } from '../setup/kernel-state.js';
import { CHRDEV_NAME, DEFAULT_MODE, MODULE_NAME } from '../setup/paths.js';
import { setup } from '../setup/setup.js';
import { teardown } from '../setup/teardown.js';

function removeNode(node: string): void {
	if (existsSync(node) && lstatSync(node).isCharacterDevice()) unlinkSync(node);
}

/** Unloads the module (refusing with live mappings, as teardown does) and removes its node. */
export async function unloadQuick(node: string): Promise<void> {
	if (!isLoaded()) return removeNode(node);
	if ((counters().live_mappings ?? 0n) > 0n) {
		await teardown({ node }); // throws ERR_MAPPINGS_ALIVE with the holders named
		return;
	}
	try {
		loadBinding().unloadModule(MODULE_NAME);
	} catch {
		await teardown({ node });
		return;
	}
	removeNode(node);
}

/** Loads `ko` with its defaults (reloading it when loaded) and makes the node, mode 0660. */
export async function loadQuick(ko: string, node: string): Promise<void> {
	await unloadQuick(node);
	try {
		loadBinding().loadModule(ko, '');
	} catch {
		await setup({ reload: true, node, module: ko });
		return;
	}
	const major = chrdevMajor(CHRDEV_NAME);
	if (major === undefined) {
		// Left loaded on purpose: what a caller's cleanliness check must see.
		throw Object.assign(new Error(`${ko} loaded, but '${CHRDEV_NAME}' is not in /proc/devices: not the test module?`), { code: 'ERR_NO_MAJOR' });
	}
	removeNode(node);
	loadBinding().mknodChar(node, parseInt(DEFAULT_MODE, 8), major, 0);
}
