#!/usr/bin/env node
// Would a QEMU snapshot make fresh VMs cheaper (issue 19)?  A feasibility
// benchmark, not the runner: the runner's own QEMU arguments, kernel and
// initramfs, with the init script stopping just before it mounts the host
// root (virtio-9p refuses migration only while mounted), saved once with QMP
// `migrate`; then, alternating in each round:
//   bare     the bare compressed-kernel boot (bench/bare-boot.mjs)
//   fresh    the runner's guest booted from nothing, running `true`
//   restore  the same guest restored from the snapshot (`-incoming`), told to
//            go on over the console, running `true`
// Both guests end the same way (the root mounted over 9p, the command run in
// a chroot, its status on the status port, poweroff); only how they got to
// "about to mount the root" differs.  Not measured: the CLI's own start-up
// that `hybridmem vm` adds to both.
// usage: node bench/snapshot.mjs [--runs 5] [--kernel VER] [--json]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bareBoot } from './bare-boot.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { prepareBoot } = await dist('vm/runner.js');
const { qemuArgs } = await dist('vm/qemu-args.js');
const { hostTscKhz } = await dist('vm/host-tsc.js');
const { GUEST_INIT, FSTAB_ROOT } = await dist('vm/guest-init.js');
const { writeCpio } = await dist('vm/cpio.js');

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, kernel: { type: 'string' }, json: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs expects a positive integer, got '${values.runs}'`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-bench-snapshot-'));
const assets = await prepareBoot(values.kernel);
const WAIT = 'hm.snapwait';
// The runner's init, with one stop before the root is mounted.
const marker = `\nmount -a -T ${FSTAB_ROOT}`;
if (!GUEST_INIT.includes(marker)) throw new Error('the guest init has changed: no root mount to stop before');
const init = GUEST_INIT.replace(marker, `\ncase " $cmdline " in *" ${WAIT} "*) echo HM-READY > /dev/console; read -r go < /dev/console ;; esac${marker}`);
const initrd = path.join(tmp, 'initramfs.cpio');
// A second archive after the runner's own: its /init replaces the first one's.
writeFileSync(initrd, Buffer.concat([readFileSync(assets.initramfs), writeCpio([{ type: 'file', name: 'init', data: Buffer.from(init), mode: 0o755 }])]));
// The spec the init reads from the host root: no writable shares, the command `true`.
const spec = path.join(tmp, 'spec');
mkdirSync(spec);
writeFileSync(path.join(spec, 'mounts'), '');
writeFileSync(path.join(spec, 'run.sh'), 'exec true\n');
const statusFile = path.join(tmp, 'status');
const guest = (extra) =>
	qemuArgs({ kernelImage: assets.vmlinux, initramfs: initrd, accel: 'tcg', memMiB: 2048, cpus: 2, statusFile, specDir: spec, shares: [], tscKhz: hostTscKhz(), extraKernelArgs: extra });
const snapshot = path.join(tmp, 'snapshot.bin');

function start(args) {
	const child = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'inherit'] });
	let out = '';
	const waiters = [];
	child.stdout.on('data', (d) => {
		out += d;
		for (const w of waiters) if (out.includes(w.text)) w.resolve();
	});
	const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
	const until = (text) => (out.includes(text) ? Promise.resolve() : new Promise((resolve) => waiters.push({ text, resolve })));
	return { child, exited, until, console: () => out };
}

/** A QMP client: connects (retrying while QEMU creates the socket or loads a snapshot), then one command at a time. */
async function qmp(socket) {
	for (;;) {
		try {
			const s = await new Promise((resolve, reject) => {
				const c = net.connect(socket, () => resolve(c));
				c.on('error', reject);
			});
			let buf = '';
			const lines = [];
			let wake;
			s.on('data', (d) => {
				buf += d;
				let i;
				while ((i = buf.indexOf('\n')) >= 0) {
					lines.push(JSON.parse(buf.slice(0, i)));
					buf = buf.slice(i + 1);
				}
				wake?.();
			});
			const next = async () => {
				while (!lines.length) await new Promise((r) => (wake = r));
				return lines.shift();
			};
			await next(); // greeting
			const command = async (execute, args) => {
				s.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
				for (;;) {
					const l = await next();
					if ('return' in l) return l.return;
					if ('error' in l) throw new Error(`QMP ${execute}: ${l.error.desc}`);
				}
			};
			await command('qmp_capabilities');
			return { command, close: () => s.destroy() };
		} catch {
			await new Promise((r) => setTimeout(r, 10));
		}
	}
}

async function save() {
	const sock = path.join(tmp, 'save.qmp');
	const vm = start([...guest([WAIT]), '-qmp', `unix:${sock},server=on,wait=off`]);
	await vm.until('HM-READY');
	const q = await qmp(sock);
	const t = performance.now();
	await q.command('stop');
	await q.command('migrate', { uri: `exec:cat > ${snapshot}` });
	for (;;) {
		const m = await q.command('query-migrate');
		if (m.status === 'completed') break;
		if (m.status === 'failed') throw new Error(`migrate failed: ${m['error-desc']}`);
		await new Promise((r) => setTimeout(r, 20));
	}
	const ms = performance.now() - t;
	await q.command('quit').catch(() => {});
	await vm.exited;
	return { ms, bytes: statSync(snapshot).size };
}

async function fresh() {
	rmSync(statusFile, { force: true });
	const vm = start(guest([]));
	await vm.exited;
	return readFileSync(statusFile, 'utf8').trim() === '0';
}

async function restore() {
	rmSync(statusFile, { force: true });
	const sock = path.join(tmp, `restore-${performance.now()}.qmp`);
	const vm = start([...guest([WAIT]), '-qmp', `unix:${sock},server=on,wait=off`, '-incoming', `exec:cat ${snapshot}`]);
	const q = await qmp(sock);
	while ((await q.command('query-status')).status === 'inmigrate') await new Promise((r) => setTimeout(r, 5));
	await q.command('cont');
	q.close();
	vm.child.stdin.write('go\n');
	await vm.exited;
	return readFileSync(statusFile, 'utf8').trim() === '0';
}

async function bare() {
	const vm = start(bareBoot(assets.kernel, tmp)());
	return (await vm.exited) === 0;
}

const VARIANTS = { bare, fresh, restore };
const saved = await save();
const times = { bare: [], fresh: [], restore: [] };
for (let round = 0; round <= runs; round++) {
	const order = round % 2 ? ['restore', 'fresh', 'bare'] : ['bare', 'fresh', 'restore'];
	for (const name of order) {
		const t = performance.now();
		if (!(await VARIANTS[name]())) throw new Error(`${name} did not end with status 0`);
		if (round > 0) times[name].push(performance.now() - t); // round 0 warms the page cache
	}
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
const result = { kernel: assets.kernel.version, runs, load: os.loadavg()[0], snapshot: saved, medianMs: m, freshVsBare: m.fresh / m.bare, restoreVsBare: m.restore / m.bare, restoreVsFresh: m.restore / m.fresh };
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
	console.log(`kernel ${result.kernel}, TCG, ${runs} alternating rounds, load average ${result.load.toFixed(1)} at the end`);
	console.log(`snapshot: ${(saved.bytes / 1e6).toFixed(0)} MB, saved in ${(saved.ms / 1000).toFixed(2)} s`);
	for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(8)} median ${(v / 1000).toFixed(2)} s`);
	console.log(`fresh / bare ${result.freshVsBare.toFixed(2)}x, restore / bare ${result.restoreVsBare.toFixed(2)}x, restore / fresh ${result.restoreVsFresh.toFixed(2)}x`);
}
rmSync(tmp, { recursive: true, force: true });
