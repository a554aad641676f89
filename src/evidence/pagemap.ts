// Page state from procfs (Documentation/admin-guide/mm/pagemap.rst):
// /proc/PID/pagemap gives the PFN behind each user page (root sees PFNs;
// others read zeros), /proc/kpageflags and /proc/kpagecount the state and
// reference count of a PFN.  The page walker skips VM_PFNMAP vmas, so their
// pages read as not present here: the PFN trace covers those.
import { closeSync, openSync, readSync } from 'node:fs';
import { codedError } from './errors.js';
import { kernelPageSize } from './page-size.js';

export interface PagemapEntry {
	/** User address of the page. */
	address: bigint;
	present: boolean;
	swapped: boolean;
	/** The PFN when present and readable (root); undefined otherwise. */
	pfn?: number;
	/** Mapped by this process only (bit 56). */
	exclusive: boolean;
	/** File page or shared anonymous (bit 61). */
	fileOrShared: boolean;
}

const PFN_MASK = (1n << 55n) - 1n;

function readEntries(file: string, first: bigint, count: number): BigUint64Array {
	const buf = Buffer.alloc(count * 8);
	let fd: number;
	try {
		fd = openSync(file, 'r');
	} catch (err) {
		throw codedError('ERR_PAGEMAP_UNAVAILABLE', `cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (CONFIG_PROC_PAGE_MONITOR, and root for PFNs)`, { cause: err });
	}
	try {
		let done = 0;
		while (done < buf.length) {
			const n = readSync(fd, buf, done, buf.length - done, Number(first * 8n) + done);
			if (n <= 0) break;
			done += n;
		}
	} finally {
		closeSync(fd);
	}
	return new BigUint64Array(buf.buffer, buf.byteOffset, count);
}

/** pagemap entries of `pages` pages from `address` (page aligned) in process `pid`. */
export function readPagemap(address: bigint, pages: number, opts: { pid?: number | 'self'; pageSize?: number } = {}): PagemapEntry[] {
	const pageSize = BigInt(opts.pageSize ?? kernelPageSize());
	if (address % pageSize !== 0n) throw codedError('ERR_OUT_OF_RANGE', `address 0x${address.toString(16)} is not page aligned`);
	const raw = readEntries(`/proc/${opts.pid ?? 'self'}/pagemap`, address / pageSize, pages);
	return Array.from(raw, (e, i) => {
		const present = (e >> 63n) & 1n ? true : false;
		const pfn = present ? Number(e & PFN_MASK) : 0;
		return {
			address: address + BigInt(i) * pageSize,
			present,
			swapped: ((e >> 62n) & 1n) === 1n,
			...(present && pfn !== 0 ? { pfn } : {}),
			exclusive: ((e >> 56n) & 1n) === 1n,
			fileOrShared: ((e >> 61n) & 1n) === 1n,
		};
	});
}

/** The bits of /proc/kpageflags, by name (include/uapi/linux/kernel-page-flags.h). */
export const KPF = {
	LOCKED: 0,
	ERROR: 1,
	REFERENCED: 2,
	UPTODATE: 3,
	DIRTY: 4,
	LRU: 5,
	ACTIVE: 6,
	SLAB: 7,
	WRITEBACK: 8,
	RECLAIM: 9,
	BUDDY: 10,
	MMAP: 11,
	ANON: 12,
	SWAPCACHE: 13,
	SWAPBACKED: 14,
	COMPOUND_HEAD: 15,
	COMPOUND_TAIL: 16,
	HUGE: 17,
	UNEVICTABLE: 18,
	HWPOISON: 19,
	NOPAGE: 20,
	KSM: 21,
	THP: 22,
	OFFLINE: 23,
	ZERO_PAGE: 24,
	IDLE: 25,
	PGTABLE: 26,
} as const;
export type KpageFlag = keyof typeof KPF;

export interface KpageState {
	pfn: number;
	/** Names of the flags set. */
	flags: KpageFlag[];
	/** References (kpagecount: the page's mapcount as the kernel reports it). */
	count: number;
	/** In the buddy allocator: free. */
	free: boolean;
}

/** kpageflags and kpagecount of each PFN (root only). */
export function pageStates(pfns: readonly number[]): KpageState[] {
	return pfns.map((pfn) => {
		const [flags] = readEntries('/proc/kpageflags', BigInt(pfn), 1);
		const [count] = readEntries('/proc/kpagecount', BigInt(pfn), 1);
		const names = (Object.keys(KPF) as KpageFlag[]).filter((k) => ((flags! >> BigInt(KPF[k])) & 1n) === 1n);
		return { pfn, flags: names, count: Number(count), free: names.includes('BUDDY') };
	});
}
