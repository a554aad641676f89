import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModuleEvent } from '../../src/kmsg/events.js';
import { toJson } from '../../src/kmsg/json.js';
import { parseKernelLog } from '../../src/kmsg/parse.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/kmsg/${name}`, import.meta.url), 'utf8');

describe("the notes' exact log lines", () => {
	it('test1: the four-page insert and zap log', () => {
		const { events, reports } = parseKernelLog(fixture('notes-test1-insert-zap.log'));
		expect(reports).toEqual([]);
		expect(events.map((e) => e.type)).toEqual([
			'mapStart',
			'pageInserted',
			'pageInserted',
			'pageInserted',
			'pageInserted',
			'mapComplete',
			'zap',
			'zap',
			'zap',
			'zap',
		]);
		expect(events[0]).toEqual({
			type: 'mapStart',
			vmStart: 281472928907264n,
			vmEnd: 281472929169408n,
			len: 262144,
			pages: 4,
			pgoff: 0,
			ts: 1029.247563,
			line: '[ 1029.247563] vma->vm_end 281472929169408 vm_start 281472928907264 len 262144 pages 4 vm_pgoff 0',
		});
		// 64 KiB pages (aarch64): vm_start + i * 0x10000, as the notes show
		const inserted = events.filter((e) => e.type === 'pageInserted');
		expect(inserted.map((e) => [e.index, e.address])).toEqual([
			[0, 0xffff85f10000n],
			[1, 0xffff85f20000n],
			[2, 0xffff85f30000n],
			[3, 0xffff85f40000n],
		]);
		expect(events[5]).toMatchObject({ type: 'mapComplete', pages: 4, ts: 1029.247571 });
		const zaps = events.filter((e) => e.type === 'zap');
		expect(zaps.map((e) => e.address)).toEqual([0xffff85f10000n, 0xffff85f20000n, 0xffff85f30000n, 0xffff85f40000n]);
		expect(zaps.map((e) => e.ts)).toEqual([1029.247571, 1029.252008, 1029.256433, 1029.260862]);
		expect(zaps[0]?.line).toBe('[ 1029.247571]  zap_vma_ptes addr 0xffff85f10000 ');
	});

	it('test2: inserts without zaps', () => {
		const { events } = parseKernelLog(fixture('notes-test2-insert.log'));
		expect(events.map((e) => e.type)).toEqual(['mapStart', 'pageInserted', 'pageInserted', 'pageInserted', 'pageInserted', 'mapComplete']);
		expect(events[0]).toMatchObject({ vmStart: 0xffff89000000n, vmEnd: 0xffff89040000n, pages: 4, len: 262144, ts: 1223.878967 });
		expect(events[4]).toMatchObject({ type: 'pageInserted', index: 3, address: 0xffff89030000n, ts: 1223.878983 });
	});

	it('the whole notes file: only the log lines become events, the C code does not', () => {
		const { events, reports } = parseKernelLog(readFileSync('/work/shared/seeds/000_25ea7646527ccfd9.txt', 'utf8'));
		expect(events).toHaveLength(16);
		expect(reports).toHaveLength(1);
	});
});

describe('module lines with the hybridmem_test: prefix (design notes formats)', () => {
	const cases: [string, object][] = [
		[
			'hybridmem_test: vma->vm_end 140185829752832 vm_start 140185829744640 len 8192 pages 2 vm_pgoff 3',
			{ type: 'mapStart', vmStart: 140185829744640n, vmEnd: 140185829752832n, len: 8192, pages: 2, pgoff: 3 },
		],
		['hybridmem_test: inserted page 7 at 00007f7fb7a45000', { type: 'pageInserted', index: 7, address: 0x7f7fb7a45000n }],
		['hybridmem_test: completed inserting 2 pages', { type: 'mapComplete', pages: 2 }],
		['hybridmem_test:  zap_vma_ptes addr 0x7f7fb7a3e000 ', { type: 'zap', address: 0x7f7fb7a3e000n }],
		[
			'hybridmem_test: zap_vma_ptes had no effect at 0x7f7fb7a3e000: vma is not VM_PFNMAP (4 pages)',
			{ type: 'zapNoop', address: 0x7f7fb7a3e000n, pages: 4 },
		],
		['hybridmem_test: fault-in page 3 at 00007f7fb7a41000', { type: 'faultIn', index: 3, address: 0x7f7fb7a41000n }],
		['hybridmem_test: remap page 0 at 00007f7fb7a3e000', { type: 'remap', index: 0, address: 0x7f7fb7a3e000n }],
		['hybridmem_test: map failed at page 2: error -12', { type: 'mapFailed', index: 2, error: -12 }],
		['hybridmem_test: freed 4 pages', { type: 'freed', pages: 4 }],
		['hybridmem_test: 1020 more per-page lines suppressed', { type: 'suppressed', count: 1020 }],
		['hybridmem_test: loaded: major 246', { type: 'loaded', major: 246 }],
		['hybridmem_test: unloaded', { type: 'unloaded' }],
		['hybridmem_test: something new', { type: 'other', text: 'something new' }],
	];
	it.each(cases)('%s', (line, expected) => {
		const event = parseModuleEvent(line, 12.5);
		expect(event).toEqual({ ...expected, ts: 12.5, line });
	});

	it('takes bare lines only in the shapes of the notes', () => {
		expect(parseModuleEvent('inserted page 0 at 0000ffff85f10000')).toMatchObject({ type: 'pageInserted' });
		expect(parseModuleEvent('freed 4 pages')).toBeUndefined();
		expect(parseModuleEvent('unloaded')).toBeUndefined();
		expect(parseModuleEvent('inserted page zero')).toBeUndefined();
		expect(parseModuleEvent('usb 1-1: new high-speed USB device')).toBeUndefined();
	});

	it('serialises addresses as hex strings', () => {
		const { events } = parseKernelLog('[    1.000000] hybridmem_test: inserted page 1 at 00007f7fb7a3f000\n');
		expect(JSON.parse(toJson(events))).toEqual([
			{ type: 'pageInserted', index: 1, address: '0x7f7fb7a3f000', ts: 1, line: '[    1.000000] hybridmem_test: inserted page 1 at 00007f7fb7a3f000' },
		]);
	});
});
