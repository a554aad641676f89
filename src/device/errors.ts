// Errors in the shape of Node's own: a failed syscall becomes an Error with
// code, errno (negative, libuv's convention), syscall and path, and a message
// such as "ENOENT: no such file or directory, open '/dev/devKex'". Misuse of
// the API gets a Node-style ERR_* code and a message that says what to do.
import { getSystemErrorMap, inspect } from 'node:util';

export interface SystemError extends Error {
	code: string;
	errno: number;
	syscall: string;
	path?: string;
}

export interface CodedError extends Error {
	code: string;
}

function describe(errno: number): [string, string] | undefined {
	return getSystemErrorMap().get(errno);
}

export function systemError(errno: number, syscall: string, path?: string): SystemError {
	const [code, text] = describe(errno) ?? [`E${-errno}`, 'unknown error'];
	const where = path === undefined ? syscall : `${syscall} '${path}'`;
	const error = new Error(`${code}: ${text}, ${where}`) as SystemError;
	error.errno = errno;
	error.code = code;
	error.syscall = syscall;
	if (path !== undefined) error.path = path;
	return error;
}

export function isSystemError(error: unknown): error is SystemError {
	return (
		error instanceof Error &&
		typeof (error as Partial<SystemError>).errno === 'number' &&
		typeof (error as Partial<SystemError>).syscall === 'string'
	);
}

/**
 * Runs a native call; a syscall failure is rethrown with libuv's message text
 * and the device path (the addon only knows the fd), anything else unchanged.
 */
export function callNative<T>(fn: () => T, path?: string): T {
	try {
		return fn();
	} catch (error) {
		throw withPath(error, path);
	}
}

export function withPath(error: unknown, path?: string): unknown {
	if (!isSystemError(error)) return error;
	const rebuilt = systemError(error.errno, error.syscall, error.path ?? path);
	rebuilt.stack = `${rebuilt.name}: ${rebuilt.message}\n${(error.stack ?? '').split('\n').slice(1).join('\n')}`;
	return rebuilt;
}

export function codedError(code: string, message: string, ErrorClass: ErrorConstructor = Error): CodedError {
	const error = new ErrorClass(message) as CodedError;
	error.code = code;
	return error;
}

export function mappingClosed(operation: string): CodedError {
	return codedError('ERR_MAPPING_CLOSED', `cannot ${operation}: the mapping was unmapped`);
}

export function deviceClosed(operation: string, path: string): CodedError {
	return codedError('ERR_DEVICE_CLOSED', `cannot ${operation}: the device ${path} was closed`);
}

// ---- argument errors, worded as Node's own (lib/internal/errors.js) ----

/** What Node's ERR_INVALID_ARG_TYPE prints after "Received" (determineSpecificType). */
export function describeReceived(value: unknown): string {
	if (value === null) return 'null';
	if (value === undefined) return 'undefined';
	switch (typeof value) {
		case 'bigint':
			return `type bigint (${value}n)`;
		case 'number':
			return `type number (${Object.is(value, -0) ? '-0' : String(value)})`;
		case 'boolean':
			return `type boolean (${value})`;
		case 'symbol':
			return `type symbol (${String(value)})`;
		case 'function':
			return `function ${value.name}`;
		case 'object': {
			const ctor = (value as { constructor?: { name?: unknown } }).constructor;
			if (typeof ctor?.name === 'string' && ctor.name !== '') return `an instance of ${ctor.name}`;
			return inspect(value, { depth: -1 });
		}
		case 'string': {
			const text = value.length > 28 ? `${value.slice(0, 25)}...` : value;
			return text.includes("'") ? `type string (${JSON.stringify(text)})` : `type string ('${text}')`;
		}
		default:
			return `type ${typeof value}`;
	}
}

function kind(name: string): 'argument' | 'property' {
	return name.includes('.') ? 'property' : 'argument';
}

function separated(digits: string): string {
	const sign = digits.startsWith('-') ? '-' : '';
	const body = sign ? digits.slice(1) : digits;
	return sign + body.replace(/\B(?=(\d{3})+(?!\d))/g, '_');
}

/** What Node's ERR_OUT_OF_RANGE prints after "Received". */
export function rangeReceived(value: unknown): string {
	if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) > 2 ** 32) return separated(String(value));
	if (typeof value === 'bigint') {
		const text = value > 2n ** 32n || value < -(2n ** 32n) ? separated(String(value)) : String(value);
		return `${text}n`;
	}
	return inspect(value);
}

/** TypeError ERR_INVALID_ARG_TYPE: `expected` follows "must be", e.g. "of type object". */
export function invalidArgType(name: string, expected: string, actual: unknown): CodedError {
	return codedError('ERR_INVALID_ARG_TYPE', `The "${name}" ${kind(name)} must be ${expected}. Received ${describeReceived(actual)}`, TypeError);
}

/** RangeError ERR_OUT_OF_RANGE: `range` follows "It must be", e.g. ">= 0 && <= 255". */
export function outOfRange(name: string, range: string, received: unknown): CodedError {
	return codedError('ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be ${range}. Received ${rangeReceived(received)}`, RangeError);
}

/** TypeError ERR_INVALID_ARG_VALUE: a value of the right type that is not allowed. */
export function invalidArgValue(name: string, value: unknown, reason = 'is invalid'): CodedError {
	let shown = inspect(value);
	if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
	return codedError('ERR_INVALID_ARG_VALUE', `The ${kind(name)} '${name}' ${reason}. Received ${shown}`, TypeError);
}
