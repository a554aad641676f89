// Input that is not a kernel log at all: empty, binary, one endless line,
// lines built to make regexes backtrack. Each gets an answer quickly and in
// bounded memory; nothing here is committed as a file, it is all generated.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { main } from '../../src/cli/commands/dmesg.js';
import { KernelLogParser, MAX_LINE, parseKernelLog } from '../../src/kmsg/parse.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hm-nonlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('input that is not a kernel log', () => {
	it('an empty string: nothing found, zero lines', () => {
		const log = parseKernelLog('');
		expect(log).toMatchObject({ events: [], reports: [], input: { lines: 0, chars: 0, binary: false } });
	});

	it('binary data is marked binary and yields nothing', () => {
		const bytes = randomBytes(1 << 20);
		const log = parseKernelLog(bytes.toString('latin1'));
		expect(log.input.binary).toBe(true);
		expect(log.reports.length + log.events.length).toBe(0);
	});

	it('1 GiB in one line through the streaming parser: bounded memory, no hang', () => {
		const chunk = 'A'.repeat(1 << 20);
		const parser = new KernelLogParser();
		const before = process.memoryUsage().heapUsed;
		const t0 = performance.now();
		for (let i = 0; i < 1024; i++) parser.write(chunk);
		const grown = process.memoryUsage().heapUsed - before;
		const log = parser.end();
		expect(performance.now() - t0).toBeLessThan(20_000);
		expect(grown).toBeLessThan(64 * 1024 * 1024);
		expect(log.input).toMatchObject({ lines: 1, longLines: 1, longestLine: 1 << 30, binary: false });
		expect(log.reports).toEqual([]);
	}, 60_000);

	it('a report after an endless line is still found, the line cut to MAX_LINE', () => {
		const parser = new KernelLogParser();
		parser.write('x'.repeat(MAX_LINE * 3));
		parser.write('\n[ 1.0] kernel BUG at mm/memory.c:12!\n[ 1.1] ---[ end trace 0000000000000000 ]---\n');
		const log = parser.end();
		expect(log.reports.map((r) => r.headline)).toEqual(['kernel BUG at mm/memory.c:12!']);
		expect(log.input.longestLine).toBe(MAX_LINE * 3);
	});

	it('lines made to make regexes backtrack finish quickly', () => {
		const evil = [
			'BUG: KASAN: use-after-free in ' + 'a'.repeat(200_000),
			'WARNING: CPU: 0 PID: 1 at ' + ':1 '.repeat(50_000),
			' ' + '('.repeat(100_000) + 'fn+0x1/0x2',
			'CPU: 0 PID: 1 Comm: ' + 'x '.repeat(100_000) + 'Tainted: ' + 'G '.repeat(10_000),
			'[<' + 'f'.repeat(100_000) + '>] (',
			' '.repeat(100_000) + 'kernel BUG at ' + 'a:'.repeat(50_000) + '!',
		];
		const t0 = performance.now();
		const log = parseKernelLog(evil.join('\n').repeat(5));
		expect(performance.now() - t0).toBeLessThan(5_000);
		expect(log.input.lines).toBe(evil.length * 5 - 4);
	});

	it('two million indented lines do not grow one report without end', () => {
		const parser = new KernelLogParser();
		parser.write('[ 1.0] kernel BUG at mm/memory.c:12!\n');
		const block = '  x\n'.repeat(100_000);
		for (let i = 0; i < 20; i++) parser.write(block);
		const { reports } = parser.end();
		expect(reports.length).toBeGreaterThan(0);
		expect(Math.max(...reports.map((r) => r.lines.length))).toBeLessThanOrEqual(20_000);
	}, 60_000);
});

describe('hybridmem dmesg on files that are not logs', () => {
	let out: MockInstance<typeof console.log>;
	beforeEach(() => {
		out = vi.spyOn(console, 'log').mockImplementation(() => {});
	});
	afterEach(() => out.mockRestore());

	it('a binary file: exit 1, says why', async () => {
		const file = path.join(dir, 'random.bin');
		writeFileSync(file, randomBytes(256 * 1024));
		await expect(main(['--file', file])).rejects.toMatchObject({
			exitCode: 1,
			message: expect.stringMatching(/random\.bin is not a kernel log: binary data/) as unknown,
		});
	});

	it('one 8 MB line: exit 1, says why', async () => {
		const file = path.join(dir, 'line.txt');
		writeFileSync(file, 'z'.repeat(8 << 20));
		await expect(main(['--file', file])).rejects.toMatchObject({
			exitCode: 1,
			message: expect.stringMatching(/not a kernel log: a line of 8388608 characters/) as unknown,
		});
	});

	it('an empty file: exit 0, says it is empty', async () => {
		const file = path.join(dir, 'empty.log');
		writeFileSync(file, '');
		expect(await main(['--file', file])).toBe(0);
		const printed = out.mock.calls.map((c) => c.join(' ')).join('\n');
		expect(printed).toContain('empty input: no kernel messages');
		expect(printed).toContain('reports: 0');
	});
});
