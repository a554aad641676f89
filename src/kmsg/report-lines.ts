// Classifiers for the single lines of a kernel crash report: which line opens a
// report and what it names, stack frames on every architecture's layout, the
// function line (RIP/PC/NIP/epc), the task line, and the end markers.
// Inputs are messages with the log prefixes already removed (see text.ts).

export type ReportKind =
	| 'BUG'
	| 'WARNING'
	| 'page-fault'
	| 'null-deref'
	| 'gpf'
	| 'KASAN'
	| 'KFENCE'
	| 'UBSAN'
	| 'lockup'
	| 'panic'
	| 'page-poison'
	| 'trace';

/**
 * One stack frame: "fn+0xoff/0xsize [module]", or a decoded one
 * ("fn (file.c:12)", syzbot's "fn file.c:12 [inline]"), or arm32's callee
 * "(fn) from [<...>] (caller+0x/0x)".
 */
export interface StackFrame {
	fn: string;
	/** 0 when the layout prints no offset (decoded and inlined frames, arm32 callees). */
	offset: number;
	size: number;
	module?: string;
	/** False for "? fn" frames (x86 stack scan guesses) and powerpc "(unreliable)" ones. */
	reliable: boolean;
	/** The code address when the layout prints one ("[<ffff000008250d1c>]"). */
	address?: bigint;
	/** x86 stack section the frame was in: TASK, IRQ, NMI, SOFTIRQ, ... */
	context?: string;
	/** Source position of a decoded frame ("lib/dump_stack.c:107"), as printed. */
	source?: string;
	/** syzbot's "[inline]" frames and decode_stacktrace's "(inlined by)". */
	inline?: boolean;
}

/** A symbol as printk's %pS prints it. */
export interface KernelSymbol {
	fn: string;
	offset?: number;
	size?: number;
	module?: string;
}

/** What the line that opens a report says. */
export interface Headline {
	kind: ReportKind;
	/** The report is closed by a "=====" line (KASAN, UBSAN) rather than an end-trace marker. */
	delimited?: boolean;
	/** The line is an oops header ("invalid opcode: 0000 [#1] ..."), not a headline naming the problem. */
	header?: boolean;
	/** A lockdep-style report: long stretches of lines no other report has (lock names, scenarios). */
	loose?: boolean;
	file?: string;
	line?: number;
	fn?: KernelSymbol;
	cpu?: number;
	pid?: number;
	comm?: string;
	/** The headline carries the taint (SLUB: "BUG kmalloc-64 (Tainted: G    B   ): ..."); '' for "Not tainted". */
	tainted?: string;
}

// fn+0xoff/0xsize with an optional " [module]" or " [module buildid]".
const SYMBOL_SRC = '([A-Za-z_.$][\\w.$]*)\\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \\[([\\w-]+)(?: [0-9a-f]+)?\\])?';
const SYMBOL_ANYWHERE = new RegExp(SYMBOL_SRC);
// What decode_stacktrace.sh and syzbot append: " (file.c:12 (inlined by) x.c:3)", " file.c:12 [inline]".
// 2.6 i386 printed each frame's stack usage after it: "[<c011ac3d>] __might_sleep+0xc4/0xd6 (12)".
const SITE_SRC = '(?: ?\\((unreliable|[A-Z])\\))?(?: \\(\\d+\\))?(?: +(?:\\((\\S+?:\\d+)[^\\n]*\\)|([^\\s()]+:\\d+)(?::\\d+)?)(?: (\\[inline\\]))?)?';
const FRAME_TAIL = new RegExp('^' + SYMBOL_SRC + SITE_SRC + '\\s*$');
// A frame line cut inside its module name: a terminal's hard wrap ("... [cfg8021" then "1]"),
// journalctl's cut mark (">", "…"). The frame stands; its module is not known.
const FRAME_CUT = /^([A-Za-z_.$][\w.$]*)\+0x([0-9a-f]+)\/0x([0-9a-f]+) \[[\w-]*(?:>|\u2026)?\s*$/;
// A decoded frame without offset: "fn (lib/dump_stack.c:107)", "fn lib/dump_stack.c:79 [inline]".
const FRAME_DECODED = /^([A-Za-z_.$][\w.$]*)(?: \[([\w-]+)\])? +(?:\((\S+?:\d+)[^\n]*\)|([^\s()]+:\d+)(?::\d+)?(?: (\[inline\]))?)\s*$/;
// A decoded frame cut inside its source positions (the end of a truncated paste): "fn (arch/x86/incl",
// "fn (./include/linux/log2.h:57 fs/bcachefs/recovery.c:46".
const FRAME_DECODED_CUT = /^([A-Za-z_.$][\w.$]*) \((?=[^\s()]*\/)[\w./~+-]+(?::\d*)?(?: [\w./~+-]+(?::\d*)?)*$/;
// arm32: "(fn+0x1/0x2 [mod]) from [<c0...>] (caller+0x3/0x4)" or "(fn) from ..."
const FRAME_ARM = /^\(([A-Za-z_.$][\w.$]*)(?:\+0x([0-9a-f]+)\/0x([0-9a-f]+))?(?: \[([\w-]+)\])?\) from /;
// arm32 since 5.16: " fn from caller+0x3/0x4" (the callee without offset), the last one "fn from 0x40101580"
const FRAME_ARM_FROM = /^([A-Za-z_.$][\w.$]*)(?: \[([\w-]+)\])? from (?:[A-Za-z_.$][\w.$]*\+0x[0-9a-f]+\/0x[0-9a-f]+(?: \[[\w-]+\])?|0x[0-9a-f]+)\s*$/;
// the address may be gone where HTML took "<c01de48c>" for a tag: "[] kobject_register+0x19/0x39"
const FRAME_ADDRESS = /^\[<?([0-9a-f]{6,16})?>?\] ?/;

function symbolFromMatch(m: RegExpExecArray): KernelSymbol {
	const sym: KernelSymbol = { fn: m[1] ?? '', offset: parseInt(m[2] ?? '0', 16), size: parseInt(m[3] ?? '0', 16) };
	if (m[4]) sym.module = m[4];
	return sym;
}

/** The first %pS symbol anywhere in `text`, or a bare "fn()" (2.6 WARNING lines). */
export function findSymbol(text: string): KernelSymbol | undefined {
	const m = SYMBOL_ANYWHERE.exec(text);
	if (m) return symbolFromMatch(m);
	const bare = /^([A-Za-z_][\w.]*)\(\)/.exec(text);
	return bare ? { fn: bare[1] ?? '' } : undefined;
}

/** A symbol with the source position it may carry: "fn+0x1/0x2 [m] file.c:3", "fn (file.c:3)", "fn file.c:3 [inline]". */
export interface SymbolSite extends KernelSymbol {
	file?: string;
	line?: number;
}

const SITE_AFTER = /^(?: \[[\w-]+(?: [0-9a-f]+)?\])? +(?:\(([^\s():]+):(\d+)|([^\s():]+):(\d+))/;

/** The symbol at the start of `text` and the file:line printed after it, if any. */
export function symbolSite(text: string): SymbolSite | undefined {
	const t = text.trimStart();
	let site: SymbolSite;
	let rest: string;
	const m = new RegExp('^' + SYMBOL_SRC).exec(t);
	if (m) {
		site = symbolFromMatch(m);
		rest = t.slice(m[0].length);
	} else {
		const b = /^([A-Za-z_.$][\w.$]*)(?=[ (]|$)/.exec(t);
		if (!b) return undefined;
		site = { fn: b[1] ?? '' };
		rest = t.slice(b[0].length);
		// a bare name only counts when a source position follows it
		if (!SITE_AFTER.test(rest)) return /^\(\)/.test(rest) ? site : undefined;
	}
	const s = SITE_AFTER.exec(rest);
	if (s) {
		site.file = s[1] ?? s[3] ?? '';
		site.line = Number(s[2] ?? s[4]);
	}
	return site;
}

/**
 * A stack frame line in any of the layouts:
 * x86 6.x " ? fn+0x1/0x2 [mod]", x86/riscv/arm64 4.x "[<ffff...>] fn+0x1/0x2",
 * arm64 5.x+ " fn+0x1/0x2", powerpc "[c000...] [c000...] fn+0x1/0x2 (unreliable)",
 * arm32 "[<c0...>] (fn) from [<c0...>] (caller+0x1/0x2)", s390 "([<...>] fn+0x1/0x2)",
 * and, with `decoded`, frames without offsets as decode_stacktrace.sh and syzbot
 * print them ("fn (lib/x.c:12)", "fn lib/x.c:12 [inline]"). Decoded frames are
 * only looked for inside a report: alone, such a line could be anything.
 */
// x86_64 up to 2.6.24: "<ffffffff80154cd0>{get_page_from_freelist+272}", several to a line,
// the offset in decimal and no size, a module as "{tg3:tg3_poll+30}".
const OLD_X86_64_FRAME = /<([0-9a-f]{16})>\{(?:([\w-]+):)?([A-Za-z_.$][\w.$]*)\+(-?\d+)\}/g;

/** The 2.6 x86_64 frames on a line ("Call Trace: <...>{a+1} <...>{b+2}"), in order, or undefined. */
export function parseOldX86Frames(text: string): StackFrame[] | undefined {
	if (!text.includes('>{')) return undefined;
	const frames: StackFrame[] = [];
	for (const m of text.matchAll(OLD_X86_64_FRAME)) {
		const frame: StackFrame = { fn: m[3] ?? '', offset: Number(m[4]), size: 0, reliable: true };
		if (m[2]) frame.module = m[2];
		frame.address = BigInt('0x' + (m[1] ?? '0'));
		frames.push(frame);
	}
	return frames.length > 0 ? frames : undefined;
}

export function parseFrame(text: string, decoded = false): StackFrame | undefined {
	const hasOffset = text.includes('+0x');
	if (!hasOffset && text.trimStart().charCodeAt(0) === 0x3c /* < */) {
		const old = parseOldX86Frames(text);
		if (old) return old[0];
	}
	if (!hasOffset && !(decoded && (text.includes(':') || text.includes(' from ') || text.includes(' (')))) return undefined;
	let t = text.trimStart();
	// s390 prints the first frame in parentheses; 3.x x86 puts "<IRQ>" before it
	if (t.charCodeAt(0) === 0x28 /* ( */ && t.charCodeAt(1) === 0x5b /* [ */ && t.endsWith(')')) t = t.slice(1, -1);
	else if (t.charCodeAt(0) === 0x3c /* < */) t = t.replace(/^<[A-Z]{2,8}>\s+/, '');
	let address: string | undefined;
	for (let k = 0; k < 2; k++) {
		const m = FRAME_ADDRESS.exec(t);
		if (!m) break;
		address = m[1];
		t = t.slice(m[0].length);
	}
	// 2.6.5-2.6.10 i386 put "[sym+dec/dec]" where the address goes: "[sys_open+120/133] sys_open+0x78/0x85"
	if (t.charCodeAt(0) === 0x5b /* [ */) {
		const k = /^\[[A-Za-z_.$][\w.$]*\+\d+\/\d+\] /.exec(t);
		if (k) t = t.slice(k[0].length);
	}
	let reliable = true;
	if (t.startsWith('? ')) {
		reliable = false;
		t = t.slice(2);
	}
	let frame: StackFrame;
	let m: RegExpExecArray | null;
	if (t.charCodeAt(0) === 0x28 /* ( */) {
		if (!(m = FRAME_ARM.exec(t))) return undefined;
		frame = { fn: m[1] ?? '', offset: parseInt(m[2] ?? '0', 16), size: parseInt(m[3] ?? '0', 16), reliable };
		if (m[4]) frame.module = m[4];
	} else if (t.includes(' from ') && (m = FRAME_ARM_FROM.exec(t))) {
		frame = { fn: m[1] ?? '', offset: 0, size: 0, reliable };
		if (m[2]) frame.module = m[2];
	} else if (hasOffset && (m = FRAME_TAIL.exec(t))) {
		frame = { fn: m[1] ?? '', offset: parseInt(m[2] ?? '0', 16), size: parseInt(m[3] ?? '0', 16), reliable };
		if (m[4]) frame.module = m[4];
		if (m[5] === 'unreliable') frame.reliable = false;
		const source = m[6] ?? m[7];
		if (source) frame.source = source;
		if (m[8] || (m[6] !== undefined && t.includes('(inlined by)'))) frame.inline = true;
	} else if (hasOffset && (m = FRAME_CUT.exec(t))) {
		frame = { fn: m[1] ?? '', offset: parseInt(m[2] ?? '0', 16), size: parseInt(m[3] ?? '0', 16), reliable };
	} else if (decoded && (m = FRAME_DECODED.exec(t))) {
		frame = { fn: m[1] ?? '', offset: 0, size: 0, reliable };
		if (m[2]) frame.module = m[2];
		const source = m[3] ?? m[4];
		if (source) frame.source = source;
		if (m[5] || t.includes('(inlined by)')) frame.inline = true;
	} else if (decoded && (m = FRAME_DECODED_CUT.exec(t))) {
		frame = { fn: m[1] ?? '', offset: 0, size: 0, reliable };
	} else return undefined;
	if (address !== undefined) frame.address = BigInt('0x' + address);
	return frame;
}

/** x86 stack section markers " <IRQ>", " </IRQ>", " <TASK>", " <EOI>". */
export function parseStackMarker(text: string): { open: boolean; name: string } | undefined {
	const m = /^\s*<(\/?)([A-Z]{3,8})>\s*$/.exec(text);
	if (!m) return undefined;
	return { open: m[1] !== '/' && m[2] !== 'EOI', name: m[2] ?? '' };
}

/**
 * A kernel-mode function line: x86 "RIP: 0010:fn+0x/0x", 3.x "RIP: 0010:[<..>]  [<..>] fn+..",
 * 4.x "IP: fn+..", i386 "EIP is at fn+..", arm64 "PC is at fn+.." / "pc : fn+..",
 * powerpc "NIP [c000...] fn+..", riscv "epc : fn+..". User-mode RIPs ("0033:0x7f...") carry no symbol.
 */
export function parseFunctionLine(text: string): KernelSymbol | undefined {
	const c = text.charCodeAt(0);
	let rest: string | undefined;
	if (c === 0x52 /* R */ && text.startsWith('RIP: ')) rest = text.slice(5);
	else if (c === 0x45 /* E */ && (text.startsWith('EIP: ') || text.startsWith('EIP is at '))) rest = text.slice(4);
	else if (c === 0x49 /* I */ && text.startsWith('IP: ')) rest = text.slice(4);
	else if (c === 0x50 /* P */ && text.startsWith('PC is at ')) rest = text.slice(9);
	else if (c === 0x70 /* p */ && /^pc ?: /.test(text)) rest = text.slice(text.indexOf(':') + 2);
	else if (c === 0x4e /* N */ && text.startsWith('NIP [')) rest = text.slice(text.indexOf(']') + 1);
	else if (c === 0x65 /* e */ && /^epc *: /.test(text)) rest = text.slice(text.indexOf(':') + 2); // riscv "epc : ", MIPS "epc   : 803a4488 fn+0x/0x"
	else if (c === 0x4b /* K */ && text.startsWith('Krnl PSW : ')) rest = text.slice(text.lastIndexOf('(') + 1); // s390
	else if (c === 0x45 /* E */ && text.startsWith('ERA: ')) rest = text.slice(5); // LoongArch "ERA: 9000000002fdc468 fn+0x/0x"
	if (rest === undefined) return undefined;
	const m = SYMBOL_ANYWHERE.exec(rest);
	if (m) return symbolFromMatch(m);
	// 2.6 x86_64: "RIP: 0010:[<ffffffff8015476c>] <ffffffff8015476c>{__rmqueue+60}"
	const old = parseOldX86Frames(rest)?.[0];
	if (old) return old.module === undefined ? { fn: old.fn, offset: old.offset, size: 0 } : { fn: old.fn, offset: old.offset, size: 0, module: old.module };
	// syzbot's decoded "pc : _compound_head include/linux/page-flags.h:253 [inline]", decode_stacktrace.sh's
	// "RIP: 0010:mptcp_stream_accept (./include/linux/list.h:88 net/mptcp/protocol.c:3719)"
	const d = /^(?:[0-9a-f]{4}:)?([A-Za-z_.$][\w.$]*) \(?[^\s()]+:\d+/.exec(rest);
	return d ? { fn: d[1] ?? '' } : undefined;
}

/** Task identity from "CPU: 0 [UID: 0] PID: 1 Comm: x [Not tainted|Tainted: G O] 6.1.0 #1" and older shapes. */
export interface TaskLine {
	cpu?: number;
	uid?: number;
	pid?: number;
	comm?: string;
	/**
	 * The taint flags exactly as printed after "Tainted: ", inner spaces kept
	 * ("G        W", "P           O"); undefined for "Not tainted".
	 */
	tainted?: string;
	/** The line said "Not tainted". */
	untainted?: boolean;
	/** Kernel release ("6.1.0-56-amd64"). */
	release?: string;
}

const CPU_LINE = /^CPU: (\d+) (?:UID: (\d+) )?PID: (\d+) Comm: (.*?)(?: Kdump: loaded)? (Not tainted|Tainted: )(.*)$/;
// arm before 3.7 (__show_regs): "CPU: 0    Tainted: G        W     (3.4.0-g9a3c983 #3)", no pid or comm
const CPU_TAINT_LINE = /^CPU: (\d+) +(Not tainted|Tainted: )(.*)$/;
// hung-task reports print the taint alone, indented: "      Tainted: G      D    O       6.1.0 #1"
const TAINT_ONLY_LINE = /^\s*(Not tainted|Tainted: )(?!\[)(.*)$/;
const PID_LINE = /^Pid: (\d+), comm: (.*?) (Not tainted|Tainted: )(.*)$/;
// lockdep's "5.18.0-rc3 #11 Tainted: G        W" (release, build number, taint)
const RELEASE_TAINT_LINE = /^(\d[^\s#]*) #\S+ (Not tainted|Tainted: )(.*)$/;
const PROCESS_LINE = /^Process (.+?) \(pid: (\d+)[,)]/;
const KASAN_TASK = / by task (.+)\/(\d+)\s*$/;
const HUNG_TASK_LINE = /^task:(\S+)\s+state:\S+.*?\bpid:\s*(\d+)/;

function taintAndRelease(kind: string | undefined, rest: string | undefined, out: TaskLine): void {
	let tail = rest ?? '';
	if (kind !== 'Tainted: ') out.untainted = true;
	else {
		// The flags are one character per taint bit, blanks where a bit is clear;
		// the release follows after a space (RHEL puts "-------------" between).
		const m = /^[A-Z][A-Z ]*/.exec(tail);
		if (m) {
			const flags = m[0].trimEnd();
			out.tainted = flags;
			tail = tail.slice(flags.length);
		}
	}
	const tokens = tail.trim().split(/\s+/);
	let i = 0;
	while (i < tokens.length && /^-+$/.test(tokens[i] ?? '')) i++;
	let release = tokens[i]?.replace(/^-+/, '');
	if (release?.startsWith('(')) release = release.slice(1);
	if (release && /^\d/.test(release)) out.release = release;
}

export function parseTaskLine(text: string): TaskLine | undefined {
	let m: RegExpExecArray | null;
	const c = text.charCodeAt(0);
	if (c === 0x43 /* C */ && (m = CPU_LINE.exec(text))) {
		const out: TaskLine = { cpu: Number(m[1]), pid: Number(m[3]), comm: m[4] ?? '' };
		if (m[2] !== undefined) out.uid = Number(m[2]);
		taintAndRelease(m[5], m[6], out);
		return out;
	}
	if (c === 0x43 /* C */ && (m = CPU_TAINT_LINE.exec(text))) {
		const out: TaskLine = { cpu: Number(m[1]) };
		taintAndRelease(m[2], m[3], out);
		return out;
	}
	if (c === 0x50 /* P */) {
		if ((m = PID_LINE.exec(text))) {
			const out: TaskLine = { pid: Number(m[1]), comm: m[2] ?? '' };
			taintAndRelease(m[3], m[4], out);
			return out;
		}
		if ((m = PROCESS_LINE.exec(text))) return { comm: m[1] ?? '', pid: Number(m[2]) };
	}
	if (c === 0x74 /* t */ && (m = HUNG_TASK_LINE.exec(text))) return { comm: m[1] ?? '', pid: Number(m[2]) };
	if (c >= 0x30 && c <= 0x39 && (m = RELEASE_TAINT_LINE.exec(text))) {
		const out: TaskLine = { release: m[1] ?? '' };
		if (m[2] === 'Tainted: ') {
			const f = /^[A-Z][A-Z ]*/.exec(m[3] ?? '');
			if (f) out.tainted = f[0].trimEnd();
		} else out.untainted = true;
		return out;
	}
	if ((c === 0x20 || c === 0x4e /* N */ || c === 0x54) /* T */ && (m = TAINT_ONLY_LINE.exec(text))) {
		const out: TaskLine = {};
		taintAndRelease(m[1], m[2], out);
		return out;
	}
	if ((c === 0x52 /* R */ || c === 0x57) /* W */ && / of size \d+ at addr /.test(text) && (m = KASAN_TASK.exec(text)))
		return { comm: m[1] ?? '', pid: Number(m[2]) };
	return undefined;
}

/** "Modules linked in: a(O) b [last unloaded: c]" -> ["a", "b"]. */
export function parseModulesLinkedIn(text: string): string[] | undefined {
	if (!text.startsWith('Modules linked in:')) return undefined;
	const list = text.slice(18).replace(/\[last unloaded:[^\]]*\]/, '');
	return list
		.split(/\s+/)
		.filter((m) => m.length > 0)
		.map((m) => m.replace(/\(.*\)$/, ''));
}

// Oops headers: x86 "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI" (6.12: "Oops: " in front),
// old x86 "Oops: 0000 [#1] SMP", arm64 "Internal error: Oops - BUG: 0 [#1] SMP",
// powerpc "Oops: Kernel access of bad area, sig: 11 [#1]", riscv "Kernel BUG [#1]" / "Oops [#1]".
const OOPS_HEADER = /^(?:Oops(?: - |: |(?= ?\[#))|Internal error: |Kernel BUG(?= \[#)|invalid opcode: |double fault: |stack segment: |int3: |general protection fault)/;

/** Kind an oops header implies when no headline named the problem. */
function headerKind(text: string): ReportKind {
	const t = text.replace(/^(?:Oops: |Internal error: )/, '');
	if (t.startsWith('general protection fault') || t.startsWith('stack segment')) return 'gpf';
	if (/^(?:Oops: )?[0-9a-f]{4} \[#/.test(t)) return 'page-fault';
	if (/^Oops: [0-9a-f]+ \[#/.test(t) || t.startsWith('Oops: ') || t.startsWith('Kernel access of bad area')) return 'page-fault';
	// riscv "Oops [#1]", MIPS and LoongArch die("Oops"): "Oops[#1]:"
	if (/^Oops ?\[#/.test(t)) return 'page-fault';
	return 'BUG';
}

export function isOopsHeader(text: string): boolean {
	return OOPS_HEADER.test(text) && text.includes('[#');
}

const KERNEL_BUG_AT = /^kernel BUG at (.+?):(\d+)!/;
const WARNING_CLASSIC = /^WARNING: (?:CPU: (\d+) PID: (\d+) )?at (?:([^\s:]+):(\d+)(?: |$))?(.*)$/;
// 6.16+: "WARNING: [cond] file.c:12 at fn+0x1/0x2, CPU#0: comm/123"
const WARNING_NEW = /^WARNING: (?:\[.*?\] )?([^\s:[]+):(\d+) at (.+?), CPU#(\d+): (.+)\/(\d+)\s*$/;
// 2.6 kernels name the task first: "... invalid context ksoftirqd/0(3) at kernel/mutex.c:37"
const SLEEPING = /^BUG: sleeping function called from invalid context (?:\S+\(\d+\) )?at ([^\s:]+):(\d+)/;
const SCHED_ATOMIC = /^BUG: scheduling while atomic: (.+)\/(\d+)\/0x/;
const BAD_PAGE = /^BUG: Bad page (?:map|state) in process (\S+)/;
const SANITIZER_LINE = /^BUG: (?:KASAN|KASan|KFENCE|KMSAN|KCSAN): .*? in (.*)$/;
const SOFT_LOCKUP = /CPU#(\d+) stuck for \d+s! \[(.+):(\d+)\]/;
const HARD_LOCKUP = /hard LOCKUP on cpu (\d+)/;
const HUNG_TASK = /^INFO: task (.+):(\d+) blocked for more than/;
const UBSAN_LINE = /^UBSAN: .*? in ([^\s:]+):(\d+)(?::\d+)?/;
// SLUB debug's slab_bug(): "BUG kmalloc-64 (Not tainted): Poison overwritten", 3.2 "BUG sas_task: Objects remaining ..."
const SLUB_BUG = /^BUG [^\s():]+(?: \((Not tainted|Tainted: [A-Z ]*)\))?: [A-Z]/;

function lockupHeadline(text: string): Headline {
	const h: Headline = { kind: 'lockup' };
	let m = SOFT_LOCKUP.exec(text);
	if (m) {
		h.cpu = Number(m[1]);
		h.comm = m[2] ?? '';
		h.pid = Number(m[3]);
		return h;
	}
	if ((m = HARD_LOCKUP.exec(text))) h.cpu = Number(m[1]);
	else if ((m = HUNG_TASK.exec(text))) {
		h.comm = m[1] ?? '';
		h.pid = Number(m[2]);
	}
	return h;
}

function bugHeadline(text: string): Headline {
	let m: RegExpExecArray | null;
	if (/^BUG: (?:KASAN|KASan|KFENCE|KMSAN|KCSAN): /.test(text)) {
		const h: Headline = { kind: text.startsWith('BUG: KFENCE') ? 'KFENCE' : text.startsWith('BUG: KASAN') || text.startsWith('BUG: KASan') ? 'KASAN' : 'BUG', delimited: true };
		if ((m = SANITIZER_LINE.exec(text))) {
			// KCSAN names the racing functions bare: "data-race in find_next_bit / rcu_report_exp_cpu_mult"
			const race = text.startsWith('BUG: KCSAN: ') ? /^([A-Za-z_.$][\w.$]*)(?: \/ |$)/.exec(m[1] ?? '') : null;
			const site = race ? { fn: race[1] ?? '' } : symbolSite(m[1] ?? '');
			if (site) {
				const fn: KernelSymbol = { fn: site.fn };
				if (site.module) fn.module = site.module;
				h.fn = fn;
				if (site.file !== undefined && site.line !== undefined) {
					h.file = site.file;
					h.line = site.line;
				}
			}
		}
		return h;
	}
	if (/^BUG: (?:unable to handle kernel NULL pointer|kernel NULL pointer|Kernel NULL pointer)/.test(text)) return { kind: 'null-deref' };
	if (/^BUG: [Uu]nable to handle /.test(text)) return { kind: 'page-fault' };
	if (/^BUG: (?:soft lockup|workqueue lockup|spinlock lockup)/.test(text)) return lockupHeadline(text);
	if ((m = SLEEPING.exec(text))) return { kind: 'BUG', file: m[1] ?? '', line: Number(m[2]) };
	if ((m = SCHED_ATOMIC.exec(text))) return { kind: 'BUG', comm: m[1] ?? '', pid: Number(m[2]) };
	if ((m = BAD_PAGE.exec(text))) return { kind: 'BUG', comm: m[1] ?? '' };
	return { kind: 'BUG' };
}

function warningHeadline(text: string): Headline {
	const h: Headline = { kind: 'WARNING' };
	// lockdep and RCU-lockdep reports name no place: "WARNING: possible circular locking dependency detected"
	if (!text.includes(' at ') && !text.includes('CPU')) h.loose = true;
	let m = WARNING_NEW.exec(text);
	if (m) {
		h.file = m[1] ?? '';
		h.line = Number(m[2]);
		const fn = findSymbol(m[3] ?? '');
		if (fn) h.fn = fn;
		h.cpu = Number(m[4]);
		h.comm = m[5] ?? '';
		h.pid = Number(m[6]);
		return h;
	}
	if ((m = WARNING_CLASSIC.exec(text))) {
		if (m[1] !== undefined) h.cpu = Number(m[1]);
		if (m[2] !== undefined) h.pid = Number(m[2]);
		if (m[3] !== undefined) {
			h.file = m[3];
			h.line = Number(m[4]);
		}
		const fn = findSymbol(m[5] ?? '');
		if (fn) h.fn = fn;
		else {
			// syzbot's decoded "at lib/refcount.c:190 refcount_sub_and_test_checked lib/refcount.c:190 [inline]"
			const site = symbolSite(m[5] ?? '');
			if (site) h.fn = site.module === undefined ? { fn: site.fn } : { fn: site.fn, module: site.module };
		}
	}
	return h;
}

/**
 * The headline a message opens a report with, or undefined. Dispatches on the
 * first character so that ordinary lines cost one comparison.
 */
export function matchHeadline(text: string): Headline | undefined {
	let m: RegExpExecArray | null;
	switch (text.charCodeAt(0)) {
		case 0x5b /* [ */:
			// lockdep before 4.10: "[ INFO: possible circular locking dependency detected ]"
			if ((text.startsWith('[ INFO: ') || text.startsWith('[ BUG: ')) && text.endsWith(' ]')) return { kind: 'WARNING', loose: true };
			return undefined;
		case 0x6b /* k */:
			if ((m = KERNEL_BUG_AT.exec(text))) return { kind: 'BUG', file: m[1] ?? '', line: Number(m[2]) };
			return undefined;
		case 0x4b /* K */:
			if (text.startsWith('Kernel panic - not syncing')) return { kind: 'panic' };
			if (text.startsWith('Kernel BUG at ')) {
				const h: Headline = { kind: 'BUG' };
				const fn = findSymbol(text.slice(14));
				if (fn) h.fn = fn;
				return h;
			}
			if (text.startsWith('Kernel BUG [#')) return { kind: 'BUG', header: true };
			// MIPS die() after BUG(): "Kernel bug detected[#1]:"
			if (text.startsWith('Kernel bug detected[#')) return { kind: 'BUG', header: true };
			return undefined;
		case 0x42 /* B */:
			// before 2.6.17: "Bad page state at free_hot_cold_page (in process 'kswapd0', page c1152360)"
			if (text.startsWith('Bad page state ')) return { kind: 'BUG' };
			if (text.charCodeAt(3) === 0x20 && (m = SLUB_BUG.exec(text))) {
				const h: Headline = { kind: 'BUG' };
				if (m[1] !== undefined) h.tainted = m[1] === 'Not tainted' ? '' : m[1].slice(9).trimEnd();
				return h;
			}
			if (!text.startsWith('BUG: ')) return undefined;
			// printk_ratelimit's "BUG: Bad page map: 31 messages suppressed" is a note, not a report
			if (text.endsWith(' messages suppressed') || text.endsWith(' messages suppressed.')) return undefined;
			return bugHeadline(text);
		case 0x57 /* W */:
			if (text.startsWith('WARNING: ')) return warningHeadline(text);
			if (text.startsWith('Watchdog detected hard LOCKUP')) return lockupHeadline(text);
			// powerpc's own watchdog: "Watchdog CPU:59 Hard LOCKUP", "Watchdog CPU:2 detected Hard LOCKUP other CPUS:0-1"
			if (text.startsWith('Watchdog CPU:') && (m = /^Watchdog CPU:(\d+) (?:detected )?Hard LOCKUP/.exec(text))) return { kind: 'lockup', cpu: Number(m[1]) };
			return undefined;
		case 0x77 /* w */:
			if (text.startsWith('watchdog: ')) {
				const inner = text.slice(10);
				return inner.startsWith('BUG: ') || inner.startsWith('Watchdog detected') ? lockupHeadline(inner) : undefined;
			}
			return undefined;
		case 0x4e /* N */:
			if (text.startsWith('NMI watchdog: ')) {
				const inner = text.slice(14);
				return inner.startsWith('BUG: ') || inner.startsWith('Watchdog detected') ? lockupHeadline(inner) : undefined;
			}
			return undefined;
		case 0x49 /* I */:
			if (text.startsWith('INFO: task ') || text.startsWith('INFO: rcu')) return lockupHeadline(text);
			// lockdep's reports that keep the INFO: prefix: "INFO: trying to register non-static key."
			if (/^INFO: (?:trying to register non-static key|possible (?:circular|recursive) locking|inconsistent lock state|suspicious RCU usage|lock held when returning)/.test(text))
				return { kind: 'WARNING', loose: true };
			if (text.startsWith('Internal error: ') && isOopsHeader(text)) return { kind: headerKind(text), header: true };
			return undefined;
		case 0x72 /* r */:
			if (text.startsWith('rcu: INFO: rcu')) return { kind: 'lockup' };
			return undefined;
		case 0x55 /* U */:
			if (text.startsWith('UBSAN: ')) {
				const h: Headline = { kind: 'UBSAN', delimited: true };
				if ((m = UBSAN_LINE.exec(text))) {
					h.file = m[1] ?? '';
					h.line = Number(m[2]);
				}
				return h;
			}
			// arm64 do_mem_abort(), arm32 do_DataAbort(): "Unhandled fault at 0xffff800010003eb0", "Unhandled fault: page domain fault (0x01b) at 0x0"
			if (text.startsWith('Unhandled fault')) return { kind: 'page-fault' };
			// MIPS die(): "Unhandled kernel unaligned access[#1]:"
			if (text.startsWith('Unhandled kernel unaligned access')) return { kind: 'BUG', header: true };
			if (text.startsWith('Unable to handle kernel NULL pointer')) return { kind: 'null-deref' };
			if (text.startsWith('Unable to handle kernel ')) return { kind: 'page-fault' };
			return undefined;
		case 0x43 /* C */:
			// MIPS and LoongArch do_page_fault(): "CPU 1 Unable to handle kernel paging request at virtual address ..., era == ..."
			if (text.startsWith('CPU ') && (m = /^CPU \d+ Unable to handle kernel (NULL pointer)?/.exec(text))) return { kind: m[1] ? 'null-deref' : 'page-fault' };
			return undefined;
		case 0x67 /* g */:
			if (text.startsWith('general protection fault')) return { kind: 'gpf' };
			return undefined;
		case 0x70 /* p */:
			// mm/page_poison.c check_poison_mem()
			if (text.startsWith('pagealloc: memory corruption') || text.startsWith('pagealloc: single bit error')) return { kind: 'page-poison' };
			return undefined;
		case 0x4f /* O */:
			// 6.12+: "Oops: general protection fault, probably for non-canonical address" (its "[#1]" may be wrapped off)
			if (text.startsWith('Oops: general protection fault')) return { kind: 'gpf' };
			if (text.startsWith('Oops') && isOopsHeader(text)) {
				// 6.12 prints the gpf line itself behind "Oops: ": that names the problem.
				if (text.startsWith('Oops: general protection fault')) return { kind: 'gpf' };
				return { kind: headerKind(text), header: true };
			}
			return undefined;
		case 0x69 /* i */:
		case 0x64 /* d */:
		case 0x73 /* s */:
			if (isOopsHeader(text)) return { kind: headerKind(text), header: true };
			return undefined;
	}
	return undefined;
}

export const CUT_HERE = '------------[ cut here ]------------';

/** "------------[ cut here ]------------" and arm32's "8<--- cut here ---". */
export function isCutHere(text: string): boolean {
	return text === CUT_HERE || text === '8<--- cut here ---';
}

/** "---[ end trace 0000000000000000 ]---" (oops, WARN) or "---[ end Kernel panic - not syncing: ... ]---". */
export function endMarker(text: string): 'trace' | 'panic' | undefined {
	if (!text.startsWith('---[ end ')) return undefined;
	if (text.startsWith('---[ end trace')) return 'trace';
	if (text.startsWith('---[ end Kernel panic')) return 'panic';
	return undefined;
}

/** The "=====" rules KASAN and UBSAN put around their reports. */
export function isRule(text: string): boolean {
	return text.length >= 20 && text.startsWith('====================') && /^=+\s*$/.test(text);
}

const BODY_PREFIX =
	/^(?:Call [Tt]race:|Modules linked in|CPU: |CPU#|Hardware name|Workqueue:|Code:|Stack:|Exception stack|Process |Pid: |Internal error|Oops|#PF:|PGD |PUD |P4D |PMD |Mem abort info|Data abort info|user pgtable|swapper pgtable|Kernel Offset|note: |irq event stamp|hardirqs |softirqs |Preemption disabled at|INFO: lockdep|task:|task: |"echo 0|Sending NMI|NMI backtrace|rcu: |Tainted: |RIP: |EIP|IP: |PC is at|LR is at|Instruction dump|LR = |NIP|MSR: |GPR\d\d:|CFAR: |IRQMASK: |REGS: |epc ?: |status: |badaddr: |cause: |Unable to handle|Faulting instruction|Kernel attempted|page:|page dumped because|flags: |raw: |head: |memcg:|addr:|file:|Read of size|Write of size|Allocated by task|Freed by task|Last potentially|The buggy address|Memory state around|KASAN: |in_atomic\(\)|preempt_count:|RCU nest depth|\d+ locks? held by|no locks held|Dumping ftrace|---|<\/?[A-Z]+>|\? |\[<?[0-9a-f]+>?\]|[0-9a-f]{4,16}: [0-9a-f]{2}|[0-9a-f]{4} {2}[0-9a-f*]{8} |(?:\\x0a)?[A-Z][A-Z0-9]{0,3}: 0x[0-9a-f]+:|[A-Z][A-Z0-9]{1,5}: |x\d+ *: |(?:pc|lr|sp|pstate|gp|tp|ra|t\d|s\d+|a\d) *: |ESR |FAR |EC |IL |SET |FnV |EA |S1PTW |CM |WnR |ISV |Fatal exception|Rebooting in|Shutting down cpus|Kernel stack is corrupted|Krnl |Stack : |\$ ?\d+ +: |(?:Hi|Lo|epc|ra|Status|Cause|BadVA|PrId|Cpu) *:? |(?:[a-z][a-z0-9]{1,2} [0-9a-f]{16} ){2}|Last Breaking|Backtrace|Flags: |Control: |Register r\d|Mem abort|Data abort|Workqueue|stack backtrace|other info|Possible unsafe|CPU\d|SMP: |Kernel Offset|Memory Limit|CPU features|Dumping|page_owner|page last|Use-after-free|Out-of-bounds|Invalid|Corrupted|kfence-#|freed by|allocated by|Preemption|pagealloc|LE |BE |sp : |pgd = |Hardware)/;

/** Whether a line plausibly belongs to an open report (registers, frames, dumps, task lines...). */
export function isBodyLine(text: string): boolean {
	const c = text.charCodeAt(0);
	if (c === 0x20 || c === 0x09) return true;
	// lockdep's and the hung-task detector's "5.18.0-rc3 #11 Tainted: G        W"
	if (c >= 0x30 && c <= 0x39 && RELEASE_TAINT_LINE.test(text)) return true;
	return BODY_PREFIX.test(text) || parseFrame(text, true) !== undefined;
}

/** Lines that keep a stack trace going without being frames: markers, dumps, interrupt notes. */
export function continuesTrace(text: string): boolean {
	return (
		parseStackMarker(text) !== undefined ||
		/^\s*(?:Exception stack\(|--- interrupt:|LR = |[0-9a-f]{4,16}: [0-9a-f ]{2}|Call [Tt]race:)/.test(text)
	);
}

/** The register dump oops_end() prints again after the end marker ("executive summary"), and "note:" lines. */
export function isSummaryLine(text: string): boolean {
	return /^(?:RIP: |EIP: |Code: |RSP: |[A-Z][A-Z0-9]{1,4}: |note: |Kernel Offset|PKRU: )/.test(text);
}
