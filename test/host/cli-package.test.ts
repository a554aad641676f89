// The CLI as a user of the installed package meets it: help and version,
// usage errors, bootstrap against this machine's dpkg, the messages that name
// the command fixing a gap, KTAP and the progress line, and the shipped code
// naming no path of the checkout.
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, test } from 'vitest';
import { StatusLine } from '../../src/cli/progress.js';
import { defaultBuildKernel } from '../../src/cli/commands/build.js';
import { ktapHeader, ktapResult, ktapTotals } from '../../src/scenarios/report.js';
import type { ScenarioResult } from '../../src/scenarios/types.js';
import { PACKAGES, aptCommands, missingPackages } from '../../src/setup/bootstrap.js';
import { PACKAGE_ROOT } from '../../src/setup/paths.js';
import { chooseKernel, listKernels } from '../../src/vm/kernels.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');
const version = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const hm = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [CLI, ...args], { reject: false, env, extendEnv: !env.PATH });

describe('help and version', () => {
	test('--help lists -V/--version and help CMD; -V and --version print the version', async () => {
		const help = await hm(['--help']);
		expect(help.exitCode).toBe(0);
		expect(help.stdout).toMatch(/-V, --version/);
		expect(help.stdout).toContain('hybridmem help <command>');
		expect(help.stdout).toMatch(/^ {2}bootstrap /m);
		for (const flag of ['-V', '--version']) expect((await hm([flag])).stdout).toBe(version);
	});

	test("help CMD prints that command's help, not the top-level one; an unknown one is a usage error", async () => {
		for (const cmd of ['run', 'build', 'bootstrap']) {
			const r = await hm(['help', cmd]);
			expect(r.exitCode).toBe(0);
			expect(r.stdout).toBe((await hm([cmd, '--help'])).stdout);
			expect(r.stdout.startsWith(`Usage: hybridmem ${cmd}`)).toBe(true);
		}
		const bad = await hm(['help', 'nonsense']);
		expect(bad.exitCode).toBe(2);
		expect(bad.stderr).toContain("unknown command 'nonsense'");
	});

	test('an unknown option reads as one clean clause with paired quotes', async () => {
		const r = await hm(['run', '--bogus']);
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toBe("hybridmem: run: unknown option '--bogus'; see 'hybridmem run --help'");
	});

	test('--json and --tap exclude each other', async () => {
		const r = await hm(['run', '--json', '--tap', 'test1']);
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toContain('--json and --tap exclude each other');
	});
});

describe('bootstrap', () => {
	test('missingPackages asks dpkg: an installed package is not missing, an unknown one is', async () => {
		expect(await missingPackages(['coreutils', 'hybridmem-no-such-package'])).toEqual(['hybridmem-no-such-package']);
	});

	test('--dry-run lists exactly the packages dpkg -s does not report installed', async () => {
		const expected: string[] = [];
		for (const p of Object.keys(PACKAGES)) {
			const r = await execa('dpkg', ['-s', p], { reject: false });
			if (!/^Status: install ok installed$/m.test(r.stdout)) expected.push(p);
		}
		const r = await hm(['bootstrap', '--dry-run', '--json']);
		expect((JSON.parse(r.stdout) as { missing: string[] }).missing).toEqual(expected);
		expect(r.exitCode).toBe(expected.length ? 1 : 0);
		if (expected.length === 0) {
			// Idempotent: with everything installed it only looks (no apt), and says so.
			const started = Date.now();
			const again = await hm(['bootstrap']);
			expect(again.exitCode).toBe(0);
			expect(again.stdout).toBe(`bootstrap: all ${Object.keys(PACKAGES).length} packages are installed`);
			expect(again.stderr).toBe('');
			expect(Date.now() - started).toBeLessThan(5000);
		}
	});

	test('apt runs non-interactively, without Debian initramfs, with sudo only when not root', () => {
		const asRoot = aptCommands(['cpio'], 0);
		expect(asRoot[0]).toEqual(['apt-get', 'update', '-qq']);
		expect(asRoot[1]).toEqual(['env', 'INITRD=No', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'cpio']);
		expect(aptCommands(['cpio'], 1000).every((c) => c[0] === 'sudo')).toBe(true);
	});

	test("the checkout's bootstrap.sh installs at least the CLI's packages", () => {
		const script = readFileSync(path.join(PACKAGE_ROOT, 'scripts', 'bootstrap.sh'), 'utf8');
		const list = /PACKAGES=\(([^)]*)\)/.exec(script)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
		for (const p of Object.keys(PACKAGES)) expect(list, p).toContain(p);
		expect(list).toContain('g++-aarch64-linux-gnu');
	});
});

describe('messages a user sees', () => {
	test('the shipped code names no file of the checkout (scripts/, npm run build)', () => {
		const offenders: string[] = [];
		const walk = (dir: string) => {
			for (const name of readdirSync(dir)) {
				const file = path.join(dir, name);
				if (statSync(file).isDirectory()) walk(file);
				else if (file.endsWith('.js') && /scripts\/bootstrap\.sh|npm run build|build-addon\.mjs/.test(readFileSync(file, 'utf8'))) offenders.push(file);
			}
		};
		walk(path.join(PACKAGE_ROOT, 'dist'));
		// The addon's development path (a checkout has scripts/build-addon.mjs) is the one allowed mention,
		// in build.js and in the guest's bundles that contain it.
		expect(offenders.map((f) => path.relative(PACKAGE_ROOT, f)).sort()).toEqual(['dist/guest/cli.js', 'dist/guest/warm-agent.js', 'dist/setup/build.js']);
	});

	test('no usable kernel: the error names hybridmem bootstrap', () => {
		const empty = mkdtempSync(path.join(tmp, 'boot-'));
		expect(listKernels(empty, empty)).toEqual([]);
		expect(() => chooseKernel(undefined, empty, empty)).toThrow(/run `hybridmem bootstrap`/);
	});

	test('hybridmem vm without QEMU on PATH (or anything else) names hybridmem bootstrap', async () => {
		const r = await hm(['vm', '--timeout', '30', '--', 'true'], { PATH: path.join(tmp, 'nothing'), HOME: os.homedir() });
		expect(r.exitCode).not.toBe(0);
		expect(r.stderr).toContain('hybridmem bootstrap');
	});

	test('plain build is for the running kernel when it has headers, else for the VM runner default, and says so', () => {
		const release = os.release();
		const d = defaultBuildKernel();
		if (existsSync(`/lib/modules/${release}/build/Makefile`)) {
			expect(d).toEqual({ kver: release });
		} else {
			const vmDefault = listKernels().find((k) => k.usable)?.version;
			expect(vmDefault, 'no usable VM kernel: run hybridmem bootstrap').toBeDefined();
			expect(d.kver).toBe(vmDefault);
			expect(d.note).toBe(`no headers for the running kernel ${release}: building for ${vmDefault}, the kernel the VM runner boots by default`);
		}
	});
});

describe('KTAP and the progress line', () => {
	const result = (name: string, passed: boolean): ScenarioResult =>
		({ name, title: name, expectation: 'e', summary: `${name} summary`, checks: [{ name: 'c1', ok: passed, detail: 'why' }], passed, durationMs: 1, kernel: 'k', where: 'vm' }) as ScenarioResult;

	test('KTAP version 1: plan first, numbered ok / not ok lines, diagnostics as # lines, kselftest totals', () => {
		const rs = [result('test1', true), result('bad input', false)];
		const text = [ktapHeader(2), ktapResult(rs[0]!, 1), ktapResult(rs[1]!, 2), ktapTotals(rs)].join('\n');
		expect(text.split('\n')).toEqual([
			'KTAP version 1',
			'1..2',
			'# test1: test1 summary',
			'ok 1 test1',
			'# bad input: bad input summary',
			'# failed: c1: why',
			'not ok 2 bad_input',
			'# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0',
		]);
	});

	test('a disabled progress line writes nothing; an enabled one redraws in place and clears itself', () => {
		const capture = (enabled: boolean) => {
			const stream = new PassThrough() as unknown as NodeJS.WriteStream;
			let out = '';
			(stream as unknown as PassThrough).on('data', (d: Buffer) => (out += d.toString()));
			const s = new StatusLine(enabled, stream);
			s.set('booting');
			s.set('1 of 2 done');
			s.done();
			return () => out;
		};
		const off = capture(false);
		const on = capture(true);
		return new Promise<void>((resolve) =>
			setImmediate(() => {
				expect(off()).toBe('');
				expect(on()).toBe('\r\x1b[K[0 s] booting\r\x1b[K[0 s] 1 of 2 done\r\x1b[K');
				resolve();
			}),
		);
	});
});
