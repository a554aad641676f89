// The published declarations (dist/, from `npm run build`) as a consumer
// sees them under strict: no public constructor for Mapping or KexDevice, no
// internal factory, options that a string cannot satisfy, and Node's types
// found without the consumer listing @types/node.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { execa } from 'execa';
import { afterAll, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'hybridmem-types-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('dist/*.d.ts: no public constructors, no internals, verifySync(string) is a type error', async () => {
	const entry = JSON.stringify(join(root, 'dist', 'index.js'));
	writeFileSync(
		join(dir, 'consumer.ts'),
		`import { openDevice, createMemFile, Mapping, KexDevice, type DeviceInfo, type DeviceStats } from ${entry};
		const device = openDevice('/dev/zero');
		const mapping = device.map(4096, { prot: 'rw' });
		mapping.verifySync({ pattern: 'random', offset: 0, length: 4096 });
		const file = createMemFile(4096, 'types');
		file.map(4096).unmap();
		const pages: number = (null as unknown as DeviceInfo).maxPages;
		const maps: bigint = (null as unknown as DeviceStats).maps;
		void pages; void maps;
		// @ts-expect-error Mapping has no public constructor
		new Mapping();
		// @ts-expect-error KexDevice has no public constructor
		new KexDevice();
		// @ts-expect-error the internal factory is not declared
		void Mapping.fromNative;
		// @ts-expect-error the internal factory is not declared
		void KexDevice.fromFd;
		// @ts-expect-error a string is not an options object
		mapping.verifySync('random');
		// @ts-expect-error a string is not an options object
		void mapping.fill('random');
		// @ts-expect-error a string is not an options object
		mapping.probe('touch');
		`,
	);
	writeFileSync(
		join(dir, 'tsconfig.json'),
		JSON.stringify({
			compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', lib: ['es2022'], types: [], noEmit: true, skipLibCheck: false },
			files: ['consumer.ts'],
		}),
	);
	const tsc = await execa(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { reject: false });
	expect(tsc.stdout + tsc.stderr).toBe('');
	expect(tsc.exitCode).toBe(0);
}, 120_000);
