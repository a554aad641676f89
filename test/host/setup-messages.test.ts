// The messages setup gives for refusals no test VM can produce (a kernel that
// enforces signatures, lockdown), from insmod's real wording; and the pure
// helpers behind setup's idempotency.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, test } from 'vitest';
import { chrdevMajor } from '../../src/setup/kernel-state.js';
import { moduleFile } from '../../src/setup/paths.js';
import { explainInsmodFailure, normalizeParam, paramDifferences } from '../../src/setup/setup.js';

describe('insmod failures', () => {
	test('signature enforcement', async () => {
		const e = await explainInsmodFailure('/x/hybridmem_test.ko', 'insmod: ERROR: could not insert module /x/hybridmem_test.ko: Key was rejected by service');
		expect(e.code).toBe('ERR_SIGNATURE');
		expect(e.message).toContain('not signed with a trusted key');
		expect(e.message).toContain("use 'hybridmem run --vm'");
	});

	test('lockdown: EPERM from a kernel in integrity or confidentiality mode', async () => {
		const stderr = 'insmod: ERROR: could not insert module /x.ko: Operation not permitted';
		const locked = await explainInsmodFailure('/x.ko', stderr, () => 'none [integrity] confidentiality\n');
		expect(locked.code).toBe('ERR_LOCKDOWN');
		expect(locked.message).toBe("the kernel is in lockdown mode (none [integrity] confidentiality) and refuses unsigned modules: use 'hybridmem run --vm'");
		const open = await explainInsmodFailure('/x.ko', stderr, () => '[none] integrity confidentiality\n');
		expect(open.code).toBe('ERR_NOT_ROOT');
		expect(open.message).toContain('run as root (CAP_SYS_MODULE)');
	});

	test('no module support', async () => {
		const e = await explainInsmodFailure('/x.ko', 'insmod: ERROR: could not insert module /x.ko: Function not implemented');
		expect(e.code).toBe('ERR_NO_MODULE_SUPPORT');
		expect(e.message).toContain('this kernel cannot load modules (built without CONFIG_MODULES)');
	});

	test('unknown symbols mean a build for another kernel', async () => {
		const e = await explainInsmodFailure('/x.ko', 'insmod: ERROR: could not insert module /x.ko: Unknown symbol in module');
		expect(e.code).toBe('ERR_VERMAGIC');
		expect(e.message).toContain("rebuild it for");
	});

	// Built by scripts/test.mjs (module build for each installed kernel) before vitest runs.
	const other = ['6.1.0-57-amd64', '6.12.117+deb12-amd64'].map(moduleFile).find((f) => existsSync(f));
	test.runIf(other !== undefined)("EINVAL from a module of another release (its symbol versions disagree) is a vermagic mismatch, not a bad parameter", async () => {
		const e = await explainInsmodFailure(other!, `insmod: ERROR: could not insert module ${other}: Invalid parameters`);
		expect(e.code).toBe('ERR_VERMAGIC');
		expect(e.message).toContain(`but this kernel is ${os.release()} (vermagic mismatch)`);
	});

	test('EINVAL from a module that cannot be read is the parameters', async () => {
		const e = await explainInsmodFailure('/nonexistent/hybridmem_test.ko', 'insmod: ERROR: could not insert module /nonexistent/hybridmem_test.ko: Invalid parameters');
		expect(e.code).toBe('ERR_BAD_PARAM');
	});

	test('anything else is passed on verbatim', async () => {
		const e = await explainInsmodFailure('/x.ko', 'insmod: ERROR: could not insert module /x.ko: Cannot allocate memory');
		expect(e.code).toBe('ERR_INSMOD');
		expect(e.message).toBe('insmod /x.ko failed: insmod: ERROR: could not insert module /x.ko: Cannot allocate memory');
	});
});

describe('parameters and /proc/devices', () => {
	test('bools compare in sysfs form', () => {
		expect(['1', 'y', 'true', 'on'].map(normalizeParam)).toEqual(['Y', 'Y', 'Y', 'Y']);
		expect(['0', 'N', 'false'].map(normalizeParam)).toEqual(['N', 'N', 'N']);
		expect(paramDifferences({ zap_after_map: '1', map_mode: 'remap_pfn' }, { zap_after_map: 'Y', map_mode: 'remap_pfn' })).toEqual([]);
		expect(paramDifferences({ map_mode: 'fault' }, { map_mode: 'remap_pfn' })).toEqual(['map_mode=remap_pfn (wanted fault)']);
	});

	test('the kex major comes from the character section only', () => {
		const devices = 'Character devices:\n  1 mem\n241 kex\n\nBlock devices:\n259 blkext\n242 kex\n';
		expect(chrdevMajor('kex', devices)).toBe(241);
		expect(chrdevMajor('nope', devices)).toBeUndefined();
	});
});
