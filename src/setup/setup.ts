// hybridmem setup: the notes' insmod, grep kex /proc/devices, mknod and chmod,
// done idempotently and with messages for each way it goes wrong.  Every
// command runs through execa with an argument array.
import { execa } from 'execa';
import { chmodSync, existsSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import { SetupError } from './errors.js';
import { chrdevMajor, isLoaded, kernelLoadsModules, loadedParams } from './kernel-state.js';
import { CHRDEV_NAME, DEFAULT_MODE, DEFAULT_NODE, MODULE_NAME, moduleFile } from './paths.js';
import { teardown } from './teardown.js';

export interface SetupOptions {
	/** The .ko to load; default: the one `hybridmem build` made for the running kernel (paths.ts moduleFile). */
	module?: string;
	params?: Record<string, string>;
	node?: string;
	/** Octal permission string for the node; the notes' world-writable 0666 only on request. */
	mode?: string;
	/** Unload first when the module is already loaded (with any parameters). */
	reload?: boolean;
}

export interface SetupResult {
	/** What happened to the module. */
	module: 'loaded' | 'already-loaded' | 'reloaded';
	/** What happened to the node. */
	node: 'created' | 'replaced' | 'kept';
	major: number;
	path: string;
	mode: string;
}

export function requireRoot(what: string): void {
	if (process.getuid?.() !== 0)
		throw new SetupError('ERR_NOT_ROOT', `${what} needs root: run it with sudo, or inside a VM with 'hybridmem vm -- hybridmem ${what}'`);
}

/** sysfs shows bool parameters as Y/N: compare what the user asked for in that form. */
export function normalizeParam(value: string): string {
	if (/^(1|y|yes|true|on)$/i.test(value)) return 'Y';
	if (/^(0|n|no|false|off)$/i.test(value)) return 'N';
	return value;
}

/** Parameters whose loaded value differs from the requested one. */
export function paramDifferences(requested: Record<string, string>, loaded: Record<string, string>): string[] {
	const diffs: string[] = [];
	for (const [k, v] of Object.entries(requested)) {
		const have = loaded[k];
		if (have === undefined || normalizeParam(have) !== normalizeParam(v)) diffs.push(`${k}=${have ?? '?'} (wanted ${v})`);
	}
	return diffs;
}

export function requireModuleSupport(): void {
	if (!kernelLoadsModules())
		throw new SetupError('ERR_NO_MODULE_SUPPORT', `this kernel (${os.release()}) cannot load modules (built without CONFIG_MODULES): use 'hybridmem run --vm' or 'hybridmem vm -- hybridmem setup'`);
}

function validateMode(mode: string): number {
	if (!/^0?[0-7]{3}$/.test(mode)) throw new SetupError('ERR_BAD_MODE', `--mode expects an octal permission like 0660, not '${mode}'`);
	return parseInt(mode, 8);
}

async function vermagicOf(ko: string): Promise<string | undefined> {
	const r = await execa('modinfo', ['-F', 'vermagic', ko], { reject: false });
	return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** Turns insmod's complaint into a message that says what to do. */
/** The lockdown LSM's state ("[none] integrity confidentiality"), "" without it. */
function lockdownState(): string {
	try {
		return readFileSync('/sys/kernel/security/lockdown', 'utf8');
	} catch {
		return '';
	}
}

export async function explainInsmodFailure(ko: string, stderr: string, readLockdown: () => string = lockdownState): Promise<SetupError> {
	const release = os.release();
	if (/Invalid module format|Exec format error/i.test(stderr)) {
		const vermagic = await vermagicOf(ko);
		const builtFor = vermagic?.split(' ')[0];
		if (builtFor && builtFor !== release)
			return new SetupError(
				'ERR_VERMAGIC',
				`${ko} was built for kernel ${builtFor}, but this kernel is ${release} (vermagic mismatch): rebuild it with 'hybridmem build' (or make -C kmod KVER=${release})`,
			);
		return new SetupError('ERR_VERMAGIC', `the kernel rejected ${ko} as an invalid module format (vermagic: ${vermagic ?? 'unreadable'}); rebuild it with 'hybridmem build'`);
	}
	if (/Key was rejected|Required key not available/i.test(stderr))
		return new SetupError(
			'ERR_SIGNATURE',
			`the kernel refused ${ko} because it is not signed with a trusted key (module signature enforcement or Secure Boot): sign it, disable enforcement, or use 'hybridmem run --vm'`,
		);
	if (/Operation not permitted/i.test(stderr)) {
		const lockdown = readLockdown();
		if (/\[(integrity|confidentiality)\]/.test(lockdown))
			return new SetupError('ERR_LOCKDOWN', `the kernel is in lockdown mode (${lockdown.trim()}) and refuses unsigned modules: use 'hybridmem run --vm'`);
		return new SetupError('ERR_NOT_ROOT', `insmod was not permitted: run as root (CAP_SYS_MODULE), or use 'hybridmem run --vm'`);
	}
	if (/Function not implemented/i.test(stderr))
		return new SetupError('ERR_NO_MODULE_SUPPORT', `this kernel cannot load modules (built without CONFIG_MODULES): use 'hybridmem run --vm'`);
	if (/Invalid parameters|Invalid argument/i.test(stderr)) {
		// A module of another release whose symbol versions disagree (6.12.117 on 6.12.118): EINVAL, not ENOEXEC.
		const builtFor = (await vermagicOf(ko))?.split(' ')[0];
		if (builtFor && builtFor !== release)
			return new SetupError(
				'ERR_VERMAGIC',
				`${ko} was built for kernel ${builtFor}, but this kernel is ${release} (vermagic mismatch): rebuild it with 'hybridmem build' (or make -C kmod KVER=${release})`,
			);
	}
	if (/Invalid parameters|Invalid argument/i.test(stderr))
		return new SetupError('ERR_BAD_PARAM', `the module rejected its parameters: ${stderr.trim()} (see 'modinfo ${ko}' for valid values)`);
	if (/Unknown symbol/i.test(stderr))
		return new SetupError('ERR_VERMAGIC', `${ko} needs symbols this kernel does not export: rebuild it for ${release} with 'hybridmem build'`);
	return new SetupError('ERR_INSMOD', `insmod ${ko} failed: ${stderr.trim()}`);
}

async function loadModule(ko: string, params: Record<string, string>): Promise<void> {
	const args = [ko, ...Object.entries(params).map(([k, v]) => `${k}=${v}`)];
	const r = await execa('insmod', args, { reject: false });
	if (r.exitCode !== 0) throw await explainInsmodFailure(ko, r.stderr);
}

/** Creates the node, replacing anything at the path that is not char MAJOR:0. */
async function ensureNode(node: string, major: number, mode: number): Promise<SetupResult['node']> {
	let action: SetupResult['node'] = 'created';
	if (existsSync(node) || isSymlink(node)) {
		const st = lstatSync(node);
		if (st.isCharacterDevice() && Math.floor(st.rdev / 256) === major && st.rdev % 256 === 0) action = 'kept';
		else {
			unlinkSync(node);
			action = 'replaced';
		}
	}
	if (action !== 'kept') {
		const r = await execa('mknod', [node, 'c', String(major), '0'], { reject: false });
		if (r.exitCode !== 0) throw new SetupError('ERR_INSMOD', `mknod ${node} failed: ${r.stderr.trim()}`);
	}
	const r = await execa('chmod', [mode.toString(8).padStart(4, '0'), node], { reject: false });
	if (r.exitCode !== 0) chmodSync(node, mode);
	return action;
}

function isSymlink(p: string): boolean {
	try {
		return lstatSync(p).isSymbolicLink();
	} catch {
		return false;
	}
}

export async function setup(opts: SetupOptions = {}): Promise<SetupResult> {
	requireRoot('setup');
	const node = opts.node ?? DEFAULT_NODE;
	const modeString = opts.mode ?? DEFAULT_MODE;
	const mode = validateMode(modeString);
	const params = opts.params ?? {};
	requireModuleSupport();
	const ko = opts.module ?? moduleFile(os.release());

	let moduleAction: SetupResult['module'] = 'loaded';
	if (isLoaded()) {
		const diffs = paramDifferences(params, loadedParams());
		if (opts.reload) {
			await teardown({ node });
			moduleAction = 'reloaded';
		} else if (diffs.length)
			throw new SetupError(
				'ERR_PARAMS_DIFFER',
				`${MODULE_NAME} is already loaded with other parameters: ${diffs.join(', ')}; use --reload to load it again (needs no live mappings)`,
			);
		else moduleAction = 'already-loaded';
	}
	if (moduleAction !== 'already-loaded') {
		if (!existsSync(ko))
			throw new SetupError('ERR_MODULE_MISSING', `module file ${ko} does not exist: build it with 'hybridmem build' (kernel ${os.release()})`);
		await loadModule(ko, params);
	}
	const major = chrdevMajor(CHRDEV_NAME);
	if (major === undefined) throw new SetupError('ERR_NO_MAJOR', `${MODULE_NAME} is loaded but '${CHRDEV_NAME}' is not in /proc/devices`);
	const nodeAction = await ensureNode(node, major, mode);
	return { module: moduleAction, node: nodeAction, major, path: node, mode: mode.toString(8).padStart(4, '0') };
}
