// hybridmem bootstrap: the Debian packages hybridmem needs on this machine,
// installed with apt when missing, nothing done when they are all there (one
// dpkg-query).  Every "missing X" message of the CLI names this command.
import { execa } from 'execa';

/** The command a person runs to install what is missing; messages quote it. */
export const BOOTSTRAP_COMMAND = 'hybridmem bootstrap';

/** What each package is for, in the order apt gets them. */
export const PACKAGES: Record<string, string> = {
	'qemu-system-x86': 'the VM runner',
	'qemu-system-arm': "the VM runner's arm64 guests (qemu-system-aarch64)",
	'linux-image-amd64': "Debian's 6.1 kernel, booted by the VM runner",
	'linux-headers-amd64': 'its headers, to build the module for it',
	'linux-image-6.12-amd64': "Debian's 6.12 kernel, the VM runner's default",
	'linux-headers-6.12-amd64': 'its headers',
	'busybox-static': "the guest's initramfs",
	cpio: 'packing the initramfs',
	kmod: 'modinfo, insmod',
	'build-essential': 'gcc and make for kbuild, g++ for the addon when no prebuilt binary fits',
	'xz-utils': 'unpacking compressed kernel modules',
	zstd: 'unpacking compressed kernel modules',
	'debian-archive-keyring': 'checking the archive hybridmem kernels --fetch downloads kernels from',
	mmdebstrap: "a chroot of a fetched kernel's suite, to build the module with that kernel's compiler; the arm64 guests' root",
};

/** The packages of `names` that dpkg does not list as installed. */
export async function missingPackages(names: string[] = Object.keys(PACKAGES)): Promise<string[]> {
	const r = await execa('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...names], { reject: false });
	if (r.exitCode !== 0 && r.exitCode !== 1) throw new Error(`dpkg-query failed (exit ${r.exitCode}): is this a Debian machine? ${r.stderr}`);
	const installed = new Set(
		r.stdout
			.split('\n')
			.map((l) => l.trim().split(' '))
			.filter(([, status]) => status === 'installed')
			.map(([name]) => name),
	);
	return names.filter((n) => !installed.has(n));
}

/** The apt-get invocations that install `missing` (sudo in front when not root). */
export function aptCommands(missing: string[], uid = process.getuid?.() ?? 0, sudo = true): string[][] {
	const pre = uid === 0 ? [] : sudo ? ['sudo'] : [];
	return [
		[...pre, 'apt-get', 'update', '-qq'],
		// INITRD=No: the VM runner brings its own initramfs; Debian's costs tens of seconds per kernel.
		[...pre, 'env', 'INITRD=No', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing],
	];
}

export interface BootstrapResult {
	missing: string[];
	installed: string[];
}

export async function bootstrap(opts: { dryRun?: boolean; packages?: string[]; log?: (m: string) => void } = {}): Promise<BootstrapResult> {
	const log = opts.log ?? (() => {});
	const missing = await missingPackages(opts.packages);
	if (missing.length === 0 || opts.dryRun) return { missing, installed: [] };
	const uid = process.getuid?.() ?? 0;
	let sudo = false;
	if (uid !== 0) {
		sudo = (await execa('sudo', ['-n', 'true'], { reject: false }).catch(() => ({ exitCode: 1 }))).exitCode === 0;
		if (!sudo)
			throw Object.assign(
				new Error(`missing Debian packages: ${missing.join(' ')}; as root run: apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')} (or sudo ${BOOTSTRAP_COMMAND})`),
				{ code: 'ERR_NOT_ROOT' },
			);
	}
	for (const cmd of aptCommands(missing, uid, sudo)) {
		log(cmd.join(' '));
		const r = await execa(cmd[0]!, cmd.slice(1), { reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive', INITRD: 'No' } });
		if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (exit ${r.exitCode}):\n${(r.all ?? '').split('\n').slice(-20).join('\n')}`);
	}
	const still = await missingPackages(missing);
	if (still.length) throw new Error(`apt-get finished but these are still not installed: ${still.join(' ')}`);
	return { missing, installed: missing };
}
