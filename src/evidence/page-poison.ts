// Page poisoning (mm/page_poison.c, boot with page_poison=1): freed pages are
// filled with 0xaa, and when a page is allocated again the kernel checks the
// fill.  A write into a page while it was free is then reported:
//   pagealloc: memory corruption          (or: pagealloc: single bit error)
//   <addr>: 41 42 ...                     print_hex_dump from the first to the last changed byte
//   CPU: ... Call Trace: ...              dump_stack() of the allocating task
//   page:... pfn:0x1234 ...               dump_page()
// This module finds those reports in kernel log lines, gives back the bytes,
// and decodes an address-tag pattern in them to the user offset that wrote it.
import { readFileSync } from 'node:fs';
import { kernelPageSize } from './page-size.js';

export const PAGE_POISON_BYTE = 0xaa;

export interface PoisonReport {
	kind: 'memory corruption' | 'single bit error';
	headline: string;
	/** The changed bytes, from the first to the last that is not 0xaa. */
	bytes: Uint8Array;
	/** From dump_page(), when printed. */
	pfn?: number;
	/** The allocating task's call trace, function names in printed order. */
	frames: string[];
	/** The task that allocated the page ("Comm: ..." of dump_stack). */
	comm?: string;
	/** Index of the headline in the lines given. */
	line: number;
}

const HEADLINE = /pagealloc: (memory corruption|single bit error)\s*$/;
// "ffff888004a00000: 41 42 ...  AB" or, hashed, "00000000a1b2c3d4: ..."; the ASCII column follows two spaces.
const HEXDUMP = /^([0-9a-f]{8,16}): ((?:[0-9a-f]{2} ?){1,32})(?:\s{2}.*)?$/;
const FRAME = /^\s*(?:\? )?(?:\[<[0-9a-f]+>\] )?([\w.]+)\+0x[0-9a-f]+\/0x[0-9a-f]+/;
const PFN = /\bpfn:(0x[0-9a-f]+|\d+)/;

/** Strips a dmesg timestamp, caller id or console prefix a captured line may carry. */
function body(line: string): string {
	return line.replace(/^<\d+>/, '').replace(/^\[\s*\d+\.\d+\]\s?/, '').replace(/^\[\s*[TC]\d+\]\s?/, '');
}

/** Every page-poison report in `lines` (kernel log text, one record per line). */
export function findPoisonReports(lines: readonly string[]): PoisonReport[] {
	const out: PoisonReport[] = [];
	for (let i = 0; i < lines.length; i++) {
		const h = HEADLINE.exec(body(lines[i]!));
		if (!h) continue;
		const bytes: number[] = [];
		const frames: string[] = [];
		let pfn: number | undefined;
		let comm: string | undefined;
		let j = i + 1;
		for (; j < lines.length; j++) {
			const text = body(lines[j]!);
			if (HEADLINE.test(text)) break;
			const hx = HEXDUMP.exec(text);
			if (hx && !frames.length) {
				for (const b of hx[2]!.trim().split(/\s+/)) bytes.push(parseInt(b, 16));
				continue;
			}
			const c = /\bComm: (\S+)/.exec(text);
			if (c && comm === undefined) comm = c[1];
			const f = FRAME.exec(text);
			if (f) frames.push(f[1]!);
			const p = PFN.exec(text);
			if (p && /^page:|\bpage:/.test(text)) pfn = Number(p[1]);
			if (/page dumped because|pagealloc: corrupted page details/.test(text)) {
				j++;
				break;
			}
		}
		out.push({
			kind: h[1] as PoisonReport['kind'],
			headline: `pagealloc: ${h[1]}`,
			bytes: Uint8Array.from(bytes),
			...(pfn !== undefined ? { pfn } : {}),
			frames,
			...(comm ? { comm } : {}),
			line: i,
		});
		i = j - 1;
	}
	return out;
}

export interface TagRun {
	/** First and last user offset whose tag words were found (bytes, in the mapping). */
	firstOffset: bigint;
	lastOffset: bigint;
	/** Consecutive tag words found. */
	words: number;
}

/**
 * Finds the address-tag pattern (every 64-bit word = its byte offset in the
 * mapping + seed, little endian) in corrupted bytes: the longest run of
 * consecutive words, tried at every byte alignment, since the dump starts at
 * the first changed byte.  Undefined when no two consecutive words fit.
 */
export function decodeAddressTag(bytes: Uint8Array, seed: bigint, opts: { maxOffset?: bigint } = {}): TagRun | undefined {
	const max = opts.maxOffset ?? 1n << 48n;
	const mask = (1n << 64n) - 1n;
	let best: TagRun | undefined;
	for (let shift = 0; shift < 8; shift++) {
		const view = new DataView(bytes.buffer, bytes.byteOffset + shift, bytes.length - shift);
		let runStart = -1;
		let prev: bigint | undefined;
		const words = Math.floor(view.byteLength / 8);
		for (let w = 0; w <= words; w++) {
			const value = w < words ? (view.getBigUint64(w * 8, true) - seed) & mask : undefined;
			const fits = value !== undefined && value < max && value % 8n === 0n;
			if (fits && prev !== undefined && value === prev + 8n && runStart >= 0) {
				prev = value;
				continue;
			}
			if (runStart >= 0 && prev !== undefined) {
				const n = w - runStart;
				const first = prev - BigInt((n - 1) * 8);
				if (n >= 2 && (!best || n > best.words)) best = { firstOffset: first, lastOffset: prev + 7n, words: n };
			}
			runStart = fits ? w : -1;
			prev = fits ? value : undefined;
		}
	}
	return best;
}

/** True when this kernel poisons freed pages (booted with page_poison=1). */
export function pagePoisoningEnabled(cmdline = readCmdline()): boolean {
	return /(?:^|\s)page_poison=(1|on|y|yes)(?:\s|$)/i.test(cmdline);
}

function readCmdline(): string {
	try {
		return readFileSync('/proc/cmdline', 'utf8');
	} catch {
		return '';
	}
}

/**
 * Pushes recently freed pages through the allocator's poison check: a
 * poisoned page is only checked when it is allocated again.  Touching one
 * byte every 2 MiB of fresh anonymous memory makes the kernel allocate a page
 * table page (unmovable, order 0, like most driver pages) for each, which
 * drains the per-CPU free lists those pages sit on.  Returns the bytes touched.
 */
export function sweepFreedPages(bytes = 256 * 1024 * 1024): number {
	const stride = 2 * 1024 * 1024;
	const buf = Buffer.allocUnsafeSlow(bytes);
	for (let off = 0; off < bytes; off += stride) buf[off] = 1;
	// A second page of each stride, in the kernel's pages: a second page-table page's worth of touches.
	for (let off = kernelPageSize(); off < bytes; off += stride) buf[off] = 1;
	return bytes;
}
