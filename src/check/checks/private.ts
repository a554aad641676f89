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
				let priv;
				try {
					priv = mapOf(o, t, { shared: false });
				} catch (err) {
					return result(this, 'pass', `MAP_PRIVATE refused (${errCode(err)})`, ['a driver that cannot copy on write must refuse MAP_PRIVATE; this one does']);
				}
				try {
					const sees = await priv.verify({ pattern: 'address-tag', seed: 11n });
					await priv.fill({ pattern: 'address-tag', seed: 12n });
					const sharedAfter = await shared.verify({ pattern: 'address-tag', seed: 11n });
					const privAfter = await priv.verify({ pattern: 'address-tag', seed: 12n });
					const evidence = [
						`the private mapping first reads the shared contents: ${sees.ok ? 'yes' : `no (${sees.mismatchCount} words differ)`}`,
						`after writing through the private mapping: shared pages ${sharedAfter.ok ? 'unchanged' : `changed (${sharedAfter.mismatchCount} words)`}, private pages ${privAfter.ok ? 'hold the write' : `lost it (${privAfter.mismatchCount} words)`}`,
					];
					if (!sharedAfter.ok) return result(this, 'fail', 'a write through MAP_PRIVATE reached the shared pages: no copy on write', evidence);
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
