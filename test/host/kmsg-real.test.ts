// The parser on logs captured from real kernels in the VM runner
// (scripts/capture-kmsg-fixtures.sh): the notes' crash reproduced by the
// module on 6.1 and 6.12, a sysrq-c panic, a WARN from a module, and the
// notes' test1 events as dmesg prints them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseKernelLog } from '../../src/kmsg/parse.js';

const fixture = (name: string) => readFileSync(path.join('test/fixtures/kmsg', name), 'utf8');

const BUG_LINE = { '6.1': 2055, '6.12': 2225 } as const;

describe.each(['6.1', '6.12'] as const)('real logs from Debian %s', (v) => {
	test('bug-pfnmap console: kernel BUG at mm/memory.c in vm_insert_page, module frame hm_mmap [hybridmem_test]', () => {
		const { reports } = parseKernelLog(fixture(`real-${v}-bug-pfnmap.console.log`));
		const bug = reports.find((r) => r.kind === 'BUG');
		expect(bug).toMatchObject({
			headline: `kernel BUG at mm/memory.c:${BUG_LINE[v]}!`,
			file: 'mm/memory.c',
			line: BUG_LINE[v],
			function: 'vm_insert_page',
			module: 'hybridmem_test',
			comm: 'node',
			ended: true,
		});
		expect(bug?.oops).toMatch(v === '6.1' ? /^invalid opcode: 0000 \[#1\] PREEMPT SMP NOPTI$/ : /^Oops: invalid opcode: 0000 \[#1\] PREEMPT SMP NOPTI$/);
		expect(bug?.tainted).toBe('G           OE'); // G: only GPL modules; O: out of tree; E: unsigned (as printed, blanks kept)
		expect(bug?.modules).toContain('hybridmem_test');
		const top = bug?.frames.find((f) => f.reliable);
		expect(top).toMatchObject({ fn: 'hm_mmap', module: 'hybridmem_test' });
		expect(bug?.frames.map((f) => f.fn)).toContain('do_mmap');
	});

	test('sysrq-c: a panic report', () => {
		const { reports } = parseKernelLog(fixture(`real-${v}-sysrq-panic.console.log`));
		const panic = reports.find((r) => r.kind === 'panic');
		expect(panic?.headline).toBe('Kernel panic - not syncing: sysrq triggered crash');
		expect(panic?.frames.map((f) => f.fn)).toContain('sysrq_handle_crash');
		expect(panic?.comm).toBe('sh');
	});

	test('a WARN from hm_warn.ko among a whole boot log', () => {
		const { reports } = parseKernelLog(fixture(`real-${v}-warn.dmesg.log`));
		expect(reports).toHaveLength(1);
		expect(reports[0]).toMatchObject({ kind: 'WARNING', line: 12, function: 'hm_warn_now', module: 'hm_warn', comm: 'insmod' });
		expect(reports[0]?.file).toMatch(/hm_warn\.c$/);
	});

	test("the notes' test1 as the real module logs it: 4 inserted, 4 zapped at the same addresses, 4 freed", () => {
		const { events, reports } = parseKernelLog(fixture(`real-${v}-test1.dmesg.log`));
		expect(reports).toEqual([]);
		const start = events.find((e) => e.type === 'mapStart');
		expect(start).toMatchObject({ pages: 4, len: 16384, pgoff: 0 });
		const inserted = events.flatMap((e) => (e.type === 'pageInserted' ? [e.address] : []));
		const zapped = events.flatMap((e) => (e.type === 'zap' ? [e.address] : []));
		expect(inserted).toHaveLength(4);
		expect(zapped).toEqual(inserted);
		expect(inserted[0]).toBe(start?.type === 'mapStart' ? start.vmStart : -1n);
		expect(inserted.map((a, i) => a - inserted[0]! - BigInt(i * 4096))).toEqual([0n, 0n, 0n, 0n]);
		expect(events.find((e) => e.type === 'freed')).toMatchObject({ pages: 4 });
		expect(events.find((e) => e.type === 'loaded')).toMatchObject({ type: 'loaded' });
	});
});
