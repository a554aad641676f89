// The argument-error table: every public function of the device API (and
// every function of the raw binding) with wrong types and wrong values. Each
// error must be Node's: TypeError ERR_INVALID_ARG_TYPE for a wrong type,
// RangeError ERR_OUT_OF_RANGE for a number out of range, TypeError
// ERR_INVALID_ARG_VALUE for a bad value of the right type, naming the
// argument and showing what was received as Node shows it, and thrown before
// any syscall (on /dev/zero a module ioctl would answer ENOTTY, a bad mmap EINVAL).
import { inspect } from 'node:util';

import { afterAll, describe, expect, test } from 'vitest';

import { describeReceived, rangeReceived } from '../../src/device/errors.js';
import { createMemFile, expectedBytes, loadBinding, MAP_MODES, MemFile, openDevice, randomWord } from '../../src/device/index.js';

type Code = 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE' | 'ERR_INVALID_ARG_VALUE';
type Row = [call: string, fn: () => unknown, code: Code, name: string, received: unknown];

const device = openDevice('/dev/zero');
const mapping = device.map(4 * 4096);
const file = createMemFile(4096, 'arguments');
const binding = loadBinding();
const fd = device.fd;
const native = binding.mmap(fd, 4096, 3, true, 0);
afterAll(() => {
	native.unmap();
	file.close();
	device.close();
});

const T = 'ERR_INVALID_ARG_TYPE';
const R = 'ERR_OUT_OF_RANGE';
const V = 'ERR_INVALID_ARG_VALUE';
const m = mapping as unknown as Record<'fillSync' | 'verifySync' | 'fill' | 'verify' | 'probe', (...args: unknown[]) => Promise<unknown>>;
const any = (f: (...args: never[]) => unknown) => f as unknown as (...args: unknown[]) => unknown;

// Wrong options objects, for every function that takes one.
const notObjects: unknown[] = ['random', null, 42, [1], () => {}, new Map()];

const rows: Row[] = [
	// openDevice(path, options)
	['openDevice(5)', () => any(openDevice)(5), T, 'path', 5],
	['openDevice(null)', () => any(openDevice)(null), T, 'path', null],
	["openDevice('')", () => openDevice(''), V, 'path', ''],
	["openDevice('/dev/zero\\0x')", () => openDevice('/dev/zero\0x'), V, 'path', '/dev/zero\0x'],
	...notObjects.map((o): Row => [`openDevice('/dev/zero', ${inspect(o)})`, () => any(openDevice)('/dev/zero', o), T, 'options', o]),
	["openDevice('/dev/zero', {readOnly: 'yes'})", () => any(openDevice)('/dev/zero', { readOnly: 'yes' }), T, 'options.readOnly', 'yes'],

	// KexDevice.setMode(options): checked before GET_INFO, which /dev/zero answers with ENOTTY
	['setMode()', () => any(device.setMode.bind(device))(), T, 'options', undefined],
	...notObjects.map((o): Row => [`setMode(${inspect(o)})`, () => any(device.setMode.bind(device))(o), T, 'options', o]),
	["setMode({mode: 'bogus'})", () => any(device.setMode.bind(device))({ mode: 'bogus' }), V, 'options.mode', 'bogus'],
	['setMode({mode: 3})', () => any(device.setMode.bind(device))({ mode: 3 }), T, 'options.mode', 3],
	["setMode({zapAfterMap: 'no'})", () => any(device.setMode.bind(device))({ zapAfterMap: 'no' }), T, 'options.zapAfterMap', 'no'],
	['setMode({failAt: -2})', () => device.setMode({ failAt: -2 }), R, 'options.failAt', -2],
	['setMode({failAt: 1.5})', () => device.setMode({ failAt: 1.5 }), R, 'options.failAt', 1.5],
	['setMode({failAt: 2 ** 31})', () => device.setMode({ failAt: 2 ** 31 }), R, 'options.failAt', 2 ** 31],
	["setMode({failAt: '3'})", () => any(device.setMode.bind(device))({ failAt: '3' }), T, 'options.failAt', '3'],

	// KexDevice.map(length, options), MemFile.map(length, options)
	...[device, file].flatMap((target): Row[] => {
		const map = any(target.map.bind(target));
		const who = target === device ? 'device' : 'memfile';
		return [
			[`${who}.map('4096')`, () => map('4096'), T, 'length', '4096'],
			[`${who}.map()`, () => map(), T, 'length', undefined],
			[`${who}.map(-4096)`, () => map(-4096), R, 'length', -4096],
			[`${who}.map(0)`, () => map(0), R, 'length', 0],
			[`${who}.map(4096.5)`, () => map(4096.5), R, 'length', 4096.5],
			[`${who}.map(NaN)`, () => map(NaN), R, 'length', NaN],
			[`${who}.map(5000)`, () => map(5000), R, 'length', 5000],
			[`${who}.map(2n ** 64n)`, () => map(2n ** 64n), R, 'length', 2n ** 64n],
			...notObjects.map((o): Row => [`${who}.map(4096, ${inspect(o)})`, () => map(4096, o), T, 'options', o]),
			[`${who}.map(4096, {prot: 'x'})`, () => map(4096, { prot: 'x' }), V, 'options.prot', 'x'],
			[`${who}.map(4096, {prot: 3})`, () => map(4096, { prot: 3 }), T, 'options.prot', 3],
			[`${who}.map(4096, {shared: 1})`, () => map(4096, { shared: 1 }), T, 'options.shared', 1],
			[`${who}.map(4096, {offset: '0'})`, () => map(4096, { offset: '0' }), T, 'options.offset', '0'],
			[`${who}.map(4096, {offset: -4096})`, () => map(4096, { offset: -4096 }), R, 'options.offset', -4096],
			[`${who}.map(4096, {offset: 100})`, () => map(4096, { offset: 100 }), R, 'options.offset', 100],
			[`${who}.map(4096, {offset: 0.5})`, () => map(4096, { offset: 0.5 }), R, 'options.offset', 0.5],
		];
	}),

	// KexDevice.zap(target) / remap(target): checked before the ioctl (ENOTTY on /dev/zero)
	...(['zap', 'remap'] as const).flatMap((op): Row[] => {
		const call = any(device[op].bind(device));
		return [
			[`${op}()`, () => call(), T, 'target', undefined],
			[`${op}(null)`, () => call(null), T, 'target', null],
			[`${op}('m')`, () => call('m'), T, 'target', 'm'],
			[`${op}({})`, () => call({}), V, 'target', {}],
			[`${op}({mapping: 1})`, () => call({ mapping: 1 }), T, 'target.mapping', 1],
			[`${op}({mapping, offset: '0'})`, () => call({ mapping, offset: '0' }), T, 'target.offset', '0'],
			[`${op}({mapping, offset: 100})`, () => call({ mapping, offset: 100 }), R, 'target.offset', 100],
			[`${op}({mapping, offset: 8 pages})`, () => call({ mapping, offset: 8 * 4096 }), R, 'target.offset', 8 * 4096],
			[`${op}({mapping, length: 8 pages})`, () => call({ mapping, length: 8 * 4096 }), R, 'target.length', 8 * 4096],
			[`${op}({mapping, length: -1})`, () => call({ mapping, length: -1 }), R, 'target.length', -1],
			[`${op}({address: 4096, length})`, () => call({ address: 4096, length: 4096 }), T, 'target.address', 4096],
			[`${op}({address: 4097n, length})`, () => call({ address: 4097n, length: 4096 }), R, 'target.address', 4097n],
			[`${op}({address, length: '1'})`, () => call({ address: 4096n, length: '1' }), T, 'target.length', '1'],
			[`${op}({address, length: 100})`, () => call({ address: 4096n, length: 100 }), R, 'target.length', 100],
		];
	}),

	// Mapping.fillSync / verifySync / fill / verify (the async ones reject; see below)
	...(['fillSync', 'verifySync'] as const).flatMap((op): Row[] => {
		const call = (...args: unknown[]) => m[op](...args);
		return [
			...notObjects.map((o): Row => [`${op}(${inspect(o)})`, () => call(o), T, 'options', o]),
			[`${op}({pattern: 'zigzag'})`, () => call({ pattern: 'zigzag' }), V, 'options.pattern', 'zigzag'],
			[`${op}({pattern: 1})`, () => call({ pattern: 1 }), T, 'options.pattern', 1],
			[`${op}({seed: '1'})`, () => call({ seed: '1' }), T, 'options.seed', '1'],
			[`${op}({seed: 0.5})`, () => call({ seed: 0.5 }), R, 'options.seed', 0.5],
			[`${op}({seed: 2n ** 64n})`, () => call({ seed: 2n ** 64n }), R, 'options.seed', 2n ** 64n],
			[`${op}({value: 256})`, () => call({ pattern: 'constant', value: 256 }), R, 'options.value', 256],
			[`${op}({value: '1'})`, () => call({ pattern: 'constant', value: '1' }), T, 'options.value', '1'],
			[`${op}({offset: '0'})`, () => call({ offset: '0' }), T, 'options.offset', '0'],
			[`${op}({offset: -1})`, () => call({ offset: -1 }), R, 'options.offset', -1],
			[`${op}({offset: 5 pages})`, () => call({ offset: 5 * 4096 }), R, 'options.offset', 5 * 4096],
			[`${op}({length: 5 pages})`, () => call({ length: 5 * 4096 }), R, 'options.length', 5 * 4096],
			[`${op}({offset: 4096, length: 4 pages})`, () => call({ offset: 4096, length: 4 * 4096 }), R, 'options.length', 4 * 4096],
			[`${op}({length: 1.5})`, () => call({ length: 1.5 }), R, 'options.length', 1.5],
			[`${op}({pattern: 'random', offset: 4})`, () => call({ pattern: 'random', offset: 4 }), R, 'options.offset', 4],
			[`${op}({pattern: 'address-tag', length: 12})`, () => call({ pattern: 'address-tag', length: 12 }), R, 'options.length', 12],
			[`${op}({maxMismatches: -1})`, () => call({ maxMismatches: -1 }), R, 'options.maxMismatches', -1],
			[`${op}({maxMismatches: '9'})`, () => call({ maxMismatches: '9' }), T, 'options.maxMismatches', '9'],
		];
	}),

	// Mapping.probe(options)
	...notObjects.map((o): Row => [`probe(${inspect(o)})`, () => m.probe(o), T, 'options', o]),
	["probe({touch: 'yes'})", () => m.probe({ touch: 'yes' }), T, 'options.touch', 'yes'],
	['probe({offset: 100})', () => mapping.probe({ offset: 100 }), R, 'options.offset', 100],
	['probe({offset: 8 pages})', () => mapping.probe({ offset: 8 * 4096 }), R, 'options.offset', 8 * 4096],
	['probe({length: 8 pages})', () => mapping.probe({ length: 8 * 4096 }), R, 'options.length', 8 * 4096],
	['probe({length: 100})', () => mapping.probe({ length: 100 }), R, 'options.length', 100],
	["probe({offset: '0'})", () => m.probe({ offset: '0' }), T, 'options.offset', '0'],

	// MemFile / createMemFile / truncate
	['new MemFile(5)', () => new (MemFile as unknown as new (...a: unknown[]) => unknown)(5), T, 'name', 5],
	['new MemFile(300 bytes)', () => new MemFile('x'.repeat(300)), V, 'name', 'x'.repeat(300)],
	['createMemFile(0, 250 two-byte chars)', () => createMemFile(0, 'é'.repeat(125)), V, 'name', 'é'.repeat(125)],
	["createMemFile(0, 'a\\0b')", () => createMemFile(0, 'a\0b'), V, 'name', 'a\0b'],
	["createMemFile('4096')", () => any(createMemFile)('4096'), T, 'size', '4096'],
	['createMemFile(-1)', () => createMemFile(-1), R, 'size', -1],
	['truncate(-1)', () => file.truncate(-1), R, 'size', -1],
	["truncate('1')", () => any(file.truncate.bind(file))('1'), T, 'size', '1'],

	// expectedBytes / randomWord
	...notObjects.map((o): Row => [`expectedBytes(${inspect(o)}, 0, 8)`, () => any(expectedBytes)(o, 0, 8), T, 'options', o]),
	["expectedBytes({pattern: 'x'}, 0, 8)", () => any(expectedBytes)({ pattern: 'x' }, 0, 8), V, 'options.pattern', 'x'],
	['expectedBytes({}, -1, 8)', () => expectedBytes({}, -1, 8), R, 'offset', -1],
	["expectedBytes({}, 0, '8')", () => any(expectedBytes)({}, 0, '8'), T, 'length', '8'],
	["expectedBytes({pattern: 'random'}, 4, 8)", () => expectedBytes({ pattern: 'random' }, 4, 8), R, 'offset', 4],
	['randomWord(1, 0n)', () => any(randomWord)(1, 0n), T, 'seed', 1],
	['randomWord(1n, 2)', () => any(randomWord)(1n, 2), T, 'index', 2],
	['randomWord(1n, -1n)', () => randomWord(1n, -1n), R, 'index', -1n],

	// the raw binding
	['binding.open(5)', () => any(binding.open)(5), T, 'path', 5],
	["binding.open('')", () => binding.open(''), V, 'path', ''],
	["binding.open('/dev/zero', '2')", () => any(binding.open)('/dev/zero', '2'), T, 'flags', '2'],
	["binding.close('3')", () => any(binding.close)('3'), T, 'fd', '3'],
	['binding.close(-1)', () => binding.close(-1), R, 'fd', -1],
	['binding.memfd(5)', () => any(binding.memfd)(5), T, 'name', 5],
	['binding.memfd(300 bytes)', () => binding.memfd('y'.repeat(300)), V, 'name', 'y'.repeat(300)],
	['binding.ftruncate(fd, -1)', () => binding.ftruncate(fd, -1), R, 'size', -1],
	["binding.mmap(fd, '4096')", () => any(binding.mmap)(fd, '4096', 3, true, 0), T, 'length', '4096'],
	['binding.mmap(fd, 0)', () => binding.mmap(fd, 0, 3, true, 0), R, 'length', 0],
	["binding.mmap(fd, 4096, 'rw')", () => any(binding.mmap)(fd, 4096, 'rw', true, 0), T, 'prot', 'rw'],
	['binding.mmap(fd, 4096, 99)', () => binding.mmap(fd, 4096, 99, true, 0), R, 'prot', 99],
	['binding.mmap(fd, 4096, 3, 1)', () => any(binding.mmap)(fd, 4096, 3, 1, 0), T, 'shared', 1],
	['binding.mmap(fd, 4096, 3, true, -1)', () => binding.mmap(fd, 4096, 3, true, -1), R, 'offset', -1],
	['binding.mmap(..., group: {})', () => any(binding.mmap)(fd, 4096, 3, true, 0, {}), T, 'group', {}],
	['binding.getInfo(1.5)', () => binding.getInfo(1.5), R, 'fd', 1.5],
	["binding.setMode(fd, 'x')", () => any(binding.setMode)(fd, 'x'), T, 'mode', 'x'],
	['binding.setMode(fd, {})', () => any(binding.setMode)(fd, {}), T, 'mode.mapMode', undefined],
	['binding.getStats(null)', () => any(binding.getStats)(null), T, 'fd', null],
	["binding.zap(fd, '1', 4096)", () => any(binding.zap)(fd, '1', 4096), T, 'addr', '1'],
	['binding.remap(fd, 0n, -1)', () => binding.remap(fd, 0n, -1), R, 'length', -1],
	["binding.ioctlRaw(fd, '1', 0n)", () => any(binding.ioctlRaw)(fd, '1', 0n), T, 'request', '1'],
	['binding.mremapGrow(4096, 1, 2)', () => any(binding.mremapGrow)(4096, 1, 2), T, 'address', 4096],
	['binding.closeGroup({})', () => any(binding.closeGroup)({}), T, 'group', {}],
	["native.fillSync('random')", () => any(native.fillSync.bind(native))('random'), T, 'options', 'random'],
	['native.verifySync({pattern: 9})', () => any(native.verifySync.bind(native))({ pattern: 9 }), R, 'options.pattern', 9],
	['native.verifySync({length: 8192})', () => native.verifySync({ pattern: 0, seed: 0n, value: 0, offset: 0, length: 8192 }), R, 'options.length', 8192],
	['native.probe({touch: 1})', () => any(native.probe.bind(native))({ touch: 1 }), T, 'options.touch', 1],
	['native.probe({offset: 8192})', () => native.probe({ offset: 8192 }), R, 'options.offset', 8192],
];

/** The message Node would give for this code, argument and received value. */
function nodeShaped(code: Code, name: string, received: unknown): RegExp {
	const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
	const kind = name.includes('.') ? 'property' : 'argument';
	if (code === 'ERR_INVALID_ARG_TYPE') return new RegExp(`^The "${escape(name)}" ${kind} must be .+\\. Received ${escape(describeReceived(received))}$`);
	if (code === 'ERR_OUT_OF_RANGE') return new RegExp(`^The value of "${escape(name)}" is out of range\\. It must be .+\\. Received ${escape(rangeReceived(received))}$`);
	let shown = inspect(received);
	if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
	return new RegExp(`^The ${kind} '${escape(name)}' .+\\. Received ${escape(shown)}$`);
}

describe('every public function refuses wrong types and values as Node would', () => {
	test.each(rows)('%s', (_call, fn, code, name, received) => {
		let caught: unknown;
		try {
			fn();
		} catch (error) {
			caught = error;
		}
		expect(caught, 'did not throw').toBeInstanceOf(Error);
		const error = caught as Error & { code?: string };
		expect({ code: error.code, name: error.name }).toEqual({ code, name: code === 'ERR_OUT_OF_RANGE' ? 'RangeError' : 'TypeError' });
		expect(error.message).toMatch(nodeShaped(code, name, received));
	});

	test('the async fill and verify reject with the same errors', async () => {
		for (const op of ['fill', 'verify'] as const) {
			await expect(m[op]('random')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: 'The "options" argument must be of type object. Received type string (\'random\')' });
			await expect(m[op]({ offset: 5 * 4096 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' });
		}
	});

	test("verifySync('random') is a TypeError, not a verify of 6 bytes of the counter pattern", () => {
		expect(() => m.verifySync('random')).toThrow(
			expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: "The \"options\" argument must be of type object. Received type string ('random')" }),
		);
	});

	test("map(4096, null) says what is wrong; setMode({mode: 'bogus'}) on /dev/zero is ERR_INVALID_ARG_VALUE, not ENOTTY", () => {
		expect(() => any(device.map.bind(device))(4096, null)).toThrow('The "options" argument must be of type object. Received null');
		expect(() => any(device.setMode.bind(device))({ mode: 'bogus' })).toThrow(
			`The property 'options.mode' must be one of: ${MAP_MODES.map((mode) => `'${mode}'`).join(', ')}. Received 'bogus'`,
		);
		expect(() => mapping.probe({ offset: 8 * 4096 })).toThrow(/^The value of "options\.offset" is out of range/);
		expect(() => createMemFile(0, 'n'.repeat(250))).toThrow("The argument 'name' must be at most 249 bytes long (memfd_create's limit; it is 250)");
	});

	test('the type wording is exactly Node\'s (compared with Buffer.alloc, which checks a number the same way)', () => {
		const values: unknown[] = ['4096', "it's", 'x'.repeat(40), null, undefined, true, 5n, Symbol('s'), () => {}, function named() {}, [1], {}, new Map(), Object.create(null)];
		for (const value of values) {
			let nodeMessage = '';
			try {
				Buffer.alloc(value as number);
			} catch (error) {
				nodeMessage = (error as Error).message;
			}
			expect(nodeMessage).toBe(`The "size" argument must be of type number. Received ${describeReceived(value)}`);
		}
		let nodeRange = '';
		try {
			Buffer.alloc(2 ** 40);
		} catch (error) {
			nodeRange = (error as Error).message;
		}
		expect(nodeRange).toMatch(new RegExp(`Received ${rangeReceived(2 ** 40)}$`));
	});

	test('the addon refuses to construct a NativeMapping from JavaScript', () => {
		expect(() => new (binding as unknown as { NativeMapping: new () => unknown }).NativeMapping()).toThrow(
			expect.objectContaining({ name: 'TypeError', code: 'ERR_ILLEGAL_CONSTRUCTOR' }),
		);
	});
});
