// private: a MAP_PRIVATE mapping is refused, or copy-on-write holds: what
// the private mapping writes never reaches the shared pages.
import type { Check } from '../types.js';
import { result } from '../types.js';
import { errCode, mapOf, withOpened } from './common.js';

export const privateCow: Check = {
	name: 'private-copy-on-write',
	category: 'private',
	async run(t) {
		if (t.expect.readOnly) return result(this, 'skip', 'the target maps read-only: nothing to write');
		return withOpened(t, async (o) => {
			const shared = mapOf(o, t);
			try {
				await shared.fill({ pattern: 'address-tag', seed: 11n });
				// What the shared pages hold now (the pattern, unless the driver aliases pages): the private write must not change it.
				// Read in JS only when no page faults (a SIGBUS there is not caught).
				const touched = shared.probe({ touch: true });
				if (touched.faulting) return result(this, 'info', `not judged: ${touched.faulting} pages of the shared mapping fault`, []);
				const snapshot = new BigUint64Array(new Uint8Array(shared.bytes).buffer);
				const differs = (m: typeof shared) => {
					const now = new BigUint64Array(m.bytes.buffer, m.bytes.byteOffset, m.length / 8);
					let n = 0;
					for (let i = 0; i < now.length; i++) if (now[i] !== snapshot[i]) n++;
					return n;
				};
				let priv;
				try {
					priv = mapOf(o, t, { shared: false });
				} catch (err) {
					return result(this, 'pass', `MAP_PRIVATE refused (${errCode(err)})`, ['a driver that cannot copy on write must refuse MAP_PRIVATE; this one does']);
				}
				try {
					const privTouched = priv.probe({ touch: true });
					if (privTouched.faulting) return result(this, 'info', `MAP_PRIVATE accepted; not judged: ${privTouched.faulting} of its pages fault`, []);
					const unlike = differs(priv);
					await priv.fill({ pattern: 'address-tag', seed: 12n });
					const changed = differs(shared);
					const privAfter = await priv.verify({ pattern: 'address-tag', seed: 12n });
					const sees = { ok: unlike === 0 };
					const evidence = [
						`the private mapping first reads the shared contents: ${unlike === 0 ? 'yes' : `no (${unlike} words differ)`}`,
						`after writing through the private mapping: shared pages ${changed === 0 ? 'unchanged' : `changed (${changed} words)`}, private pages ${privAfter.ok ? 'hold the write' : `lost it (${privAfter.mismatchCount} words)`}`,
					];
					if (changed) return result(this, 'fail', 'a write through MAP_PRIVATE reached the shared pages: no copy on write', evidence);
					if (!privAfter.ok) return result(this, 'fail', 'MAP_PRIVATE accepted but its writes do not stick', evidence);
					return result(this, sees.ok ? 'pass' : 'info', sees.ok ? 'MAP_PRIVATE accepted with correct copy on write' : 'MAP_PRIVATE accepted: copy on write holds, but the private mapping did not start from the shared contents', evidence);
				} finally {
					priv.unmap();
				}
			} finally {
				shared.unmap();
			}
		});
	},
};
