// The reproducer printer: the shrunk program as a file `hybridmem stress
// --replay FILE` runs, with each operation explained, and the command line.
import { writeFileSync } from 'node:fs';
import { formatProgram, type OpContext, type Program } from './program.js';
import type { Violation } from './invariants.js';

export interface Reproducer {
	file: string;
	ops: number;
	/** Operations of the failing program before shrinking. */
	originalOps: number;
	text: string;
	command: string;
}

/** What the program ran against when it is not hybridmem_test: the options that name it, in words, and how its operations read. */
export interface ReproducerTarget {
	args: string[];
	label: string;
	ops: OpContext;
}

export interface ReproducerHow {
	kernel: string;
	/** A build of hybridmem_test (not with target). */
	module?: string;
	target?: ReproducerTarget;
}

/** The command that replays `file` (argument words joined by spaces, for people to read). */
export function reproducerCommand(file: string, how: ReproducerHow): string {
	return ['hybridmem', 'stress', '--replay', file, '--kernel', how.kernel, ...(how.target ? how.target.args : how.module ? ['--module', how.module] : [])].join(' ');
}

export function writeReproducer(file: string, program: Program, violation: Violation, originalOps: number, how: ReproducerHow): Reproducer {
	const p: Program = {
		...program,
		comment: [...(program.comment ?? []), ...(how.target ? [`target: ${how.target.label}`] : []), `fails: ${violation.invariant}: ${violation.summary}`, `shrunk from ${originalOps} to ${program.ops.length} operations`],
	};
	const text = formatProgram(p, { explain: true, ...(how.target ? { target: how.target.ops } : {}) });
	writeFileSync(file, text);
	return { file, ops: program.ops.length, originalOps, text, command: reproducerCommand(file, how) };
}

export function formatReproducer(r: Reproducer): string {
	return [`reproducer (${r.ops} operations, shrunk from ${r.originalOps}): ${r.file}`, ...r.text.trimEnd().split('\n').map((l) => `  ${l}`), `run it again: ${r.command}`].join('\n');
}
