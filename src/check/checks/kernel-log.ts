// kernel-log: no WARN, BUG, Oops, Bad page, rss-counter, page-poison or
// lockdep report appeared while the checks ran, and no taint flag was added
// beyond the out-of-tree/unsigned module flags a test module brings.
import { readFileSync } from 'node:fs';
import type { CrashReport } from '../../kmsg/reports.js';
import type { CheckResult } from '../types.js';
import { result } from '../types.js';

/** Taint bits a loaded test module sets legitimately: O (12, out of tree), E (13, unsigned). */
const MODULE_TAINTS = (1 << 12) | (1 << 13);
const TAINT_LETTERS = 'PFSRMBUDAWCIOELKXTN';

export function readTaint(): number {
	try {
		return Number(readFileSync('/proc/sys/kernel/tainted', 'utf8').trim());
	} catch {
		return 0;
	}
}

function letters(mask: number): string {
	return [...TAINT_LETTERS].filter((_, i) => mask & (1 << i)).join('') || 'none';
}

export function judgeKernelLog(reports: CrashReport[], poisonLines: string[], taintBefore: number, taintAfter: number, lost: number): CheckResult {
	const check = { name: 'kernel-log-clean', category: 'kernel-log' as const };
	const added = taintAfter & ~taintBefore & ~MODULE_TAINTS;
	const evidence = [
		...reports.map((r) => `${r.headline}${r.function ? ` in ${r.function}` : ''}${r.module ? ` [${r.module}]` : ''}`),
		...poisonLines,
		`taint before 0x${taintBefore.toString(16)} (${letters(taintBefore)}), after 0x${taintAfter.toString(16)} (${letters(taintAfter)})`,
		`${lost} kernel log records lost to ring overrun`,
	];
	if (reports.length || poisonLines.length)
		return result(check, 'fail', `${reports.length + poisonLines.length} kernel report(s) during the checks: ${[...reports.map((r) => r.headline), ...poisonLines].slice(0, 3).join(' | ')}`, evidence);
	if (added) return result(check, 'fail', `the kernel became tainted: ${letters(added)}`, evidence);
	return result(check, 'pass', `no WARN/BUG/Oops/Bad page/poison report and no new taint (besides ${letters(MODULE_TAINTS & taintAfter)})${lost ? `; ${lost} records lost` : ''}`, evidence);
}
