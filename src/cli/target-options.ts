// The target options `hybridmem check` and `hybridmem stress` share: which
// driver (a user's .ko, a kbuild directory, a node, a register_chrdev name
// or a recipe), parsed into the TargetSpec that src/check resolves.
import path from 'node:path';
import type { TargetSpec } from '../check/target.js';
import { CliError } from './errors.js';
import { keyValues } from './options.js';

/** parseArgs option definitions of the target options. */
export const TARGET_OPTIONS = {
	module: { type: 'string' },
	param: { type: 'string', multiple: true },
	'kmod-dir': { type: 'string' },
	device: { type: 'string' },
	chrdev: { type: 'string' },
	minor: { type: 'string' },
	recipe: { type: 'string' },
	length: { type: 'string' },
	'max-length': { type: 'string' },
	offset: { type: 'string' },
} as const;

export interface TargetValues {
	module?: string | undefined;
	param?: string[] | undefined;
	'kmod-dir'?: string | undefined;
	device?: string | undefined;
	chrdev?: string | undefined;
	minor?: string | undefined;
	recipe?: string | undefined;
	length?: string | undefined;
	'max-length'?: string | undefined;
	offset?: string | undefined;
}

function integer(command: string, value: string | undefined, what: string): number | undefined {
	if (value === undefined) return undefined;
	const n = Number(value);
	if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`${command}: ${what} expects a non-negative integer, got '${value}'`, 2);
	return n;
}

/** Whether any of --device, --chrdev, --recipe is given (else: no driver target). */
export function hasTarget(values: TargetValues): boolean {
	return [values.device, values.chrdev, values.recipe].some((x) => x !== undefined);
}

/**
 * The TargetSpec the options describe; usage errors name `command`.
 * With --kmod-dir, --module names the .ko the directory builds and
 * `spec.module` is that name until the directory is built for a kernel.
 */
export function targetSpec(command: string, values: TargetValues, native = false): TargetSpec {
	const targets = [values.device, values.chrdev, values.recipe].filter((x) => x !== undefined);
	if (targets.length !== 1) throw new CliError(`${command}: say what to ${command} with exactly one of --device /dev/NODE, --chrdev NAME or --recipe NAME|FILE.mjs; see 'hybridmem ${command} --help'`, 2);
	if (values.param && !values.module && !values['kmod-dir']) throw new CliError(`${command}: --param goes with --module or --kmod-dir`, 2);
	if (values['kmod-dir'] && native && values.module && values.module.includes('/')) throw new CliError(`${command}: with --kmod-dir, --module names the .ko the directory builds (NAME.ko)`, 2);
	const offset = integer(command, values.offset, '--offset');
	const length = integer(command, values.length, '--length');
	const maxLength = integer(command, values['max-length'], '--max-length');
	const minor = integer(command, values.minor, '--minor');
	return {
		...(values.module && !values['kmod-dir'] ? { module: path.resolve(values.module) } : {}),
		...(values.module && values['kmod-dir'] ? { module: values.module } : {}),
		...(values.param ? { params: keyValues(values.param, '--param') } : {}),
		...(values.device ? { device: values.device } : {}),
		...(values.chrdev ? { chrdev: values.chrdev } : {}),
		...(minor !== undefined ? { minor } : {}),
		...(values.recipe ? { recipe: values.recipe } : {}),
		...(length !== undefined ? { length } : {}),
		...(maxLength !== undefined ? { maxLength } : {}),
		...(offset !== undefined ? { offset: BigInt(offset) } : {}),
	};
}
