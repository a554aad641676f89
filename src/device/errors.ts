// Errors in the shape of Node's own: a failed syscall becomes an Error with
// code, errno (negative, libuv's convention), syscall and path, and a message
// such as "ENOENT: no such file or directory, open '/dev/devKex'". Misuse of
// the API gets a Node-style ERR_* code and a message that says what to do.
import { getSystemErrorMap } from 'node:util';

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

export function invalidArgument(name: string, message: string): CodedError {
	return codedError('ERR_INVALID_ARG_VALUE', `The "${name}" argument ${message}`, TypeError);
}

export function outOfRange(name: string, message: string): CodedError {
	return codedError('ERR_OUT_OF_RANGE', `The "${name}" argument ${message}`, RangeError);
}
