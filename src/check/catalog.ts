// Every check, in the order they run; the lifecycle check runs last (it unloads
// the module), the kernel-log check is judged after all of them.
import { absurdRanges, mremapMove } from './checks/bounds.js';
import { remapKeeps, roundTrip } from './checks/data.js';
import { leakCycles } from './checks/leak.js';
import { unloadWhileInUse } from './checks/lifecycle.js';
import { distinctPages, freshContents, uafCloseWhileMapped, uafMapUnmap } from './checks/memory.js';
import { privateCow } from './checks/private.js';
import { dontNeed, forkShared, mremapMoved, orphanChild, partialMunmap, processes, threads } from './checks/process.js';
import type { Check } from './types.js';

export const CHECKS: readonly Check[] = [
	// First: a buffer that keeps its contents across mappings would show our own patterns later.
	freshContents,
	roundTrip,
	remapKeeps,
	distinctPages,
	uafMapUnmap,
	uafCloseWhileMapped,
	orphanChild,
	forkShared,
	leakCycles,
	absurdRanges,
	partialMunmap,
	mremapMove,
	mremapMoved,
	privateCow,
	threads,
	processes,
	// After the others: a driver whose pages MADV_DONTNEED drops may not get them back.
	dontNeed,
	unloadWhileInUse,
];
