// Fetched Debian kernels without the network: reading the fetch spec and
// apt's records, the private apt configuration, making an unpacked tree
// usable where it lies, and what the kernel list says about a fetched kernel.
import { execa } from 'execa';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { carriedAptOptions, dependNames, MARKER, normaliseTree, parseFetchSpec, parseStanza, suiteOfRelease, writeAptConfig } from '../../src/vm/debian.js';
import { chooseKernel, describeFeatures, findKernel, kernelFeatures, listKernels, missingForRunner, parseKernelConfig } from '../../src/vm/kernels.js';
import { kernelCompiler } from '../../src/setup/build.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-debian-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('fetch spec', () => {
	test('suites, flavours and exact releases', () => {
		expect(parseFetchSpec('bullseye')).toEqual({ suite: 'bullseye', flavour: 'amd64' });
		expect(parseFetchSpec('trixie:rt')).toEqual({ suite: 'trixie', flavour: 'rt' });
		expect(parseFetchSpec('sid:cloud')).toEqual({ suite: 'sid', flavour: 'cloud' });
		expect(parseFetchSpec('5.10.0-32-amd64')).toEqual({ suite: 'bullseye', release: '5.10.0-32-amd64' });
		expect(parseFetchSpec('6.12.118+deb13-rt-amd64')).toEqual({ suite: 'trixie', release: '6.12.118+deb13-rt-amd64' });
		expect(parseFetchSpec('trixie:6.12.117+deb13-amd64')).toEqual({ suite: 'trixie', release: '6.12.117+deb13-amd64' });
		expect(suiteOfRelease('7.2.13+deb14-amd64')).toBe('sid');
		expect(suiteOfRelease('6.1.0-57-amd64')).toBe('bookworm');
		expect(() => parseFetchSpec('jessie')).toThrow(/unknown suite 'jessie'/);
		expect(() => parseFetchSpec('trixie:arm64-64k')).toThrow(/unknown flavour/);
		expect(() => parseFetchSpec('4.19.0-20-amd64')).toThrow(/SUITE:4\.19\.0-20-amd64/);
	});

	test("apt's records: the first stanza, continuation lines, alternatives", () => {
		const text = 'Package: linux-headers-6.12.118+deb13-amd64\nVersion: 6.12.118-1\nDepends: linux-base (>= 4.12~), linux-headers-6.12.118+deb13-common (= 6.12.118-1),\n linux-image-6.12.118+deb13-amd64 (= 6.12.118-1) | linux-image-6.12.118+deb13-amd64-unsigned (= 6.12.118-1), gcc-14\n\nPackage: other\nVersion: 1\n';
		const f = parseStanza(text);
		expect(f.Version).toBe('6.12.118-1');
		expect(dependNames(f.Depends)).toEqual([
			['linux-base'],
			['linux-headers-6.12.118+deb13-common'],
			['linux-image-6.12.118+deb13-amd64', 'linux-image-6.12.118+deb13-amd64-unsigned'],
			['gcc-14'],
		]);
	});

	test('the private apt configuration names only its own directories and the archive keyring', async () => {
		const dir = path.join(tmp, 'apt');
		const conf = writeAptConfig('bullseye', dir, '/usr/share/keyrings/debian-archive-keyring.gpg');
		expect(readFileSync(path.join(dir, 'etc', 'sources.list'), 'utf8')).toBe(
			'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main\n' +
				'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main\n',
		);
		// What apt itself makes of it: every directory and list under `dir`, none of /etc/apt.
		const dump = (await execa('apt-config', ['dump'], { env: { APT_CONFIG: conf } })).stdout;
		const get = (key: string) => new RegExp(`^${key.replace(/:/g, ':')} "([^"]*)";$`, 'm').exec(dump)?.[1];
		expect(get('Dir::Etc')).toBe(path.join(dir, 'etc') + '/');
		expect(get('Dir::State::status')).toBe(path.join(dir, 'state', 'status'));
		expect(get('Dir::Cache')).toBe(path.join(dir, 'cache') + '/');
		const lists = await execa('apt-get', ['--print-uris', '-q', 'update'], { env: { APT_CONFIG: conf }, reject: false });
		expect(lists.stdout).toContain('bullseye-security');
		expect(lists.stdout).not.toMatch(/bookworm/);
	});
});

describe("the machine's apt settings carried over", () => {
	test('proxies and the Valid-Until/Date checks only; sources, lists and directories never', () => {
		const dump = [
			'Acquire::Check-Valid-Until "false";',
			'Acquire::Check-Date "false";',
			'Acquire::http::Proxy "http://proxy:3142/";',
			'Acquire::https::Proxy::deb.debian.org "DIRECT";',
			'Dir::Etc::sourcelist "sources.list";',
			'Dir::State::lists "lists/";',
			'APT::Default-Release "bookworm";',
			'Acquire::Languages "en";',
		].join('\n');
		expect(carriedAptOptions(dump)).toEqual([
			'Acquire::Check-Valid-Until "false";',
			'Acquire::Check-Date "false";',
			'Acquire::http::Proxy "http://proxy:3142/";',
			'Acquire::https::Proxy::deb.debian.org "DIRECT";',
		]);
	});
});

describe('an unpacked tree', () => {
	/** A tree laid out like the packages of `layout`: bullseye (/lib) or trixie (/usr/lib). */
	function fakeTree(name: string, release: string, merged: boolean): string {
		const root = path.join(tmp, name);
		const modules = path.join(root, merged ? 'usr/lib' : 'lib', 'modules', release);
		const headers = path.join(root, 'usr/src', `linux-headers-${release}`);
		const common = path.join(root, 'usr/src', `linux-headers-${release.replace(/-amd64$/, '')}-common`);
		mkdirSync(path.join(modules, 'kernel'), { recursive: true });
		mkdirSync(headers, { recursive: true });
		mkdirSync(common, { recursive: true });
		mkdirSync(path.join(root, 'usr/lib/linux-kbuild-x/scripts'), { recursive: true });
		mkdirSync(path.join(root, 'boot'), { recursive: true });
		writeFileSync(path.join(root, 'boot', `vmlinuz-${release}`), '');
		writeFileSync(path.join(modules, 'modules.dep'), '');
		writeFileSync(path.join(common, 'Makefile'), 'all:\n\t@echo common-makefile-reached\n');
		writeFileSync(path.join(headers, 'Makefile'), `include /usr/src/${path.basename(common)}/Makefile\n`);
		symlinkSync('../../lib/linux-kbuild-x/scripts', path.join(headers, 'scripts'));
		symlinkSync(merged ? `../../../src/linux-headers-${release}` : `/usr/src/linux-headers-${release}`, path.join(modules, 'build'));
		return root;
	}

	test('bullseye layout: absolute links and the include become relative, and make reaches the common Makefile', async () => {
		const root = fakeTree('bullseye', '5.10.0-46-amd64', false);
		normaliseTree(root, '5.10.0-46-amd64');
		const build = path.join(root, 'lib/modules/5.10.0-46-amd64/build');
		expect(readlinkSync(build)).toBe('../../../usr/src/linux-headers-5.10.0-46-amd64');
		expect(realpathSync(build)).toBe(realpathSync(path.join(root, 'usr/src/linux-headers-5.10.0-46-amd64')));
		expect(readFileSync(path.join(build, 'Makefile'), 'utf8')).toBe('include ../linux-headers-5.10.0-46-common/Makefile\n');
		expect((await execa('make', ['-s', '-C', build])).stdout).toBe('common-makefile-reached');
	});

	test('trixie layout (/usr-merged): lib points at usr/lib, relative links are kept', () => {
		const root = fakeTree('trixie', '6.12.118+deb13-amd64', true);
		normaliseTree(root, '6.12.118+deb13-amd64');
		expect(lstatSync(path.join(root, 'lib')).isSymbolicLink()).toBe(true);
		expect(realpathSync(path.join(root, 'lib/modules/6.12.118+deb13-amd64/build'))).toBe(realpathSync(path.join(root, 'usr/src/linux-headers-6.12.118+deb13-amd64')));
	});

	test("sid's layout: vmlinuz, config and System.map in the modules directory are named in boot/", () => {
		const release = '7.2.13+deb14-amd64';
		const root = fakeTree('sid', release, true);
		rmSync(path.join(root, 'boot'), { recursive: true });
		for (const f of ['vmlinuz', 'config', 'System.map']) writeFileSync(path.join(root, 'usr/lib/modules', release, f), f);
		normaliseTree(root, release);
		expect(readFileSync(path.join(root, 'boot', `vmlinuz-${release}`), 'utf8')).toBe('vmlinuz');
		expect(readFileSync(path.join(root, 'boot', `config-${release}`), 'utf8')).toBe('config');
		expect(readlinkSync(path.join(root, 'boot', `System.map-${release}`))).toBe(`../lib/modules/${release}/System.map`);
	});

	test('the kernel list shows a fetched kernel beside installed ones, with its features, never as the default', () => {
		const kernels = path.join(tmp, 'fetched');
		const release = '5.10.0-46-amd64';
		const root = path.join(kernels, release);
		mkdirSync(kernels, { recursive: true });
		rmSync(root, { recursive: true, force: true });
		// The fake bullseye tree, moved where fetched kernels live, with its record and config.
		const src = fakeTree('fetched-src', release, false);
		normaliseTree(src, release);
		renameSync(src, root);
		writeFileSync(path.join(root, MARKER), JSON.stringify({ release, suite: 'bullseye', flavour: 'amd64', packages: [], buildDepends: ['gcc-10'], fetchedAt: '' }));
		writeFileSync(path.join(root, 'boot', `config-${release}`), 'CONFIG_X86=y\nCONFIG_MODULES=y\nCONFIG_9P_FS=m\nCONFIG_NET_9P_VIRTIO=m\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_CONSOLE=m\nCONFIG_OVERLAY_FS=m\nCONFIG_PVH=y\nCONFIG_CC_VERSION_TEXT="gcc-10 (Debian 10.2.1-6) 10.2.1 20210110"\n');
		const boot = path.join(tmp, 'noboot');
		const mods = path.join(tmp, 'nomods');
		mkdirSync(boot, { recursive: true });
		mkdirSync(mods, { recursive: true });
		const list = listKernels(boot, mods, kernels);
		expect(list).toHaveLength(1);
		const k = list[0]!;
		expect([k.version, k.origin, k.suite, k.usable, k.root]).toEqual([release, 'fetched', 'bullseye', true, root]);
		expect(k.features?.ninep).toBe('m');
		expect(describeFeatures(k.features!)).toBe('9p=m, 9p-virtio=m, virtio-mmio=m, virtio-pci=m, virtio-console=m, overlay=m, no PREEMPT_RT, 4K pages, built with gcc-10');
		expect(findKernel(release, boot, mods, kernels).origin).toBe('fetched');
		expect(chooseKernel(release, boot, mods, kernels).root).toBe(root);
		// A fetched kernel is booted by name only.
		expect(() => chooseKernel(undefined, boot, mods)).toThrow(/no usable kernel/);
		// Without 9p the runner cannot share the host root: a reason, not a hung boot.
		writeFileSync(path.join(root, 'boot', `config-${release}`), 'CONFIG_X86=y\nCONFIG_MODULES=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_OVERLAY_FS=y\n');
		const lacking = findKernel(release, boot, mods, kernels);
		expect(lacking.usable).toBe(false);
		expect(lacking.reason).toMatch(/built without CONFIG_9P_FS .*CONFIG_NET_9P_VIRTIO/);
		expect(() => chooseKernel(release, boot, mods, kernels)).toThrow(/cannot be used: built without CONFIG_9P_FS/);
	});
});

describe('kernel features', () => {
	test('PREEMPT_RT, page sizes, transports, the compiler', () => {
		const rt = kernelFeatures(parseKernelConfig('CONFIG_X86=y\nCONFIG_PREEMPT_RT=y\nCONFIG_MODULES=y\nCONFIG_9P_FS=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_OVERLAY_FS=m\n'));
		expect([rt.preemptRt, rt.pageSize, rt.virtioMmio, rt.ninep]).toEqual([true, '4K', 'n', 'y']);
		expect(missingForRunner(rt)).toBeUndefined();
		const arm = kernelFeatures(parseKernelConfig('CONFIG_ARM64=y\nCONFIG_ARM64_16K_PAGES=y\n# CONFIG_ARM64_4K_PAGES is not set\n'));
		expect(arm.pageSize).toBe('16K');
		expect(missingForRunner(arm)).toMatch(/CONFIG_MODULES .*CONFIG_VIRTIO_MMIO or CONFIG_VIRTIO_PCI/);
	});

	test("the compiler a Debian kernel's headers name", () => {
		const dir = path.join(tmp, 'kv');
		mkdirSync(dir, { recursive: true });
		writeFileSync(path.join(dir, '.kernelvariables'), 'override ARCH = x86\nCCACHE = ccache\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-14\n');
		expect(kernelCompiler(dir)).toBe('gcc-14');
		expect(kernelCompiler(path.join(tmp, 'none'))).toBeUndefined();
	});
});
