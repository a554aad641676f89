#!/usr/bin/env node
// Kernel log parse throughput: parseKernelLog over a large synthetic dmesg log
// (timestamps, the module's events, unrelated driver noise, a few oopses of
// different architectures), against a baseline measured in the same run: a
// plain loop that splits the same text into lines and touches each one.
// A benchmark, not a test. Target: >= 100 MB/s.
// --compare DIR also times the parser built in DIR (an older dist/, copied
// aside) in the same run, alternating with this one, and checks that both give
// the same result: how a change to the parser is measured on a loaded machine.
// usage: node bench/parse.mjs [--mb 300] [--iterations 3] [--json] [--dist DIR] [--compare DIR]
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
	options: {
		mb: { type: 'string', default: '300' },
		iterations: { type: 'string', default: '3' },
		json: { type: 'boolean', default: false },
		dist: { type: 'string', default: join(root, 'dist') },
		compare: { type: 'string' },
	},
});
const targetBytes = Number(values.mb) * 1e6;
const iterations = Number(values.iterations);
const parseModule = join(resolve(values.dist), 'kmsg', 'parse.js');
if (!existsSync(parseModule)) {
	console.error(`bench/parse: ${parseModule} is missing; run \`npm run build\` first (or pass --dist)`);
	process.exit(1);
}
const { parseKernelLog } = await import(pathToFileURL(parseModule).href);
const compareModule = values.compare === undefined ? undefined : join(resolve(values.compare), 'kmsg', 'parse.js');
if (compareModule !== undefined && !existsSync(compareModule)) {
	console.error(`bench/parse: ${compareModule} is missing (--compare wants a dist/ directory)`);
	process.exit(1);
}
const parseOther = compareModule === undefined ? undefined : (await import(pathToFileURL(compareModule).href)).parseKernelLog;

// --- the synthetic log -------------------------------------------------------
// Deterministic pseudo-random numbers so every run parses the same text.
let seed = 0x2545f491;
const rand = (n) => {
	seed ^= seed << 13;
	seed ^= seed >>> 17;
	seed ^= seed << 5;
	return (seed >>> 0) % n;
};
const hex = (n, width) => n.toString(16).padStart(width, '0');

const NOISE = [
	(i) => `usb 1-${i % 4}: new high-speed USB device number ${i % 128} using ehci-pci`,
	(i) => `EXT4-fs (vda${i % 3}): mounted filesystem with ordered data mode. Quota mode: none.`,
	(i) => `audit: type=1400 audit(${1700000000 + i}.123:${i}): apparmor="STATUS" operation="profile_load" name="/usr/bin/man" pid=${i % 65536}`,
	(i) => `e1000: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX ${i}`,
	(i) => `systemd[1]: Started session-${i}.scope - Session ${i} of User root.`,
	(i) => `virtio_net virtio0 enp0s${i % 8}: renamed from eth0`,
	(i) => `random: crng reseeded on system resumption ${i}`,
	(i) => `Key type id_resolver registered ${i}`,
	(i) => `[drm] Initialized bochs-drm 1.0.0 20130925 for 0000:00:02.0 on minor ${i % 4}`,
	(i) => `sd 0:0:0:0: [sda] ${i} 512-byte logical blocks: (${i % 100} GB/${i % 93} GiB)`,
	(i) => `IPv6: ADDRCONF(NETDEV_CHANGE): enp0s3: link becomes ready ${i}`,
	(i) => `kvm_intel: VMX not supported by CPU ${i % 2}`,
	(i) => `  #${i % 2} hmm indented continuation of some driver dump ${hex(i, 8)}`,
	(i) => `Bluetooth: hci0: unexpected event for opcode 0x${hex(i % 65536, 4)}`,
	(i) => `Call trace support is not a headline ${i}`,
	(i) => `BUGGY firmware table ignored ${i}`,
];

function mapping(lines, t, start) {
	const pages = 1 + rand(16);
	const base = 0x7f0000000000n + BigInt(start) * 0x10000n;
	lines.push(`hybridmem_test: vma->vm_end ${base + BigInt(pages) * 4096n} vm_start ${base} len ${pages * 4096} pages ${pages} vm_pgoff 0`);
	for (let p = 0; p < pages; p++) lines.push(`hybridmem_test: inserted page ${p} at ${hex(base + BigInt(p) * 4096n, 16)}`);
	lines.push(`hybridmem_test: completed inserting ${pages} pages`);
	if (rand(2)) for (let p = 0; p < pages; p++) lines.push(`hybridmem_test:  zap_vma_ptes addr 0x${(base + BigInt(p) * 4096n).toString(16)} `);
	else lines.push(`hybridmem_test: freed ${pages} pages`);
}

const fixtureDir = join(root, 'test', 'fixtures', 'kmsg');
const OOPSES = [
	'x86_64-6.1-bug-vm_insert_page.log',
	'x86_64-6.1-null-deref.log',
	'arm64-4.14-bug-notes.log',
	'x86_64-6.1-kasan.log',
	'powerpc-5.15-null-deref.log',
	'riscv64-6.1-null-deref.log',
]
	.filter((f) => existsSync(join(fixtureDir, f)))
	.map((f) =>
		readFileSync(join(fixtureDir, f), 'utf8')
			.split('\n')
			.filter(Boolean)
			.map((l) => l.replace(/^\[\s*\d+\.\d+\] ?/, '')),
	);

/** About `bytes` of dmesg text: ~20% module lines, the rest noise, an oops every ~2 MB. */
function buildBlock(bytes, t0) {
	const out = [];
	let size = 0;
	let t = t0;
	let i = 0;
	let sinceOops = 0;
	while (size < bytes) {
		const messages = [];
		const r = rand(100);
		if (r < 2) mapping(messages, t, i);
		else messages.push(NOISE[rand(NOISE.length)](i));
		if (sinceOops > 2e6 && OOPSES.length) {
			messages.push(...OOPSES[rand(OOPSES.length)]);
			sinceOops = 0;
		}
		for (const m of messages) {
			t += 1 + rand(2000);
			const line = `[${String(Math.floor(t / 1e6)).padStart(5)}.${String(t % 1e6).padStart(6, '0')}] ${m}\n`;
			out.push(line);
			size += line.length;
			sinceOops += line.length;
		}
		i++;
	}
	return out.join('');
}

const buildStart = performance.now();
// A 25 MB block of distinct lines, repeated: building hundreds of MB of unique
// lines would take longer than the measurement.
const block = buildBlock(Math.min(25e6, targetBytes), 1_000_000);
const text = block.repeat(Math.max(1, Math.round(targetBytes / block.length)));
const mb = text.length / 1e6;
const buildMs = performance.now() - buildStart;

// --- measurement ---------------------------------------------------------------
function baseline(s) {
	// Split into lines and look at each: the least any line parser must do.
	let lines = 0;
	let acc = 0;
	let pos = 0;
	const n = s.length;
	while (pos < n) {
		let nl = s.indexOf('\n', pos);
		if (nl < 0) nl = n;
		acc += s.charCodeAt(pos) + (nl - pos);
		lines++;
		pos = nl + 1;
	}
	return { lines, acc };
}

function baselineSplit(s) {
	// The everyday way: split('\n') and loop over the lines.
	let acc = 0;
	const all = s.split('\n');
	for (const line of all) acc += line.length;
	return { lines: all.length, acc };
}

const stats = (ms) => {
	const sorted = [...ms].sort((a, b) => a - b);
	return { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)] };
};
const median = (xs) => stats(xs).median;

// On-CPU time of this (the main) thread in ms, from the scheduler's nanosecond
// count: unlike wall time it leaves out the time other processes held the CPU,
// so on a loaded machine it says more about the code. GC helper threads are
// not counted, for the baselines (split allocates too) or the parser.
const schedstat = '/proc/thread-self/schedstat';
const threadCpuMs = existsSync(schedstat)
	? () => Number(readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e6
	: () => {
			const u = process.cpuUsage();
			return (u.user + u.system) / 1000;
		};

/** Runs fn(text), pushes its wall and CPU milliseconds to `into`, returns its result. */
function timed(fn, into) {
	const cpu0 = threadCpuMs();
	const t0 = performance.now();
	const r = fn(text);
	into.wall.push(performance.now() - t0);
	into.cpu.push(threadCpuMs() - cpu0);
	return r;
}
const series = () => ({ wall: [], cpu: [] });
const base = series();
const split = series();
const parse = series();
const other = series();
let counts;
let lines;
let sameResult = true;
// A digest of a result, to check that --compare's two parsers agree.
const digest = (log) => JSON.stringify([log.events.length, log.events[0], log.events.at(-1), log.reports, log.input], (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
for (let k = 0; k < iterations; k++) {
	// interleaved, so that load from other work on the machine slows all alike;
	// the two parsers swap places every round, so neither always runs first
	lines = timed(baseline, base).lines;
	timed(baselineSplit, split);
	const runThis = () => {
		const log = timed(parseKernelLog, parse);
		counts = { events: log.events.length, reports: log.reports.length };
		return parseOther ? digest(log) : '';
	};
	const runOther = () => digest(timed(parseOther, other));
	if (!parseOther) runThis();
	else if (k % 2 === 0) sameResult = runThis() === runOther() && sameResult;
	else sameResult = runOther() === runThis() && sameResult;
}

const b = stats(base.wall);
const sp = stats(split.wall);
const p = stats(parse.wall);
/** Median over the rounds of a/b within each round: load that comes and goes cancels out. */
const paired = (a, bb) => Number(median(a.map((x, k) => x / bb[k])).toFixed(3));
const result = {
	mb: Number(mb.toFixed(1)),
	lines,
	...counts,
	buildMs: Math.round(buildMs),
	baseline: { minMs: Math.round(b.min), medianMs: Math.round(b.median), mbPerS: Math.round(mb / (b.median / 1000)) },
	split: { minMs: Math.round(sp.min), medianMs: Math.round(sp.median), mbPerS: Math.round(mb / (sp.median / 1000)), cpuMedianMs: Math.round(median(split.cpu)) },
	parse: { minMs: Math.round(p.min), medianMs: Math.round(p.median), mbPerS: Math.round(mb / (p.median / 1000)), cpuMedianMs: Math.round(median(parse.cpu)) },
	/** parse speed / baseline speed (medians); below 1 means parsing is slower than the bare loop. */
	ratio: Number((b.median / p.median).toFixed(3)),
	ratioToSplit: Number((sp.median / p.median).toFixed(3)),
	/** The same per round (split time / parse time in one round), median over rounds; wall and on-CPU time. */
	pairedRatioToSplit: { wall: paired(split.wall, parse.wall), cpu: paired(split.cpu, parse.cpu) },
	target: { mbPerS: 100, met: mb / (p.median / 1000) >= 100 },
};
if (parseOther) {
	const o = stats(other.wall);
	result.compare = {
		dist: resolve(values.compare),
		minMs: Math.round(o.min),
		medianMs: Math.round(o.median),
		cpuMedianMs: Math.round(median(other.cpu)),
		ratioToSplit: Number((sp.median / o.median).toFixed(3)),
		pairedRatioToSplit: { wall: paired(split.wall, other.wall), cpu: paired(split.cpu, other.cpu) },
		/** this parser's speed / the compared one's, per round, median over rounds: above 1 is faster. */
		speedup: { wall: paired(other.wall, parse.wall), cpu: paired(other.cpu, parse.cpu) },
		sameResult,
	};
}
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
	console.log(`synthetic log: ${result.mb} MB, ${lines} lines (${counts.events} module events, ${counts.reports} crash reports); built in ${result.buildMs} ms`);
	console.log(`baseline split-lines loop: median ${result.baseline.medianMs} ms (min ${result.baseline.minMs}) = ${result.baseline.mbPerS} MB/s`);
	console.log(`baseline split('\\n') loop: median ${result.split.medianMs} ms (min ${result.split.minMs}) = ${result.split.mbPerS} MB/s`);
	console.log(`parseKernelLog:            median ${result.parse.medianMs} ms (min ${result.parse.minMs}) = ${result.parse.mbPerS} MB/s`);
	console.log(`parse speed / baseline speed: ${result.ratio}x (indexOf loop), ${result.ratioToSplit}x (split loop); target >= 100 MB/s: ${result.target.met ? 'met' : 'NOT met'}`);
	console.log(`per round, split time / parse time (median): ${result.pairedRatioToSplit.wall}x wall, ${result.pairedRatioToSplit.cpu}x on-CPU (parse ${result.parse.cpuMedianMs} ms, split ${result.split.cpuMedianMs} ms on CPU)`);
	if (result.compare) {
		const c = result.compare;
		console.log(`compared parser (${c.dist}): median ${c.medianMs} ms (min ${c.minMs}, ${c.cpuMedianMs} ms on CPU) = ${c.ratioToSplit}x (split loop); per round ${c.pairedRatioToSplit.wall}x wall, ${c.pairedRatioToSplit.cpu}x on-CPU`);
		console.log(`this parser / compared, per round (median): ${c.speedup.wall}x wall, ${c.speedup.cpu}x on-CPU; same result: ${c.sameResult ? 'yes' : 'NO'}`);
	}
}
