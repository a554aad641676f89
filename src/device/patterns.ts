// The test patterns fill and verify write and expect, their native codes,
// argument checks, and a plain JavaScript reference of each pattern (slow;
// for tests and for showing what a mismatch should have been).
import { constants as bufferConstants } from 'node:buffer';

import { invalidArgType, outOfRange } from './errors.js';
import { validateIndex, validateInteger, validateOneOf, validateOptions } from './validate.js';

export const PATTERNS = ['counter', 'random', 'constant', 'address-tag'] as const;
export type PatternName = (typeof PATTERNS)[number];

export interface PatternOptions {
	/** counter: byte i = (i + seed) & 0xff (the notes' write/read pattern); random: a seeded hash of each 32-bit lane's index (reproducible, any sub-range);
	 * constant: every byte = value; address-tag: every 64-bit word = its byte offset in the mapping + seed. */
	pattern?: PatternName;
	seed?: number | bigint;
	/** The byte of the constant pattern (0..255). */
	value?: number;
}

export interface ResolvedPattern {
	name: PatternName;
	code: number;
	seed: bigint;
	value: number;
	/** Bytes per compared unit: 8 for word patterns, 1 for byte patterns. */
	unit: 1 | 8;
}

const SEED_MIN = -(2n ** 63n);
const SEED_MAX = 2n ** 64n - 1n;

/**
 * Checks and resolves the pattern fields of an options object (already
 * known to be a plain object); `where` names the options argument.
 */
export function resolvePattern(options: PatternOptions = {}, where = 'options'): ResolvedPattern {
	const name = options.pattern === undefined ? 'counter' : validateOneOf(options.pattern, `${where}.pattern`, PATTERNS);
	const code = PATTERNS.indexOf(name);
	const seedIn = options.seed ?? 0;
	if (typeof seedIn !== 'number' && typeof seedIn !== 'bigint') throw invalidArgType(`${where}.seed`, 'one of type number or bigint', seedIn);
	if (typeof seedIn === 'number' && !Number.isSafeInteger(seedIn)) throw outOfRange(`${where}.seed`, 'a safe integer (or a bigint)', seedIn);
	if (typeof seedIn === 'bigint' && (seedIn < SEED_MIN || seedIn > SEED_MAX)) throw outOfRange(`${where}.seed`, '>= -(2n ** 63n) and < 2n ** 64n', seedIn);
	const value = options.value === undefined ? 0 : validateInteger(options.value, `${where}.value`, 0, 255);
	return {
		name,
		code,
		// Seeds are 64-bit; negative ones wrap as in C.
		seed: BigInt.asUintN(64, BigInt(seedIn)),
		value,
		unit: name === 'random' || name === 'address-tag' ? 8 : 1,
	};
}

const MASK64 = (1n << 64n) - 1n;

// lowbias32 (Chris Wellons) over lane * golden + seed: the native code's
// vectorizable hash, one 32-bit lane at a time.
function scramble(x: number): number {
	x = (x ^ (x >>> 16)) >>> 0;
	x = Math.imul(x, 0x7feb352d) >>> 0;
	x = (x ^ (x >>> 15)) >>> 0;
	x = Math.imul(x, 0x846ca68b) >>> 0;
	return (x ^ (x >>> 16)) >>> 0;
}

function lane(seed32: number, index: bigint): number {
	const low = Number(index & 0xffffffffn);
	return scramble((Math.imul(low, 0x9e3779b9) + seed32) >>> 0);
}

/** The random pattern's 64-bit word at word index i: two hashed 32-bit lanes (low lane first). */
export function randomWord(seed: bigint, index: bigint): bigint {
	if (typeof seed !== 'bigint') throw invalidArgType('seed', 'of type bigint', seed);
	if (typeof index !== 'bigint') throw invalidArgType('index', 'of type bigint', index);
	if (index < 0n) throw outOfRange('index', '>= 0n', index);
	const seed32 = Number((seed ^ (seed >> 32n)) & 0xffffffffn);
	return BigInt(lane(seed32, index * 2n)) | (BigInt(lane(seed32, index * 2n + 1n)) << 32n);
}

/** The bytes a pattern puts at [offset, offset + length) of a mapping (little-endian words). */
export function expectedBytes(options: PatternOptions, offset: number, length: number): Uint8Array {
	const p = resolvePattern(validateOptions(options));
	validateIndex(offset, 'offset');
	validateIndex(length, 'length');
	if (length > bufferConstants.MAX_LENGTH) throw outOfRange('length', `<= ${bufferConstants.MAX_LENGTH} (buffer.constants.MAX_LENGTH)`, length);
	const out = new Uint8Array(length);
	if (p.unit === 8) {
		if (offset % 8 !== 0) throw outOfRange('offset', `a multiple of 8 for the ${p.name} pattern`, offset);
		if (length % 8 !== 0) throw outOfRange('length', `a multiple of 8 for the ${p.name} pattern`, length);
		const view = new DataView(out.buffer);
		for (let i = 0; i < length; i += 8) {
			const at = BigInt(offset + i);
			const word = p.name === 'address-tag' ? (at + p.seed) & MASK64 : randomWord(p.seed, at / 8n);
			view.setBigUint64(i, word, true);
		}
		return out;
	}
	if (p.name === 'constant') return out.fill(p.value);
	const seedLow = Number(p.seed & 0xffn);
	for (let i = 0; i < length; i++) out[i] = (offset + i + seedLow) & 0xff;
	return out;
}
