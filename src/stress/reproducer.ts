// The reproducer printer: the shrunk program as a file `hybridmem stress
// --replay FILE` runs, with each operation explained, and the command line.
import { writeFileSync } from 'node:fs';
import { formatProgram, type Program } from './program.js';
import type { Violation } from './invariants.js';

export interface Reproducer {
	file: string;
	ops: number;
	/** Operations of the failing program before shrinking. */
	originalOps: number;
	text: string;
	command: string;
}

export function writeReproducer(file: string, program: Program, violation: Violation, originalOps: number, how: { kernel: string; module?: string }): Reproducer {
	const p: Program = { ...program, comment: [...(program.comment ?? []), `fails: ${violation.invariant}: ${violation.summary}`, `shrunk from ${originalOps} to ${program.ops.length} operations`] };
	const text = formatProgram(p, { explain: true });
	writeFileSync(file, text);
	const command = ['hybridmem', 'stress', '--replay', file, '--kernel', how.kernel, ...(how.module ? ['--module', how.module] : [])].join(' ');
	return { file, ops: program.ops.length, originalOps, text, command };
}

export function formatReproducer(r: Reproducer): string {
	return [`reproducer (${r.ops} operations, shrunk from ${r.originalOps}): ${r.file}`, ...r.text.trimEnd().split('\n').map((l) => `  ${l}`), `run it again: ${r.command}`].join('\n');
}
