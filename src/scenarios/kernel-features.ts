// What the running kernel offers where kernels differ, asked of the kernel
// itself (not its version number, which backports make lie).
import { KprobeGroup, tracefsRoot } from '../evidence/tracefs.js';

export interface ZapSemantics {
	/** The driver-facing zap this kernel has. */
	fn: 'zap_vma_ptes' | 'zap_special_vma_range';
	/** Whether it empties a VM_MIXEDMAP vma (what vm_insert_page(s) leave): 7.1's zap_special_vma_range does, zap_vma_ptes returns early. */
	zapsMixedmap: boolean;
	/** How it was found out. */
	how: string;
}

let cached: ZapSemantics | undefined;

/**
 * 7.1 renamed zap_vma_ptes() to zap_special_vma_range() and let it zap
 * VM_MIXEDMAP vmas too.  A kprobe on the new name is accepted only by a
 * kernel that has the function; without kprobe events, /proc/kallsyms says.
 */
export async function zapSemantics(): Promise<ZapSemantics> {
	if (cached) return cached;
	const root = await tracefsRoot().catch(() => undefined);
	let has: boolean | undefined;
	let how = '';
	if (root && KprobeGroup.available(root)) {
		const g = KprobeGroup.define(root, `hybridmem_feat_${process.pid}`, [{ event: 'zap', symbol: 'zap_special_vma_range', fetch: [] }]);
		has = g.defined.length === 1;
		g.remove();
		how = `a kprobe on zap_special_vma_range was ${has ? 'accepted' : 'refused'} by kprobe_events`;
	} else {
		const { readFileSync } = await import('node:fs');
		has = / zap_special_vma_range$/m.test(readFileSync('/proc/kallsyms', 'utf8'));
		how = `/proc/kallsyms ${has ? 'lists' : 'does not list'} zap_special_vma_range`;
	}
	cached = has ? { fn: 'zap_special_vma_range', zapsMixedmap: true, how } : { fn: 'zap_vma_ptes', zapsMixedmap: false, how };
	return cached;
}
