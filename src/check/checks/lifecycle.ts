// lifecycle: the module stays loaded while its device is open or mapped and
// unloads afterwards; a mapping stays valid after its fd is closed.  The
// module is loaded again afterwards (same parameters) so nothing is lost.
import { execa } from 'execa';
import type { Check, CheckResult } from '../types.js';
import { result } from '../types.js';
import { errCode, mapDetached } from './common.js';

async function rmmod(name: string): Promise<{ ok: boolean; text: string }> {
	const r = await execa('rmmod', [name], { reject: false, all: true });
	return { ok: r.exitCode === 0, text: (r.all ?? '').trim() || 'done' };
}

export const unloadWhileInUse: Check = {
	name: 'lifecycle-rmmod',
	category: 'lifecycle',
	last: true,
	async run(t, env): Promise<CheckResult | CheckResult[]> {
		const name = t.moduleName;
		if (!name) return result(this, 'skip', 'the target is not a module this check loaded (a recipe or an in-tree driver): nothing to unload');
		const evidence: string[] = [];
		let failed = '';
		const o = await t.open();
		let m;
		try {
			const open = await rmmod(name);
			evidence.push(`rmmod while the device is open: ${open.ok ? 'UNLOADED' : `refused (${open.text})`}`);
			if (open.ok) {
				// Closing the fd now calls into unloaded code: record the verdict before that.
				const r = result(this, 'fail', 'the module unloaded while its device was open (fops without .owner?)', evidence);
				if (env.emit) {
					env.emit(r);
					o.close();
					return [];
				}
				failed = r.summary;
			}
			if (!open.ok) {
				m = mapDetached(o, t);
				if (!t.expect.readOnly) await m.fill({ pattern: 'address-tag', seed: 21n });
				o.close();
				const mapped = await rmmod(name);
				evidence.push(`rmmod with the fd closed and a mapping alive: ${mapped.ok ? 'UNLOADED' : `refused (${mapped.text})`}`);
				if (mapped.ok) failed = 'the module unloaded while a mapping of its device was alive';
				else if (!t.expect.readOnly) {
					const v = await m.verify({ pattern: 'address-tag', seed: 21n });
					evidence.push(`the mapping after close(): ${v.ok ? 'data intact' : `${v.mismatchCount} words differ, ${v.faultingPages.length} pages fault`}`);
					if (!v.ok && env.dataTrusted !== false) failed = 'the mapping lost its data after close() of the fd';
				}
			}
		} catch (err) {
			if ((err as NodeJS.ErrnoException).syscall === 'mmap') {
				o.close();
				return result(this, 'skip', `not run: the target's mmap failed (${errCode(err)})`, evidence);
			}
			failed = `the check itself failed: ${errCode(err)}`;
		} finally {
			m?.unmap();
			o.close();
		}
		if (failed) return result(this, 'fail', failed, evidence);
		const after = await rmmod(name);
		evidence.push(`rmmod after munmap and close: ${after.ok ? 'unloaded' : `refused (${after.text})`}`);
		if (!after.ok) return result(this, 'fail', `rmmod refused after every fd and mapping was gone: ${after.text}`, evidence);
		return result(this, 'pass', 'rmmod refused while open and while mapped, done afterwards; the mapping outlived its fd', evidence);
	},
};
