// A guest that outlives the command that booted it (hybridmem run --keep):
// QEMU runs detached, one per kernel, with a control port whose host side
// is a Unix socket QEMU listens on, so each later run connects to the same
// guest.  Its state lives in the cache under warm/KERNEL: the key of what it
// was booted from, QEMU's pid, the socket, the console log and a writable
// exchange directory.  A guest whose key no longer matches (another kernel
// image, initramfs, build of the CLI or addon) is discarded, never reused.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { chooseAccel } from './accel.js';
import { cacheDir, hashKey } from './cache.js';
import { hostTscKhz } from './host-tsc.js';
import { initramfsWithNode, startsNode } from './node-layer.js';
import { chooseMachine, qemuArgs } from './qemu-args.js';
import { pickEnv, prepareBoot, probeKvm, QEMU_BINARY } from './runner.js';
import { writeSpec } from './spec.js';

export interface WarmVmOptions {
	kernel: string;
	/** What the guest's agent runs, and the parts of its key besides the boot assets. */
	command: string[];
	cwd: string;
	keyParts: string[];
	cpus: number;
	memMiB: number;
	extraKernelArgs: string[];
	/** The virtio-serial name of the control port. */
	portName: string;
	/** Variables for the agent besides those every guest gets (runner.ts DEFAULT_PASS_ENV). */
	env?: Record<string, string>;
	onNotice?: (m: string) => void;
}

export interface WarmVm {
	dir: string;
	socket: string;
	/** Writable in the guest at the same path (9p without caching: the guest sees each new file). */
	xchg: string;
	consoleLog: string;
	pid: number;
	/** True when this call booted it. */
	booted: boolean;
}

/** Where warm guests keep their state: $HYBRIDMEM_WARM_DIR (tests use their own), else the cache's warm/. */
export const WARM_DIR_ENV = 'HYBRIDMEM_WARM_DIR';

function stateDir(kernel: string): string {
	return path.join(process.env[WARM_DIR_ENV] || path.join(cacheDir(), 'warm'), kernel);
}

function alive(pid: number, socket: string): boolean {
	try {
		// The pid may have been reused: it must be our QEMU with our socket.
		return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.includes(socket));
	} catch {
		return false;
	}
}

function describe(dir: string): { socket: string; xchg: string; consoleLog: string } {
	return { socket: path.join(dir, 'ctl.sock'), xchg: path.join(dir, 'xchg'), consoleLog: path.join(dir, 'console.log') };
}

/** Kills the warm guest of `kernel` (if any) and removes its state. */
export function discardWarmVm(kernel: string): boolean {
	const dir = stateDir(kernel);
	const { socket } = describe(dir);
	let killed = false;
	try {
		const pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
		if (alive(pid, socket)) {
			process.kill(pid, 'SIGKILL');
			killed = true;
		}
	} catch {
		/* none running */
	}
	rmSync(dir, { recursive: true, force: true });
	return killed;
}

/**
 * Runs `fn` holding the warm guest of `kernel` alone: two runs at once would
 * otherwise boot two guests on one socket, or interleave on one guest.  The
 * lock is a directory with the holder's pid; a dead holder's is taken over.
 */
export async function withWarmLock<T>(kernel: string, fn: () => Promise<T>, timeoutMs = 900_000): Promise<T> {
	const lock = `${stateDir(kernel)}.lock`;
	mkdirSync(path.dirname(lock), { recursive: true });
	const until = Date.now() + timeoutMs;
	for (;;) {
		try {
			mkdirSync(lock);
			writeFileSync(path.join(lock, 'pid'), String(process.pid));
			break;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
			let holder = NaN;
			try {
				holder = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
			} catch {
				/* being written: wait */
			}
			if (Number.isInteger(holder) && !existsSync(`/proc/${holder}`)) rmSync(lock, { recursive: true, force: true });
			else if (Date.now() > until) throw new Error(`the warm guest of ${kernel} stayed busy (lock ${lock}, held by pid ${holder})`);
			else await new Promise((r) => setTimeout(r, 100));
		}
	}
	try {
		return await fn();
	} finally {
		rmSync(lock, { recursive: true, force: true });
	}
}

/** The running warm guest for these options, or a new one booting. */
export async function warmVm(opts: WarmVmOptions): Promise<WarmVm> {
	const assets = await prepareBoot(opts.kernel);
	const key = hashKey(assets.vmlinux, assets.initramfs, String(startsNode(opts.command)), opts.command.join('\0'), opts.extraKernelArgs.join(' '), JSON.stringify(opts.env ?? {}), opts.cpus, opts.memMiB, ...opts.keyParts);
	const dir = stateDir(assets.kernel.version);
	const d = describe(dir);
	try {
		const pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
		if (readFileSync(path.join(dir, 'key'), 'utf8') === key && alive(pid, d.socket)) return { dir, ...d, pid, booted: false };
	} catch {
		/* none, or half made */
	}
	if (discardWarmVm(assets.kernel.version)) opts.onNotice?.('discarded the warm guest: it was booted from other files');
	mkdirSync(d.xchg, { recursive: true });
	const { accel, reason } = await chooseAccel('auto', QEMU_BINARY, () => probeKvm(assets));
	const shares = [{ tag: 'hmrw0', dir: d.xchg }];
	const specDir = writeSpec({ argv: opts.command, cwd: opts.cwd, env: pickEnv(opts.env), shares }, dir);
	const tscKhz = hostTscKhz();
	const machine = assets.kernel.features?.virtioMmio === 'n' ? 'q35' : chooseMachine(shares.length, accel, tscKhz);
	opts.onNotice?.(`booting a warm guest: kernel ${assets.kernel.version}, ${machine}, ${reason}`);
	const args = [
		...qemuArgs({
			kernelImage: assets.vmlinux,
			initramfs: !assets.arm64Root && startsNode(opts.command) ? initramfsWithNode(assets.initramfs) : assets.initramfs,
			accel,
			machine,
			...(tscKhz !== undefined ? { tscKhz } : {}),
			memMiB: opts.memMiB,
			cpus: opts.cpus,
			statusFile: path.join(dir, 'status'),
			specDir,
			shares,
			extraKernelArgs: opts.extraKernelArgs,
		}),
		// QEMU listens, so that every later run can connect to the same guest.
		'-chardev', `socket,id=hmctl,path=${d.socket},server=on,wait=off`,
		'-device', `virtserialport,bus=vser.0,chardev=hmctl,name=${opts.portName}`,
	];
	const con = openSync(d.consoleLog, 'w');
	const child = spawn(QEMU_BINARY, args, { detached: true, stdio: ['ignore', con, con] });
	closeSync(con);
	const pid = await new Promise<number>((resolve, reject) => {
		child.once('spawn', () => resolve(child.pid!));
		child.once('error', (err: NodeJS.ErrnoException) =>
			reject(err.code === 'ENOENT' ? Object.assign(new Error(`${QEMU_BINARY} not found: run \`hybridmem bootstrap\` (it installs qemu-system-x86)`), { code: 'ERR_NO_QEMU' }) : err),
		);
	});
	child.unref();
	writeFileSync(path.join(dir, 'pid'), String(pid));
	writeFileSync(path.join(dir, 'key'), key);
	return { dir, ...d, pid, booted: true };
}

/** Connects to the guest's control socket, waiting for QEMU to create it. */
export async function connectWarm(vm: WarmVm, timeoutMs = 10_000): Promise<net.Socket> {
	const until = Date.now() + timeoutMs;
	for (;;) {
		if (existsSync(vm.socket)) {
			const sock = await new Promise<net.Socket | undefined>((resolve) => {
				const s = net.connect(vm.socket);
				s.once('connect', () => resolve(s));
				s.once('error', () => resolve(undefined));
			});
			if (sock) return sock;
		}
		if (!alive(vm.pid, vm.socket) || Date.now() > until) throw new Error(`cannot reach the warm guest's control socket ${vm.socket}; console log: ${vm.consoleLog}`);
		await new Promise((r) => setTimeout(r, 20));
	}
}
