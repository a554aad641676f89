// hybridmem doctor against this machine's real state: each expectation is
// worked out here from the system itself (files, ldd, qemu --version), not
// taken from the code under test.
import { execa } from 'execa';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { main as doctorMain } from '../../src/cli/commands/doctor.js';
import { findAddon } from '../../src/device/binding.js';
import {
	checkAddon,
	checkBusybox,
	checkHeaders,
	checkKernels,
	checkKvm,
	checkModuleSupport,
	checkModulesForKernels,
	checkQemu,
	checkVmMachine,
	isStaticElf,
	parseQemuVersion,
	type DoctorReport,
} from '../../src/setup/doctor.js';
import { moduleFile } from '../../src/setup/paths.js';
import { chooseAccel } from '../../src/vm/accel.js';
import { QEMU_BINARY } from '../../src/vm/runner.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-doctor-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const release = os.release();
const hostLoadsModules = existsSync('/proc/modules');

/** Kernels with an image, modules and headers, found here without the code under test. */
function usableKernelsHere(): string[] {
	return readdirSync('/boot')
		.filter((n) => n.startsWith('vmlinuz-'))
		.map((n) => n.slice('vmlinuz-'.length))
		.filter((v) => existsSync(`/lib/modules/${v}/build/Makefile`) && existsSync(`/lib/modules/${v}/modules.dep`));
}

/** The .ko exists in the build directory named by the current sources. */
function moduleUpToDate(kver: string): boolean {
	return existsSync(moduleFile(kver));
}

describe('running kernel', () => {
	test('module support is what /proc/modules says; without it the finding sends scenarios to the VM runner', () => {
		const c = checkModuleSupport();
		expect(c.status).toBe(hostLoadsModules ? 'ok' : 'missing');
		if (!hostLoadsModules) {
			expect(c.detail).toContain(`kernel ${release}`);
			expect(c.detail).toContain('VM runner');
			expect(c.fix).toContain('hybridmem vm');
		}
	});

	test('module support is ok on a kernel that has /proc/modules', () => {
		const fake = path.join(tmp, 'modules');
		writeFileSync(fake, '');
		expect(checkModuleSupport('6.1.0-56-amd64', fake).status).toBe('ok');
	});

	test('headers of the running kernel are found where kbuild looks for them', () => {
		const c = checkHeaders();
		const there = existsSync(`/lib/modules/${release}/build/Makefile`);
		expect(c.status).toBe(there ? 'ok' : 'missing');
		if (!there) expect(c.detail).toContain(`/lib/modules/${release}/build/Makefile`);
	});

	test('missing headers of a Debian kernel come with the apt command for its package', () => {
		const root = path.join(tmp, 'lib-modules');
		mkdirSync(path.join(root, '6.1.0-56-amd64'), { recursive: true });
		const c = checkHeaders('6.1.0-56-amd64', root);
		expect(c.status).toBe('missing');
		expect(c.fix).toBe('apt-get install -y linux-headers-6.1.0-56-amd64');
	});
});

describe('QEMU and busybox', () => {
	test('QEMU is reported with the version its own --version prints', async () => {
		const r = await execa(QEMU_BINARY, ['--version'], { reject: false });
		const c = await checkQemu();
		if (r.failed) {
			expect(c.status).toBe('missing');
			return;
		}
		const version = /version (\S+)/.exec(r.stdout)?.[1];
		expect(version).toMatch(/^\d+\.\d+/);
		expect(c.status).toBe('ok');
		expect(c.version).toBe(version);
		expect(c.detail).toContain(version);
	});

	test('QEMU missing from PATH names hybridmem bootstrap and the package', async () => {
		const c = await checkQemu(tmp);
		expect(c.status).toBe('missing');
		expect(c.detail).toContain('not on PATH');
		expect(c.fix).toBe('hybridmem bootstrap (it installs qemu-system-x86)');
	});

	test('parses the version line of Debian\'s QEMU', () => {
		expect(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright')).toBe('7.2.22');
		expect(parseQemuVersion('qemu: no such option')).toBeUndefined();
	});

	test('static and dynamic ELF files are told apart as ldd tells them apart', async () => {
		const files = ['/bin/busybox', process.execPath].filter((f) => existsSync(f));
		expect(files).toContain(process.execPath);
		for (const f of files) {
			const ldd = await execa('ldd', [f], { reject: false, all: true });
			const lddSaysStatic = /not a dynamic executable|statically linked/.test(ldd.all ?? '');
			expect(isStaticElf(f), f).toBe(lddSaysStatic);
		}
		// node itself is dynamically linked on Debian: the check must not call everything static.
		expect(isStaticElf(process.execPath)).toBe(false);
	});

	test('busybox check agrees with the installed busybox', () => {
		const c = checkBusybox();
		const bb = ['/bin/busybox', '/usr/bin/busybox'].find((f) => existsSync(f));
		if (!bb) return expect(c.fix).toBe('hybridmem bootstrap (it installs busybox-static)');
		expect(c.status).toBe(isStaticElf(bb) ? 'ok' : 'missing');
		expect(c.detail).toContain(bb);
	});
});

describe('VM machine', () => {
	test('microvm with a known TSC frequency, q35 without one; never needed', () => {
		const fast = checkVmMachine(2596120);
		expect(fast.status).toBe('ok');
		expect(fast.detail).toContain('microvm');
		expect(fast.detail).toContain('2596120 kHz');
		const slow = checkVmMachine(undefined);
		expect(slow.status).toBe('missing');
		expect(slow.detail).toMatch(/^q35/);
		expect(slow.neededFor).toEqual([]);
	});
});

describe('kernels, addon and module', () => {
	test('the VM kernels are those with image, modules and headers', () => {
		const here = usableKernelsHere();
		const c = checkKernels();
		expect(c.status).toBe(here.length > 0 ? 'ok' : 'missing');
		for (const v of here) expect(c.detail).toContain(v);
	});

	test('one module check per usable kernel, ok exactly when the .ko exists', () => {
		const here = usableKernelsHere();
		const checks = checkModulesForKernels();
		expect(checks.map((c) => c.id).sort()).toEqual(here.map((v) => `module:${v}`).sort());
		for (const c of checks) {
			const kver = c.id.slice('module:'.length);
			if (!existsSync(moduleFile(kver))) {
				expect(c.status).toBe('missing');
				expect(c.fix).toMatch(/^hybridmem build --(kernel|all-kernels)/);
			}
			expect(c.status).toBe(moduleUpToDate(kver) ? 'ok' : 'missing');
		}
		// No module is a gap: hybridmem run builds the one it needs first.
		expect(checks.filter((c) => c.neededFor.length > 0)).toEqual([]);
	});

	test('the addon check reports the file the loader would load', () => {
		const found = findAddon();
		const c = checkAddon();
		expect(c.status).toBe(found ? 'ok' : 'missing');
		if (found) expect(c.detail).toContain(found);
	});
});

describe('KVM', () => {
	const saved = process.env.HYBRIDMEM_CACHE;
	let cache: string;
	beforeEach(() => {
		cache = mkdtempSync(path.join(tmp, 'cache-'));
		process.env.HYBRIDMEM_CACHE = cache;
	});
	afterEach(() => {
		if (saved === undefined) delete process.env.HYBRIDMEM_CACHE;
		else process.env.HYBRIDMEM_CACHE = saved;
	});
	let kvmOpens = false;
	try {
		accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
		kvmOpens = true;
	} catch {
		/* no KVM here */
	}

	test('without a cached verdict doctor neither boots a probe guest nor writes a verdict', async () => {
		const c = await checkKvm();
		expect(c.status).toBe('missing');
		expect(readdirSync(cache)).toEqual([]);
		if (kvmOpens) expect(c.fix).toBe('hybridmem doctor --probe-kvm');
		else expect(c.detail).toContain('TCG');
	});

	test.runIf(kvmOpens)('reads the verdict the runner cached, and never probes when there is one', async () => {
		await chooseAccel('auto', QEMU_BINARY, async () => true);
		const probe = vi.fn(async () => 'tcg' as const);
		const works = await checkKvm(probe);
		expect(works.status).toBe('ok');
		expect(works.detail).toContain('cached verdict');
		expect(probe).not.toHaveBeenCalled();

		rmSync(cache, { recursive: true, force: true });
		await chooseAccel('auto', QEMU_BINARY, async () => false);
		const broken = await checkKvm();
		expect(broken.status).toBe('missing');
		expect(broken.detail).toContain('did not boot a test guest');
	});

	test.runIf(kvmOpens)('with --probe-kvm and no verdict, the probe decides', async () => {
		expect((await checkKvm(async () => 'kvm')).status).toBe('ok');
		expect((await checkKvm(async () => 'tcg')).status).toBe('missing');
	});
});

describe('hybridmem doctor --json', () => {
	test('says where scenarios run on this machine, and exits accordingly', async () => {
		const out: string[] = [];
		const spy = vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
		let code: number;
		try {
			code = await doctorMain(['--json']);
		} finally {
			spy.mockRestore();
		}
		const report = JSON.parse(out.join('\n')) as DoctorReport;

		const native =
			process.getuid?.() === 0 &&
			hostLoadsModules &&
			existsSync(`/lib/modules/${release}/build/Makefile`) &&
			process.env.HYBRIDMEM_NATIVE === '1';
		const kernels = usableKernelsHere().sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
		const qemu = (await execa(QEMU_BINARY, ['--version'], { reject: false })).exitCode === 0;
		const vm =
			qemu &&
			existsSync('/bin/busybox') &&
			kernels.length > 0 &&
			findAddon() !== undefined &&
			existsSync('/usr/bin/make') &&
			existsSync('/usr/bin/gcc');

		expect(report.paths.native.usable).toBe(native && report.paths.native.missing.length === 0);
		if (!hostLoadsModules) expect(report.paths.native.missing).toContain('module-support');
		expect(report.paths.vm.usable).toBe(vm);
		expect(report.scenarios).toBe(native && report.paths.native.usable ? 'native' : vm ? 'vm' : 'none');
		expect(code).toBe(report.scenarios === 'none' ? 1 : 0);
		// Every gap a path depends on comes with a command to fix it.
		for (const c of report.checks) if (c.status === 'missing' && c.neededFor.length) expect(c.fix, c.id).toBeTruthy();
	});
});
