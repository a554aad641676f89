// What the running kernel offers where kernels differ, asked of the kernel
// itself (not its version number, which backports make lie).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KprobeGroup, tracefsRoot } from '../evidence/tracefs.js';
import { fetchedKernelsDir } from '../vm/debian.js';
import { parseKernelConfig } from '../vm/kernels.js';

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
		has = / zap_special_vma_range$/m.test(readFileSync('/proc/kallsyms', 'utf8'));
		how = `/proc/kallsyms ${has ? 'lists' : 'does not list'} zap_special_vma_range`;
	}
	cached = has ? { fn: 'zap_special_vma_range', zapsMixedmap: true, how } : { fn: 'zap_vma_ptes', zapsMixedmap: false, how };
	return cached;
}

export interface PoisonSupport {
	/** Page poisoning checks a poisoned page when it is allocated again (and reports what changed). */
	checks: boolean;
	/** The kernel config's words for it. */
	why: string;
}

/**
 * Whether page_poison=1 can catch a write into a freed page on this kernel:
 * up to 5.10 a kernel may have CONFIG_PAGE_POISONING_NO_SANITY=y (Debian's
 * 5.10 has), which poisons pages when they are freed and never checks them.
 * Read from the running kernel's config (/boot, else the fetched tree).
 */
export function pagePoisonSupport(release = os.release()): PoisonSupport {
	const candidates = [path.join('/boot', `config-${release}`), path.join(fetchedKernelsDir(), release, 'boot', `config-${release}`)];
	for (const file of candidates) {
		let text: string;
		try {
			text = readFileSync(file, 'utf8');
		} catch {
			continue;
		}
		const config = parseKernelConfig(text);
		if (config.get('CONFIG_PAGE_POISONING') !== 'y') return { checks: false, why: `CONFIG_PAGE_POISONING is not set (${file})` };
		if (config.get('CONFIG_PAGE_POISONING_NO_SANITY') === 'y') return { checks: false, why: `CONFIG_PAGE_POISONING_NO_SANITY=y: freed pages are poisoned, never checked (${file})` };
		return { checks: true, why: `CONFIG_PAGE_POISONING=y without NO_SANITY (${file})` };
	}
	// No config found: assume the checking kind, so a kernel that does not check fails loudly.
	return { checks: true, why: `no config for ${release} in ${candidates.join(' or ')}: assumed to check` };
}
