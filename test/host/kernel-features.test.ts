// Which detector a kernel offers for the notes' use-after-free, from its
// config: page poisoning only where it checks (not with
// CONFIG_PAGE_POISONING_NO_SANITY=y, Debian's 5.10).
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { pagePoisonSupport } from '../../src/scenarios/kernel-features.js';

const cache = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-features-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

/** A fetched kernel's tree with only its config, in a private cache. */
function fetchedConfig(release: string, lines: string[]): void {
	const boot = path.join(cache, 'debian', 'kernels', release, 'boot');
	mkdirSync(boot, { recursive: true });
	writeFileSync(path.join(boot, `config-${release}`), `${lines.join('\n')}\n`);
}

describe('pagePoisonSupport', () => {
	const saved = process.env.HYBRIDMEM_CACHE;
	afterAll(() => {
		if (saved === undefined) delete process.env.HYBRIDMEM_CACHE;
		else process.env.HYBRIDMEM_CACHE = saved;
	});

	test('NO_SANITY poisons and never checks; plain PAGE_POISONING checks; none at all does not', () => {
		process.env.HYBRIDMEM_CACHE = cache;
		fetchedConfig('5.10.0-99-amd64', ['CONFIG_PAGE_POISONING=y', 'CONFIG_PAGE_POISONING_NO_SANITY=y', '# CONFIG_PAGE_POISONING_ZERO is not set']);
		fetchedConfig('6.99.0-1-amd64', ['CONFIG_PAGE_POISONING=y']);
		fetchedConfig('6.99.0-2-amd64', ['# CONFIG_PAGE_POISONING is not set']);
		expect(pagePoisonSupport('5.10.0-99-amd64')).toMatchObject({ checks: false, why: expect.stringContaining('CONFIG_PAGE_POISONING_NO_SANITY=y') });
		expect(pagePoisonSupport('6.99.0-1-amd64')).toMatchObject({ checks: true });
		expect(pagePoisonSupport('6.99.0-2-amd64')).toMatchObject({ checks: false, why: expect.stringContaining('CONFIG_PAGE_POISONING is not set') });
	});

	test('a kernel without a config is assumed to check, so a kernel that does not fails loudly', () => {
		process.env.HYBRIDMEM_CACHE = cache;
		expect(pagePoisonSupport('0.0.0-none')).toMatchObject({ checks: true, why: expect.stringContaining('assumed to check') });
	});

	test.runIf(existsSync('/boot/config-6.1.0-57-amd64'))("bookworm's 6.1, from its real config, checks", () => {
		expect(pagePoisonSupport('6.1.0-57-amd64')).toMatchObject({ checks: true });
	});
});
