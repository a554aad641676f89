// hybridmem dmesg --follow on this machine's live /dev/kmsg: events logged
// after it started are printed as they arrive, and Ctrl-C ends it cleanly
// (with --json, with everything it saw).  Module lines are injected through
// /dev/kmsg, which root may write.
import { execa, type ResultPromise } from 'execa';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { canWriteKmsg } from '../env.js';

const CLI = path.resolve('dist/cli/main.js');

async function waitFor(read: () => string, text: string, ms = 15_000): Promise<void> {
	const until = Date.now() + ms;
	while (!read().includes(text)) {
		if (Date.now() > until) throw new Error(`timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(read())}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}

function collect(child: ResultPromise) {
	const out = { stdout: '', stderr: '' };
	child.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
	child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
	return out;
}

describe.skipIf(!canWriteKmsg())('hybridmem dmesg --follow (needs root and /dev/kmsg)', () => {
	const address = `00007f${process.pid.toString(16).padStart(6, '0')}000`;

	test('prints module events as the kernel logs them and exits 0 on Ctrl-C', async () => {
		const child = execa('node', [CLI, 'dmesg', '--follow'], { reject: false, buffer: false });
		const out = collect(child);
		await waitFor(() => out.stderr, 'following the kernel log');
		writeFileSync('/dev/kmsg', `<6>hybridmem_test: inserted page 3 at ${address}\n`);
		await waitFor(() => out.stdout, `0x${address.replace(/^0+/, '')}`);
		child.kill('SIGINT');
		const r = await child;
		expect(r.exitCode).toBe(0);
		expect(out.stdout).toMatch(/pageInserted index=3 address=0x[0-9a-f]+/);
	});

	test('--json prints what it followed when stopped', async () => {
		const child = execa('node', [CLI, 'dmesg', '--follow', '--json'], { reject: false, buffer: false });
		const out = collect(child);
		// JSON mode is quiet until the end: give the capture time to start.
		await new Promise((r) => setTimeout(r, 1500));
		writeFileSync('/dev/kmsg', `<6>hybridmem_test:  zap_vma_ptes addr 0x${address.replace(/^0+/, '')} \n`);
		await new Promise((r) => setTimeout(r, 500));
		child.kill('SIGINT');
		const r = await child;
		expect(r.exitCode).toBe(0);
		const data = JSON.parse(out.stdout) as { events: { type: string; address?: string }[] };
		expect(data.events).toContainEqual(expect.objectContaining({ type: 'zap', address: `0x${address.replace(/^0+/, '')}` }));
	});
});
