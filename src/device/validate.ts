// Argument checks for the public device API, with Node's own error codes and
// wording (validateObject, validateInteger, validateOneOf in Node's
// lib/internal/validators.js): ERR_INVALID_ARG_TYPE for a wrong type,
// ERR_OUT_OF_RANGE for a number outside its range, ERR_INVALID_ARG_VALUE for
// a value of the right type that is not allowed. They run before any syscall.
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js';

/**
 * An options argument: undefined (no options) or a plain object (its
 * prototype is Object.prototype or null). Anything else, a string taken for
 * a pattern name included, is a TypeError.
 */
export function validateOptions<T extends object>(value: T | undefined, name = 'options'): Partial<T> {
	if (value === undefined) return {};
	if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
	const proto: unknown = Object.getPrototypeOf(value);
	if (proto !== Object.prototype && proto !== null) throw invalidArgType(name, 'a plain object', value);
	return value;
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
	if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
}

export function validateString(value: unknown, name: string): asserts value is string {
	if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
}

/** A number (not bigint) that is an integer in [min, max]. */
export function validateInteger(value: unknown, name: string, min: number, max: number): number {
	if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
	if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
	if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
	return value;
}

/** A size or offset: a number or bigint that is an integer in [min, 2^53-1], as a number. */
export function validateIndex(value: unknown, name: string, min = 0): number {
	if (typeof value === 'bigint') {
		if (value < BigInt(min) || value > BigInt(Number.MAX_SAFE_INTEGER)) throw outOfRange(name, `>= ${min} && <= ${Number.MAX_SAFE_INTEGER}`, value);
		return Number(value);
	}
	if (typeof value !== 'number') throw invalidArgType(name, 'one of type number or bigint', value);
	if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
	if (value < min || value > Number.MAX_SAFE_INTEGER) throw outOfRange(name, `>= ${min} && <= ${Number.MAX_SAFE_INTEGER}`, value);
	return value;
}

/** One of a fixed set of strings. */
export function validateOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
	validateString(value, name);
	if (!(allowed as readonly string[]).includes(value)) {
		throw invalidArgValue(name, value, `must be one of: ${allowed.map((v) => `'${v}'`).join(', ')}`);
	}
	return value as T;
}
