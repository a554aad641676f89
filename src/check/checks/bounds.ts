// bounds: what the mmap handler must refuse (offsets and lengths beyond any
// buffer, ranges that overflow), and what mremap growth does: either works or
// is refused, no oops (the kernel-log check sees oopses).  Partial munmap is
// in process.ts (it needs the C helper).
import { loadBinding, type Mapping } from '../../device/index.js';
import { decodeAddressTag } from '../../evidence/page-poison.js';
import type { Check, CheckResult } from '../types.js';
import { result } from '../types.js';
import { errCode, mapOf, refusal, withOpened } from './common.js';

export const absurdRanges: Check = {
	name: 'bounds-absurd-ranges',
	category: 'bounds',
	async run(t) {
		return withOpened(t, async (o) => {
			const ps = BigInt(t.pageSize);
			const max = t.maxLength ?? o.length;
			// The buffer itself, tagged, so an accepted mapping can say which of its bytes it shows.
			const reference = mapOf(o, t);
			try {
				if (!t.expect.readOnly) await reference.fill({ pattern: 'address-tag', seed: TAG_SEED });
				// [what, offset into the buffer, length]
				const cases: [string, bigint, number][] = [
					[`length one page beyond the largest the driver takes (${max} bytes)`, 0n, max + t.pageSize],
					['length 64 GiB', 0n, 64 * 2 ** 30],
					['offset far beyond any buffer (1 TiB)', 1n << 40n, o.length],
					['offset one page in, length the whole buffer (past its end)', ps, max],
					['offset near the top of the 64-bit range', (1n << 63n) - ps * 4n - o.offset, t.pageSize * 8],
				];
				const accepted: string[] = [];
				const asFile: string[] = [];
				const evidence: string[] = [];
				for (const [what, at, length] of cases) {
					let m: Mapping | undefined;
					const code = refusal(() => (m = mapOf(o, t, { offset: o.offset + at, length })));
					if (m) {
						const seen = describeAccepted(m, t.pageSize, !t.expect.readOnly);
						m.unmap();
						// A file's semantics: what lies past the end of the buffer faults, what lies before it is the buffer at that offset.
						const within = Math.max(0, Math.ceil((max - Number(at)) / t.pageSize));
						const past = Math.max(0, seen.probed - within);
						const fileLike = seen.faulting === past && (seen.firstOffset === undefined || seen.firstOffset === at);
						evidence.push(`${what}: ACCEPTED, ${seen.text}${t.expect.sigbusPastEnd && fileLike ? ' (as declared: every page past the end faults)' : ''}`);
						(t.expect.sigbusPastEnd && fileLike ? asFile : accepted).push(what);
					} else if (code?.startsWith('ERR_')) evidence.push(`${what}: not tried, over hybridmem's own limit (${code})`);
					else evidence.push(`${what}: refused (${code})`);
				}
				if (accepted.length) return result(this, 'fail', `mmap accepted ${accepted.length} of ${cases.length} out-of-range requests: ${accepted.join('; ')}`, evidence);
				const refused = evidence.filter((e) => / refused \(/.test(e)).length;
				if (asFile.length) return result(this, 'pass', `${refused} out-of-range mmap requests refused, ${asFile.length} accepted with every page past the end faulting (${t.expect.sigbusPastEnd})`, evidence);
				return result(this, 'pass', `all ${cases.length} out-of-range mmap requests refused`, evidence);
			} finally {
				reference.unmap();
			}
		});
	},
};

const TAG_SEED = 0xb0b0n;

/** What an mmap that should have been refused maps: pages readable or faulting, and which buffer offset its first readable page shows. */
function describeAccepted(m: Mapping, pageSize: number, tagged: boolean): { text: string; probed: number; faulting: number; firstOffset?: bigint } {
	// Large acceptances (64 GiB) are probed over their first 64 pages only.
	const length = Math.min(m.length, 64 * pageSize);
	const p = m.probe({ touch: true, length });
	let shows = '';
	let firstOffset: bigint | undefined;
	const first = p.pages.indexOf('present');
	if (tagged && first >= 0) {
		const run = decodeAddressTag(m.bytes.subarray(first * pageSize, (first + 1) * pageSize), TAG_SEED);
		// The offset the mapping's own first byte stands for, if its page `first` shows the buffer.
		if (run) firstOffset = run.firstOffset - BigInt(first * pageSize);
		shows = run ? `; its page ${first} holds the buffer's bytes from offset 0x${run.firstOffset.toString(16)}` : `; its page ${first} holds none of the buffer's tagged bytes`;
	}
	return { text: `${p.present} of ${length / pageSize} pages readable, ${p.faulting} fault (SIGBUS/SIGSEGV, caught)${shows}`, probed: length / pageSize, faulting: p.faulting, ...(firstOffset !== undefined ? { firstOffset } : {}) };
}

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
