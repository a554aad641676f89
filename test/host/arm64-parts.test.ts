// The arm64 guest's parts without booting one: the fetch spec and apt's
// view of a foreign architecture, the cross compiler a cross-built kernel's
// headers name, the mount tables that lay the arm64 root over the host's,
// QEMU's virt command line, and the kernel's page size as the evidence
// readers take it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { kernelPageSize } from '../../src/evidence/page-size.js';
import { parseKernelLog } from '../../src/kmsg/parse.js';
import { kernelCompiler } from '../../src/setup/build.js';
import { ARM64_KERNEL_ARGS, ARM64_ROOT_TAG, arm64Fstabs, arm64QemuArgs } from '../../src/vm/arm64.js';
import { archOfRelease, archOfSpec, crossCompiler, parseFetchSpec, writeAptConfig } from '../../src/vm/debian.js';
import { FSTAB_ROOT, ROOT_TAG } from '../../src/vm/guest-init.js';
import { kernelFeatures, parseKernelConfig } from '../../src/vm/kernels.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-arm64-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('arm64 kernels from Debian', () => {
	test('flavours arm64 and arm64-16k, and the architecture of a release', () => {
		expect(parseFetchSpec('trixie:arm64')).toEqual({ suite: 'trixie', flavour: 'arm64' });
		expect(parseFetchSpec('sid:arm64-16k')).toEqual({ suite: 'sid', flavour: 'arm64-16k' });
		expect(parseFetchSpec('6.12.118+deb13-arm64-16k')).toEqual({ suite: 'trixie', release: '6.12.118+deb13-arm64-16k' });
		expect(archOfSpec(parseFetchSpec('trixie:arm64-16k'))).toBe('arm64');
		expect(archOfSpec(parseFetchSpec('trixie'))).toBe('amd64');
		expect(archOfRelease('6.12.118+deb13-arm64')).toBe('arm64');
		expect(archOfRelease('6.12.118+deb13-rt-amd64')).toBe('amd64');
		expect(archOfRelease('6.1.0-57-amd64')).toBe('amd64');
	});

	test("apt sees arm64 beside amd64, so kbuild (Multi-Arch: foreign) stays amd64's", () => {
		const conf = readFileSync(writeAptConfig('trixie', path.join(tmp, 'apt'), '/usr/share/keyrings/debian-archive-keyring.gpg', [], 'arm64'), 'utf8');
		expect(conf).toContain('APT::Architecture "amd64";');
		expect(conf).toContain('APT::Architectures { "amd64"; "arm64"; };');
		expect(readFileSync(writeAptConfig('trixie', path.join(tmp, 'apt64')), 'utf8')).toContain('APT::Architectures { "amd64"; };');
	});

	test('the kernel compiler of a cross-built kernel is the cross compiler, in the chroot too', () => {
		const headers = path.join(tmp, 'headers');
		mkdirSync(headers, { recursive: true });
		// trixie's linux-headers-6.12.118+deb13-arm64, as shipped.
		writeFileSync(
			path.join(headers, '.kernelvariables'),
			'override ARCH = arm64\nCCACHE = ccache\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-14\noverride CROSS_COMPILE = aarch64-linux-gnu-\n',
		);
		expect(kernelCompiler(headers)).toBe('aarch64-linux-gnu-gcc-14');
		writeFileSync(path.join(headers, '.kernelvariables'), 'override ARCH = x86\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-14\n');
		expect(kernelCompiler(headers)).toBe('gcc-14');
		expect(crossCompiler('gcc-14', 'arm64')).toBe('gcc-14-aarch64-linux-gnu');
		expect(crossCompiler('gcc-14', 'amd64')).toBe('gcc-14');
		expect(crossCompiler('libelf1t64', 'arm64')).toBe('libelf1t64');
	});

	test("a 16K kernel's config says 16K pages", () => {
		expect(kernelFeatures(parseKernelConfig('CONFIG_ARM64=y\nCONFIG_ARM64_16K_PAGES=y\n')).pageSize).toBe('16K');
		expect(kernelFeatures(parseKernelConfig('CONFIG_ARM64=y\nCONFIG_ARM64_4K_PAGES=y\n')).pageSize).toBe('4K');
	});
});

describe('the arm64 guest', () => {
	test("the arm64 root is the overlay's upper lower layer, the host's root below it", () => {
		const lines = arm64Fstabs()[FSTAB_ROOT]!.split('\n');
		expect(lines).toContain(`${ARM64_ROOT_TAG} /arm64 9p trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose 0 0`);
		expect(lines.find((l) => l.startsWith('overlay '))).toBe('overlay /newroot overlay lowerdir=/arm64:/lower,upperdir=/upper,workdir=/work 0 0');
		// Both 9p mounts come before the overlay that stacks them.
		expect(lines.findIndex((l) => l.startsWith(`${ROOT_TAG} `))).toBeLessThan(lines.findIndex((l) => l.startsWith('overlay ')));
		expect(lines.findIndex((l) => l.startsWith(`${ARM64_ROOT_TAG} `))).toBeLessThan(lines.findIndex((l) => l.startsWith('overlay ')));
	});

	test('virt, a Neoverse-N1 (16K granules), PL011 console, virtio over PCI, no x86 words', () => {
		const args = arm64QemuArgs({ kernelImage: '/k', initramfs: '/i', accel: 'tcg', memMiB: 2048, cpus: 2, statusFile: '/s', shares: [{ tag: 'hmrw0', dir: '/tmp/x' }], arm64Root: '/r', specDir: '/tmp/spec' });
		const opt = (name: string) => args.filter((_, i) => args[i - 1] === name);
		expect(opt('-machine')).toEqual(['virt,accel=tcg']);
		expect(opt('-cpu')).toEqual(['neoverse-n1']);
		const append = opt('-append')[0]!.split(' ');
		expect(append[0]).toBe('console=ttyAMA0');
		expect(append.filter((w) => /^(console=ttyS0|tsc=|i8042\.|no_timer_check)/.test(w))).toEqual([]);
		expect(append.at(-1)).toBe('hm.spec=/tmp/spec');
		expect(opt('-device').filter((d) => d.startsWith('virtio-9p-pci'))).toEqual([
			`virtio-9p-pci,fsdev=${ROOT_TAG},mount_tag=${ROOT_TAG}`,
			`virtio-9p-pci,fsdev=${ARM64_ROOT_TAG},mount_tag=${ARM64_ROOT_TAG}`,
			'virtio-9p-pci,fsdev=hmrw0,mount_tag=hmrw0',
		]);
		expect(opt('-fsdev')).toContain(`local,id=${ARM64_ROOT_TAG},path=/r,security_model=none,readonly=on,multidevs=remap`);
		expect(ARM64_KERNEL_ARGS).toContain('nokaslr');
	});
});

test("the evidence readers' page size is the kernel's (getconf PAGESIZE, libc's sysconf)", async () => {
	const { execa } = await import('execa');
	expect(kernelPageSize()).toBe(Number((await execa('getconf', ['PAGESIZE'])).stdout.trim()));
});

describe("the notes' crash on arm64, as hybridmem's own arm64 guests printed it", () => {
	const parse = (name: string) => {
		const text = readFileSync(path.resolve('test/fixtures/kmsg', name), 'utf8');
		const bug = parseKernelLog(text).reports.find((r) => r.kind === 'BUG');
		expect(bug, name).toBeDefined();
		return {
			kind: bug!.kind,
			file: bug!.file,
			line: bug!.line,
			function: bug!.function,
			ended: bug!.ended,
			// The first frame below the faulting function (arm64's trace starts with it, x86's does not).
			caller: bug!.frames.find((f) => f.fn !== bug!.function)?.fn,
			moduleFrame: bug!.frames.find((f) => f.module === 'hybridmem_test')?.fn,
			module: bug!.module,
			fields: Object.keys(bug!).filter((k) => (bug as unknown as Record<string, unknown>)[k] !== undefined).sort(),
		};
	};
	test.each(['real-6.12-arm64-bug-pfnmap.console.log', 'real-6.12-arm64-16k-bug-pfnmap.console.log'])('%s parses to the fields of the x86_64 report', (name) => {
		const arm = parse(name);
		expect(arm).toMatchObject({ kind: 'BUG', file: 'mm/memory.c', function: 'vm_insert_page', caller: 'hm_mmap', moduleFrame: 'hm_mmap', ended: true, module: 'hybridmem_test' });
		expect(arm).toEqual(parse('real-6.12-bug-pfnmap.console.log'));
	});
});
