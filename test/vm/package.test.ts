// The npm package as a user gets it: `npm pack`, then `npm install <tarball>`
// into fresh directories outside the checkout, with and without
// --ignore-scripts.  Both must give a working API (the prebuilt addon maps,
// fills and verifies /dev/zero) and a working `npx hybridmem run test1` (a
// real VM boot), compile nothing at install, and leave nothing in TMPDIR.
// Without a fitting prebuild the addon compiles from the shipped sources into
// the per-user cache.  Needs `npm run build` first (dist/, prebuilds/).
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ELF_MACHINE, PREBUILD_NAME, elfMachine } from '../../src/setup/addon.js';
import { defaultBuildKernel } from '../../src/cli/commands/build.js';
import { PACKAGE_ROOT, moduleFile } from '../../src/setup/paths.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-pack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let tarball = '';
type Mode = 'normal' | 'ignore-scripts' | 'strict-allow-scripts';
const installs: Record<Mode, string> = { normal: '', 'ignore-scripts': '', 'strict-allow-scripts': '' };
const timings: Record<string, number> = {};

/** The API check a user would write, run with the installed package's node_modules. */
const API_SCRIPT = `
import { openDevice } from 'hybridmem';
const dev = openDevice('/dev/zero');
try {
  const m = dev.map(64 * dev.pageSize);
  await m.fill({ pattern: 'address-tag', seed: 5n });
  const v = await m.verify({ pattern: 'address-tag', seed: 5n });
  console.log(JSON.stringify({ ok: v.ok, bytes: v.bytes, mismatches: v.mismatchCount }));
  m.unmap();
} finally {
  dev.close();
}
`;

/** A string as a literal part of a regular expression. */
const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

function npx(dir: string, args: string[], env: Record<string, string> = {}) {
	return execa('npx', ['--no-install', 'hybridmem', ...args], { cwd: dir, reject: false, env, timeout: 400_000 });
}

async function apiWorks(dir: string, env: Record<string, string> = {}): Promise<void> {
	const r = await execa(process.execPath, ['--input-type=module', '-e', API_SCRIPT], { cwd: dir, reject: false, env });
	expect(r.stderr).toBe('');
	expect(JSON.parse(r.stdout)).toEqual({ ok: true, bytes: 64 * 4096, mismatches: 0 });
}

async function addonInUse(dir: string, env: Record<string, string> = {}): Promise<string> {
	const r = await npx(dir, ['doctor', '--json'], env);
	const addon = (JSON.parse(r.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks.find((c) => c.id === 'addon');
	expect(addon?.status).toBe('ok');
	return addon!.detail;
}

beforeAll(async () => {
	for (const arch of ['x64', 'arm64'])
		expect(existsSync(path.join(PACKAGE_ROOT, 'prebuilds', `linux-${arch}`, PREBUILD_NAME)), `no ${arch} prebuild: run npm run build`).toBe(true);
	let started = Date.now();
	const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: PACKAGE_ROOT });
	timings.pack = Date.now() - started;
	tarball = path.join(tmp, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
	for (const mode of Object.keys(installs) as Mode[]) {
		const dir = path.join(tmp, mode);
		mkdirSync(dir);
		writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `user-${mode}`, version: '1.0.0', private: true }));
		started = Date.now();
		// --strict-allow-scripts aborts the install of a package with an install script nobody approved.
		await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...(mode === 'normal' ? [] : [`--${mode}`]), tarball], { cwd: dir });
		timings[`install ${mode}`] = Date.now() - started;
		installs[mode] = dir;
	}
	console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
}, 300_000);

describe('the tarball', () => {
	test('ships both prebuilds, LICENSE and sources for the fallback; no source maps, no install script, no build/', () => {
		const pkg = path.join(installs.normal, 'node_modules', 'hybridmem');
		for (const arch of ['x64', 'arm64'] as const) expect(elfMachine(path.join(pkg, 'prebuilds', `linux-${arch}`, PREBUILD_NAME)), arch).toBe(ELF_MACHINE[arch]);
		expect(readFileSync(path.join(pkg, 'LICENSE'), 'utf8')).toContain('GNU GENERAL PUBLIC LICENSE\n                       Version 2, June 1991');
		for (const f of ['native/addon.cc', 'kmod/hybridmem_test.c', 'kmod/Kbuild', 'src/check/helper/hm-map-probe.c']) expect(existsSync(path.join(pkg, f)), f).toBe(true);
		const files: string[] = [];
		const walk = (d: string) => readdirSync(d).forEach((n) => (statSync(path.join(d, n)).isDirectory() ? walk(path.join(d, n)) : files.push(path.join(d, n))));
		walk(path.join(pkg, 'dist'));
		expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
		expect(files.filter((f) => f.endsWith('.js') && readFileSync(f, 'utf8').includes('sourceMappingURL'))).toEqual([]);
		const manifest = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { scripts?: Record<string, string>; gypfile?: boolean; license: string };
		for (const s of ['preinstall', 'install', 'postinstall']) expect(manifest.scripts?.[s], s).toBeUndefined();
		expect(manifest.gypfile).toBe(false);
		expect(manifest.license).toBe('GPL-2.0-only');
		expect(existsSync(path.join(pkg, 'binding.gyp'))).toBe(false);
		for (const dir of Object.values(installs)) expect(existsSync(path.join(dir, 'node_modules', 'hybridmem', 'build')), dir).toBe(false);
	});

	test('the arm64 prebuild is an AArch64 shared object with the N-API entry point, linked -z nodelete', async () => {
		const file = path.join(installs.normal, 'node_modules', 'hybridmem', 'prebuilds', 'linux-arm64', PREBUILD_NAME);
		const syms = await execa('readelf', ['--dyn-syms', '-W', '-d', file]);
		expect(syms.stdout).toMatch(/GLOBAL\s+DEFAULT\s+\d+\s+napi_register_module_v1/);
		expect(syms.stdout).toMatch(/FLAGS_1.*NODELETE/);
	});
});

describe.each(Object.keys(installs) as Mode[])('npm install %s', (mode) => {
	test('the API maps, fills and verifies /dev/zero with the prebuilt addon', async () => {
		await apiWorks(installs[mode]);
		expect(await addonInUse(installs[mode])).toBe(
			`prebuilt for linux-x64: ${path.join(installs[mode], 'node_modules', 'hybridmem', 'prebuilds', 'linux-x64', PREBUILD_NAME)}`,
		);
	});
});

describe('npx hybridmem run test1', () => {
	test('normal install, piped, --tap: KTAP only, nothing on stderr, nothing left in TMPDIR', async () => {
		const tmpdir = mkdtempSync(path.join(tmp, 'tmpdir-'));
		const r = await npx(installs.normal, ['run', 'test1', '--tap'], { TMPDIR: tmpdir });
		expect(r.exitCode, r.stdout + r.stderr).toBe(0);
		expect(r.stderr).toBe('');
		const lines = r.stdout.split('\n');
		expect(lines.slice(0, 2)).toEqual(['KTAP version 1', '1..1']);
		expect(lines).toContain('ok 1 test1');
		expect(lines.at(-1)).toBe('# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0');
		expect(lines.filter((l) => !l.startsWith('#') && !/^(ok|not ok) \d/.test(l))).toEqual(['KTAP version 1', '1..1']);
		expect(readdirSync(tmpdir)).toEqual([]);
	});

	test('--ignore-scripts install, in a terminal: a progress line with the elapsed time, then the result and the summary', async () => {
		// A pseudo-terminal from Python's pty module (argument arrays all the way down).
		const r = await execa('python3', ['-c', 'import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)', 'npx', '--no-install', 'hybridmem', 'run', 'test1'], {
			cwd: installs['ignore-scripts'],
			reject: false,
			timeout: 400_000,
		});
		expect(r.exitCode, r.stdout).toBe(0);
		// ESC [ K (erase to the end of the line) after a carriage return: the line is redrawn in place.
		const redraw = '\r\u001b[K';
		expect(r.stdout).toMatch(new RegExp(`${escape(redraw)}\\[\\d+ s\\] booting \\S+ for 1 scenario`));
		expect(r.stdout).toContain(`${redraw}PASS test1 `);
		expect(r.stdout).toMatch(/1 passed, 0 failed — on \S+ \(vm\)/);
	});
});

describe('without a fitting prebuild', () => {
	test('hybridmem build: the module into the per-user cache, for the VM kernel when this one has no headers; the prebuilt addon', async () => {
		const r = await npx(installs.normal, ['build']);
		expect(r.exitCode, r.stderr).toBe(0);
		const lines = r.stdout.split('\n');
		const { kver, note } = defaultBuildKernel();
		if (note) expect(lines.shift()).toBe(note);
		expect(lines[0]).toMatch(new RegExp(`^module for ${escape(kver)}: (built|up to date) \\(${escape(moduleFile(kver))}\\)( with [^;]+)?$`));
		expect(moduleFile(kver).startsWith(path.join(PACKAGE_ROOT, 'node_modules'))).toBe(false);
		expect(lines[1]).toBe(`addon: prebuilt for linux-x64 (${path.join(installs.normal, 'node_modules', 'hybridmem', 'prebuilds', 'linux-x64', PREBUILD_NAME)})`);
		expect(lines).toHaveLength(2);
	}, 180_000);

	test('the addon compiles from the shipped sources into the per-user cache, once; then the API uses it', async () => {
		const dir = installs['ignore-scripts'];
		rmSync(path.join(dir, 'node_modules', 'hybridmem', 'prebuilds', 'linux-x64'), { recursive: true });
		const cache = mkdtempSync(path.join(tmp, 'cache-'));
		const env = { HYBRIDMEM_CACHE: cache };
		const missing = await execa(process.execPath, ['--input-type=module', '-e', API_SCRIPT], { cwd: dir, reject: false, env });
		expect(missing.exitCode).toBe(1);
		expect(missing.stderr).toContain('run `npx hybridmem build` to compile it');
		const started = Date.now();
		const built = await npx(dir, ['build', '--no-module'], env);
		timings['source build'] = Date.now() - started;
		console.log(`source build of the addon: ${timings['source build']} ms`);
		expect(built.exitCode, built.stderr).toBe(0);
		const m = /^addon: built \((.+)\)$/.exec(built.stdout);
		expect(m, built.stdout).not.toBeNull();
		const file = m![1]!;
		expect(file.startsWith(path.join(cache, 'addon', 'linux-x64-'))).toBe(true);
		expect(elfMachine(file)).toBe(ELF_MACHINE.x64);
		const again = await npx(dir, ['build', '--no-module'], env);
		expect(again.stdout).toBe(`addon: up to date (${file})`);
		await apiWorks(dir, env);
		expect(await addonInUse(dir, env)).toBe(file);
	}, 180_000);
});
