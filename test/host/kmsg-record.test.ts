import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KernelLogParser, parseKernelLog, parseRecords } from '../../src/kmsg/parse.js';
import { KmsgFormatError, kmsgRecordSeq, parseKmsgRecord, unescapeKmsg, type KmsgRecord } from '../../src/kmsg/record.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/kmsg/${name}`, import.meta.url), 'utf8');

describe('parseKmsgRecord', () => {
	it('reads prefix, seq, timestamp, flag and text of a plain record', () => {
		const r = parseKmsgRecord('6,1234,118102241,-;hybridmem_test: remap page 0 at 00007f7fb7a3e000\n');
		expect(r).toEqual({
			seq: 1234,
			tsUsec: 118102241,
			facility: 0,
			level: 6,
			flag: '-',
			text: 'hybridmem_test: remap page 0 at 00007f7fb7a3e000',
			dict: {},
		});
	});

	it('splits facility and level out of the prefix and keeps the caller id', () => {
		const r = parseKmsgRecord('14,346,1653804135,-,caller=T2553;hybridmem-test: hi\n');
		expect(r.facility).toBe(1);
		expect(r.level).toBe(6);
		expect(r.caller).toBe('T2553');
		expect(parseKmsgRecord('4,7,1,-,caller=C1;x').caller).toBe('C1');
	});

	it('ignores unknown header fields', () => {
		const r = parseKmsgRecord('3,99,5,-,future=1,caller=T1,other;text\n');
		expect(r.seq).toBe(99);
		expect(r.caller).toBe('T1');
		expect(r.text).toBe('text');
	});

	it('decodes \\xNN escapes, including multi-byte UTF-8 and newlines of multi-line printks', () => {
		// Exactly what this host's kernel returned for '<6>hybridmem-test: a\\b \x01 café'
		const r = parseKmsgRecord(Buffer.from('14,346,1653804135,-;hybridmem-test: a\\x5cb \\x01 caf\\xc3\\xa9\n', 'latin1'));
		expect(r.text).toBe('hybridmem-test: a\\b \x01 café');
		expect(parseKmsgRecord('4,1,1,-;line one\\x0aline two').text).toBe('line one\nline two');
		expect(unescapeKmsg('no escapes')).toBe('no escapes');
		expect(unescapeKmsg('bad \\xZZ escape')).toBe('bad \\xZZ escape');
	});

	it('reads continuation lines into the dictionary', () => {
		const r = parseKmsgRecord('6,1085,123452001,-;e1000: eth0 NIC Link is Up\n SUBSYSTEM=net\n DEVICE=n2\n');
		expect(r.text).toBe('e1000: eth0 NIC Link is Up');
		expect(r.dict).toEqual({ SUBSYSTEM: 'net', DEVICE: 'n2' });
	});

	it('rejects what is not a record', () => {
		expect(() => parseKmsgRecord('[  1.000000] not a record')).toThrow(KmsgFormatError);
		expect(() => parseKmsgRecord('6,x,1,-;text')).toThrow(/not a \/dev\/kmsg record/);
	});

	it('reads only the sequence number when asked', () => {
		expect(kmsgRecordSeq(Buffer.from('6,18446744,1,-;x'))).toBe(18446744);
	});
});

describe('records into events and reports', () => {
	const dump = fixture('kmsg-records-6.1-bug.txt');
	const records: KmsgRecord[] = [];
	for (const chunk of dump.split(/\n(?! )/)) if (chunk.trim()) records.push(parseKmsgRecord(chunk));

	it('parses a `cat /dev/kmsg` dump record by record', () => {
		expect(records).toHaveLength(68);
		expect(records[1]?.text).toBe('hybridmem-test: marker\ttab \\ backslash café');
		const link = records.find((r) => r.text.startsWith('e1000'));
		expect(link?.dict).toEqual({ SUBSYSTEM: 'net', DEVICE: 'n2' });
		expect(link?.caller).toBe('C1');
	});

	it('gives the same events and report from records as from the dmesg text', () => {
		const fromRecords = parseRecords(records);
		const fromText = parseKernelLog(fixture('x86_64-6.1-bug-vm_insert_page.log'));
		expect(fromRecords.events.map((e) => [e.type, e.ts])).toEqual(fromText.events.map((e) => [e.type, e.ts]));
		expect(fromRecords.reports).toHaveLength(1);
		const [a, b] = [fromRecords.reports[0], fromText.reports[0]];
		expect(a?.kind).toBe('BUG');
		expect(a?.headline).toBe(b?.headline);
		expect(a?.frames).toEqual(b?.frames);
		expect(a?.ts).toBe(118.10227);
		// records carry no prefixes: the raw lines are the messages themselves
		expect(a?.lines[1]).toBe('kernel BUG at mm/memory.c:2055!');
	});

	it('reads the same dump as plain text (kmsg-format lines, continuation lines skipped)', () => {
		const log = parseKernelLog(dump);
		expect(log.events.map((e) => e.type)).toEqual(['loaded', 'mapStart', 'remap', 'freed']);
		expect(log.events[0]?.ts).toBe(112.87341);
		expect(log.reports).toHaveLength(1);
		expect(log.reports[0]?.function).toBe('vm_insert_page');
		// module: the RIP line's, else the first frame's; neither names one here
		expect(log.reports[0]?.module).toBeUndefined();
		expect(log.reports[0]?.frames.find((f) => f.module)?.module).toBe('hybridmem_test');
	});

	it('joins line fragments of 3.x-4.x kernels (flag c, then +)', () => {
		const parser = new KernelLogParser();
		parser.record(parseKmsgRecord('6,1,1000000,c;hybridmem_test: inserted page 3 '));
		parser.record(parseKmsgRecord('6,2,1000001,+;at 00007f7fb7a41000'));
		parser.record(parseKmsgRecord('6,3,1000002,-;hybridmem_test: completed inserting 4 pages'));
		const { events } = parser.end();
		expect(events).toMatchObject([
			{ type: 'pageInserted', index: 3, address: 0x7f7fb7a41000n, ts: 1 },
			{ type: 'mapComplete', pages: 4 },
		]);
	});
});
