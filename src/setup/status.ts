// hybridmem status: is the module loaded, where is its node and with which
// permissions, what are its parameters and counters.
import { existsSync, lstatSync } from 'node:fs';
import { chrdevMajor, counters, isLoaded, kernelLoadsModules, loadedParams } from './kernel-state.js';
import { CHRDEV_NAME, DEFAULT_NODE } from './paths.js';

export interface NodeStatus {
	path: string;
	exists: boolean;
	/** Octal permissions, e.g. "0660". */
	mode?: string;
	/** True when it is a char device with the module's major and minor 0. */
	matchesModule?: boolean;
	major?: number;
	minor?: number;
}

export interface Status {
	kernelLoadsModules: boolean;
	loaded: boolean;
	major?: number;
	node: NodeStatus;
	params: Record<string, string>;
	counters: Record<string, bigint>;
}

export function status(node = DEFAULT_NODE): Status {
	const loaded = isLoaded();
	const major = loaded ? chrdevMajor(CHRDEV_NAME) : undefined;
	const ns: NodeStatus = { path: node, exists: existsSync(node) };
	if (ns.exists) {
		const st = lstatSync(node);
		ns.mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
		if (st.isCharacterDevice()) {
			ns.major = Math.floor(st.rdev / 256);
			ns.minor = st.rdev % 256;
			ns.matchesModule = major !== undefined && ns.major === major && ns.minor === 0;
		} else ns.matchesModule = false;
	}
	return {
		kernelLoadsModules: kernelLoadsModules(),
		loaded,
		...(major !== undefined ? { major } : {}),
		node: ns,
		params: loaded ? loadedParams() : {},
		counters: loaded ? counters() : {},
	};
}
