// hybridmem teardown: rmmod and remove the node, but only when no mapping is
// alive, checked before anything is touched so a refusal leaves no partial
// state behind.
import { execa } from 'execa';
import { existsSync, lstatSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { SetupError } from './errors.js';
import { chrdevMajor, counters, isLoaded } from './kernel-state.js';
import { CHRDEV_NAME, DEFAULT_NODE, MODULE_NAME } from './paths.js';

export interface TeardownOptions {
	node?: string;
}

export interface TeardownResult {
	module: 'unloaded' | 'not-loaded';
	node: 'removed' | 'absent' | 'kept';
}

/** Processes that have the device mapped, from /proc/PID/maps, as "comm[pid]". */
export function mappingHolders(node: string): string[] {
	const holders: string[] = [];
	for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
		try {
			if (readFileSync(`/proc/${pid}/maps`, 'utf8').includes(node)) {
				const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
				holders.push(`${comm}[${pid}]`);
			}
		} catch {
			/* gone, or not ours to read */
		}
	}
	return holders;
}

export async function teardown(opts: TeardownOptions = {}): Promise<TeardownResult> {
	const node = opts.node ?? DEFAULT_NODE;
	const loaded = isLoaded();
	const major = loaded ? chrdevMajor(CHRDEV_NAME) : undefined;
	if (loaded) {
		const live = counters().live_mappings ?? 0n;
		if (live > 0n) {
			const holders = mappingHolders(node);
			throw new SetupError(
				'ERR_MAPPINGS_ALIVE',
				`refusing to unload ${MODULE_NAME}: ${live} mapping${live === 1n ? ' is' : 's are'} still alive` +
					(holders.length ? ` (held by ${holders.join(', ')})` : '') +
					`; unmap them or end those processes, then run teardown again. Nothing was changed.`,
			);
		}
		const r = await execa('rmmod', [MODULE_NAME], { reject: false });
		if (r.exitCode !== 0)
			throw new SetupError('ERR_RMMOD', `rmmod ${MODULE_NAME} failed: ${r.stderr.trim()} (is /dev/devKex still open somewhere? try: fuser -v ${node})`);
	}
	let nodeAction: TeardownResult['node'] = 'absent';
	if (existsSync(node)) {
		const st = lstatSync(node);
		// Only remove what setup would have made: a char device of our major
		// (or of any major once the module is gone, if it is named like ours).
		if (st.isCharacterDevice() && (major === undefined || Math.floor(st.rdev / 256) === major)) {
			unlinkSync(node);
			nodeAction = 'removed';
		} else nodeAction = 'kept';
	}
	return { module: loaded ? 'unloaded' : 'not-loaded', node: nodeAction };
}
