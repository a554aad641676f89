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
	results: { name: string; passed: boolean; where: string; kernel: string; verdict?: string; evidence?: string[]; summary: string; checks: { name: string; ok: boolean; detail?: string }[]; crash?: { headline: string; file?: string; line?: number; function?: string; frames: { text: string; module?: string }[] } }[];
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

	test.each(kernels.map((k) => [k]))("the notes' hidden bugs as written on %s: the use-after-free and the leak, shown by kernel evidence", async (kernel) => {
		const r = await execa('node', [CLI, 'run', 'notes-test2-uaf', 'notes-error-leak', '--vm', '--kernel', kernel, '--json'], { reject: false, timeout: 280_000 });
		const data = JSON.parse(r.stdout) as RunJson;
		expect(data.results.flatMap((x) => x.checks.filter((c) => !c.ok))).toEqual([]);
		expect(r.exitCode).toBe(0);
		const [uaf, leak] = data.results;
		expect(uaf).toMatchObject({ name: 'notes-test2-uaf', passed: true, verdict: 'use-after-free', where: 'vm', kernel });
		// PFN lifecycle: every user page's PFN freed while mapped, listed with who freed it and when.
		expect(uaf!.evidence).toContain('16 of 16 user pages had their PFN freed while mapped (' + uaf!.summary.match(/\((\d+) frees/)![1] + ' frees)');
		expect(uaf!.evidence!.some((e) => /^pfn 0x[0-9a-f]+ freed by node-\d+ at [\d.]+ s while mapped at user page/.test(e))).toBe(true);
		// Page poisoning: the bytes user space wrote, decoded to the user page they came from.
		expect(uaf!.evidence!.some((e) => /^pagealloc: (memory corruption|single bit error): \d+ bytes changed in pfn 0x[0-9a-f]+ while it was free, holding the address-tag words of user offsets 0x[0-9a-f]+-0x[0-9a-f]+ \(user page \d+/.test(e))).toBe(true);
		expect(leak).toMatchObject({ name: 'notes-error-leak', passed: true, verdict: 'leak', where: 'vm', kernel });
		expect(leak!.evidence).toContain('zap_vma_ptes of user pages 0-7; 0 of 8 PFNs freed by the end');
		expect(leak!.summary).toMatch(/live_pages \+8 per mmap/);
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
