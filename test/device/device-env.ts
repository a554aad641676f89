// Where the device suite finds the device, and what it does when there is
// none: under CI a missing device is a failure (the suite was meant to run
// here), elsewhere the suite is skipped with the reason.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'vitest';
import { guestProgram, PACKAGE_ROOT } from '../../src/setup/paths.js';
import { isCi } from '../env.js';

/**
 * The CLI the device tests spawn: the file the VM runner gives every guest
 * (the one-file bundle, test/host/guest-bundle.test.ts shows it behaves as
 * dist/cli/main.js does), so what runs here is what users' guests run.
 */
export const GUEST_CLI = guestProgram('cli');

export interface DeviceEnv {
	ok: boolean;
	path: string;
}

export function requireDevice(): DeviceEnv {
	const path = process.env.HYBRIDMEM_DEVICE ?? '/dev/devKex';
	const ok = existsSync(path) && statSync(path).isCharacterDevice();
	if (!ok) {
		const why = `${path} does not exist: load the module first (scripts/device-suite.mjs does, inside the VM runner)`;
		if (isCi()) test('the device is present', () => {
			throw new Error(why);
		});
		else test.skip(`device tests skipped: ${why}`, () => {});
	}
	return { ok, path };
}

/**
 * A C client of the device suite (scripts/fixtures.mjs) built for this
 * process's architecture: the checkout is shared by x86 and arm64 guests.
 */
export function clientPath(name: string): string {
	return path.join(PACKAGE_ROOT, 'build', 'fixtures', process.arch, name);
}

/**
 * The timeout of a test that starts node `starts` times (the CLI's tests):
 * in an arm64 guest under TCG one node start takes 24 to 40 s (the device
 * suite on 6.12.118+deb13-arm64, load average about 10), so there such a
 * test gets 60 s per start; elsewhere the device project's 120 s.
 */
export function nodeStartsTimeout(starts: number): number {
	return process.arch === 'arm64' ? Math.max(120_000, starts * 60_000) : 120_000;
}
