// The one-file programs every guest runs (scripts/bundle.mjs): chosen only
// while at least as new as tsc's output, one file that imports nothing but
// Node's builtins, and the same CLI as dist/cli/main.js, answer for answer.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { guestProgram, PACKAGE_ROOT } from '../../src/setup/paths.js';

const DIST = path.join(PACKAGE_ROOT, 'dist');
const BUNDLE = path.join(DIST, 'guest', 'cli.js');
const UNBUNDLED = path.join(DIST, 'cli', 'main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-bundle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('which file a guest runs', () => {
	test('after npm run build: the bundles in dist/guest/', () => {
		expect(guestProgram('cli')).toBe(BUNDLE);
		expect(guestProgram('warm-agent')).toBe(path.join(DIST, 'guest', 'warm-agent.js'));
	});

	test('a bundle older than any file tsc wrote is passed over for tsc\'s output; none at all, the same', () => {
		const dist = path.join(tmp, 'dist');
		for (const d of ['cli', 'scenarios', 'guest', 'device']) mkdirSync(path.join(dist, d), { recursive: true });
		const put = (rel: string, secs: number) => {
			writeFileSync(path.join(dist, rel), '');
			utimesSync(path.join(dist, rel), secs, secs);
		};
		put('cli/main.js', 1000);
		put('scenarios/warm-agent.js', 1000);
		put('device/binding.js', 1000);
		expect(guestProgram('cli', dist)).toBe(path.join(dist, 'cli', 'main.js'));
		put('guest/cli.js', 1000);
		put('guest/warm-agent.js', 999);
		expect(guestProgram('cli', dist)).toBe(path.join(dist, 'guest', 'cli.js'));
		expect(guestProgram('warm-agent', dist)).toBe(path.join(dist, 'scenarios', 'warm-agent.js'));
		// One file rebuilt anywhere in dist/ (tsc without the bundle step) makes both stale.
		put('device/binding.js', 1001);
		expect(guestProgram('cli', dist)).toBe(path.join(dist, 'cli', 'main.js'));
		expect(guestProgram('cli', path.join(tmp, 'nothing'))).toBe(path.join(tmp, 'nothing', 'cli', 'main.js'));
	});
});

describe('the bundle', () => {
	test('imports nothing but Node builtins: no module is read over 9p after it', () => {
		const text = readFileSync(BUNDLE, 'utf8');
		const specifiers = [...text.matchAll(/^import\s[^'"]*?from\s*["']([^"']+)["']/gm), ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);
		expect(specifiers.length).toBeGreaterThan(0);
		const builtins = new Set(builtinModules);
		expect(specifiers.filter((s) => !(s.startsWith('node:') || builtins.has(s)))).toEqual([]);
	});

	// Each pair runs the two files with the same arguments: output and exit status must match.
	const commands = ['run', 'check', 'stress', 'setup', 'teardown', 'status', 'build', 'dmesg', 'vm', 'kernels', 'doctor', 'bootstrap'];
	const log = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'kmsg', 'mixed-warning-oops-panic.log');
	const cases: string[][] = [
		['--version'],
		['--help'],
		...commands.map((c) => [c, '--help']),
		['dmesg', '--file', log, '--json'],
		['kernels', '--json'],
		['check', '--recipe', 'no-such-recipe', '--native'],
		['run', '--no-such-option'],
	];
	test(`answers as dist/cli/main.js does: ${cases.length} argument lists, stdout, stderr and exit status`, { timeout: 180_000 }, async () => {
		const one = (file: string, args: string[]) => execa(process.execPath, [file, ...args], { reject: false, env: { NO_COLOR: '1' } });
		const bundled = new Map<string, { exit: number | undefined; stdout: string }>();
		for (let i = 0; i < cases.length; i += 4) {
			const batch = cases.slice(i, i + 4);
			const got = await Promise.all(batch.map(async (args) => [await one(BUNDLE, args), await one(UNBUNDLED, args)] as const));
			for (const [k, [b, u]] of got.entries()) {
				const what = batch[k]!.join(' ');
				expect({ what, exit: b.exitCode, stdout: b.stdout, stderr: b.stderr }).toEqual({ what, exit: u.exitCode, stdout: u.stdout, stderr: u.stderr });
				bundled.set(what, { exit: b.exitCode, stdout: b.stdout });
			}
		}
		// Not only refusals and help: the parser's answer is real output, and it found the log's reports.
		const parsed = bundled.get(['dmesg', '--file', log, '--json'].join(' '))!;
		expect(parsed.exit).toBe(0);
		expect((JSON.parse(parsed.stdout) as { reports: unknown[] }).reports.length).toBeGreaterThanOrEqual(3);
	});
});
