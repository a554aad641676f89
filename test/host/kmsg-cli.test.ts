import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { main } from '../../src/cli/commands/dmesg.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/kmsg/${name}`, import.meta.url));

describe('hybridmem dmesg', () => {
	let out: MockInstance<typeof console.log>;
	const printed = (): string => out.mock.calls.map((c) => c.join(' ')).join('\n');
	beforeEach(() => {
		out = vi.spyOn(console, 'log').mockImplementation(() => {});
	});
	afterEach(() => {
		out.mockRestore();
	});

	it('--json prints events and reports with addresses as hex strings, exit 0 although reports were found', async () => {
		expect(await main(['--file', fixture('x86_64-6.1-bug-vm_insert_page.log'), '--json'])).toBe(0);
		const json = JSON.parse(printed()) as { events: Record<string, unknown>[]; reports: Record<string, unknown>[] };
		expect(json.events.map((e) => e.type)).toEqual(['loaded', 'mapStart', 'remap', 'freed']);
		expect(json.events[1]).toMatchObject({ vmStart: '0x7f7f8e95a000', vmEnd: '0x7f7f8e95c000', pages: 2 });
		expect(json.events[2]).toMatchObject({ type: 'remap', index: 0, address: '0x7f7fb7a3e000' });
		expect(json.reports).toHaveLength(1);
		expect(json.reports[0]).toMatchObject({
			kind: 'BUG',
			headline: 'kernel BUG at mm/memory.c:2055!',
			file: 'mm/memory.c',
			line: 2055,
			function: 'vm_insert_page',
		});
		// the RIP line and the first frame name no module; the module's frame is in the trace
		expect(json.reports[0]?.module).toBeUndefined();
	});

	it("human output: headline, file:line, top frames with the module's frame marked", async () => {
		expect(await main(['--file', fixture('arm64-4.14-bug-notes.log'), '--frames', '3'])).toBe(0);
		const text = printed();
		expect(text).toContain('events: 0');
		expect(text).toContain('reports: 1');
		expect(text).toContain('#1 BUG at 576.407440: kernel BUG at mm/memory.c:1570!');
		// As on x86: the module of vm_insert_page's caller (arm64's trace starts with vm_insert_page itself).
		expect(text).toContain('where: mm/memory.c:1570 in vm_insert_page [hybridmem_test]\n');
		expect(text).toMatch(/> _mmap\+0xb4\/0x188 \[hybridmem_test\] {3}<- module/);
		expect(text).toContain('    vm_insert_page+0x23c/0x240');
		expect(text).toContain('(5 more)');
	});

	it('summarises per-page events and lists mapping-level ones', async () => {
		expect(await main(['--file', fixture('notes-test1-insert-zap.log')])).toBe(0);
		const text = printed();
		expect(text).toContain('events: 10 (mapStart 1, pageInserted 4, mapComplete 1, zap 4)');
		expect(text).toContain('mapStart vmStart=0xffff85f10000 vmEnd=0xffff85f50000 len=262144 pages=4 pgoff=0');
		expect(text).toContain('reports: 0');
	});

	it('an unreadable file is an error with a non-zero exit code', async () => {
		await expect(main(['--file', '/nonexistent/kernel.log'])).rejects.toMatchObject({
			exitCode: 1,
			message: expect.stringContaining('cannot read /nonexistent/kernel.log: ENOENT') as unknown,
		});
	});

	it('usage errors exit 2', async () => {
		await expect(main(['--file', 'x', '--follow'])).rejects.toMatchObject({ exitCode: 2 });
		await expect(main(['--bogus'])).rejects.toMatchObject({ exitCode: 2 });
	});
});
