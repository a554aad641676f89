import { describe, expect, it } from 'vitest';
import { normaliseLine, stripAnsi } from '../../src/kmsg/text.js';

describe('normaliseLine', () => {
	it('strips the dmesg timestamp and keeps it in seconds', () => {
		expect(normaliseLine('[ 1029.247567] inserted page 0 at 0000ffff85f10000')).toEqual({
			text: 'inserted page 0 at 0000ffff85f10000',
			ts: 1029.247567,
			kernel: true,
		});
	});

	it('removes exactly one separator space, keeping the message own leading space', () => {
		expect(normaliseLine('[ 1029.247571]  zap_vma_ptes addr 0xffff85f10000 ').text).toBe(' zap_vma_ptes addr 0xffff85f10000 ');
		expect(normaliseLine('[  118.102665]  <TASK>').text).toBe(' <TASK>');
	});

	it('strips printk caller ids in the console and in the util-linux layouts', () => {
		expect(normaliseLine('[  118.102270][  T431] kernel BUG at mm/memory.c:2055!')).toEqual({
			text: 'kernel BUG at mm/memory.c:2055!',
			ts: 118.10227,
			caller: 'T431',
			kernel: true,
		});
		expect(normaliseLine('[  118.102270] [  T2553] x').caller).toBe('T2553');
		expect(normaliseLine('[    0.000000][    C1] x')).toMatchObject({ text: 'x', caller: 'C1' });
	});

	it("strips Android kernels' uptime and wall-clock prefixes", () => {
		expect(normaliseLine('[  197.301508 / 11-23 23:47:23.872] PC is at __mutex_lock_slowpath+0x7c/0x394')).toEqual({
			text: 'PC is at __mutex_lock_slowpath+0x7c/0x394',
			ts: 197.301508,
			kernel: true,
		});
		expect(normaliseLine('  1276.747940:   <6> (01-28 07:22:33.347208893) PC is at exfat_d_hashi+0x6c/0xc0')).toEqual({
			text: 'PC is at exfat_d_hashi+0x6c/0xc0',
			ts: 1276.74794,
			level: 6,
			kernel: true,
		});
		// without a level or a clock after it, a number and a colon are the message's own
		expect(normaliseLine('1276.705430: something').text).toBe('1276.705430: something');
	});

	it('removes markdown bold around a message, not a banner of stars', () => {
		expect(normaliseLine('Dec 27 19:05:38 rpi kernel: **UBSAN: shift-out-of-bounds in a/b.c:1717:69**').text).toBe(
			'UBSAN: shift-out-of-bounds in a/b.c:1717:69',
		);
		expect(normaliseLine('[    0.5] **   NOTICE NOTICE NOTICE   **').text).toBe('**   NOTICE NOTICE NOTICE   **');
		expect(normaliseLine('[    0.5] **********************************************************').text).toBe(
			'**********************************************************',
		);
	});

	it('strips syslog and journalctl prefixes, and marks other programs lines', () => {
		expect(normaliseLine('Nov 24 12:00:00 host kernel: hybridmem_test: unloaded')).toEqual({
			text: 'hybridmem_test: unloaded',
			kernel: true,
		});
		expect(normaliseLine('Nov  4 12:00:00 vm kernel: [  118.102270] kernel BUG at mm/memory.c:2055!')).toMatchObject({
			text: 'kernel BUG at mm/memory.c:2055!',
			ts: 118.10227,
		});
		expect(normaliseLine('Nov 24 12:00:00.123456 host kernel: x').text).toBe('x');
		expect(normaliseLine('2024-11-24T12:00:00.123456+00:00 host kernel: x').text).toBe('x');
		expect(normaliseLine('2024-11-24T12:00:00+0000 host kernel:  <TASK>').text).toBe(' <TASK>');
		expect(normaliseLine('[  118.102270] debian kernel: x')).toMatchObject({ text: 'x', ts: 118.10227 });
		expect(normaliseLine('Nov 24 12:00:00 host systemd[1]: Started foo.').kernel).toBe(false);
		// OpenWrt logread (github.com/Ysurac/openmptcprouter/issues/585): weekday, year after the time, facility.level
		expect(normaliseLine('Sun Sep  1 19:30:19 2019 kern.warn kernel: [138620.534103] Call trace:')).toMatchObject({
			text: 'Call trace:',
			ts: 138620.534103,
			kernel: true,
		});
		expect(normaliseLine('Sun Sep  1 19:30:19 2019 daemon.info dnsmasq[1]: query').kernel).toBe(false);
	});

	it('strips <N> levels and dmesg -x facility:level prefixes', () => {
		expect(normaliseLine('<4>[  118.102270] kernel BUG at mm/memory.c:2055!')).toEqual({
			text: 'kernel BUG at mm/memory.c:2055!',
			ts: 118.10227,
			level: 4,
			kernel: true,
		});
		expect(normaliseLine('<12>plain')).toMatchObject({ text: 'plain', level: 4 });
		expect(normaliseLine('kern  :warn  : [  118.102270] x')).toMatchObject({ text: 'x', level: 4, ts: 118.10227 });
	});

	it('strips dmesg -T and -H human timestamps but not bracketed message text', () => {
		expect(normaliseLine('[Sun Nov 24 12:00:00 2024] hybridmem_test: unloaded').text).toBe('hybridmem_test: unloaded');
		expect(normaliseLine('[Nov24 12:00] x').text).toBe('x');
		expect(normaliseLine('[  +0.000123] x')).toEqual({ text: 'x', kernel: true });
		expect(normaliseLine('[Firmware Bug]: TSC does not count').text).toBe('[Firmware Bug]: TSC does not count');
		expect(normaliseLine('[<ffff000008250d1c>] vm_insert_page+0x23c/0x240').text).toBe('[<ffff000008250d1c>] vm_insert_page+0x23c/0x240');
	});

	it('drops serial-console carriage returns and colour escapes', () => {
		expect(normaliseLine('\x1b[0m[  118.102270] kernel BUG at mm/memory.c:2055!\r')).toMatchObject({
			text: 'kernel BUG at mm/memory.c:2055!',
			ts: 118.10227,
		});
		expect(stripAnsi('\x1b[1;31mred\x1b[0m')).toBe('red');
	});

	it('drops what a terminal or a paste put around the line: a serial terminal\'s clock, "␍␊", a shell prompt, a lost "["', () => {
		expect(normaliseLine('[22:22:59:905] [    0.645489] Oops[#1]:␍␊')).toMatchObject({ text: 'Oops[#1]:', ts: 0.645489 });
		expect(normaliseLine('/ # [90216.140000] watchdog: BUG: soft lockup')).toMatchObject({ text: 'watchdog: BUG: soft lockup', ts: 90216.14 });
		expect(normaliseLine('root@debian:~# [  212.473177] Unhandled fault at 0x0')).toMatchObject({ text: 'Unhandled fault at 0x0', ts: 212.473177 });
		expect(normaliseLine('407819.286867] BUG: Bad page state')).toMatchObject({ text: 'BUG: Bad page state', ts: 407819.286867 });
		expect(normaliseLine('syzkaller login: Unable to handle kernel paging request').text).toBe('Unable to handle kernel paging request');
		expect(normaliseLine('12.5 percent done').text).toBe('12.5 percent done');
		expect(normaliseLine('# echo c > /proc/sysrq-trigger').text).toBe('# echo c > /proc/sysrq-trigger');
	});

	it('leaves lines without any prefix alone', () => {
		expect(normaliseLine('Modules linked in: hybridmem_test(O)')).toEqual({ text: 'Modules linked in: hybridmem_test(O)', kernel: true });
		expect(normaliseLine('CPU: 1 PID: 431 Comm: node').text).toBe('CPU: 1 PID: 431 Comm: node');
	});
});
