// The VM runner's pieces that need no VM: kernel choice, the cpio writer,
// module ordering, quoting of the guest's run script, QEMU's arguments.
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { markUsed, pruneUnused } from '../../src/vm/cache.js';
import { writeCpio } from '../../src/vm/cpio.js';
import { buildInitramfsImage, resolveModules } from '../../src/vm/initramfs.js';
import { chooseKernel, compareKernelVersions, listAllKernels, listKernels } from '../../src/vm/kernels.js';
import { chooseMachine, MICROVM_TRANSPORTS, qemuArgs } from '../../src/vm/qemu-args.js';
import { parseTscKhz } from '../../src/vm/host-tsc.js';
import { shellQuote } from '../../src/vm/shell-quote.js';
import { mountsFile, runScript } from '../../src/vm/spec.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-parts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('kernel choice', () => {
	test('orders releases numerically, newest first', () => {
		expect(compareKernelVersions('6.12.117+deb12-amd64', '6.1.0-56-amd64')).toBeGreaterThan(0);
		expect(compareKernelVersions('6.1.0-9-amd64', '6.1.0-10-amd64')).toBeLessThan(0);
		expect(compareKernelVersions('6.1.0-56-amd64', '6.1.0-56-amd64')).toBe(0);
	});

	test('a kernel without headers is listed with the reason and never the default', () => {
		const boot = path.join(tmp, 'boot');
		const mods = path.join(tmp, 'modules');
		for (const v of ['6.1.0-1-amd64', '6.9.0-1-amd64']) {
			mkdirSync(path.join(mods, v, 'kernel'), { recursive: true });
			mkdirSync(boot, { recursive: true });
			writeFileSync(path.join(boot, `vmlinuz-${v}`), '');
		}
		mkdirSync(path.join(mods, '6.1.0-1-amd64', 'build'), { recursive: true });
		writeFileSync(path.join(mods, '6.1.0-1-amd64', 'build', 'Makefile'), '');
		const list = listKernels(boot, mods);
		expect(list.map((k) => [k.version, k.usable])).toEqual([
			['6.9.0-1-amd64', false],
			['6.1.0-1-amd64', true],
		]);
		expect(list[0]?.reason).toContain('apt-get install linux-headers-6.9.0-1-amd64');
		expect(chooseKernel(undefined, boot, mods).version).toBe('6.1.0-1-amd64');
		expect(() => chooseKernel('6.9.0-1-amd64', boot, mods)).toThrow(/cannot be used: no headers/);
	});
});

describe('initramfs', () => {
	test('the cpio writer produces an archive cpio(1) reads back, with modes and contents', async () => {
		const image = writeCpio([
			{ type: 'dir', name: 'bin' },
			{ type: 'file', name: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
			{ type: 'symlink', name: 'bin/sh', target: 'busybox' },
			{ type: 'file', name: 'odd', data: Buffer.from('x') },
		]);
		const file = path.join(tmp, 'a.cpio');
		writeFileSync(file, image);
		const list = await execa('cpio', ['-itv', '-F', file]);
		expect(list.stdout).toMatch(/^drwxr-xr-x .* bin$/m);
		expect(list.stdout).toMatch(/^-rwxr-xr-x .* 18 .* bin\/tool$/m);
		expect(list.stdout).toMatch(/^lrwxrwxrwx .* bin\/sh -> busybox$/m);
		const out = path.join(tmp, 'x');
		mkdirSync(out);
		await execa('cpio', ['-idm', '-F', file], { cwd: out });
		expect(readFileSync(path.join(out, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
		expect(readFileSync(path.join(out, 'odd'), 'utf8')).toBe('x');
	});

	const kernels = listAllKernels().filter((k) => k.usable);
	test.each(kernels.map((k) => [k.version, k.root]))('modules for %s come dependencies first, builtins skipped', async (version, root) => {
		const mods = await resolveModules(version, undefined, root);
		const names = mods.map((m) => m.name);
		expect(names).toContain('9p');
		expect(names).toContain('overlay');
		// microvm's virtio transport is a module in Debian's kernels; PCI's is built in or a module.
		expect(names).toContain('virtio_mmio');
		expect(names.indexOf('9pnet')).toBeLessThan(names.indexOf('9pnet_virtio'));
		expect(names.indexOf('9pnet')).toBeLessThan(names.indexOf('9p'));
		// 9p uses netfs from 5.15 on (5.10's has no such dependency).
		const netfs = !version.startsWith('5.10.');
		if (netfs) expect(names.indexOf('netfs')).toBeLessThan(names.indexOf('9p'));
		else expect(names).not.toContain('netfs');
		// A module's level is above each of its dependencies' (they load in parallel per level).
		const level = (n: string) => mods.find((m) => m.name === n)!.level;
		expect(level('9pnet')).toBeLessThan(level('9pnet_virtio'));
		expect(level('9pnet')).toBeLessThan(level('9p'));
		if (netfs) expect(level('netfs')).toBeLessThan(level('9p'));
		expect(level('overlay')).toBe(0);
		for (const m of mods) expect(m.file).toMatch(/\.ko(\.xz|\.zst|\.gz)?$/);
		expect(new Set(names).size).toBe(names.length);
	});

	test.each(kernels.map((k) => [k.version]))('the initramfs for %s holds busybox, init and plain ELF modules in order', async (version) => {
		const image = await buildInitramfsImage(chooseKernel(version));
		const file = path.join(tmp, `${version}.cpio`);
		writeFileSync(file, image);
		const names = (await execa('cpio', ['-it', '-F', file])).stdout.split('\n');
		expect(names).toContain('init');
		expect(names).toContain('bin/busybox');
		expect(names).toContain('dev/console');
		expect(names).toEqual(expect.arrayContaining(['etc/fstab.early', 'etc/fstab.newroot', 'upper', 'work']));
		const modules = names.filter((n) => n.startsWith('lib/modules/') && n.endsWith('.ko'));
		expect(modules.length).toBeGreaterThan(2);
		for (const m of modules) expect(m).toMatch(/^lib\/modules\/\d+-\w+\.ko$/);
		const out = path.join(tmp, `x-${version}`);
		mkdirSync(out);
		await execa('cpio', ['-idm', '-F', file, modules[0]!], { cwd: out });
		expect(readFileSync(path.join(out, modules[0]!)).subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
	});
});

describe('the guest run script', () => {
	test('quotes every argument so sh passes it through byte for byte', async () => {
		const words = ['plain', "it's", 'two words', '$HOME', '`id`', '"q"', '\\back', 'new\nline', '*', ''];
		const script = runScript({ argv: ['printf', '%s\\0', ...words], cwd: tmp, env: { A_B: "x'y" }, shares: [] });
		const file = path.join(tmp, 'run.sh');
		writeFileSync(file, script);
		const r = await execa('sh', [file], { env: {}, extendEnv: false });
		expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
		expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
		expect(() => runScript({ argv: ['true'], cwd: '/', env: { 'BAD-NAME': '1' }, shares: [] })).toThrow(/invalid environment variable name/);
		expect(() => runScript({ argv: [], cwd: '/', env: {}, shares: [] })).toThrow(/no command/);
	});

	test('mounts lists each writable share by tag and refuses relative paths', () => {
		expect(mountsFile({ argv: ['x'], cwd: '/', env: {}, shares: [{ tag: 'hmrw0', dir: '/tmp/a b' }] })).toBe('hmrw0 /tmp/a b\n');
		expect(() => mountsFile({ argv: ['x'], cwd: '/', env: {}, shares: [{ tag: 't', dir: 'rel' }] })).toThrow(/absolute path/);
	});

	test('QEMU arguments: console on the serial port, command I/O on virtio ports, root read-only', () => {
		const args = qemuArgs({
			kernelImage: '/k', initramfs: '/i', accel: 'tcg', memMiB: 512, cpus: 1, statusFile: '/s',
			stdoutSocket: '/o.sock', stderrSocket: '/e.sock', specDir: '/tmp/spec', shares: [{ tag: 'hmrw0', dir: '/data' }],
		});
		const joined = args.join(' ');
		expect(joined).toContain('-kernel /k -initrd /i');
		expect(joined).toContain('-serial chardev:con');
		expect(joined).toContain('socket,id=hmout,path=/o.sock');
		expect(joined).toContain('name=hm.stdout');
		expect(joined).toContain('path=/,security_model=none,readonly=on');
		expect(joined).toContain('local,id=hmrw0,path=/data,security_model=none');
		expect(args[args.indexOf('-append') + 1]).toMatch(/console=ttyS0 .*panic=-1 .*hm\.spec=\/tmp\/spec$/);
		expect(() => qemuArgs({ kernelImage: '/k', initramfs: '/i', accel: 'tcg', memMiB: 1, cpus: 1, statusFile: '/s', shares: [{ tag: 't', dir: '/a,b' }] })).toThrow(/commas/);
	});

	const base = { kernelImage: '/k', initramfs: '/i', memMiB: 512, cpus: 1, statusFile: '/s', shares: [{ tag: 'hmrw0', dir: '/data' }] };
	const append = (args: string[]) => args[args.indexOf('-append') + 1]!.split(' ');

	test('microvm (the default) puts every virtio device on MMIO and tells a TCG guest the TSC frequency', () => {
		const args = qemuArgs({ ...base, accel: 'tcg', tscKhz: 2596120 });
		expect(args[args.indexOf('-machine') + 1]).toBe('microvm,accel=tcg');
		const devices = args.filter((_, i) => args[i - 1] === '-device');
		expect(devices.filter((d) => /virtio-(serial|9p)-device\b/.test(d))).toHaveLength(3); // serial, root, one share
		expect(devices.some((d) => d.includes('-pci'))).toBe(false);
		expect(append(args)).toEqual(expect.arrayContaining(['tsc_early_khz=2596120', 'pci=off', 'hostname=hybridmem-vm']));
		// The caller's words come after the runner's, so they win; the spec stays last.
		const words = append(qemuArgs({ ...base, accel: 'tcg', tscKhz: 1, extraKernelArgs: ['rodata=on', 'nohz=on'], specDir: '/sp' }));
		expect(words.indexOf('rodata=on')).toBeGreaterThan(words.indexOf('rodata=off'));
		expect(words.indexOf('nohz=on')).toBeGreaterThan(words.indexOf('nohz=off'));
		expect(words.at(-1)).toBe('hm.spec=/sp');
		// Under KVM the guest reads the TSC frequency itself.
		expect(append(qemuArgs({ ...base, accel: 'kvm', tscKhz: 2596120 })).some((w) => w.startsWith('tsc_early_khz'))).toBe(false);
	});

	test('q35 puts the same devices on PCI and keeps PCI probing', () => {
		const args = qemuArgs({ ...base, accel: 'tcg', machine: 'q35', tscKhz: 2596120 });
		expect(args[args.indexOf('-machine') + 1]).toBe('q35,accel=tcg');
		const devices = args.filter((_, i) => args[i - 1] === '-device');
		expect(devices.filter((d) => /virtio-(serial|9p)-pci\b/.test(d))).toHaveLength(3);
		expect(append(args)).not.toContain('pci=off');
		// q35's guest calibrates the TSC against its PM timer; runner.test.ts compares that with ours.
		expect(append(args).some((w) => w.startsWith('tsc_early_khz'))).toBe(false);
	});

	test('the machine: microvm while its transports suffice and a TCG guest can be told the TSC rate, else q35', () => {
		expect(chooseMachine(0, 'tcg', 2596120)).toBe('microvm');
		expect(chooseMachine(MICROVM_TRANSPORTS - 2, 'tcg', 2596120)).toBe('microvm');
		expect(chooseMachine(MICROVM_TRANSPORTS - 1, 'tcg', 2596120)).toBe('q35');
		expect(chooseMachine(0, 'tcg', undefined)).toBe('q35');
		expect(chooseMachine(0, 'kvm', undefined)).toBe('microvm');
	});
});

describe('host TSC frequency', () => {
	const cpu = (flags: string, bogomips = '5192.24') => `processor\t: 0\nflags\t\t: fpu ${flags} sse2\nbogomips\t: ${bogomips}\n\nprocessor\t: 1\n`;

	test('is bogomips * 500 when the TSC is constant and never stops', () => {
		expect(parseTscKhz(cpu('tsc constant_tsc nonstop_tsc'))).toBe(2596120);
		expect(parseTscKhz(cpu('tsc constant_tsc'))).toBeUndefined();
		expect(parseTscKhz(cpu('tsc nonstop_tsc'))).toBeUndefined();
		expect(parseTscKhz(cpu('constant_tsc nonstop_tsc'))).toBeUndefined();
		expect(parseTscKhz(cpu('tsc constant_tsc nonstop_tsc', 'n/a'))).toBeUndefined();
		expect(parseTscKhz('')).toBeUndefined();
	});
});

describe('the cache', () => {
	test('building an entry removes those unused for two weeks; using one keeps it', () => {
		const dir = mkdtempSync(path.join(tmp, 'cache-'));
		const old = new Date(Date.now() - 15 * 86_400_000);
		for (const name of ['vmlinux-gone-kernel', 'initramfs-x-stale.cpio', 'initramfs-x-used.cpio']) {
			writeFileSync(path.join(dir, name), 'x');
			utimesSync(path.join(dir, name), old, old);
		}
		writeFileSync(path.join(dir, 'initramfs-x-new.cpio'), 'x');
		markUsed(path.join(dir, 'initramfs-x-used.cpio'));
		expect(pruneUnused(dir).map((f) => path.basename(f)).sort()).toEqual(['initramfs-x-stale.cpio', 'vmlinux-gone-kernel']);
		expect(existsSync(path.join(dir, 'initramfs-x-used.cpio'))).toBe(true);
		expect(existsSync(path.join(dir, 'initramfs-x-new.cpio'))).toBe(true);
	});
});
