// The kernel's view of a mapping's vma, from /proc/self/smaps: its VmFlags
// mnemonics ('pf' = VM_PFNMAP, 'mm' = VM_MIXEDMAP, 'io', 'sh', ...). Needed
// because residency cannot be read from user space for VM_PFNMAP vmas: the
// kernel's page walkers (mincore, pagemap) skip them and report every page
// absent, so probe() without touch means nothing there.
import { readFileSync } from 'node:fs';

export function vmFlagsAt(address: bigint): string[] | undefined {
	const start = `${address.toString(16)}-`;
	const lines = readFileSync('/proc/self/smaps', 'utf8').split('\n');
	const header = lines.findIndex((line) => line.startsWith(start));
	if (header < 0) return undefined;
	for (let i = header + 1; i < lines.length; i++) {
		const line = lines[i] ?? '';
		if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) break; // the next vma
		if (line.startsWith('VmFlags:')) return line.slice('VmFlags:'.length).trim().split(/\s+/);
	}
	return undefined;
}
