// KVM or TCG.  On some machines /dev/kvm opens and QEMU reports no error, yet
// a normal guest hangs for ever early in boot; so KVM is used only after a
// real guest booted with it inside a hard time limit, and that verdict is
// remembered per host kernel and QEMU build.  TCG is the safe default.
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cacheDir, hashKey, markUsed, writeAtomic } from './cache.js';
import type { Accel } from './qemu-args.js';

export type AccelRequest = 'auto' | Accel;

export interface AccelChoice {
	accel: Accel;
	reason: string;
}

export const KVM_PROBE_TIMEOUT_MS = 8000;

function kvmAccessible(): string | undefined {
	if (!existsSync('/dev/kvm')) return 'no /dev/kvm';
	try {
		accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
		return undefined;
	} catch {
		return '/dev/kvm is not readable and writable by this user';
	}
}

/** A bare command name resolved through PATH, so an upgraded QEMU gets a new verdict. */
function resolveCommand(name: string): string {
	if (name.includes('/')) return name;
	for (const dir of (process.env.PATH ?? '').split(':')) {
		const candidate = path.join(dir, name);
		if (existsSync(candidate)) return candidate;
	}
	return name;
}

function verdictFile(qemuBinary: string): string {
	let qemuStamp = resolveCommand(qemuBinary);
	try {
		const st = statSync(qemuStamp);
		qemuStamp += `:${st.size}:${st.mtimeMs}`;
	} catch {
		/* not found: the stamp is the name alone */
	}
	return path.join(cacheDir(), `kvm-verdict-${hashKey(os.release(), qemuStamp)}.json`);
}

/**
 * Decides the accelerator.  `probe` boots a throwaway guest with KVM and
 * resolves true when it reported back in time; it is called at most once
 * per host kernel and QEMU build.
 */
export async function chooseAccel(
	request: AccelRequest,
	qemuBinary: string,
	probe: () => Promise<boolean>,
): Promise<AccelChoice> {
	if (request === 'tcg') return { accel: 'tcg', reason: 'TCG requested' };
	const unavailable = kvmAccessible();
	if (request === 'kvm') {
		if (unavailable) throw Object.assign(new Error(`KVM requested but ${unavailable}`), { code: 'ERR_NO_KVM' });
		return { accel: 'kvm', reason: 'KVM requested' };
	}
	if (unavailable) return { accel: 'tcg', reason: `TCG (software emulation): ${unavailable}` };
	const file = verdictFile(qemuBinary);
	let works: boolean | undefined;
	try {
		works = (JSON.parse(readFileSync(file, 'utf8')) as { kvmWorks?: boolean }).kvmWorks;
		markUsed(file);
	} catch {
		/* no verdict yet */
	}
	if (works === undefined) {
		works = await probe();
		writeAtomic(file, JSON.stringify({ kvmWorks: works, hostKernel: os.release(), probedAt: new Date().toISOString() }) + '\n');
	}
	return works
		? { accel: 'kvm', reason: 'KVM (a test guest booted with it)' }
		: { accel: 'tcg', reason: `TCG (software emulation): /dev/kvm did not boot a test guest within ${KVM_PROBE_TIMEOUT_MS / 1000} s` };
}
