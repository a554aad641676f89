// bounds: what the mmap handler must refuse (offsets and lengths beyond any
// buffer, ranges that overflow), and what mremap growth does: either works or
// is refused, no oops (the kernel-log check sees oopses).  Partial munmap is
// in process.ts (it needs the C helper).
import { loadBinding } from '../../device/index.js';
import type { Check, CheckResult } from '../types.js';
import { result } from '../types.js';
import { errCode, mapOf, refusal, withOpened } from './common.js';

export const absurdRanges: Check = {
	name: 'bounds-absurd-ranges',
	category: 'bounds',
	async run(t) {
		return withOpened(t, (o) => {
			const ps = BigInt(t.pageSize);
			const max = t.maxLength ?? o.length;
			const cases: [string, () => unknown][] = [
				[`length one page beyond the largest the driver takes (${max} bytes)`, () => mapOf(o, t, { length: max + t.pageSize }).unmap()],
				['length 64 GiB', () => mapOf(o, t, { length: 64 * 2 ** 30 }).unmap()],
				['offset far beyond any buffer (1 TiB)', () => mapOf(o, t, { offset: o.offset + (1n << 40n) }).unmap()],
				['offset one page in, length the whole buffer (past its end)', () => mapOf(o, t, { offset: o.offset + ps, length: max }).unmap()],
				['offset near the top of the 64-bit range', () => mapOf(o, t, { offset: (1n << 63n) - ps * 4n, length: t.pageSize * 8 }).unmap()],
			];

			const accepted: string[] = [];
			const evidence: string[] = [];
			for (const [what, fn] of cases) {
				const code = refusal(fn);
				evidence.push(`${what}: ${code ? `refused (${code})` : 'ACCEPTED'}`);
				if (!code) accepted.push(what);
			}
			if (accepted.length) return result(this, 'fail', `mmap accepted ${accepted.length} of ${cases.length} out-of-range requests: ${accepted.join('; ')}`, evidence);
			return result(this, 'pass', `all ${cases.length} out-of-range mmap requests refused`, evidence);
		});
	},
};

export const mremapMove: Check = {
	name: 'bounds-mremap-grow',
	category: 'bounds',
	async run(t): Promise<CheckResult> {
		const binding = loadBinding();
		return withOpened(t, (o) => {
			const g = mapOf(o, t, { length: t.pageSize });
			try {
				const code = refusal(() => binding.mremapGrow(g.address, t.pageSize, t.pageSize * 2));
				return result(this, 'info', `mremap growth from 1 to 2 pages: ${code ? `refused (${code})` : 'done'}`, [`mapping at 0x${g.address.toString(16)}`]);
			} catch (err) {
				return result(this, 'info', `mremap growth: ${errCode(err)}`);
			} finally {
				g.unmap();
			}
		});
	},
};
