// Every JavaScript and TypeScript block of README.md, as a user copies it, on
// this Node (20 in CI): JavaScript blocks run (those that open /dev/devKex in
// the VM runner, after setup(), the rest here), TypeScript blocks type-check
// under strict.  Each file is written inside the package so `import ... from
// 'hybridmem'` resolves to the package itself (dist/), as it would for a user.
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildModule } from '../../src/setup/build.js';
import { PACKAGE_ROOT } from '../../src/setup/paths.js';
import { chooseKernel } from '../../src/vm/kernels.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');
const dir = path.join(PACKAGE_ROOT, 'build', `readme-${process.pid}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Block {
	lang: 'js' | 'ts';
	line: number;
	code: string;
}

const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
const blocks: Block[] = [];
for (const m of readme.matchAll(/^```(js|ts)\n([\s\S]*?)^```$/gm)) {
	blocks.push({ lang: m[1] as 'js' | 'ts', line: readme.slice(0, m.index).split('\n').length, code: m[2]! });
}

/** What some blocks must print, found by a line of their code. */
const EXPECTED: { marker: string; stdout: (out: string[]) => void }[] = [
	{
		marker: "dev.setMode({ mode: 'remap_pfn', zapAfterMap: false });",
		stdout: (out) => expect(out).toEqual(['true 262144 0', '64', '0n']),
	},
	{ marker: 'check-kex.mjs', stdout: (out) => expect(out).toEqual(['ok: 65536 bytes round-tripped']) },
	{ marker: 'PfnTrace.start()', stdout: (out) => expect(out.at(-1), out.join('\n')).toBe('true') },
];

beforeAll(async () => {
	mkdirSync(dir, { recursive: true });
	// The VM blocks load the module built for the VM runner's default kernel.
	await buildModule(chooseKernel().version);
}, 300_000);

test('the README has the blocks this test knows the output of', () => {
	expect(blocks.filter((b) => b.lang === 'js').length).toBeGreaterThanOrEqual(3);
	for (const e of EXPECTED) expect(blocks.some((b) => b.code.includes(e.marker)), e.marker).toBe(true);
	expect(readme).not.toMatch(/^\s*await using /m);
});

describe.each(blocks.filter((b) => b.lang === 'js'))('README JavaScript block at line $line', (block) => {
	test('runs on this Node and prints what it says', async () => {
		const file = path.join(dir, `block-${block.line}.mjs`);
		writeFileSync(file, block.code);
		let r;
		if (block.code.includes('/dev/devKex')) {
			// Inside the VM: the module loaded and the node made first, as `hybridmem setup` would.
			const wrapper = path.join(dir, `vm-${block.line}.mjs`);
			writeFileSync(wrapper, `import { setup } from 'hybridmem';\nawait setup();\nawait import(${JSON.stringify(file)});\n`);
			r = await execa(process.execPath, [CLI, 'vm', '--cpus', '1', '--timeout', '240', '--', 'node', wrapper], { reject: false, cwd: dir });
		} else r = await execa(process.execPath, [file], { reject: false, cwd: dir, timeout: 240_000 });
		expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
		expect(r.stderr).toBe('');
		const out = r.stdout.split('\n').filter(Boolean);
		expect(out.length).toBeGreaterThan(0);
		for (const e of EXPECTED) if (block.code.includes(e.marker)) e.stdout(out);
	}, 300_000);
});

test('README TypeScript blocks type-check under strict (NodeNext, the package types)', async () => {
	const ts = blocks.filter((b) => b.lang === 'ts');
	expect(ts.length).toBeGreaterThan(0);
	const files = ts.map((b) => {
		const file = path.join(dir, `block-${b.line}.ts`);
		// Each block is a module of its own.
		writeFileSync(file, `${b.code}\nexport {};\n`);
		return file;
	});
	const tsc = path.join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
	const r = await execa(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023,esnext.disposable', '--types', 'node', ...files], {
		reject: false,
		cwd: dir,
	});
	expect(r.exitCode, r.stdout).toBe(0);
}, 120_000);
