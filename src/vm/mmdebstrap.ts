// A Debian root made once with mmdebstrap (Debian's own tool) under the
// cache: built in a temporary directory with the same reach as the kernel
// fetch (the machine's proxies and Valid-Until checks), then renamed into
// place with a ready marker, so a half-made root is never used and two
// makers do not clash.  The build chroots (setup/chroot.ts) and the arm64
// guest's root (arm64-root.ts) are made this way.
import { execa } from 'execa';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ARCHIVE_KEYRING, carriedAptOptions, SUITES } from './debian.js';

/** The marker a finished root has. */
export const ROOT_READY = '.hybridmem-ready';

export interface MmdebstrapRoot {
	dir: string;
	suite: string;
	variant: 'apt' | 'extract';
	/** Debian architecture when not the host's. */
	architecture?: string;
	include: string[];
	/** Written into the ready marker. */
	label: string[];
	/** What failed, for the error: "mmdebstrap of <what> failed". */
	what: string;
	/** The caller's error for a failed mmdebstrap. */
	error(message: string): Error;
	/** Runs on the made root before it is renamed into place. */
	finish?(root: string): void;
}

/** Makes `spec.dir` with mmdebstrap; how long it took. */
export async function makeDebianRoot(spec: MmdebstrapRoot): Promise<number> {
	const started = Date.now();
	const tmp = `${spec.dir}.tmp-${process.pid}`;
	rmSync(tmp, { recursive: true, force: true });
	mkdirSync(path.dirname(spec.dir), { recursive: true });
	const dump = await execa('apt-config', ['dump'], { reject: false });
	const aptopts = carriedAptOptions(dump.stdout ?? '').map((l) => `--aptopt=${l}`);
	const r = await execa(
		'mmdebstrap',
		[
			'--mode=root',
			`--variant=${spec.variant}`,
			...(spec.architecture ? [`--architectures=${spec.architecture}`] : []),
			'--quiet',
			...aptopts,
			`--include=${spec.include.join(',')}`,
			spec.suite,
			tmp,
			...SUITES[spec.suite]!.map((s) => `deb [signed-by=${ARCHIVE_KEYRING}] ${s.uri} ${s.suite} main`),
		],
		{ reject: false, all: true },
	);
	if (r.exitCode !== 0) {
		rmSync(tmp, { recursive: true, force: true });
		throw spec.error(`mmdebstrap of ${spec.what} failed:\n${(r.all ?? '').split('\n').slice(-20).join('\n')}`);
	}
	spec.finish?.(tmp);
	// Another run may have made it meanwhile: keep theirs.
	if (existsSync(path.join(spec.dir, ROOT_READY))) rmSync(tmp, { recursive: true, force: true });
	else {
		writeFileSync(path.join(tmp, ROOT_READY), `${new Date().toISOString()} ${spec.label.join(' ')}\n`);
		rmSync(spec.dir, { recursive: true, force: true });
		renameSync(tmp, spec.dir);
	}
	return Date.now() - started;
}
