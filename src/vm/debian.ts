// Kernels from Debian's archive, for the VM runner: `hybridmem kernels
// --fetch SUITE[:FLAVOUR]` downloads a kernel's image and header packages with
// apt under a private configuration (its own sources.list, lists, archives
// and status file under the cache; the machine's own /etc/apt is never read
// or changed) and unpacks them with dpkg-deb -x, never installing them:
//
//   <cache>/debian/apt/<suite>/          apt's configuration and state
//   <cache>/debian/kernels/<release>/    the unpacked packages: boot/, lib/modules/<release>/, usr/src/linux-headers-*
//
// The unpacked tree is made usable where it lies: lib points at usr/lib when
// the packages are /usr-merged (trixie on), absolute symlinks and the
// headers' absolute include become relative, and depmod (which the package's
// postinst would run) writes modules.dep.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cacheDir } from './cache.js';

/** Where apt finds each suite: the suite itself, and its security updates (where the newest kernels of a release are). */
export const SUITES: Record<string, { suite: string; uri: string }[]> = {
	bullseye: [
		{ suite: 'bullseye', uri: 'http://deb.debian.org/debian' },
		{ suite: 'bullseye-security', uri: 'http://deb.debian.org/debian-security' },
	],
	bookworm: [
		{ suite: 'bookworm', uri: 'http://deb.debian.org/debian' },
		{ suite: 'bookworm-security', uri: 'http://deb.debian.org/debian-security' },
	],
	trixie: [
		{ suite: 'trixie', uri: 'http://deb.debian.org/debian' },
		{ suite: 'trixie-security', uri: 'http://deb.debian.org/debian-security' },
	],
	sid: [{ suite: 'sid', uri: 'http://deb.debian.org/debian' }],
};

/** Flavour -> the metapackage whose dependency names the suite's current kernel of that flavour. */
export const FLAVOURS: Record<string, string> = {
	amd64: 'linux-image-amd64',
	rt: 'linux-image-rt-amd64',
	cloud: 'linux-image-cloud-amd64',
	arm64: 'linux-image-arm64',
	'arm64-16k': 'linux-image-arm64-16k',
};

/** The Debian architecture a kernel release is built for: its ABI name ends in it (6.12.118+deb13-arm64-16k). */
export type DebianArch = 'amd64' | 'arm64';
export function archOfRelease(release: string): DebianArch {
	return /-arm64(-16k)?$/.test(release) ? 'arm64' : 'amd64';
}
export function archOfFlavour(flavour: string | undefined): DebianArch {
	return flavour?.startsWith('arm64') ? 'arm64' : 'amd64';
}

export const ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const MARKER = '.hybridmem-fetched.json';

export interface FetchSpec {
	suite: string;
	/** A flavour of FLAVOURS, or undefined when `release` names the kernel. */
	flavour?: string;
	/** An exact kernel release (linux-image-<release>), e.g. 5.10.0-32-amd64. */
	release?: string;
}

/** The architecture of what a spec fetches. */
export function archOfSpec(spec: FetchSpec): DebianArch {
	return spec.release ? archOfRelease(spec.release) : archOfFlavour(spec.flavour);
}

/** The suite an exact Debian kernel release comes from, by its ABI name. */
export function suiteOfRelease(release: string): string | undefined {
	if (/^5\.10\.0-\d+-/.test(release)) return 'bullseye';
	if (/^6\.1\.0-\d+-/.test(release) || /\+deb12-/.test(release)) return 'bookworm';
	if (/\+deb13-/.test(release)) return 'trixie';
	if (/\+deb14-/.test(release)) return 'sid';
	return undefined;
}

/** SUITE, SUITE:FLAVOUR, SUITE:RELEASE or RELEASE (e.g. trixie:rt, 5.10.0-32-amd64, trixie:6.12.118+deb13-rt-amd64). */
export function parseFetchSpec(spec: string): FetchSpec {
	const [first = '', second, ...rest] = spec.split(':');
	const bad = (why: string) =>
		Object.assign(new Error(`cannot fetch '${spec}': ${why} (give SUITE[:FLAVOUR] with SUITE one of ${Object.keys(SUITES).join(', ')} and FLAVOUR one of ${Object.keys(FLAVOURS).join(', ')}, or a kernel release such as 5.10.0-32-amd64)`), { code: 'ERR_FETCH_SPEC' });
	if (rest.length) throw bad('too many colons');
	if (SUITES[first]) {
		if (second === undefined || second === '') return { suite: first, flavour: 'amd64' };
		if (FLAVOURS[second]) return { suite: first, flavour: second };
		if (/^\d+\.\d+/.test(second)) return { suite: first, release: second };
		throw bad(`unknown flavour '${second}'`);
	}
	if (second === undefined && /^\d+\.\d+/.test(first)) {
		const suite = suiteOfRelease(first);
		if (!suite) throw bad(`cannot tell the suite of release ${first}; write SUITE:${first}`);
		return { suite, release: first };
	}
	throw bad(`unknown suite '${first}'`);
}

export function debianDir(): string {
	return path.join(cacheDir(), 'debian');
}

export function fetchedKernelsDir(): string {
	return path.join(debianDir(), 'kernels');
}

/**
 * Settings of the machine's own apt configuration that say how to reach the
 * archive rather than what to install from it, carried into the private one:
 * its proxies, and whether to accept Release files past their Valid-Until
 * (machines that reach a frozen copy of the archive turn that check off; the
 * signatures are checked either way).
 */
export const CARRIED_APT_OPTIONS = /^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy(::[^ ]+)?) /;

/** The CARRIED_APT_OPTIONS lines of `apt-config dump` output. */
export function carriedAptOptions(dump: string): string[] {
	return dump.split('\n').filter((l) => CARRIED_APT_OPTIONS.test(l) && l.endsWith(';'));
}

/** The private apt directory of `suite` for kernels of `arch` (arm64 ones get their own lists). */
export function aptDirOf(suite: string, arch: DebianArch = 'amd64'): string {
	return path.join(debianDir(), 'apt', arch === 'amd64' ? suite : `${suite}-${arch}`);
}

/**
 * The private apt configuration of `suite`, written (again) on each use; returns the APT_CONFIG file.
 * A foreign `arch` is added beside amd64: its kernel packages are named NAME:arch, while the
 * kbuild tools (Multi-Arch: foreign) resolve to amd64, which is what runs on this machine.
 */
export function writeAptConfig(suite: string, dir = aptDirOf(suite), keyring = ARCHIVE_KEYRING, carried: string[] = [], arch: DebianArch = 'amd64'): string {
	const sources = SUITES[suite];
	if (!sources) throw new Error(`unknown suite ${suite}`);
	for (const d of ['etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'etc/trusted.gpg.d', 'state/lists/partial', 'cache/archives/partial', 'log'])
		mkdirSync(path.join(dir, d), { recursive: true });
	const status = path.join(dir, 'state', 'status');
	if (!existsSync(status)) writeFileSync(status, ''); // nothing installed: apt resolves against the archive alone
	writeFileSync(path.join(dir, 'etc', 'sources.list'), sources.map((s) => `deb [signed-by=${keyring}] ${s.uri} ${s.suite} main\n`).join(''));
	const q = (s: string) => JSON.stringify(s);
	const conf = [
		`Dir::Etc ${q(path.join(dir, 'etc') + '/')};`,
		`Dir::Etc::main "apt.conf";`,
		`Dir::Etc::parts "apt.conf.d";`,
		`Dir::Etc::sourcelist "sources.list";`,
		`Dir::Etc::sourceparts "sources.list.d";`,
		`Dir::Etc::preferences "preferences";`,
		`Dir::Etc::preferencesparts "preferences.d";`,
		`Dir::Etc::trusted "trusted.gpg";`,
		`Dir::Etc::trustedparts "trusted.gpg.d";`,
		`Dir::State ${q(path.join(dir, 'state') + '/')};`,
		`Dir::State::lists "lists/";`,
		`Dir::State::status ${q(status)};`,
		`Dir::Cache ${q(path.join(dir, 'cache') + '/')};`,
		`Dir::Cache::archives "archives/";`,
		`Dir::Log ${q(path.join(dir, 'log') + '/')};`,
		`APT::Architecture "amd64";`,
		`APT::Architectures { "amd64";${arch !== 'amd64' ? ` "${arch}";` : ''} };`,
		`Acquire::Languages "none";`,
		`Acquire::Retries "3";`,
		// apt drops to the _apt user to download, which cannot write a root-owned private directory.
		...(process.getuid?.() === 0 ? [`APT::Sandbox::User "root";`] : []),
		...carried,
	];
	const file = path.join(dir, 'etc', 'apt.conf');
	writeFileSync(file, conf.join('\n') + '\n');
	return file;
}

async function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
	const { execa } = await import('execa');
	const r = await execa(cmd, args, { reject: false, all: true, ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}) });
	if (r.exitCode !== 0) throw Object.assign(new Error(`${cmd} ${args.join(' ')} failed (exit ${r.exitCode}):\n${(r.all ?? '').trim().split('\n').slice(-15).join('\n')}`), { code: 'ERR_FETCH' });
	return r.stdout;
}

/** One package's stanza fields from `apt-cache show --no-all-versions` (the candidate). */
export function parseStanza(text: string): Record<string, string> {
	const fields: Record<string, string> = {};
	let key = '';
	for (const line of text.split('\n')) {
		if (line === '') {
			if (Object.keys(fields).length) break; // the first stanza only
			continue;
		}
		if (/^\s/.test(line) && key) fields[key] += `\n${line.trim()}`;
		else {
			const i = line.indexOf(':');
			if (i > 0) {
				key = line.slice(0, i);
				fields[key] = line.slice(i + 1).trim();
			}
		}
	}
	return fields;
}

/** Package names in a Depends field, alternatives flattened, versions dropped. */
export function dependNames(depends: string | undefined): string[][] {
	if (!depends) return [];
	return depends.split(',').map((clause) => clause.split('|').map((alt) => alt.trim().split(/[\s(]/)[0]!).filter(Boolean));
}

export interface FetchedPackage {
	name: string;
	version: string;
}

export interface FetchedKernel {
	release: string;
	suite: string;
	flavour?: string;
	/** Absent for amd64 (records written before arm64 kernels were fetched). */
	arch?: DebianArch;
	packages: FetchedPackage[];
	/** What a chroot of the suite needs to build modules for this kernel: the compiler and kbuild's own dependencies. */
	buildDepends: string[];
	fetchedAt: string;
}

export interface FetchResult {
	kernel: FetchedKernel;
	dir: string;
	alreadyFetched: boolean;
	/** Milliseconds per step. */
	timings: Record<string, number>;
	downloadedBytes: number;
}

/**
 * What builds modules for a kernel of `arch` on amd64: the kernel's compiler
 * (gcc-14) becomes its cross compiler (gcc-14-aarch64-linux-gnu), which the
 * headers' CROSS_COMPILE names; everything else runs on amd64 as it is.
 */
export function crossCompiler(pkg: string, arch: DebianArch): string {
	return arch === 'arm64' && /^gcc-\d+$/.test(pkg) ? `${pkg}-aarch64-linux-gnu` : pkg;
}

/** Serialises apt runs on one private directory (two fetches of a suite at once would race on its lists). */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
	const lock = `${dir}.lock`;
	mkdirSync(path.dirname(lock), { recursive: true });
	const deadline = Date.now() + 30 * 60_000;
	for (;;) {
		try {
			mkdirSync(lock);
			writeFileSync(path.join(lock, 'pid'), String(process.pid));
			break;
		} catch {
			let holder = NaN;
			try {
				holder = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
			} catch {
				/* being created or removed */
			}
			if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(lock, { recursive: true, force: true });
			else if (Date.now() > deadline) throw new Error(`${lock} held by process ${holder} for 30 minutes`);
			else await new Promise((r) => setTimeout(r, 500));
		}
	}
	try {
		return await fn();
	} finally {
		rmSync(lock, { recursive: true, force: true });
	}
}

function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === 'EPERM';
	}
}

/**
 * Makes an unpacked kernel tree usable where it lies: lib -> usr/lib for
 * /usr-merged packages, absolute symlinks made relative to the tree, the
 * headers' `include /usr/src/...` made relative.
 */
export function normaliseTree(root: string, release: string): void {
	if (!existsSync(path.join(root, 'lib')) && existsSync(path.join(root, 'usr', 'lib'))) symlinkSync('usr/lib', path.join(root, 'lib'));
	const modules = path.join(root, 'lib', 'modules', release);
	// sid's 7.2 ships the image, config and System.map in the modules directory (kernel-install's layout): /boot names them as before.
	for (const [inModules, inBoot] of [['vmlinuz', 'vmlinuz'], ['config', 'config'], ['System.map', 'System.map']] as const) {
		const from = path.join(modules, inModules);
		const to = path.join(root, 'boot', `${inBoot}-${release}`);
		if (existsSync(from) && !existsSync(to)) {
			mkdirSync(path.join(root, 'boot'), { recursive: true });
			symlinkSync(path.relative(path.join(root, 'boot'), from), to);
		}
	}
	const headerDirs = readdirSafe(path.join(root, 'usr', 'src')).map((n) => path.join(root, 'usr', 'src', n));
	for (const dir of [modules, ...headerDirs]) {
		for (const name of readdirSafe(dir)) {
			const link = path.join(dir, name);
			if (!lstatSync(link).isSymbolicLink()) continue;
			const target = readlinkSync(link);
			if (!target.startsWith('/')) continue;
			unlinkSync(link);
			symlinkSync(path.relative(realpathSync(dir), path.join(root, target)), link);
		}
		const makefile = path.join(dir, 'Makefile');
		if (dir !== modules && existsSync(makefile)) {
			const text = readFileSync(makefile, 'utf8');
			// Only Debian's one-line wrapper (include /usr/src/linux-headers-X-common/Makefile); make runs in `dir`.
			const m = /^include (\/usr\/src\/[^\s]+)\s*$/.exec(text.trim());
			if (m) writeFileSync(makefile, `include ${path.relative(dir, path.join(root, m[1]!))}\n`);
		}
	}
}

function readdirSafe(dir: string): string[] {
	try {
		return readdirSync(dir);
	} catch {
		return [];
	}
}

/** The fetched kernels' records, by release. */
export function listFetched(dir = fetchedKernelsDir()): { root: string; kernel: FetchedKernel }[] {
	const out: { root: string; kernel: FetchedKernel }[] = [];
	for (const name of readdirSafe(dir)) {
		const marker = path.join(dir, name, MARKER);
		try {
			out.push({ root: path.join(dir, name), kernel: JSON.parse(readFileSync(marker, 'utf8')) as FetchedKernel });
		} catch {
			/* not a finished fetch */
		}
	}
	return out;
}

export async function fetchKernel(specText: string, opts: { force?: boolean; onProgress?: (m: string) => void } = {}): Promise<FetchResult> {
	const spec = parseFetchSpec(specText);
	if (!existsSync(ARCHIVE_KEYRING)) throw Object.assign(new Error(`${ARCHIVE_KEYRING} missing: apt-get install debian-archive-keyring`), { code: 'ERR_FETCH' });
	const arch = archOfSpec(spec);
	const aptDir = aptDirOf(spec.suite, arch);
	// A foreign architecture's own packages (named after its flavour) are asked for as NAME:ARCH; the rest
	// are Architecture: all (headers-common) or amd64's (kbuild, Multi-Arch: foreign, runs on this machine).
	const qualify = (name: string) => (arch !== 'amd64' && /-arm64(-16k)?$/.test(name) ? `${name}:${arch}` : name);
	const timings: Record<string, number> = {};
	const time = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
		const t = Date.now();
		try {
			return await fn();
		} finally {
			timings[name] = Date.now() - t;
		}
	};
	return withLock(aptDir, async () => {
		// The machine's configuration is read (apt-config dump), never written.
		const hostDump = await run('apt-config', ['dump']).catch(() => '');
		const env = { APT_CONFIG: writeAptConfig(spec.suite, aptDir, ARCHIVE_KEYRING, carriedAptOptions(hostDump), arch) };
		opts.onProgress?.(`apt-get update for ${spec.suite} (private lists in ${aptDir})`);
		await time('update', () => run('apt-get', ['-q', 'update'], { env }));
		const show = async (pkg: string) => {
			const text = await run('apt-cache', ['show', '--no-all-versions', qualify(pkg)], { env }).catch((err: Error) => {
				throw Object.assign(new Error(`${spec.suite} has no package ${pkg}: ${err.message.split('\n').slice(-1)[0]}`), { code: 'ERR_FETCH' });
			});
			const f = parseStanza(text);
			if (!f.Version) throw Object.assign(new Error(`${spec.suite} has no package ${pkg}`), { code: 'ERR_FETCH' });
			return f;
		};
		let release = spec.release;
		if (!release) {
			const meta = FLAVOURS[spec.flavour ?? 'amd64']!;
			// apt-cache shows a foreign package's Depends without the :arch (dependNames drops it anyway).
			const deps = dependNames((await show(meta)).Depends).flat();
			const image = deps.find((d) => /^linux-image-\d/.test(d));
			if (!image) throw Object.assign(new Error(`${meta} in ${spec.suite} depends on no linux-image-<release>`), { code: 'ERR_FETCH' });
			release = image.slice('linux-image-'.length);
		}
		const root = path.join(fetchedKernelsDir(), release);
		if (!opts.force && existsSync(path.join(root, MARKER)))
			return { kernel: JSON.parse(readFileSync(path.join(root, MARKER), 'utf8')) as FetchedKernel, dir: root, alreadyFetched: true, timings, downloadedBytes: 0 };

		// The image, its headers and what the headers need from the kernel packages (-common, kbuild), transitively.
		const packages: FetchedPackage[] = [];
		const buildDepends = new Set<string>();
		const queue = [`linux-image-${release}`, `linux-headers-${release}`];
		const seen = new Set<string>();
		while (queue.length) {
			const name = queue.shift()!;
			if (seen.has(name)) continue;
			seen.add(name);
			const f = await show(name);
			packages.push({ name, version: f.Version! });
			const forBuilding = /^linux-(headers|kbuild)-/.test(name);
			for (const alts of dependNames(f.Depends)) {
				// From sid's 7.2 on, linux-image-<release> only depends on the parts: linux-base-, linux-binary-
				// and linux-modules-<release>.  The image's other Depends are for installing it (kmod, initramfs-tools).
				if (!forBuilding) {
					const part = alts[0]!;
					if (name.startsWith('linux-image-') && /^linux-(base|binary|modules)-/.test(part) && part.endsWith(`-${release}`)) queue.push(part);
					continue;
				}
				const kernelPkg = alts.find((a) => /^linux-(headers|kbuild)-/.test(a));
				if (kernelPkg) queue.push(kernelPkg);
				else if (alts.some((a) => /^linux-(image|base|binary|modules)/.test(a))) continue;
				else if (alts[0]?.startsWith('linux-compiler-')) for (const c of dependNames((await show(alts[0])).Depends)) buildDepends.add(crossCompiler(c[0]!, arch));
				else buildDepends.add(crossCompiler(alts[0]!, arch));
			}
		}
		const tmp = `${root}.tmp-${process.pid}`;
		rmSync(tmp, { recursive: true, force: true });
		const debs = path.join(tmp, '.debs');
		mkdirSync(debs, { recursive: true });
		try {
			opts.onProgress?.(`downloading ${packages.map((p) => p.name).join(', ')}`);
			await time('download', () => run('apt-get', ['-q', 'download', ...packages.map((p) => `${qualify(p.name)}=${p.version}`)], { env, cwd: debs }));
			let downloadedBytes = 0;
			const files = readdirSync(debs).filter((f) => f.endsWith('.deb'));
			for (const f of files) downloadedBytes += lstatSync(path.join(debs, f)).size;
			if (files.length !== packages.length) throw new Error(`apt-get download left ${files.length} of ${packages.length} packages in ${debs}`);
			opts.onProgress?.(`unpacking into ${root}`);
			await time('unpack', async () => {
				for (const f of files) await run('dpkg-deb', ['-x', path.join(debs, f), tmp]);
			});
			rmSync(debs, { recursive: true, force: true });
			normaliseTree(tmp, release);
			if (!existsSync(path.join(tmp, 'boot', `vmlinuz-${release}`))) throw new Error(`the image package left no boot/vmlinuz-${release}`);
			await time('depmod', () => run('depmod', ['-b', tmp, release]));
			const kernel: FetchedKernel = { release, suite: spec.suite, ...(spec.flavour ? { flavour: spec.flavour } : {}), ...(arch !== 'amd64' ? { arch } : {}), packages, buildDepends: [...buildDepends].sort(), fetchedAt: new Date().toISOString() };
			writeFileSync(path.join(tmp, MARKER), JSON.stringify(kernel, null, 2) + '\n');
			rmSync(root, { recursive: true, force: true });
			renameSync(tmp, root);
			// Relative links and includes survive the rename; modules.dep names modules relative to its directory.
			return { kernel, dir: root, alreadyFetched: false, timings, downloadedBytes };
		} catch (err) {
			rmSync(tmp, { recursive: true, force: true });
			throw err;
		}
	});
}

/** Removes a fetched kernel's tree. */
export function removeFetched(release: string): boolean {
	const root = path.join(fetchedKernelsDir(), release);
	if (!existsSync(path.join(root, MARKER))) return false;
	rmSync(root, { recursive: true, force: true });
	return true;
}
