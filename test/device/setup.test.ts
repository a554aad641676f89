// setup, teardown and status on a kernel that loads the real module: the
// notes' insmod/mknod/chmod flow, idempotent, and each failure with the
// message a user needs.  Every test leaves the module loaded with defaults.
import { execa } from 'execa';
import { chmodSync, existsSync, lstatSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { afterEach, describe, expect, test } from 'vitest';
import { openDevice } from '../../src/device/index.js';
import { moduleFile } from '../../src/setup/paths.js';
import { listKernels } from '../../src/vm/kernels.js';
import { requireDevice } from './device-env.js';

const device = requireDevice();
const NODE = device.path;

function hm(...args: string[]) {
	return execa('node', ['dist/cli/main.js', ...args], { reject: false });
}

async function statusJson() {
	return JSON.parse((await hm('status', '--json')).stdout) as {
		loaded: boolean;
		major?: number;
		node: { exists: boolean; mode?: string; major?: number; minor?: number; matchesModule?: boolean };
		params: Record<string, string>;
		counters: Record<string, string>;
	};
}

describe.runIf(device.ok)('setup, teardown, status', () => {
	afterEach(async () => {
		// Back to the suite's state: loaded with default parameters, node 0660.
		const s = await statusJson();
		if (!s.loaded || s.params.map_mode !== 'remap_pfn' || s.params.allow_bug !== 'N') expect((await hm('setup', '--reload')).exitCode).toBe(0);
		expect((await hm('setup')).exitCode).toBe(0);
	});

	test('setup is idempotent: a second run keeps module and node', async () => {
		const first = await hm('setup', '--json');
		expect(first.exitCode).toBe(0);
		const again = JSON.parse((await hm('setup', '--json')).stdout) as { module: string; node: string; major: number; mode: string };
		expect(again).toMatchObject({ module: 'already-loaded', node: 'kept', mode: '0660' });
		const s = await statusJson();
		expect(s.node).toMatchObject({ exists: true, mode: '0660', major: again.major, minor: 0, matchesModule: true });
		expect((await hm('status')).exitCode).toBe(0);
	});

	test('a stale node with other numbers, or a plain file, is replaced by c MAJOR 0', async () => {
		rmSync(NODE);
		await execa('mknod', [NODE, 'c', '1', '3']);
		const r = JSON.parse((await hm('setup', '--json')).stdout) as { node: string; major: number };
		expect(r.node).toBe('replaced');
		const st = lstatSync(NODE);
		expect([st.isCharacterDevice(), Math.floor(st.rdev / 256), st.rdev % 256]).toEqual([true, r.major, 0]);
		rmSync(NODE);
		writeFileSync(NODE, 'not a device');
		expect(JSON.parse((await hm('setup', '--json')).stdout)).toMatchObject({ node: 'replaced' });
		expect(lstatSync(NODE).isCharacterDevice()).toBe(true);
	});

	test('the node is 0660 by default; the notes\' 0666 only with --mode', async () => {
		chmodSync(NODE, 0o600);
		expect((await hm('setup')).exitCode).toBe(0);
		expect((lstatSync(NODE).mode & 0o777).toString(8)).toBe('660');
		expect((await hm('setup', '--mode', '0666')).exitCode).toBe(0);
		expect((lstatSync(NODE).mode & 0o777).toString(8)).toBe('666');
		const bad = await hm('setup', '--mode', '999');
		expect(bad.exitCode).toBe(1);
		expect(bad.stderr).toContain("--mode expects an octal permission like 0660, not '999'");
	});

	test('already loaded with other parameters: refused with the difference, --reload applies them', async () => {
		const r = await hm('setup', '--param', 'map_mode=fault');
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain('hybridmem_test is already loaded with other parameters: map_mode=remap_pfn (wanted fault); use --reload');
		const reload = await hm('setup', '--reload', '--param', 'map_mode=fault', '--param', 'zap_after_map=1');
		expect(reload.exitCode).toBe(0);
		expect(reload.stdout).toContain('hybridmem_test reloaded');
		expect((await statusJson()).params).toMatchObject({ map_mode: 'fault', zap_after_map: 'Y' });
	});

	test('a parameter the module rejects gets a message naming modinfo', async () => {
		const r = await hm('setup', '--reload', '--param', 'map_mode=bogus');
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toMatch(/the module rejected its parameters: .*\(see 'modinfo .*hybridmem_test\.ko' for valid values\)/);
	});

	test('teardown while a mapping is alive refuses, names the holder and changes nothing; afterwards it unloads', async () => {
		const dev = openDevice(NODE);
		const m = dev.map(4 * dev.pageSize);
		const r = await hm('teardown');
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain('refusing to unload hybridmem_test: 1 mapping is still alive');
		expect(r.stderr).toContain(`[${process.pid}]`);
		expect(r.stderr).toContain('Nothing was changed.');
		const s = await statusJson();
		expect([s.loaded, s.node.exists]).toEqual([true, true]);
		m.unmap();
		dev.close();
		const down = await hm('teardown');
		expect(down.exitCode).toBe(0);
		expect(down.stdout).toContain('hybridmem_test unloaded; node removed');
		expect(existsSync(NODE)).toBe(false);
		expect((await statusJson()).loaded).toBe(false);
		expect((await hm('status')).exitCode).toBe(3);
	});

	test('a module built for the other kernel: a clear vermagic message', async () => {
		const other = listKernels().find((k) => k.usable && k.version !== os.release());
		expect(other, 'needs a second installed kernel with its module built').toBeDefined();
		expect((await hm('teardown')).exitCode).toBe(0);
		const r = await hm('setup', '--module', moduleFile(other!.version));
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain(`was built for kernel ${other!.version}, but this kernel is ${os.release()} (vermagic mismatch): rebuild it with 'hybridmem build'`);
		expect((await statusJson()).loaded).toBe(false);
	});

	test('a missing module file says how to build it', async () => {
		expect((await hm('teardown')).exitCode).toBe(0);
		const r = await hm('setup', '--module', '/nonexistent/hybridmem_test.ko');
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain("module file /nonexistent/hybridmem_test.ko does not exist: build it with 'hybridmem build'");
	});

	test('not root: setup says so and what to do', async () => {
		const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', 'dist/cli/main.js', 'setup'], { reject: false });
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain("setup needs root: run it with sudo, or inside a VM with 'hybridmem vm -- hybridmem setup'");
	});
});
