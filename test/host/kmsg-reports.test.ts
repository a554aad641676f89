import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseKernelLog } from '../../src/kmsg/parse.js';
import { matchHeadline, parseFrame } from '../../src/kmsg/report-lines.js';
import type { CrashReport } from '../../src/kmsg/reports.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/kmsg/${name}`, import.meta.url), 'utf8');

function single(name: string): CrashReport {
	const { reports } = parseKernelLog(fixture(name));
	expect(reports).toHaveLength(1);
	return reports[0] as CrashReport;
}

const names = (r: CrashReport, n: number): string[] =>
	r.frames.slice(0, n).map((f) => `${f.reliable ? '' : '? '}${f.fn}${f.module ? ` [${f.module}]` : ''}`);

describe('x86_64 6.x', () => {
	it('6.1 kernel BUG (invalid opcode, no "Oops: " prefix, Modules linked in after the trace)', () => {
		const r = single('x86_64-6.1-bug-vm_insert_page.log');
		expect(r).toMatchObject({
			kind: 'BUG',
			headline: 'kernel BUG at mm/memory.c:2055!',
			file: 'mm/memory.c',
			line: 2055,
			function: 'vm_insert_page',
			oops: 'invalid opcode: 0000 [#1] PREEMPT SMP NOPTI',
			cpu: 1,
			pid: 431,
			comm: 'node',
			tainted: 'G           O',
			release: '6.1.0-56-amd64',
			ended: true,
			ts: 118.10227,
		});
		expect(r.uid).toBeUndefined();
		// neither the RIP line (vm_insert_page) nor the first frame (? __die_body.cold) names a module
		expect(r.module).toBeUndefined();
		expect(r.modules?.slice(0, 3)).toEqual(['hybridmem_test', 'binfmt_misc', 'sd_mod']);
		expect(r.frames).toHaveLength(19);
		expect(r.frames[0]).toEqual({ fn: '__die_body.cold', offset: 0x1a, size: 0x1f, reliable: false, context: 'TASK' });
		const moduleFrame = r.frames.find((f) => f.module);
		expect(moduleFrame).toEqual({ fn: 'kex_mmap', offset: 0x1f4, size: 0x3a0, module: 'hybridmem_test', reliable: true, context: 'TASK' });
		expect(r.frames.filter((f) => f.reliable).map((f) => f.fn)).toEqual([
			'kex_mmap',
			'mmap_region',
			'do_mmap',
			'vm_mmap_pgoff',
			'ksys_mmap_pgoff',
			'do_syscall_64',
			'entry_SYSCALL_64_after_hwframe',
		]);
		// the "executive summary" after the end marker and the note: lines stay with the report
		expect(r.lines[0]).toBe('[  118.102268] ------------[ cut here ]------------');
		expect(r.lines.at(-1)).toBe('[  118.103740] note: node[431] exited with preempt_count 1');
	});

	it('the module events around the oops are still events', () => {
		const { events } = parseKernelLog(fixture('x86_64-6.1-bug-vm_insert_page.log'));
		expect(events.map((e) => e.type)).toEqual(['loaded', 'mapStart', 'remap', 'freed']);
	});

	it('6.12 kernel BUG ("Oops: invalid opcode", UID, verbose taint line, module build id)', () => {
		const r = single('x86_64-6.12-bug-vm_insert_page.log');
		expect(r).toMatchObject({
			kind: 'BUG',
			file: 'mm/memory.c',
			line: 2251,
			function: 'vm_insert_page',
			oops: 'Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI',
			cpu: 1,
			uid: 0,
			pid: 431,
			comm: 'node',
			tainted: 'G           O',
			release: '6.12.117+deb12-amd64',
		});
		expect(r.frames.find((f) => f.fn === 'kex_mmap')?.module).toBe('hybridmem_test');
	});

	it('WARNING with file, line and function in the headline, Modules linked in before the registers', () => {
		const r = single('x86_64-6.1-warning.log');
		expect(r).toMatchObject({
			kind: 'WARNING',
			headline: 'WARNING: CPU: 1 PID: 1 at mm/foo.c:12 fn+0x1/0x2',
			file: 'mm/foo.c',
			line: 12,
			function: 'fn',
			cpu: 1,
			pid: 1,
			comm: 'swapper/0',
			modules: ['hybridmem_test', '9pnet_virtio', '9p', 'netfs'],
			ended: true,
		});
		expect(names(r, 2)).toEqual(['? __warn', '? fn']);
		expect(r.frames.find((f) => f.reliable)?.fn).toBe('kex_init');
	});

	it('NULL pointer dereference with the RIP in the module', () => {
		const r = single('x86_64-6.1-null-deref.log');
		expect(r).toMatchObject({
			kind: 'null-deref',
			headline: 'BUG: kernel NULL pointer dereference, address: 0000000000000000',
			function: 'kex_ioctl',
			module: 'hybridmem_test',
			oops: 'Oops: 0000 [#1] PREEMPT SMP NOPTI',
			pid: 517,
			ended: true,
		});
		expect(r.file).toBeUndefined();
		expect(r.frames.filter((f) => f.reliable).map((f) => f.fn)).toEqual(['__x64_sys_ioctl', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe']);
	});

	it('general protection fault in a workqueue', () => {
		const r = single('x86_64-6.1-gpf.log');
		expect(r).toMatchObject({ kind: 'gpf', function: '__list_del_entry_valid', comm: 'kworker/1:2', pid: 602 });
		expect(r.headline).toMatch(/^general protection fault, probably for non-canonical address 0xdead000000000122/);
	});

	it('KASAN use-after-free: function from the headline, task from "by task", extra traces', () => {
		const r = single('x86_64-6.1-kasan.log');
		expect(r).toMatchObject({
			kind: 'KASAN',
			headline: 'BUG: KASAN: slab-use-after-free in kex_ioctl+0x1d4/0x2f0 [hybridmem_test]',
			function: 'kex_ioctl',
			module: 'hybridmem_test',
			pid: 4242,
			comm: 'node',
			cpu: 0,
			ended: true,
		});
		expect(r.frames.map((f) => f.fn).slice(0, 2)).toEqual(['dump_stack_lvl', 'print_report']);
		expect(r.moreTraces.map((t) => t.length)).toEqual([5, 7]);
		expect(r.moreTraces[1]?.at(-2)).toMatchObject({ fn: 'kex_vma_close', module: 'hybridmem_test' });
		expect(r.lines[0]).toBe('[   88.301002] ==================================================================');
		expect(r.lines.at(-1)).toBe('[   88.301552] ==================================================================');
	});

	it('UBSAN with file and line, function unknown (user-mode RIP only)', () => {
		const r = single('x86_64-6.1-ubsan.log');
		expect(r).toMatchObject({ kind: 'UBSAN', file: '/build/hybridmem/kmod/hybridmem_test.c', line: 412, ended: true });
		expect(r.function).toBeUndefined();
	});

	it('lockups: soft lockup, RCU stall, hung task', () => {
		const soft = single('x86_64-6.1-soft-lockup.log');
		expect(soft).toMatchObject({ kind: 'lockup', cpu: 1, pid: 123, comm: 'kworker/1:2', function: 'kex_spin_work', module: 'hybridmem_test', tainted: 'G           O L' });
		const rcu = single('x86_64-6.1-rcu-stall.log');
		expect(rcu).toMatchObject({ kind: 'lockup', headline: 'rcu: INFO: rcu_preempt self-detected stall on CPU', function: 'kex_verify_loop', cpu: 0 });
		expect(rcu.frames[0]).toMatchObject({ fn: 'rcu_dump_cpu_stacks', context: 'IRQ' });
		expect(rcu.frames.find((f) => f.fn === 'kex_ioctl')).toMatchObject({ context: 'TASK', module: 'hybridmem_test' });
		const hung = single('x86_64-6.1-hung-task.log');
		expect(hung).toMatchObject({ kind: 'lockup', comm: 'node', pid: 431, tainted: 'G      D    O', release: '6.1.0-56-amd64' });
		expect(hung.frames.map((f) => f.fn).slice(0, 3)).toEqual(['__schedule', 'schedule', 'rwsem_down_write_slowpath']);
	});

	it('sysrq-c panic', () => {
		const r = single('x86_64-6.1-sysrq-panic.log');
		expect(r).toMatchObject({
			kind: 'panic',
			headline: 'Kernel panic - not syncing: sysrq triggered crash',
			cpu: 0,
			pid: 1,
			comm: 'sh',
			ended: true,
		});
		expect(r.tainted).toBeUndefined(); // "Not tainted"
		expect(r.frames.map((f) => f.fn).slice(0, 3)).toEqual(['dump_stack_lvl', 'panic', 'sysrq_handle_crash']);
		expect(r.lines.at(-1)).toContain('---[ end Kernel panic');
	});

	it('scheduling while atomic, sleeping in atomic, bad page map', () => {
		const atomic = single('x86_64-6.1-sched-atomic.log');
		expect(atomic).toMatchObject({ kind: 'BUG', headline: 'BUG: scheduling while atomic: node/431/0x00000002', comm: 'node', pid: 431 });
		// "Preemption disabled at:" names one frame; the call trace is the one after "Call Trace:"
		expect(atomic.frames[0]?.fn).toBe('dump_stack_lvl');
		expect(atomic.moreTraces).toEqual([[{ fn: 'kex_mmap', offset: 0x64, size: 0x3a0, module: 'hybridmem_test', reliable: true, address: 0xffffffffc0a011c4n }]]);
		const sleeping = single('x86_64-6.1-sleeping-in-atomic.log');
		expect(sleeping).toMatchObject({ kind: 'BUG', file: 'include/linux/sched/mm.h', line: 274 });
		const bad = single('x86_64-6.1-bad-page-map.log');
		expect(bad).toMatchObject({ kind: 'BUG', comm: 'node', tainted: 'G    B      O' });
		expect(bad.headline).toBe('BUG: Bad page map in process node  pte:8000000104a3e027 pmd:104b3f067');
		expect(bad.frames).toHaveLength(8);
	});
});

describe('older x86_64 layouts', () => {
	it('4.4: "[<ffffffff...>] fn+0x/0x" frames, IP: line, random end trace id', () => {
		const r = single('x86_64-4.4-null-deref.log');
		expect(r).toMatchObject({
			kind: 'null-deref',
			function: 'kex_mmap',
			module: 'hybridmem_test',
			oops: 'Oops: 0000 [#1] SMP', // trailing blank removed
			tainted: 'G           OE',
			release: '4.4.0-21-generic',
			ended: true,
		});
		expect(r.frames[0]).toEqual({ fn: 'mmap_region', offset: 0x3fd, size: 0x5f0, reliable: true, address: 0xffffffff811a0c1dn });
		expect(r.frames[2]).toMatchObject({ fn: 'vm_mmap_pgoff', reliable: false });
		expect(r.lines.at(-1)).toBe('[ 1211.404080] ---[ end trace 8ae84a7ad9ee9c5d ]---');
	});

	it('2.6.32 without timestamps: Pid:/Process lines, then the panic as its own report', () => {
		const { reports } = parseKernelLog(fixture('x86_64-2.6.32-paging.log'));
		expect(reports.map((r) => r.kind)).toEqual(['page-fault', 'panic']);
		const [oops, panic] = reports as [CrashReport, CrashReport];
		expect(oops).toMatchObject({ function: 'vm_insert_page', module: 'hybridmem_test', pid: 2315, comm: 'mmap_test', tainted: 'P', release: '2.6.32-754.el6.x86_64' });
		expect(oops.ts).toBeUndefined();
		expect(oops.frames[0]).toMatchObject({ fn: 'kex_mmap', module: 'hybridmem_test', address: 0xffffffffa0123456n });
		expect(panic).toMatchObject({ headline: 'Kernel panic - not syncing: Fatal exception', tainted: 'P      D' });
		expect(names(panic, 2)).toEqual(['? panic', '? oops_end']);
	});
});

describe('arm64', () => {
	it("the notes' bare trace: frames with addresses, the module frame below vm_insert_page", () => {
		const r = single('notes-arm64-trace.log');
		expect(r).toMatchObject({ kind: 'trace', function: 'vm_insert_page', ts: 576.556609, ended: false });
		expect(r.frames).toHaveLength(7);
		expect(r.frames[0]).toEqual({ fn: 'vm_insert_page', offset: 0x23c, size: 0x240, reliable: true, address: 0xffff000008250d1cn });
		expect(r.frames[1]).toEqual({ fn: '_mmap', offset: 0xb4, size: 0x188, module: 'hybridmem_test', reliable: true, address: 0xffff000002aa00b4n });
		expect(r.frames.map((f) => f.fn)).toEqual(['vm_insert_page', '_mmap', 'mmap_region', 'do_mmap', 'vm_mmap_pgoff', 'SyS_mmap_pgoff', 'sys_mmap']);
		expect(r.lines).toHaveLength(7);
	});

	it('4.14 BUG with "PC is at", Kdump in the task line, exception stacks inside the trace', () => {
		const r = single('arm64-4.14-bug-notes.log');
		expect(r).toMatchObject({
			kind: 'BUG',
			file: 'mm/memory.c',
			line: 1570,
			function: 'vm_insert_page',
			oops: 'Internal error: Oops - BUG: 0 [#1] SMP',
			cpu: 12,
			pid: 5472,
			comm: 'mmap_test',
			tainted: 'G           OE',
			release: '4.14.0-115.el7a.0.1.aarch64',
			hardware: 'Huawei TaiShan 2280 V2/BC82AMDD, BIOS 1.05 09/18/2019',
			ended: true,
		});
		expect(r.frames.map((f) => f.fn)).toEqual(['vm_insert_page', '_mmap', 'mmap_region', 'do_mmap', 'vm_mmap_pgoff', 'SyS_mmap_pgoff', 'sys_mmap', 'el0_svc_naked']);
	});

	it('5.10 NULL dereference with "pc : fn" and " fn" frames after "Call trace:"', () => {
		const r = single('arm64-5.10-null-deref.log');
		expect(r).toMatchObject({
			kind: 'null-deref',
			function: 'kex_ioctl',
			module: 'hybridmem_test',
			oops: 'Internal error: Oops: 96000005 [#1] PREEMPT SMP',
			cpu: 2,
			pid: 321,
			release: '5.10.0-23-arm64',
		});
		expect(r.frames).toHaveLength(7);
		expect(r.frames[0]).toEqual({ fn: 'kex_ioctl', offset: 0x24, size: 0x90, module: 'hybridmem_test', reliable: true });
		expect(r.frames[2]?.fn).toBe('el0_svc_common.constprop.0');
	});
});

describe('powerpc and riscv', () => {
	it('powerpc: NIP line, "[sp] [ip] fn" frames, "(unreliable)"', () => {
		const r = single('powerpc-5.15-null-deref.log');
		expect(r).toMatchObject({ kind: 'null-deref', function: 'kex_ioctl', module: 'hybridmem_test', oops: 'Oops: Kernel access of bad area, sig: 11 [#1]', pid: 567 });
		expect(r.frames[0]).toEqual({ fn: 'sys_ioctl', offset: 0xe0, size: 0x150, reliable: false, address: 0xc0000000004a1b00n });
		expect(r.frames[1]).toMatchObject({ fn: 'kex_ioctl', module: 'hybridmem_test', reliable: true, address: 0xc008000001230124n });
		expect(r.frames).toHaveLength(5);
	});

	it('riscv: "epc : fn" and "[<...>] fn" frames', () => {
		const r = single('riscv64-6.1-null-deref.log');
		expect(r).toMatchObject({ kind: 'null-deref', function: 'kex_ioctl', module: 'hybridmem_test', oops: 'Oops [#1]', cpu: 1, pid: 89, hardware: 'riscv-virtio,qemu (DT)' });
		expect(r.frames.map((f) => f.fn)).toEqual(['kex_ioctl', '__riscv_sys_ioctl', 'ret_from_syscall']);
	});
});

describe('log shapes', () => {
	const reference = single('x86_64-6.1-bug-vm_insert_page.log');
	const shapes = [
		'journalctl-6.1-bug.log',
		'syslog-6.1-bug.log',
		'caller-id-console-6.1-bug.log',
		'caller-id-dmesg-6.1-bug.log',
		'serial-console-6.1-bug.log',
	];
	it.each(shapes)('%s gives the same report and events as plain dmesg', (name) => {
		const { reports, events } = parseKernelLog(fixture(name));
		expect(reports).toHaveLength(1);
		const r = reports[0] as CrashReport;
		for (const key of ['kind', 'headline', 'file', 'line', 'function', 'module', 'oops', 'cpu', 'pid', 'comm', 'tainted', 'release', 'modules', 'frames', 'ended'] as const)
			expect(r[key], key).toEqual(reference[key]);
		expect(events.map((e) => e.type)).toEqual(['loaded', 'mapStart', 'remap', 'freed']);
		if (name !== 'journalctl-6.1-bug.log') expect(r.ts).toBe(118.10227);
	});

	it('several reports among unrelated lines: WARNING, oops, then the panic that follows it', () => {
		const { reports, events } = parseKernelLog(fixture('mixed-warning-oops-panic.log'));
		expect(reports.map((r) => [r.kind, r.headline])).toEqual([
			['WARNING', 'WARNING: CPU: 1 PID: 1 at mm/foo.c:12 fn+0x1/0x2'],
			['BUG', 'kernel BUG at mm/memory.c:2055!'],
			['panic', 'Kernel panic - not syncing: Fatal exception'],
		]);
		expect(reports[2]).toMatchObject({ ts: 118.10376, ended: true, frames: [] });
		expect(reports[1]?.lines.some((l) => l.includes('crng init done'))).toBe(false);
		expect(events.map((e) => e.type)).toEqual(['loaded', 'loaded', 'mapStart', 'remap']);
	});

	it('an oops interleaved with unrelated lines keeps its frames and leaves the others out', () => {
		const lines = fixture('x86_64-6.1-null-deref.log').split('\n');
		lines.splice(20, 0, '[  240.119100] usb 1-1: new high-speed USB device number 2 using ehci-pci');
		const r = parseKernelLog(lines.join('\n')).reports[0];
		expect(r?.frames).toHaveLength(8);
		expect(r?.lines.some((l) => l.includes('usb 1-1'))).toBe(false);
	});

	it('no reports in ordinary boot noise', () => {
		const noise = [
			'[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)',
			'[    0.000000] [Firmware Bug]: TSC does not count with P0 frequency!',
			'[    0.253593] NMI watchdog: Perf NMI watchdog permanently disabled',
			'[    0.300000] Call trace support enabled',
			'[    1.000000] WARNING: some drivers print this without a report',
			'[    1.335347] EXT4-fs (vda): mounted filesystem r/w without journal.',
		].join('\n');
		const { reports } = parseKernelLog(noise);
		// A bare "WARNING:" line is a WARNING report (lockdep and friends look like that), nothing else is.
		expect(reports.map((r) => r.kind)).toEqual(['WARNING']);
		expect(reports[0]?.frames).toEqual([]);
	});
});

describe('smaller shapes', () => {
	it('WARN() with its own message between "cut here" and the WARNING line', () => {
		const { reports } = parseKernelLog(
			[
				'[   10.000000] ------------[ cut here ]------------',
				'[   10.000001] kex: mapping 3 still has 2 pages',
				'[   10.000002] WARNING: CPU: 0 PID: 77 at /build/hybridmem/kmod/hybridmem_test.c:301 kex_release+0x5e/0x80 [hybridmem_test]',
				'[   10.000003] Call Trace:',
				'[   10.000004]  <TASK>',
				'[   10.000005]  __fput+0xff/0x290',
				'[   10.000006]  </TASK>',
				'[   10.000007] ---[ end trace 0000000000000000 ]---',
			].join('\n'),
		);
		expect(reports).toHaveLength(1);
		expect(reports[0]).toMatchObject({ kind: 'WARNING', file: '/build/hybridmem/kmod/hybridmem_test.c', line: 301, function: 'kex_release', module: 'hybridmem_test', pid: 77 });
		expect(reports[0]?.lines[1]).toBe('[   10.000001] kex: mapping 3 still has 2 pages');
	});

	it('UBSAN of 6.7+ (cut here ... end trace instead of rules)', () => {
		const { reports } = parseKernelLog(
			['------------[ cut here ]------------', 'UBSAN: shift-out-of-bounds in mm/foo.c:9:5', 'shift exponent 64 is too large', 'CPU: 1 UID: 0 PID: 5 Comm: x Not tainted 6.12.0 #1', 'Call Trace:', ' <TASK>', ' foo+0x1/0x2', ' </TASK>', '---[ end trace ]---', 'unrelated'].join('\n'),
		);
		expect(reports).toHaveLength(1);
		expect(reports[0]).toMatchObject({ kind: 'UBSAN', file: 'mm/foo.c', line: 9, ended: true, uid: 0, release: '6.12.0' });
		expect(reports[0]?.tainted).toBeUndefined();
		expect(reports[0]?.frames.map((f) => f.fn)).toEqual(['foo']);
	});

	it('a live parser hands out a finished report when the log goes quiet', async () => {
		const { KernelLogParser } = await import('../../src/kmsg/parse.js');
		const seen: CrashReport[] = [];
		const parser = new KernelLogParser({ onReport: (r) => seen.push(r) });
		for (const line of fixture('x86_64-6.1-warning.log').split('\n').slice(0, 34)) parser.line(line);
		expect(seen).toHaveLength(0);
		parser.idle();
		expect(seen.map((r) => r.kind)).toEqual(['WARNING']);
	});
});

describe('line classifiers', () => {
	it('headlines', () => {
		expect(matchHeadline('WARNING: mm/foo.c:12 at fn+0x1/0x2, CPU#1: node/431')).toMatchObject({ kind: 'WARNING', file: 'mm/foo.c', line: 12, fn: { fn: 'fn' }, cpu: 1, comm: 'node', pid: 431 });
		expect(matchHeadline('WARNING: at kernel/foo.c:123 func()')).toMatchObject({ kind: 'WARNING', file: 'kernel/foo.c', line: 123, fn: { fn: 'func' } });
		expect(matchHeadline('Kernel BUG at vm_insert_page+0x14a/0x150 [verbose debug info unavailable]')).toMatchObject({ kind: 'BUG', fn: { fn: 'vm_insert_page' } });
		expect(matchHeadline('BUG: unable to handle page fault for address: ffffc90000ab2000')?.kind).toBe('page-fault');
		expect(matchHeadline('Unable to handle kernel paging request at virtual address ffff800008f3c000')?.kind).toBe('page-fault');
		expect(matchHeadline('BUG: Unable to handle kernel data access on read at 0xc00800000123')?.kind).toBe('page-fault');
		expect(matchHeadline('Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI')?.kind).toBe('gpf');
		expect(matchHeadline('NMI watchdog: Watchdog detected hard LOCKUP on cpu 3')).toMatchObject({ kind: 'lockup', cpu: 3 });
		expect(matchHeadline('BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 40s!')?.kind).toBe('lockup');
		expect(matchHeadline('INFO: rcu_sched detected stalls on CPUs/tasks:')?.kind).toBe('lockup');
		expect(matchHeadline('UBSAN: Undefined behaviour in lib/foo.c:12:3')).toMatchObject({ kind: 'UBSAN', file: 'lib/foo.c', line: 12 });
		expect(matchHeadline('Internal error: Oops - BUG: 0 [#1] SMP')).toMatchObject({ kind: 'BUG', header: true });
		expect(matchHeadline('double fault: 0000 [#1] SMP')).toMatchObject({ kind: 'BUG', header: true });
		expect(matchHeadline('inserted page 0 at 0000ffff85f10000')).toBeUndefined();
	});

	it('frames', () => {
		expect(parseFrame(' ? asm_exc_invalid_op+0x16/0x20')).toEqual({ fn: 'asm_exc_invalid_op', offset: 0x16, size: 0x20, reliable: false });
		expect(parseFrame(' kex_mmap+0x1f4/0x3a0 [hybridmem_test 5d3e0b6a9f21c7e4]')).toMatchObject({ module: 'hybridmem_test' });
		expect(parseFrame(' do_el0_svc+0x24/0x90 (P)')).toMatchObject({ fn: 'do_el0_svc', reliable: true });
		expect(parseFrame('[<ffffffff8104fe7e>] ? warn_slowpath_common+0x7e/0xc0')).toMatchObject({ fn: 'warn_slowpath_common', reliable: false, address: 0xffffffff8104fe7en });
		expect(parseFrame('--- interrupt: 700 at vm_insert_page+0x8c/0x130')).toBeUndefined();
		expect(parseFrame('PC is at vm_insert_page+0x23c/0x240')).toBeUndefined();
	});
});

describe('field conventions (issue 13)', () => {
	const lines = (...l: string[]): string => l.join('\n');

	it('page poisoning: its own kind, hex dump kept in lines, pfn from dump_page, trace after "Call Trace:"', () => {
		const dump = [
			'[   12.000001] 00000000c0ffee12: aa aa aa aa 41 aa aa aa aa aa aa aa aa aa aa aa  ....A...........',
			'[   12.000002] 00000000c0ffee22: aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa 00  ................',
		];
		const { reports } = parseKernelLog(
			lines(
				'[   12.000000] pagealloc: memory corruption',
				...dump,
				'[   12.000003] CPU: 0 PID: 1 Comm: swapper/0 Tainted: G        W          6.1.0 #1',
				'[   12.000004] Call Trace:',
				'[   12.000005]  <TASK>',
				'[   12.000006]  dump_stack_lvl+0x44/0x5c',
				'[   12.000007]  __kernel_unpoison_pages.cold+0x4e/0x77',
				'[   12.000008]  get_page_from_freelist+0x89c/0xfe0',
				'[   12.000009]  </TASK>',
				'[   12.000010] page:ffffea0000a1b2c0 refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x286c8',
				'[   12.000011] flags: 0xfffffc0000000(node=0|zone=1)',
				'[   12.000012] page dumped because: pagealloc: corrupted page details',
				'[   13.500000] e1000: eth0 NIC Link is Up',
			),
		);
		expect(reports).toHaveLength(1);
		const r = reports[0] as CrashReport;
		expect(r).toMatchObject({ kind: 'page-poison', headline: 'pagealloc: memory corruption', pfn: 0x286c8, tainted: 'G        W' });
		expect(r.function).toBeUndefined();
		expect(r.frames.map((f) => f.fn)).toEqual(['dump_stack_lvl', '__kernel_unpoison_pages.cold', 'get_page_from_freelist']);
		expect(r.lines.slice(1, 3)).toEqual(dump);
		expect(r.lines.at(-1)).toContain('page dumped because');
		expect(matchHeadline('pagealloc: single bit error')?.kind).toBe('page-poison');
		expect(matchHeadline('BUG: Bad rss-counter state mm:00000000c1f2e3d4 type:MM_FILEPAGES val:-1')?.kind).toBe('BUG');
		expect(matchHeadline('BUG: Bad page map: 31 messages suppressed')).toBeUndefined();
	});

	it('a headline wrapped by a mail client is joined with one space, its fields read from the whole', () => {
		const { reports } = parseKernelLog(
			lines(
				'[ 5.1] BUG: unable to handle kernel NULL pointer dereference at',
				'0000000000000008',
				'[ 5.2] IP: [<ffffffffa0123456>] kex_mmap+0x10/0x40 [hybridmem_test]',
				'[ 5.3] ---[ end trace 1234567890abcdef ]---',
				'WARNING: CPU: 0 PID: 9 at drivers/foo/bar.c:123 foo_probe+0x1/0x2',
				'[foo]',
			),
		);
		expect(reports[0]).toMatchObject({
			headline: 'BUG: unable to handle kernel NULL pointer dereference at 0000000000000008',
			kind: 'null-deref',
			function: 'kex_mmap',
			module: 'hybridmem_test',
		});
		// a line after a headline that ended is not joined
		const plain = parseKernelLog(lines('kernel BUG at mm/memory.c:2055!', 'invalid opcode: 0000 [#1] SMP')).reports[0];
		expect(plain?.headline).toBe('kernel BUG at mm/memory.c:2055!');
	});

	it('tainted keeps the blanks between flags; module is the function line\'s, else the first frame\'s', () => {
		const { reports } = parseKernelLog(
			lines(
				'WARNING: CPU: 1 PID: 2 at mm/x.c:1 x_fn+0x1/0x2',
				'CPU: 1 PID: 2 Comm: a Tainted: G        W  OE      5.4.0 #1',
				'Call Trace:',
				' ? y_fn+0x3/0x4 [ymod]',
				' z_fn+0x5/0x6 [zmod]',
			),
		);
		expect(reports[0]).toMatchObject({ tainted: 'G        W  OE', function: 'x_fn', module: 'ymod' });
	});

	it('SLUB debug reports, their side stacks, lockdep\'s "state was registered at" stack, split fault headlines', () => {
		const slub = parseKernelLog(
			lines(
				'=============================================================================',
				'BUG kmalloc-4096 (Tainted: G          I ): Poison overwritten',
				'-----------------------------------------------------------------------------',
				'INFO: Allocated in scsi_host_alloc+0x4a/0x490 [scsi_mod] age=1688 cpu=1 pid=2004',
				'\t__slab_alloc+0x617/0x6c1',
				'\t__kmalloc+0x28c/0x2e0',
			),
		).reports;
		expect(slub).toHaveLength(1);
		expect(slub[0]).toMatchObject({ kind: 'BUG', tainted: 'G          I', frames: [] });
		expect(slub[0]?.moreTraces[0]?.map((f) => f.fn)).toEqual(['__slab_alloc', '__kmalloc']);
		const lockdep = parseKernelLog(
			lines('[ INFO: inconsistent lock state ]', '{SOFTIRQ-ON-W} state was registered at:', '  [<c047cdbf>] mark_held_locks+0x59/0x77'),
		).reports;
		expect(lockdep[0]?.frames).toEqual([]);
		const split = parseKernelLog(lines('[    1.0] Unable to handle kernel access', '[    1.0]  at virtual address 0x7fc60f58', '[    1.0] Oops#: 0000')).reports;
		expect(split[0]?.headline).toBe('Unable to handle kernel access at virtual address 0x7fc60f58');
		const ubsan = parseKernelLog(lines('UBSAN: array-index-out-of-bounds in drivers/x.c:135:35', "index 16 is out of range for type 'int [16]'")).reports;
		expect(ubsan[0]?.headline).toBe('UBSAN: array-index-out-of-bounds in drivers/x.c:135:35');
		expect(parseKernelLog(lines('[  252.718655] Watchdog CPU:59 Hard LOCKUP', '[  252.718697] CPU: 59 PID: 363 Comm: watchdog/59 Tainted: G      D          4.15.0 #36')).reports[0]).toMatchObject({
			kind: 'lockup',
			tainted: 'G      D',
		});
		expect(parseKernelLog(lines('[   16.305150] INFO: trying to register non-static key.', '[   16.306956] CPU: 0 PID: 2990 Comm: a Not tainted 4.14.0 #10', '[   16.308571] Call Trace:', '[   16.308831]  dump_stack+0x194/0x257')).reports[0]).toMatchObject({
			kind: 'WARNING',
			headline: 'INFO: trying to register non-static key.',
		});
		expect(parseKernelLog(lines('Kernel bug detected[#1]:', 'CPU: 0 PID: 1 Comm: init Not tainted 3.18 #1')).reports[0]).toMatchObject({ kind: 'BUG', headline: 'Kernel bug detected[#1]:' });
		expect(parseKernelLog(lines('Oops[#1]:', 'CPU: 0 PID: 1 Comm: init Not tainted 3.18 #1')).reports[0]).toMatchObject({ kind: 'page-fault' });
		const stop = parseKernelLog(
			lines('Kernel panic - not syncing: Fatal exception', 'CPU1: stopping', 'CPU: 1 PID: 5 Comm: a Tainted: G      D           5.10.0 #20', 'Backtrace: ', '[<825afeb4>] (dump_backtrace) from [<825b0128>] (show_stack+0x18/0x1c)'),
		).reports;
		expect(stop[0]).toMatchObject({ kind: 'panic', tainted: 'G      D', frames: [] });
		const hung = parseKernelLog(
			lines('INFO: task a:1 blocked for more than 143 seconds.', 'Call Trace:', ' __schedule+0x1/0x2', 'NMI backtrace for cpu 1', 'RIP: 0010:other_cpu_fn+0x1/0x2'),
		).reports;
		expect(hung[0]?.function).toBeUndefined();
		expect(parseKernelLog(lines('Unhandled fault at 0xffff800010003eb0', 'Internal error: ttbr address size fault: 96000040 [#1] SMP')).reports[0]).toMatchObject({
			kind: 'page-fault',
			headline: 'Unhandled fault at 0xffff800010003eb0',
		});
	});

	it('arm32 callees, s390 parenthesised frames, decoded and inline frames', () => {
		expect(parseFrame('[<c0014990>] (unwind_backtrace+0x0/0xf4) from [<c005ccb8>] (__lock_acquire+0x14f8/0x1b98)', true)).toMatchObject({ fn: 'unwind_backtrace', offset: 0 });
		expect(parseFrame('[<7f4ba618>] (fuse_writepages [fuse]) from [<8022e284>] (do_writepages+0x30/0x8c)', true)).toMatchObject({ fn: 'fuse_writepages', module: 'fuse' });
		expect(parseFrame('([<000003ff8086d036>] will_oops_init+0x36/0x1000 [will_oops])')).toMatchObject({ fn: 'will_oops_init', module: 'will_oops', reliable: true });
		expect(parseFrame(' __dump_stack lib/dump_stack.c:79 [inline]', true)).toMatchObject({ fn: '__dump_stack', inline: true, source: 'lib/dump_stack.c:79' });
		expect(parseFrame(' __dump_stack lib/dump_stack.c:79 [inline]')).toBeUndefined(); // outside a report a decoded frame is not looked for
		expect(parseFrame('print_report (mm/kasan/report.c:476) ', true)).toMatchObject({ fn: 'print_report', source: 'mm/kasan/report.c:476' });
		expect(parseFrame('[c000000010f930b0] [d000000002c5ef9c] .asswarn+0x2c/0x40 [xfs](unreliable)')).toMatchObject({ fn: '.asswarn', module: 'xfs', reliable: false });
	});
});
