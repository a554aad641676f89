// Every scenario, in the order a report lists them: the notes' two tests
// first, then each map_mode, the error and zap paths, bad input, the notes'
// hidden bugs as written, the crash.
import { notesErrorLeak, notesTest2Uaf } from './as-written.js';
import { badInput } from './bad-input.js';
import { bugPfnmap } from './bug-pfnmap.js';
import { errorPath } from './error-path.js';
import type { Scenario } from './types.js';
import { faultMode, insertPage, insertPages, remapContig, test2 } from './write-read.js';
import { test1, zapNoop, zapRemap } from './zap.js';

export const SCENARIOS: readonly Scenario[] = [
	test1,
	test2,
	insertPage,
	insertPages,
	remapContig,
	faultMode,
	errorPath,
	zapRemap,
	zapNoop,
	badInput,
	notesTest2Uaf,
	notesErrorLeak,
	bugPfnmap,
];

/** The scenarios named, in catalog order; all of them for an empty list. */
export function selectScenarios(names: string[]): Scenario[] {
	const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
	if (unknown.length)
		throw Object.assign(new Error(`unknown scenario${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`), {
			code: 'ERR_UNKNOWN_SCENARIO',
		});
	return names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : [...SCENARIOS];
}
