// setup, teardown and status on a kernel that loads the real module: the
// notes' insmod/mknod/chmod flow, idempotent, and each failure with the
// message a user needs.  Most tests call the functions the CLI calls (a node
// start costs seconds under emulation); the last ones go through the CLI to
// show the same messages and exit codes reach the user.  Every test leaves
// the module loaded with defaults.
import { execa } from 'execa';
import { chmodSync, existsSync, lstatSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { openDevice } from '../../src/device/index.js';
import { moduleFile } from '../../src/setup/paths.js';
import { setup } from '../../src/setup/setup.js';
import { status } from '../../src/setup/status.js';
import { teardown } from '../../src/setup/teardown.js';
import { GUEST_HOSTNAME } from '../../src/vm/guest-init.js';
import { listKernels } from '../../src/vm/kernels.js';
import { GUEST_CLI, nodeStartsTimeout, requireDevice } from './device-env.js';

const device = requireDevice();
const NODE = device.path;

function hm(...args: string[]) {
	return execa('node', [GUEST_CLI, ...args], { reject: false });
}

/** The error a call throws, for asserting its code and message. */
async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
	try {
		await p;
	} catch (err) {
		return err as { code?: string; message: string };
	}
	throw new Error('expected a failure, but it succeeded');
}

describe.runIf(device.ok)('setup, teardown, status', () => {
	afterEach(async () => {
		// Back to the suite's state: loaded with default parameters, node 0660.
		const s = status(NODE);
		if (!s.loaded || s.params.map_mode !== 'remap_pfn' || s.params.zap_after_map !== 'N') await setup({ reload: true, node: NODE });
		await setup({ node: NODE });
	});

	test('setup is idempotent: a second run keeps module and node', async () => {
		await setup({ node: NODE });
		const again = await setup({ node: NODE });
		expect(again).toMatchObject({ module: 'already-loaded', node: 'kept', mode: '0660' });
		expect(status(NODE).node).toMatchObject({ exists: true, mode: '0660', major: again.major, minor: 0, matchesModule: true });
	});

	test('a stale node with other numbers, or a plain file, is replaced by c MAJOR 0', async () => {
		rmSync(NODE);
		await execa('mknod', [NODE, 'c', '1', '3']);
		const r = await setup({ node: NODE });
		expect(r.node).toBe('replaced');
		const st = lstatSync(NODE);
		expect([st.isCharacterDevice(), Math.floor(st.rdev / 256), st.rdev % 256]).toEqual([true, r.major, 0]);
		rmSync(NODE);
		writeFileSync(NODE, 'not a device');
		expect(await setup({ node: NODE })).toMatchObject({ node: 'replaced' });
		expect(lstatSync(NODE).isCharacterDevice()).toBe(true);
	});

	test("the node is 0660 by default; the notes' 0666 only with --mode", async () => {
		chmodSync(NODE, 0o600);
		await setup({ node: NODE });
		expect((lstatSync(NODE).mode & 0o777).toString(8)).toBe('660');
		await setup({ node: NODE, mode: '0666' });
		expect((lstatSync(NODE).mode & 0o777).toString(8)).toBe('666');
		const bad = await failure(setup({ node: NODE, mode: '999' }));
		expect(bad.message).toBe("--mode expects an octal permission like 0660, not '999'");
	});

	test('already loaded with other parameters: refused with the difference, --reload applies them', async () => {
		const e = await failure(setup({ node: NODE, params: { map_mode: 'fault' } }));
		expect(e.code).toBe('ERR_PARAMS_DIFFER');
		expect(e.message).toContain('hybridmem_test is already loaded with other parameters: map_mode=remap_pfn (wanted fault); use --reload');
		const r = await setup({ node: NODE, reload: true, params: { map_mode: 'fault', zap_after_map: '1' } });
		expect(r.module).toBe('reloaded');
		expect(status(NODE).params).toMatchObject({ map_mode: 'fault', zap_after_map: 'Y' });
	});

	test('a parameter the module rejects gets a message naming modinfo', async () => {
		const e = await failure(setup({ node: NODE, reload: true, params: { map_mode: 'bogus' } }));
		expect(e.code).toBe('ERR_BAD_PARAM');
		expect(e.message).toMatch(/the module rejected its parameters: .*\(see 'modinfo .*hybridmem_test\.ko' for valid values\)/);
	});

	test('teardown while a mapping is alive refuses, names the holder and changes nothing; afterwards it unloads', async () => {
		const dev = openDevice(NODE);
		const m = dev.map(4 * dev.pageSize);
		const e = await failure(teardown({ node: NODE }));
		expect(e.code).toBe('ERR_MAPPINGS_ALIVE');
		expect(e.message).toContain('refusing to unload hybridmem_test: 1 mapping is still alive');
		expect(e.message).toContain(`[${process.pid}]`);
		expect(e.message).toContain('Nothing was changed.');
		expect([status(NODE).loaded, existsSync(NODE)]).toEqual([true, true]);
		m.unmap();
		dev.close();
		expect(await teardown({ node: NODE })).toEqual({ module: 'unloaded', node: 'removed' });
		expect(existsSync(NODE)).toBe(false);
		expect(status(NODE).loaded).toBe(false);
		expect(await teardown({ node: NODE })).toEqual({ module: 'not-loaded', node: 'absent' });
	});

	test('a module built for the other kernel: a clear vermagic message', async () => {
		const other = listKernels().find((k) => k.usable && k.version !== os.release());
		expect(other, 'needs a second installed kernel with its module built').toBeDefined();
		await teardown({ node: NODE });
		const e = await failure(setup({ node: NODE, module: moduleFile(other!.version) }));
		expect(e.code).toBe('ERR_VERMAGIC');
		expect(e.message).toContain(`was built for kernel ${other!.version}, but this kernel is ${os.release()} (vermagic mismatch): rebuild it with 'hybridmem build'`);
		expect(status(NODE).loaded).toBe(false);
	});

	test('a missing module file says how to build it', async () => {
		await teardown({ node: NODE });
		const e = await failure(setup({ node: NODE, module: '/nonexistent/hybridmem_test.ko' }));
		expect(e.code).toBe('ERR_MODULE_MISSING');
		expect(e.message).toContain("module file /nonexistent/hybridmem_test.ko does not exist: build it with 'hybridmem build'");
	});

	test('through the CLI: status, a refusal with its exit code, teardown and setup', async () => {
		const st = await hm('status');
		expect(st.exitCode).toBe(0);
		expect(st.stdout).toMatch(/^module: +loaded, kex major \d+$/m);
		expect(st.stdout).toMatch(/^node: +\/dev\/devKex mode 0660, c \d+ 0$/m);
		const refused = await hm('setup', '--param', 'map_mode=fault');
		expect(refused.exitCode).toBe(1);
		expect(refused.stderr).toContain('hybridmem: hybridmem_test is already loaded with other parameters: map_mode=remap_pfn (wanted fault)');
		const down = await hm('teardown');
		expect([down.exitCode, down.stdout.trim()]).toEqual([0, 'hybridmem_test unloaded; node removed']);
		const up = await hm('setup');
		expect(up.exitCode).toBe(0);
		expect(up.stdout).toMatch(/^hybridmem_test loaded; kex major \d+; \/dev\/devKex created \(c \d+ 0, mode 0660\)$/m);
	}, nodeStartsTimeout(4));

	test('not root: setup says so and what to do', async () => {
		// A checkout under a directory only root may enter (CI's may be one) is unreachable for
		// uid 65534.  In the runner's guest / is an overlay, so opening its parents there
		// changes nothing on the host.
		if (os.hostname() === GUEST_HOSTNAME)
			for (let d = path.resolve('.'); d !== '/'; d = path.dirname(d)) {
				const mode = statSync(d).mode & 0o7777;
				if (!(mode & 0o001)) chmodSync(d, mode | 0o001);
			}
		const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', GUEST_CLI, 'setup'], { reject: false });
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain("setup needs root: run it with sudo, or inside a VM with 'hybridmem vm -- hybridmem setup'");
	});
});
