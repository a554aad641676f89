// hybridmem doctor in each state a machine can be in: a fresh install (no
// module built yet), before and after a build, no QEMU, no kernels, no
// compiler, no addon, and a host that can load modules.  Each state is made
// real (an empty cache, an empty PATH, empty /boot and /lib/modules stand-ins,
// a real kbuild) and doctor must say what is true and name the command that
// closes each gap that matters.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { renderReport } from '../../src/cli/commands/doctor.js';
import { buildModule } from '../../src/setup/build.js';
import {
	checkAddon,
	checkCompiler,
	checkHeaders,
	checkKernels,
	checkModuleBuilt,
	checkModuleSupport,
	checkNativeOptIn,
	checkQemu,
	checkRoot,
	runDoctor,
	summarize,
	type Check,
} from '../../src/setup/doctor.js';
import { moduleFile } from '../../src/setup/paths.js';
import { listKernels } from '../../src/vm/kernels.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-doctor-states-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const emptyPath = path.join(tmp, 'no-bin');
const defaultKernel = listKernels().find((k) => k.usable)?.version;

/** The VM path's prerequisites as this machine has them (real checks). */
async function vmChecks(): Promise<Check[]> {
	return (await runDoctor()).checks.filter((c) => c.neededFor.includes('vm'));
}

describe('fresh install: nothing built yet', () => {
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

	test('an unbuilt module is reported, but is no gap: run builds it, so scenarios can run as before', async () => {
		const fresh = await runDoctor();
		const mod = fresh.checks.filter((c) => c.id.startsWith('module:'));
		expect(mod.length).toBeGreaterThan(0);
		for (const c of mod) {
			expect(c.status).toBe('missing');
			expect(c.neededFor).toEqual([]);
			expect(c.detail).toContain('hybridmem run builds it first');
			expect(c.fix).toMatch(/^hybridmem build --(kernel|all-kernels)/);
		}
		// Whether scenarios run depends only on the real prerequisites, all of which are checked.
		const vmReady = (await vmChecks()).every((c) => c.status === 'ok');
		expect(fresh.paths.vm.usable).toBe(vmReady);
		expect(renderReport(fresh)).not.toContain('Scenarios cannot run here yet');
		if (vmReady) expect(renderReport(fresh)).toContain('Scenarios will run in the VM runner (hybridmem run builds what is not built yet first).');
	});

	test.runIf(defaultKernel !== undefined)('after a build of the default kernel its module check is ok, at the path in the cache', async () => {
		const kver = defaultKernel!;
		expect(checkModuleBuilt(kver).status).toBe('missing');
		const built = await buildModule(kver);
		expect(built.built).toBe(true);
		expect(built.file).toBe(moduleFile(kver));
		expect(built.file.startsWith(cache)).toBe(true);
		const after = checkModuleBuilt(kver);
		expect(after.status).toBe('ok');
		expect(after.detail).toContain(built.file);
		// A second build finds it up to date.
		expect((await buildModule(kver)).built).toBe(false);
	}, 180_000);
});

describe('missing pieces name the command that installs them', () => {
	test('no QEMU: the VM path is not usable, the fix is hybridmem bootstrap, and doctor says scenarios cannot run', async () => {
		const qemu = await checkQemu(emptyPath);
		expect(qemu.status).toBe('missing');
		expect(qemu.fix).toBe('hybridmem bootstrap (it installs qemu-system-x86)');
		const others = (await vmChecks()).filter((c) => c.id !== 'qemu');
		const report = summarize([checkRoot(1000), qemu, ...others]);
		expect(report.paths.vm.usable).toBe(false);
		expect(report.paths.vm.missing).toContain('qemu');
		expect(report.scenarios).toBe('none');
		expect(renderReport(report)).toContain('fix: hybridmem bootstrap (it installs qemu-system-x86)');
		expect(renderReport(report)).toContain('Scenarios cannot run here yet');
	});

	test('no kernels: missing, with hybridmem bootstrap as the fix', () => {
		const empty = mkdtempSync(path.join(tmp, 'boot-'));
		const c = checkKernels(listKernels(empty, empty));
		expect(c.status).toBe('missing');
		expect(c.detail).toContain('no kernel under /boot');
		expect(c.fix).toMatch(/^hybridmem bootstrap /);
		expect(c.neededFor).toEqual(['vm']);
	});

	test('no gcc or make: needed by both paths, hybridmem bootstrap installs build-essential', () => {
		const c = checkCompiler(emptyPath);
		expect(c.status).toBe('missing');
		expect(c.detail).toContain('make and gcc not on PATH');
		expect(c.fix).toBe('hybridmem bootstrap (it installs build-essential)');
		expect(c.neededFor).toEqual(['native', 'vm']);
		expect(checkCompiler().status).toBe(existsSync('/usr/bin/gcc') && existsSync('/usr/bin/make') ? 'ok' : 'missing');
	});

	test('no addon and no g++: a gap fixed by bootstrap then build; with g++ and headers no gap (run compiles it)', () => {
		const none = checkAddon(null, emptyPath);
		expect(none.status).toBe('missing');
		expect(none.neededFor).toEqual(['native', 'vm']);
		expect(none.fix).toBe('hybridmem bootstrap, then hybridmem build');
		if (existsSync('/usr/bin/g++')) {
			const compilable = checkAddon(null);
			expect(compilable.neededFor).toEqual([]);
			expect(compilable.detail).toContain('compiles it from source on first use');
			expect(compilable.fix).toBe('hybridmem build');
		}
	});

	test('headers of a kernel apt does not know: no gap for the VM runner, said so', () => {
		const c = checkHeaders('6.18.44-custom', mkdtempSync(path.join(tmp, 'mods-')));
		expect(c.status).toBe('missing');
		expect(c.neededFor).toEqual(['native']);
		expect(c.fix).toMatch(/^none needed for the VM runner/);
	});
});

describe('a host that can load modules', () => {
	test('root, module support, headers and HYBRIDMEM_NATIVE=1: scenarios run natively; without the opt-in, in the VM', async () => {
		const procModules = path.join(tmp, 'proc-modules');
		writeFileSync(procModules, '');
		const modulesRoot = path.join(tmp, 'lib-modules');
		mkdirSync(path.join(modulesRoot, '6.1.0-99-amd64', 'build'), { recursive: true });
		writeFileSync(path.join(modulesRoot, '6.1.0-99-amd64', 'build', 'Makefile'), '');
		const vm = await vmChecks();
		const nativeChecks = [checkRoot(0), checkModuleSupport('6.1.0-99-amd64', procModules), checkHeaders('6.1.0-99-amd64', modulesRoot)];
		for (const c of nativeChecks) expect(c.status, c.id).toBe('ok');
		const vmReady = vm.every((c) => c.status === 'ok');
		const optedIn = summarize([...nativeChecks, checkNativeOptIn({ HYBRIDMEM_NATIVE: '1' }), ...vm.filter((c) => !c.neededFor.includes('native'))]);
		expect(optedIn.scenarios).toBe('native');
		expect(renderReport(optedIn)).toContain('Scenarios will run natively.');
		const notOptedIn = summarize([...nativeChecks, checkNativeOptIn({}), ...vm]);
		expect(notOptedIn.paths.native.missing).toEqual(['native-opt-in']);
		expect(notOptedIn.checks.find((c) => c.id === 'native-opt-in')?.fix).toBe('export HYBRIDMEM_NATIVE=1');
		expect(notOptedIn.scenarios).toBe(vmReady ? 'vm' : 'none');
	});
});
