// The kernel log capture against a real kernel that runs real modules: a WARN
// from a module is captured and parsed, and an overrun of the ring (which
// wipes the log: fine in a throwaway VM) is counted, not fatal.
import { execa } from 'execa';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseRecords } from '../../src/kmsg/parse.js';
import { KmsgCapture, startCapture } from '../../src/kmsg/reader.js';
import { PACKAGE_ROOT } from '../../src/setup/paths.js';
import { requireDevice } from './device-env.js';

const device = requireDevice();
const warnModule = path.join(PACKAGE_ROOT, 'build', 'fixtures', 'warn', os.release(), 'hm_warn.ko');

describe.runIf(device.ok)(`kernel log capture on ${os.release()}`, () => {
	test('a WARN from a module, captured live, parses into a WARNING report with file, line, function and module', async () => {
		expect(existsSync(warnModule), `${warnModule} (scripts/test.mjs builds it)`).toBe(true);
		const capture = await startCapture();
		const insmod = await execa('insmod', [warnModule], { reject: false });
		expect(insmod.exitCode).not.toBe(0); // it refuses to stay loaded, after warning
		const { records, lost } = await capture.stop();
		expect(lost).toBe(0);
		const { reports } = parseRecords(records);
		expect(reports).toHaveLength(1);
		const [w] = reports;
		expect(w).toMatchObject({ kind: 'WARNING', line: 12, function: 'hm_warn_now', module: 'hm_warn', comm: 'insmod' });
		expect(w?.file).toMatch(/hm_warn\.c$/);
		expect(w?.tainted).toContain('O');
		expect(w?.frames.some((f) => f.fn === 'do_one_initcall')).toBe(true);
		expect(w?.ended).toBe(true);
	});

	test('an overrun of the ring is counted as lost records and the capture keeps going', async () => {
		const tag = `hm-flood-${process.pid}`;
		const capture = (await startCapture({ pollIntervalMs: 0 })) as KmsgCapture;
		const n = 20000; // far more than the ring holds
		// One fd, one write() per record (devkmsg_write): no open and close per line, which under TCG cost most of this test.
		const fd = openSync('/dev/kmsg', 'w');
		try {
			for (let i = 0; i < n; i++) writeSync(fd, `<6>${tag}: flood ${i} ${'x'.repeat(60)}\n`);
			writeSync(fd, `<6>${tag}: flood done\n`);
		} finally {
			closeSync(fd);
		}
		const result = await capture.stop();
		expect(result.overrun).toBe(true);
		expect(result.lost).toBeGreaterThan(0);
		expect(result.records.at(-1)?.text).toBe(`${tag}: flood done`);
		// Every seq after the start is either returned or counted as lost.
		expect(result.records.length + result.lost).toBe((result.records.at(-1)?.seq ?? 0) - (capture.startSeq ?? 0));
	});
});
