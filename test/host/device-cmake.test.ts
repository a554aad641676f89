// cmake-js builds the same addon as node-gyp, offline (package.json's
// binary.napi_versions selects node-api-headers instead of a header
// download), and the result loads and works. Built into a temporary
// directory so the node-gyp build in build/Release is left alone.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { execa } from 'execa';
import { afterAll, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'hybridmem-cmake-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

test('cmake-js compile produces a loadable hybridmem.node and compile_commands.json', async () => {
	const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
	await execa(process.execPath, [cmakeJs, 'compile', '-O', out, `--CDHYBRIDMEM_OUTPUT_DIR=${join(out, 'Release')}`], {
		cwd: root,
		// Any attempt to download headers would fail here instead of passing silently.
		env: { npm_config_disturl: 'http://0.0.0.0/', HTTPS_PROXY: 'http://0.0.0.0:9', HTTP_PROXY: 'http://0.0.0.0:9' },
	});
	const built = join(out, 'Release', 'hybridmem.node');
	expect(existsSync(built)).toBe(true);
	const commands = JSON.parse(readFileSync(join(out, 'compile_commands.json'), 'utf8')) as Array<{ file: string; command: string }>;
	expect(commands.some((c) => c.file.endsWith('native/mapping.cc') && c.command.includes('/kmod'))).toBe(true);

	const script = `
		const b = require(${JSON.stringify(built)});
		const fd = b.open('/dev/zero', b.constants.O_RDWR);
		const m = b.mmap(fd, 1 << 20, b.constants.PROT_READ | b.constants.PROT_WRITE, true, 0);
		m.fillSync({ pattern: 3, seed: 5 });
		const v = m.verifySync({ pattern: 3, seed: 5 });
		m.unmap();
		console.log(JSON.stringify({ pageSize: b.pageSize, bytes: v.bytes, mismatches: v.mismatchCount, uapi: b.constants.UAPI_VERSION }));`;
	const child = await execa(process.execPath, ['-e', script]);
	expect(JSON.parse(child.stdout)).toEqual({ pageSize: 4096, bytes: 1 << 20, mismatches: 0, uapi: 2 });
	// Both builds link with -z nodelete: the fault handler must outlive a worker that loaded the addon.
	for (const file of [built, join(root, 'build', 'Release', 'hybridmem.node')]) {
		const dynamic = await execa('readelf', ['-d', file]);
		expect(dynamic.stdout, file).toMatch(/FLAGS_1\)\s+Flags:.*\bNODELETE\b/);
	}
}, 240_000);
