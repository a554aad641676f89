// A kernel from Debian's archive, end to end through the CLI: fetch bullseye's
// 5.10 with the private apt configuration into an empty cache (a real
// download, about 70 MB), list it, build the module for it, boot it and load
// the module there.  The machine's apt sources and its installed packages
// must be left as they were.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const CLI = path.resolve('dist/cli/main.js');
const cache = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-fetchtest-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

function hm(args: string[], timeout = 600_000) {
	return execa('node', [CLI, ...args], { reject: false, timeout, env: { HYBRIDMEM_CACHE: cache }, stdin: 'ignore' });
}

/** A digest of every file under /etc/apt: names, sizes, contents. */
function aptState(dir = '/etc/apt'): string {
	const h = createHash('sha256');
	const walk = (d: string) => {
		for (const name of readdirSync(d).sort()) {
			const p = path.join(d, name);
			const st = statSync(p, { throwIfNoEntry: false });
			if (!st) continue;
			h.update(p);
			if (st.isDirectory()) walk(p);
			else if (st.isFile()) h.update(readFileSync(p));
		}
	};
	walk(dir);
	return h.digest('hex');
}

describe('hybridmem kernels --fetch', () => {
	let release = '';

	test('fetches bullseye into the cache with a private apt configuration, unpacked, not installed', { timeout: 900_000 }, async () => {
		const before = aptState();
		const r = await hm(['kernels', '--fetch', 'bullseye', '--json']);
		expect(r.exitCode, r.stderr).toBe(0);
		const [res] = JSON.parse(r.stdout) as { kernel: { release: string; suite: string; packages: { name: string }[] }; dir: string; alreadyFetched: boolean; timings: Record<string, number>; downloadedBytes: number }[];
		release = res!.kernel.release;
		console.log(`fetched ${release}: ${(res!.downloadedBytes / 1e6).toFixed(0)} MB, ${JSON.stringify(res!.timings)} ms`);
		expect(release).toMatch(/^5\.10\.0-\d+-amd64$/);
		expect(res!.alreadyFetched).toBe(false);
		expect(res!.dir).toBe(path.join(cache, 'debian', 'kernels', release));
		expect(res!.kernel.packages.map((p) => p.name).sort()).toEqual(
			[`linux-headers-${release}`, `linux-headers-${release.replace(/-amd64$/, '')}-common`, `linux-image-${release}`, 'linux-kbuild-5.10'].sort(),
		);
		const root = res!.dir;
		expect(existsSync(path.join(root, 'boot', `vmlinuz-${release}`))).toBe(true);
		expect(existsSync(path.join(root, 'lib', 'modules', release, 'modules.dep'))).toBe(true);
		expect(existsSync(path.join(root, 'lib', 'modules', release, 'build', 'Makefile'))).toBe(true);
		expect(readdirSync(root).some((n) => n.endsWith('.deb') || n === '.debs')).toBe(false);
		// apt's sources and lists were its own; the machine's are as they were, and nothing was installed.
		expect(readFileSync(path.join(cache, 'debian', 'apt', 'bullseye', 'etc', 'sources.list'), 'utf8')).toContain('[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main');
		expect(readdirSync(path.join(cache, 'debian', 'apt', 'bullseye', 'state', 'lists')).some((n) => n.includes('bullseye_main_binary-amd64_Packages'))).toBe(true);
		expect(aptState()).toBe(before);
		const installed = await execa('dpkg-query', ['-W', `linux-image-${release}`], { reject: false });
		expect(installed.stdout).not.toMatch(new RegExp(`linux-image-${release.replace(/[.+]/g, '\\$&')}\\s+\\S`));
	});

	test('lists it beside the installed kernels with what it has, not as the default', async () => {
		const r = await hm(['kernels', '--json']);
		const list = JSON.parse(r.stdout) as { version: string; origin: string; usable: boolean; reason?: string; features?: Record<string, unknown> }[];
		const k = list.find((x) => x.version === release);
		expect(k, r.stdout).toBeDefined();
		expect([k!.origin, k!.usable, k!.reason]).toEqual(['fetched', true, undefined]);
		expect(k!.features).toMatchObject({ ninep: 'm', ninepVirtio: 'm', virtioMmio: 'm', preemptRt: false, pageSize: '4K', compiler: expect.stringMatching(/^gcc-10 /) });
		expect(list[0]!.origin).toBe('boot');
		const text = await hm(['kernels']);
		expect(text.stdout).toMatch(new RegExp(`^  ${release.replace(/[.+]/g, '\\$&')}\\s+fetched \\(bullseye:amd64\\)\\s+usable$`, 'm'));
	});

	test('the module builds for it, warning-free with W=1, boots in it and loads', async () => {
		const b = await hm(['build', '--no-addon', '--strict', '--force', '--kernel', release]);
		expect(b.exitCode, b.stdout + b.stderr).toBe(0);
		// The host has no gcc-10: its own gcc builds the module against the unpacked headers.
		expect(b.stdout).toMatch(/built .* with (host-gcc|kernel-compiler) \(/);
		// The module's place in (the test's own) cache, as the build reports it.
		const ko = /^module for \S+: built \((\S+\.ko)\)/m.exec(b.stdout)?.[1];
		expect(ko, b.stdout).toMatch(new RegExp(`^${cache.replace(/[.+]/g, '\\$&')}/`));
		const v = await hm(['vm', '--kernel', release, '--', 'sh', '-c', `uname -r; insmod ${ko!} && grep -c '^hybridmem_test ' /proc/modules`]);
		expect(v.exitCode, v.stderr).toBe(0);
		expect(v.stdout.split('\n').slice(0, 2)).toEqual([release, '1']);
	});

	test('a second fetch of the same release finds it fetched', async () => {
		const r = await hm(['kernels', '--fetch', release]);
		expect(r.exitCode, r.stderr).toBe(0);
		expect(r.stdout).toContain(`${release}: already fetched`);
	});
});
