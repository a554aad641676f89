// Runs one command as root in a throwaway VM and reports how it ended.
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { chooseAccel, KVM_PROBE_TIMEOUT_MS, type AccelRequest } from './accel.js';
import { hostTscKhz } from './host-tsc.js';
import { initramfsFor } from './initramfs.js';
import { initramfsWithNode, startsNode } from './node-layer.js';
import { chooseKernel, type KernelInfo } from './kernels.js';
import { chooseMachine, qemuArgs, type Accel, type Machine } from './qemu-args.js';
import { writeSpec } from './spec.js';
import { connectQmp, INCOMING_ARGS, openSnapshot, resume, saveAndContinue, snapshotPath, specLine } from './snapshot.js';
import { SNAPSHOT_PARAM, SNAPSHOT_READY } from './guest-init.js';
import { uncompressedKernel } from './vmlinux.js';
import { arm64Root } from './arm64-root.js';
import { ARM64_GUEST_PATH, ARM64_QEMU_BINARY, arm64InitramfsLayout, arm64QemuArgs } from './arm64.js';
import type { DebianArch } from './debian.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
// The cache variables too: the guest finds the modules `hybridmem build` left in the host's cache.
export const DEFAULT_PASS_ENV = ['PATH', 'HOME', 'TERM', 'CI', 'LANG', 'HYBRIDMEM_CACHE', 'XDG_CACHE_HOME'];
export const DEFAULT_TIMEOUT_MS = 600_000;
export const EXIT_TIMEOUT = 124;
export const EXIT_CRASH = 125;
export const EXIT_ABORTED = 130;

export interface VmOptions {
	command: string[];
	/** Kernel release to boot; default: the newest with headers installed (of `arch`). */
	kernel?: string;
	/** The guest's architecture; default: the kernel's (amd64 unless an arm64 kernel is named). */
	arch?: DebianArch;
	cwd?: string;
	/** Extra variables; PATH, HOME, TERM, CI, LANG and the cache variables (HYBRIDMEM_CACHE, XDG_CACHE_HOME) pass from this process. */
	env?: Record<string, string>;
	/** Host directories shared writable at the same path. */
	rw?: string[];
	memMiB?: number;
	cpus?: number;
	timeoutMs?: number;
	accel?: AccelRequest;
	/** Default: chooseMachine's (microvm unless the shares or an unknown TSC frequency rule it out). */
	machine?: Machine;
	/**
	 * Where to save the kernel console; it is then kept.  Default: a new file
	 * under the temp dir, removed when the command exited 0 and kept (see
	 * VmResult.consoleLogKept) when the VM crashed, timed out, was stopped or
	 * aborted, or the command failed.
	 */
	consoleLog?: string;
	/** Keep the default console log even after a clean exit (the caller removes it). */
	keepConsoleLog?: boolean;
	/**
	 * The command's stdin: 'ignore' (the default) gives it end-of-file at once,
	 * 'inherit' forwards this process's stdin until it ends, a string or
	 * Buffer is fed to it whole.
	 */
	stdin?: 'ignore' | 'inherit' | string | Buffer;
	/** 'inherit': the command's output goes to this process's stdout/stderr, live. */
	stdout?: 'inherit' | 'pipe';
	stderr?: 'inherit' | 'pipe';
	onConsoleLine?: (line: string) => void;
	/** Each line of the command's stdout as it arrives (with stdout 'pipe'; the text is still collected). */
	onStdoutLine?: (line: string) => void;
	/** Ends the VM as soon as a console line matches (e.g. the end of an oops). */
	stopWhen?: RegExp;
	signal?: AbortSignal;
	extraKernelArgs?: string[];
	/** The runner's own progress messages (kernel, accelerator); never the command's. */
	onNotice?: (message: string) => void;
	/**
	 * Start the guest from a snapshot of this configuration taken just before
	 * the init script mounts the host root, saving one on first use
	 * (snapshot.ts); x86 guests only.  Default false: a boot.
	 */
	snapshot?: boolean;
}

export type VmOutcome = 'exited' | 'timeout' | 'crashed' | 'stopped' | 'aborted';

export interface VmResult {
	/** The command's exit status, or 124 (timeout), 125 (no status: crash), 130 (aborted). */
	exitCode: number;
	outcome: VmOutcome;
	kernel: string;
	accel: Accel;
	machine: Machine;
	/** The console log's path; the file exists only when consoleLogKept. */
	consoleLog: string;
	/** False when the default log was removed after a clean exit. */
	consoleLogKept: boolean;
	/** The last console lines, for a crash message. */
	consoleTail: string[];
	/** The console line that matched `stopWhen`. */
	matchedLine?: string;
	durationMs: number;
	stdout?: string;
	stderr?: string;
}

export interface BootAssets {
	kernel: KernelInfo;
	vmlinux: string;
	initramfs: string;
	/** An arm64 guest's own root (arm64-root.ts). */
	arm64Root?: string;
}

/** The kernel, its uncompressed image and the initramfs, from the cache when fresh. */
export async function prepareBoot(kernel?: string, arch?: DebianArch): Promise<BootAssets> {
	const k = chooseKernel(kernel, undefined, undefined, undefined, arch);
	if (k.arch === 'arm64') {
		// QEMU boots arm64's Image as it is; the initramfs's busybox is the arm64 root's.
		const root = await arm64Root();
		return { kernel: k, vmlinux: k.image, initramfs: await initramfsFor(k, arm64InitramfsLayout(root.dir)), arm64Root: root.dir };
	}
	const [vmlinux, initramfs] = await Promise.all([uncompressedKernel(k.image), initramfsFor(k)]);
	return { kernel: k, vmlinux, initramfs };
}

export function pickEnv(extra: Record<string, string> = {}): Record<string, string> {
	const env: Record<string, string> = {};
	for (const k of DEFAULT_PASS_ENV) {
		const v = process.env[k];
		if (v !== undefined) env[k] = v;
	}
	return { ...env, ...extra };
}

/** Boots a guest with KVM that only reports back; true when it did in time. */
export async function probeKvm(assets: BootAssets): Promise<boolean> {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'hybridmem-kvm-'));
	const statusFile = path.join(dir, 'status');
	try {
		const args = qemuArgs({
			kernelImage: assets.vmlinux,
			initramfs: assets.initramfs,
			accel: 'kvm',
			memMiB: 256,
			cpus: 1,
			statusFile,
			shares: [],
			probe: true,
		});
		const { execa } = await import('execa');
		const r = await execa(QEMU_BINARY, args, {
			stdio: 'ignore',
			timeout: KVM_PROBE_TIMEOUT_MS,
			forceKillAfterDelay: 1000,
			killSignal: 'SIGKILL',
			reject: false,
		});
		return !r.timedOut && readFileSync(statusFile, 'utf8').trim() === '0';
	} catch {
		return false;
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

const TAIL_LINES = 40;

interface Sink {
	/** Resolves with what was collected (empty when relayed) once QEMU's side closed. */
	done(): Promise<string>;
}

/**
 * Listens on a Unix socket for QEMU's connection and relays what arrives to
 * `relay`, or collects it.  QEMU connects once at start and closes at exit,
 * so the end of the connection means every byte has arrived.
 */
function openSink(socketPath: string, relay?: NodeJS.WritableStream, onLine?: (line: string) => void): Promise<Sink> {
	const chunks: Buffer[] = [];
	const decoder = new StringDecoder('utf8');
	let partial = '';
	const lines = (chunk: Buffer) => {
		if (!onLine) return;
		const parts = (partial + decoder.write(chunk)).split('\n');
		partial = parts.pop() ?? '';
		for (const l of parts) onLine(l);
	};
	let connected = false;
	let finished: () => void = () => {};
	const ended = new Promise<void>((resolve) => (finished = resolve));
	const server = net.createServer((conn) => {
		connected = true;
		server.close();
		conn.on('data', (chunk: Buffer) => {
			if (relay) relay.write(chunk);
			else chunks.push(chunk);
			lines(chunk);
		});
		conn.on('close', () => finished());
		conn.on('error', () => finished());
	});
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(socketPath, () =>
			resolve({
				async done() {
					// QEMU has exited: if it never connected there is nothing to wait for.
					if (!connected) server.close();
					else await ended;
					if (onLine && partial) onLine(partial);
					return Buffer.concat(chunks).toString('utf8');
				},
			}),
		);
	});
}

interface Source {
	/** Stops feeding (QEMU has exited) and lets go of this process's stdin. */
	close(): void;
}

/**
 * Listens on a Unix socket for QEMU's connection and feeds it `input`: this
 * process's stdin, or fixed bytes.  Ending the connection is what the guest
 * sees as end-of-file.
 */
function openSource(socketPath: string, input: 'inherit' | string | Buffer): Promise<Source> {
	let conn: net.Socket | undefined;
	const server = net.createServer((c) => {
		conn = c;
		server.close();
		c.on('error', () => {}); // the guest may exit without reading it all
		if (input === 'inherit') process.stdin.pipe(c);
		else c.end(input);
	});
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(socketPath, () =>
			resolve({
				close() {
					server.close();
					if (input === 'inherit') {
						if (conn) process.stdin.unpipe(conn);
						// A paused stdin no longer keeps this process alive.
						process.stdin.pause();
					}
					conn?.destroy();
				},
			}),
		);
	});
}

export async function runInVm(opts: VmOptions): Promise<VmResult> {
	const started = Date.now();
	// A cold cache costs seconds (decompressing the kernel, packing the
	// initramfs): say so when it takes longer than a warm look-up would.
	const preparing = prepareBoot(opts.kernel, opts.arch);
	const slow = setTimeout(() => opts.onNotice?.('preparing the kernel and initramfs (first boot of this kernel; cached afterwards)'), 300);
	let assets: BootAssets;
	try {
		assets = await preparing;
	} finally {
		clearTimeout(slow);
	}
	const arm64 = assets.arm64Root;
	const qemuBinary = arm64 ? ARM64_QEMU_BINARY : QEMU_BINARY;
	if (arm64 && opts.accel === 'kvm') throw Object.assign(new Error('KVM requested but an arm64 guest on this host runs under TCG only'), { code: 'ERR_NO_KVM' });
	const { accel, reason } = arm64 ? { accel: 'tcg' as const, reason: 'TCG (an arm64 guest on an x86_64 host)' } : await chooseAccel(opts.accel ?? 'auto', QEMU_BINARY, () => probeKvm(assets));

	const shares = (opts.rw ?? []).map((dir, i) => ({ tag: `hmrw${i}`, dir: path.resolve(dir) }));
	const useSnapshot = !!opts.snapshot && !arm64;
	const specDir = writeSpec({
		argv: opts.command,
		cwd: path.resolve(opts.cwd ?? process.cwd()),
		env: pickEnv(arm64 ? { PATH: ARM64_GUEST_PATH, ...opts.env } : opts.env),
		shares,
	});
	const statusFile = path.join(specDir, 'status');
	const stdinFeed = opts.stdin === 'ignore' ? undefined : opts.stdin;
	const stdinSocket = path.join(specDir, 'in.sock');
	const tscKhz = hostTscKhz();
	// microvm has virtio over MMIO only: a kernel without it gets q35's PCI.
	const machine = arm64 ? 'virt' : (opts.machine ?? (assets.kernel.features?.virtioMmio === 'n' ? 'q35' : chooseMachine(shares.length, accel, tscKhz)));
	opts.onNotice?.(`kernel ${assets.kernel.version}, ${machine}, ${reason}`);
	const consoleLog = opts.consoleLog ?? path.join(os.tmpdir(), `hybridmem-console-${started}-${process.pid}.log`);
	const logStream = createWriteStream(consoleLog);
	const config = {
		kernelImage: assets.vmlinux,
		// The host's node, never an arm64 guest's: that one is the arm64 root's.
		initramfs: !arm64 && startsNode(opts.command) ? initramfsWithNode(assets.initramfs) : assets.initramfs,
		accel,
		machine,
		...(tscKhz !== undefined ? { tscKhz } : {}),
		memMiB: opts.memMiB ?? 2048,
		cpus: opts.cpus ?? 2,
		...(stdinFeed !== undefined ? { stdinSocket } : {}),
		stdoutSocket: path.join(specDir, 'out.sock'),
		stderrSocket: path.join(specDir, 'err.sock'),
		statusFile,
		// From a snapshot, the spec comes on the console: the command line is part of the snapshot.
		...(useSnapshot ? {} : { specDir }),
		shares,
		...(opts.extraKernelArgs || useSnapshot ? { extraKernelArgs: [...(opts.extraKernelArgs ?? []), ...(useSnapshot ? [SNAPSHOT_PARAM] : [])] } : {}),
	};
	const args = arm64 ? arm64QemuArgs({ ...config, arm64Root: arm64 }) : qemuArgs(config);
	const qmpSocket = path.join(specDir, 'qmp.sock');
	const snapFile = useSnapshot ? snapshotPath(args, specDir, shares.map((sh) => sh.dir)) : '';
	const snap = useSnapshot ? openSnapshot(snapFile) : undefined;
	if (snap) args.push('-qmp', `unix:${qmpSocket},server=on,wait=off`, ...(snap.restoring ? INCOMING_ARGS : []));
	// The command's stdout and stderr reach us over Unix sockets that QEMU
	// connects to at start (a pipe from our side would be a socketpair, which
	// QEMU cannot open by path).  QEMU's own stdout carries the kernel
	// console, its stderr QEMU's own complaints.
	const outSink = await openSink(path.join(specDir, 'out.sock'), opts.stdout === 'inherit' ? process.stdout : undefined, opts.onStdoutLine);
	const errSink = await openSink(path.join(specDir, 'err.sock'), opts.stderr === 'inherit' ? process.stderr : undefined);
	const source = stdinFeed !== undefined ? await openSource(stdinSocket, stdinFeed) : undefined;
	// node:child_process rather than execa here: loading execa costs 70 ms
	// of every boot, and this needs no more than an argument array and the
	// exit.  execa stays for the cache-miss paths (modinfo, decompressors).
	// fd 3: the snapshot to load or save into.  stdin: the console, where a waiting guest reads its spec.
	const child = spawn(qemuBinary, args, { stdio: [snap ? 'pipe' : 'ignore', 'pipe', 'pipe', snap?.fd ?? 'ignore'] }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
	// The guest waits for its spec on the console: after the save, or once the snapshot is loaded.
	let resumed = false;
	let saved = false;
	const go = () => {
		resumed = true;
		child.stdin?.write(specLine(specDir));
	};
	let qemuGone = false;
	// After QEMU has gone the run's own result says what happened.
	const snapshotFailed = (what: string) => (err: unknown) => {
		if (qemuGone) return;
		opts.onNotice?.(`${what}: ${err instanceof Error ? err.message : String(err)}`);
		if (!resumed) child.kill('SIGKILL');
	};
	if (snap?.restoring)
		connectQmp(qmpSocket, 60_000, () => !qemuGone)
			.then(async (q) => {
				try {
					await resume(q);
					opts.onNotice?.(`restored from the snapshot ${snapFile}`);
					go();
				} finally {
					q.close();
				}
			})
			.catch(snapshotFailed('the snapshot could not be resumed'));
	const save = () =>
		connectQmp(qmpSocket, 60_000, () => !qemuGone)
			.then(async (q) => {
				try {
					const t = Date.now();
					await saveAndContinue(q, snapFile, path.join(specDir, 'save.sock'));
					saved = true;
					opts.onNotice?.(`saved a snapshot for later runs in ${((Date.now() - t) / 1000).toFixed(1)} s`);
				} catch (err) {
					opts.onNotice?.(`the snapshot was not saved (this run goes on): ${err instanceof Error ? err.message : String(err)}`);
				} finally {
					q.close();
				}
				go();
			})
			.catch(snapshotFailed('the snapshot could not be saved'));
	const exited = new Promise<{ spawnError?: NodeJS.ErrnoException }>((resolve) => {
		child.once('error', (err: NodeJS.ErrnoException) => resolve({ spawnError: err }));
		child.once('close', () => resolve({}));
	});
	let qemuStderr = '';
	child.stderr.setEncoding('utf8');
	child.stderr.on('data', (text: string) => {
		if (qemuStderr.length < 64 * 1024) qemuStderr += text;
	});
	let outcome: VmOutcome | undefined;
	let matchedLine: string | undefined;
	const tail: string[] = [];
	const kill = (why: VmOutcome) => {
		outcome ??= why;
		child.kill('SIGKILL');
	};
	let partial = '';
	const decoder = new StringDecoder('utf8'); // a chunk may end inside a character
	child.stdout.on('data', (chunk: Buffer) => {
		logStream.write(chunk);
		const text = partial + decoder.write(chunk);
		const lines = text.split('\n');
		partial = lines.pop() ?? '';
		for (const raw of lines) {
			const line = raw.replace(/\r$/, '');
			tail.push(line);
			if (tail.length > TAIL_LINES) tail.shift();
			opts.onConsoleLine?.(line);
			if (snap && !snap.restoring && !resumed && line === SNAPSHOT_READY) void save();
			if (opts.stopWhen && matchedLine === undefined && opts.stopWhen.test(line)) {
				matchedLine = line;
				kill('stopped');
			}
		}
	});
	const timer = setTimeout(() => kill('timeout'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
	const onAbort = () => kill('aborted');
	opts.signal?.addEventListener('abort', onAbort, { once: true });
	if (opts.signal?.aborted) onAbort();

	const { spawnError } = await exited;
	qemuGone = true;
	clearTimeout(timer);
	source?.close();
	// A snapshot that would not load (another QEMU, a changed device) is removed and the run boots instead.
	const retry = !!snap?.restoring && !resumed && outcome === undefined;
	if (snap) {
		if (snap.restoring ? retry : !saved) snap.discard();
		else snap.commit();
	}
	const [stdoutText, stderrText] = await Promise.all([outSink.done(), errSink.done()]);
	if (spawnError?.code === 'ENOENT') {
		rmSync(specDir, { recursive: true, force: true });
		await new Promise<void>((resolve) => logStream.end(resolve));
		if (opts.consoleLog === undefined) rmSync(consoleLog, { force: true });
		throw Object.assign(new Error(`${qemuBinary} not found: run \`hybridmem bootstrap\` (it installs ${arm64 ? 'qemu-system-arm' : 'qemu-system-x86'})`), { code: 'ERR_NO_QEMU' });
	}
	opts.signal?.removeEventListener('abort', onAbort);
	if (partial) tail.push(partial);
	await new Promise<void>((resolve) => logStream.end(resolve));
	if (retry) {
		rmSync(specDir, { recursive: true, force: true });
		if (opts.consoleLog === undefined) rmSync(consoleLog, { force: true });
		opts.onNotice?.(`the snapshot did not load (${qemuStderr.trim().split('\n').pop() ?? 'QEMU exited'}): removed it; booting`);
		return runInVm(opts);
	}

	let status: number | undefined;
	try {
		const text = readFileSync(statusFile, 'utf8').trim();
		if (/^\d+$/.test(text)) status = Number(text);
	} catch {
		/* no status: the guest never got that far */
	}
	rmSync(specDir, { recursive: true, force: true });

	let exitCode: number;
	if (outcome === 'timeout') exitCode = EXIT_TIMEOUT;
	else if (outcome === 'aborted') exitCode = EXIT_ABORTED;
	else if (outcome === 'stopped') exitCode = 0;
	else if (status !== undefined) {
		outcome = 'exited';
		exitCode = status;
	} else {
		outcome = 'crashed';
		exitCode = EXIT_CRASH;
		const qemuErr = (spawnError ? String(spawnError.message) : qemuStderr).trim();
		if (qemuErr) tail.push(`[qemu] ${qemuErr}`);
	}
	// Nothing left in the temp dir after a clean run; a failed one keeps its log.
	const consoleLogKept = opts.consoleLog !== undefined || !!opts.keepConsoleLog || outcome !== 'exited' || exitCode !== 0;
	if (!consoleLogKept) rmSync(consoleLog, { force: true });
	return {
		exitCode,
		outcome,
		kernel: assets.kernel.version,
		accel,
		machine,
		consoleLog,
		consoleLogKept,
		consoleTail: tail,
		...(matchedLine !== undefined ? { matchedLine } : {}),
		durationMs: Date.now() - started,
		...(opts.stdout !== 'inherit' ? { stdout: stdoutText } : {}),
		...(opts.stderr !== 'inherit' ? { stderr: stderrText } : {}),
	};
}

