// Capture tests on this machine's real /dev/kmsg: records are injected by
// writing "<6>text" to /dev/kmsg (root), each write through its own open so
// the per-open write ratelimit of printk.devkmsg=ratelimit never applies.
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { accessError, KmsgAccessError, parseDmesgRaw } from '../../src/kmsg/dmesg-fallback.js';
import { parseRecords } from '../../src/kmsg/parse.js';
import { parseKmsgRecord, type KmsgRecord } from '../../src/kmsg/record.js';
import { ingest, KmsgCapture, readKernelLog, startCapture } from '../../src/kmsg/reader.js';
import { SequenceTracker } from '../../src/kmsg/sequence.js';
import { canWriteKmsg } from '../env.js';

const live = canWriteKmsg();
const tag = `hybridmem-test-${process.pid}-${Date.now().toString(36)}`;
const log = (text: string, level = 6): void => writeFileSync('/dev/kmsg', `<${level}>${tag}: ${text}\n`);
const ours = (records: KmsgRecord[]): string[] => records.filter((r) => r.text.startsWith(tag)).map((r) => r.text.slice(tag.length + 2));

describe.skipIf(!live)('capture on the real /dev/kmsg', () => {
	it('returns exactly the records logged between start and stop, in order', async () => {
		log('before 1');
		log('before 2');
		const capture = await startCapture();
		expect(capture.source).toBe('kmsg');
		log('during 1');
		log('during 2', 4);
		log('during 3 with a \\ backslash and café');
		const result = await capture.stop();
		log('after 1');
		expect(ours(result.records)).toEqual(['during 1', 'during 2', 'during 3 with a \\ backslash and café']);
		expect(result.lost).toBe(0);
		expect(result.overrun).toBe(false);
		// user-space writes are facility 1 (LOG_USER) with the level given
		const during2 = result.records.find((r) => r.text.endsWith('during 2'));
		expect(during2).toMatchObject({ facility: 1, level: 4 });
		// consecutive sequence numbers: nothing skipped, nothing from before the start
		const seqs = result.records.map((r) => r.seq);
		expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] ?? 0) + i));
		expect(seqs[0]).toBe(((capture as KmsgCapture).startSeq ?? -1) + 1);
		// stop() is final: later records are not added
		expect(ours((await capture.collect()).records)).toHaveLength(3);
	});

	it('parses module events from the captured records', async () => {
		const capture = await startCapture();
		writeFileSync('/dev/kmsg', '<6>hybridmem_test: completed inserting 4 pages\n');
		writeFileSync('/dev/kmsg', `<6>hybridmem_test: ${tag} unknown line\n`);
		const { records } = await capture.stop();
		const { events } = parseRecords(records);
		expect(events.filter((e) => e.type === 'mapComplete' || (e.type === 'other' && e.text.includes(tag))).map((e) => e.type)).toEqual([
			'mapComplete',
			'other',
		]);
		expect(events[0]?.ts).toBeGreaterThan(0);
	});

	it('waitFor resolves when a matching record arrives, undefined on timeout', async () => {
		const capture = await startCapture({ pollIntervalMs: 10 });
		try {
			setTimeout(() => log('---[ end trace 0000000000000000 ]---', 4), 100);
			const started = Date.now();
			const found = await capture.waitFor((r) => r.text.startsWith(tag) && r.text.includes('---[ end trace'), 5000);
			expect(found?.text).toBe(`${tag}: ---[ end trace 0000000000000000 ]---`);
			expect(Date.now() - started).toBeLessThan(2000);
			expect(await capture.waitFor(`${tag}: never logged`, 150)).toBeUndefined();
			// records seen before waitFor was called count too
			log('early');
			await capture.poll();
			expect((await capture.waitFor(/early$/, 0))?.text).toBe(`${tag}: early`);
		} finally {
			await capture.stop();
		}
	});

	it('take() hands out each record once', async () => {
		const capture = await startCapture({ pollIntervalMs: 0 });
		try {
			log('t1');
			expect(ours(await capture.take())).toEqual(['t1']);
			log('t2');
			log('t3');
			expect(ours(await capture.take())).toEqual(['t2', 't3']);
			expect(ours(await capture.take())).toEqual([]);
		} finally {
			await capture.stop();
		}
	});

	it('readKernelLog returns the whole ring up to now', async () => {
		log('whole ring');
		const result = await readKernelLog();
		expect(result.source).toBe('kmsg');
		expect(ours(result.records).at(-1)).toBe('whole ring');
		expect(result.records.length).toBeGreaterThan(1);
	});

	it('the dmesg fallback captures the same records', async () => {
		const capture = await startCapture({ source: 'dmesg' });
		expect(capture.source).toBe('dmesg');
		log('dmesg during 1');
		log('dmesg during 2');
		const result = await capture.stop();
		log('dmesg after');
		expect(ours(result.records)).toEqual(['dmesg during 1', 'dmesg during 2']);
		expect(result.records.find((r) => r.text.endsWith('dmesg during 1'))).toMatchObject({ facility: 1, level: 6 });
	});

	it('falls back to dmesg when the device cannot be opened, and says why when asked for kmsg only', async () => {
		const capture = await startCapture({ path: '/nonexistent/kmsg' });
		expect(capture.source).toBe('dmesg');
		await capture.stop();
		await expect(startCapture({ path: '/nonexistent/kmsg', source: 'kmsg' })).rejects.toMatchObject({
			name: 'KmsgAccessError',
			code: 'ENOENT',
			syscall: 'open',
			path: '/nonexistent/kmsg',
		});
	});
	// The real overrun (it wipes the kernel log) runs in test/device/kmsg-live.test.ts,
	// inside the VM; the replay test below covers the same reader code on every run.
});

describe('overrun accounting (replayed read results through the reader code path)', () => {
	const rec = (seq: number): Buffer => Buffer.from(`6,${seq},${seq * 10},-;record ${seq}\n`);

	it('counts seq gaps after EPIPE and keeps reading', () => {
		const tracker = new SequenceTracker(99);
		const records: KmsgRecord[] = [];
		// what read() returns when records 103..149 were overwritten between two reads
		const stream = [rec(100), rec(101), rec(102), 'overrun' as const, rec(150), rec(151), 'again' as const];
		let i = 0;
		while (ingest(stream[i++] ?? 'again', tracker, records));
		expect(records.map((r) => r.seq)).toEqual([100, 101, 102, 150, 151]);
		expect(tracker.lost).toBe(47);
		expect(tracker.overruns).toBe(1);
	});

	it('drops records it already returned', () => {
		const tracker = new SequenceTracker(5);
		const records: KmsgRecord[] = [];
		for (const r of [rec(4), rec(5), rec(6)]) ingest(r, tracker, records);
		expect(records.map((r) => r.seq)).toEqual([6]);
		expect(tracker.lost).toBe(0);
	});
});

describe('errors and dmesg output', () => {
	it('explains EPERM: root, dmesg_restrict, CAP_SYSLOG', () => {
		const err = accessError(Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM', errno: -1, syscall: 'open' }), '/dev/kmsg');
		expect(err).toBeInstanceOf(KmsgAccessError);
		expect(err).toMatchObject({ code: 'EPERM', errno: -1, syscall: 'open', path: '/dev/kmsg' });
		expect(err.message).toMatch(/^cannot read \/dev\/kmsg: EPERM: /);
		expect(err.message).toContain('kernel.dmesg_restrict');
		expect(err.message).toContain('sudo');
		expect(err.message).toContain('cap_syslog');
	});

	it('parses dmesg --raw output, multi-line records included', () => {
		const records = parseDmesgRaw('<14>[ 1653.804135] hybridmem-test: a\\b café\n<4>[    1.5] first\nsecond line\n<6>no timestamp\n');
		expect(records).toEqual([
			{ seq: 0, tsUsec: 1653804135, facility: 1, level: 6, flag: '-', text: 'hybridmem-test: a\\b café', dict: {} },
			{ seq: 1, tsUsec: 1500000, facility: 0, level: 4, flag: '-', text: 'first\nsecond line', dict: {} },
			{ seq: 2, tsUsec: 0, facility: 0, level: 6, flag: '-', text: 'no timestamp', dict: {} },
		]);
		expect(parseKmsgRecord('6,1,1,-;x').seq).toBe(1);
	});
});
