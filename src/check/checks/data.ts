// data: what user space writes through the mapping it reads back, over the
// whole mapping, and what a second mapping of the same buffer shows.
import type { Check } from '../types.js';
import { result } from '../types.js';
import { mapOf, withOpened } from './common.js';

const SEED = 0xc0ffeen;

export const roundTrip: Check = {
	name: 'data-round-trip',
	category: 'data',
	async run(t) {
		if (t.expect.readOnly) return result(this, 'skip', 'the target maps read-only: nothing to write');
		return withOpened(t, async (o) => {
			let m;
			try {
				m = mapOf(o, t);
			} catch (err) {
				return result(this, 'fail', `mmap of ${o.length} bytes at offset 0x${o.offset.toString(16)} failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, [(err as Error).message]);
			}
			try {
				await m.fill({ pattern: 'address-tag', seed: SEED });
				const v = await m.verify({ pattern: 'address-tag', seed: SEED });
				const faulting = v.faultingPages.length;
				const evidence = [`${v.bytes} bytes verified at 0x${m.address.toString(16)}, ${v.mismatchCount} mismatching words, ${faulting} pages faulting (SIGBUS/SIGSEGV caught)`];
				for (const x of v.mismatches.slice(0, 4)) evidence.push(`offset 0x${x.offset.toString(16)}: expected 0x${x.expected.toString(16)}, read 0x${x.actual.toString(16)}`);
				if (v.ok) return result(this, 'pass', `address-tag pattern over ${m.length} bytes read back intact`, evidence);
				if (t.expect.aliasing) return result(this, 'info', `${v.mismatchCount} words differ from what was written: expected, ${t.expect.aliasing}`, evidence);
				return result(this, 'fail', `${v.mismatchCount} words differ from what was written${faulting ? `, ${faulting} pages fault` : ''}`, evidence);
			} finally {
				m.unmap();
			}
		});
	},
};

export const remapKeeps: Check = {
	name: 'data-remap',
	category: 'data',
	async run(t) {
		if (t.expect.readOnly) return result(this, 'skip', 'the target maps read-only: nothing to write');
		return withOpened(t, async (o) => {
			const first = mapOf(o, t);
			await first.fill({ pattern: 'address-tag', seed: SEED });
			first.unmap();
			const second = mapOf(o, t);
			try {
				const v = await second.verify({ pattern: 'address-tag', seed: SEED });
				const zero = v.ok ? false : (await second.verify({ pattern: 'constant', value: 0 })).ok;
				const what = v.ok ? 'kept its contents' : zero ? 'came back zeroed' : `came back with other contents (${v.mismatchCount} words differ)`;
				return result(this, 'info', `munmap, then mmap of the same fd and offset: the buffer ${what}`, [`second mapping at 0x${second.address.toString(16)}, ${v.bytes} bytes compared`]);
			} finally {
				second.unmap();
			}
		});
	},
};
