// The scenarios as a user on a machine without module support meets them:
// hybridmem run boots the VM runner itself.  bug-pfnmap reproduces the notes'
// kernel BUG in a VM boot of its own, on each kernel under CI.
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { listKernels } from '../../src/vm/kernels.js';
import { isCi } from '../env.js';

const CLI = path.resolve('dist/cli/main.js');
const usable = listKernels().filter((k) => k.usable).map((k) => k.version);
const kernels = isCi() ? usable : usable.slice(0, 1);

interface RunJson {
	passed: boolean;
	results: { name: string; passed: boolean; where: string; kernel: string; checks: { name: string; ok: boolean; detail?: string }[]; crash?: { headline: string; file?: string; line?: number; function?: string; frames: { text: string; module?: string }[] } }[];
}

describe('hybridmem run in the VM runner', () => {
	test.each(kernels.map((k) => [k]))('bug-pfnmap on %s: "kernel BUG at mm/memory.c" in vm_insert_page with a [hybridmem_test] frame', async (kernel) => {
		const junit = path.join(mkdtempSync(path.join(os.tmpdir(), 'hm-crash-')), 'junit.xml');
		const r = await execa('node', [CLI, 'run', 'bug-pfnmap', '--vm', '--kernel', kernel, '--json', '--junit', junit], { reject: false, timeout: 280_000 });
		const data = JSON.parse(r.stdout) as RunJson;
		const [res] = data.results;
		expect(res?.checks.filter((c) => !c.ok)).toEqual([]);
		expect(r.exitCode).toBe(0);
		expect(res?.kernel).toBe(kernel);
		expect(res?.where).toBe('vm');
		expect(res?.crash?.headline).toMatch(/^kernel BUG at mm\/memory\.c:\d+!$/);
		expect(res?.crash?.file).toBe('mm/memory.c');
		expect(res?.crash?.function).toBe('vm_insert_page');
		expect(res?.crash?.frames[0]?.text).toMatch(/^vm_insert_page\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
		expect(res?.crash?.frames.some((f) => f.module === 'hybridmem_test')).toBe(true);
		expect(readFileSync(junit, 'utf8')).toMatch(/<testcase classname="hybridmem\.[^"]+" name="bug-pfnmap"/);
	});

	test('the safe scenarios run in one VM boot from the host and come back as data (what npm start does)', async () => {
		const r = await execa('node', [CLI, 'run', 'test1', 'error-path', 'zap-noop', '--vm', '--json'], { reject: false, timeout: 280_000 });
		const data = JSON.parse(r.stdout) as RunJson;
		expect(data.results.flatMap((x) => x.checks.filter((c) => !c.ok))).toEqual([]);
		expect(r.exitCode).toBe(0);
		expect(data.passed).toBe(true);
		expect(data.results.map((x) => [x.name, x.passed, x.where, x.kernel])).toEqual(
			['test1', 'error-path', 'zap-noop'].map((n) => [n, true, 'vm', usable[0]]),
		);
	});

	// Only meaningful on a kernel without module support, like this project's build machines.
	test.skipIf(existsSync('/proc/modules'))('a machine that cannot load modules refuses --native with a message that says what to do', async () => {
		const r = await execa('node', [CLI, 'run', 'test2', '--native'], { reject: false });
		expect(r.exitCode).toBe(1);
		expect(r.stderr).toContain("cannot load modules (built without CONFIG_MODULES): use 'hybridmem run --vm'");
	});

	test('unknown scenario names are a usage error listing the known ones', async () => {
		const r = await execa('node', [CLI, 'run', 'test3'], { reject: false });
		expect(r.exitCode).toBe(2);
		expect(r.stderr).toContain('unknown scenario test3; known: test1, test2, insert-page');
	});
});
