// The host's TSC frequency, which a TCG guest needs told.  Under TCG the
// guest's RDTSC returns the host's TSC, so the guest has to calibrate it
// against an emulated timer.  q35 has the ACPI PM timer as a fallback
// reference; microvm has only the PIT, and when the host is busy the PIT
// calibration fails ("tsc: Unable to calibrate against PIT") and the boot
// hangs.  Passing tsc_early_khz skips that calibration.
//
// The x86 kernel derives its delay-loop constant from its own TSC frequency
// (lpj = tsc_khz * 1000 / HZ), so /proc/cpuinfo's "bogomips" is exactly
// tsc_khz / 500, to 10 kHz.  That is the boot-time calibration, accurate to
// well under 0.1%, which is all a throwaway guest's clock needs.
import { readFileSync } from 'node:fs';

/** The host TSC frequency in kHz when it is constant and known, else undefined. */
export function parseTscKhz(cpuinfo: string): number | undefined {
	const first = cpuinfo.split(/\n\s*\n/)[0] ?? '';
	const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
	const flags = new Set((field('flags') ?? '').split(/\s+/));
	// A TSC that changes rate with frequency scaling or stops in idle states
	// has no single frequency to pass on.
	if (!flags.has('tsc') || !flags.has('constant_tsc') || !flags.has('nonstop_tsc')) return undefined;
	const bogomips = Number(field('bogomips'));
	if (!Number.isFinite(bogomips) || bogomips <= 0) return undefined;
	return Math.round(bogomips * 500);
}

let cached: { khz: number | undefined } | undefined;

/** parseTscKhz of this host, read once; undefined on non-x86 hosts. */
export function hostTscKhz(): number | undefined {
	if (!cached) {
		let khz: number | undefined;
		if (process.arch === 'x64') {
			try {
				khz = parseTscKhz(readFileSync('/proc/cpuinfo', 'utf8'));
			} catch {
				/* no /proc: unknown */
			}
		}
		cached = { khz };
	}
	return cached.khz;
}
