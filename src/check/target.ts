// Resolves what `hybridmem check` checks, in the kernel it runs in: loads a
// user's module with its parameters, finds or makes its device node (a
// register_chrdev driver has none: its major comes from /proc/devices, as
// the notes did it by hand), or runs a recipe.
import { execa } from 'execa';
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { openDevice } from '../device/index.js';
import { loadRecipe, recipeContext } from './recipes/index.js';
import type { CheckTarget, TargetDescription } from './types.js';

export interface TargetSpec {
	module?: string;
	params?: Record<string, string>;
	device?: string;
	chrdev?: string;
	minor?: number;
	recipe?: string;
	/** Bytes of the driver's buffer (default 16 pages): the bounds checks map beyond it. */
	length?: number;
	/** The largest mapping the driver should accept (default: length). */
	maxLength?: number;
	offset?: bigint;
}

function fail(code: string, message: string): never {
	throw Object.assign(new Error(message), { code });
}

/** The major of character device NAME in /proc/devices. */
export function chrdevMajor(name: string, devices = readFileSync('/proc/devices', 'utf8')): number | undefined {
	const chars = devices.split(/\nBlock devices:/)[0] ?? '';
	for (const line of chars.split('\n')) {
		const m = /^\s*(\d+)\s+(\S+)$/.exec(line);
		if (m && m[2] === name) return Number(m[1]);
	}
	return undefined;
}

/** The module name insmod gives a .ko (modinfo's name field, else the file name with - as _). */
async function moduleName(file: string): Promise<string> {
	const r = await execa('modinfo', ['-F', 'name', file], { reject: false });
	return r.stdout.trim() || path.basename(file, '.ko').replace(/-/g, '_');
}

async function waitFor(p: string, ms: number): Promise<boolean> {
	for (let waited = 0; waited <= ms; waited += 20) {
		if (existsSync(p)) return true;
		await new Promise((r) => setTimeout(r, 20));
	}
	return false;
}

export interface ResolvedTarget extends CheckTarget {
	/** Undoes what resolving did that the lifecycle check did not (rmmod, the node we made). */
	cleanup(): Promise<void>;
}

export async function resolveTarget(spec: TargetSpec, pageSize: number): Promise<ResolvedTarget> {
	const length = spec.length ?? 16 * pageSize;
	if (length <= 0 || length % pageSize) fail('ERR_INVALID_ARG_VALUE', `--length must be a positive multiple of the page size (${pageSize}); received ${length}`);
	const offset = spec.offset ?? 0n;
	const made: string[] = [];
	let moduleLoaded: string | undefined;
	const description: TargetDescription = { label: '', offset: `0x${offset.toString(16)}`, length, ...(spec.maxLength ? { maxLength: spec.maxLength } : {}) };
	if (spec.maxLength !== undefined && (spec.maxLength < length || spec.maxLength % pageSize)) fail('ERR_INVALID_ARG_VALUE', `--max-length must be a multiple of the page size and at least --length (${length}); received ${spec.maxLength}`);
	const limits = spec.maxLength ? { maxLength: spec.maxLength } : {};
	if (spec.module) {
		if (!existsSync(spec.module)) fail('ERR_MODULE_NOT_FOUND', `no module at ${spec.module}`);
		const name = await moduleName(spec.module);
		const params = Object.entries(spec.params ?? {}).map(([k, v]) => `${k}=${v}`);
		const r = await execa('insmod', [spec.module, ...params], { reject: false, all: true });
		if (r.exitCode !== 0) fail('ERR_INSMOD', `insmod ${spec.module} ${params.join(' ')} failed: ${(r.all ?? '').trim()}`);
		moduleLoaded = name;
		description.module = spec.module;
		if (spec.params) description.params = spec.params;
	}
	const cleanup = async () => {
		for (const node of made) if (existsSync(node)) unlinkSync(node);
		if (moduleLoaded && existsSync(`/sys/module/${moduleLoaded}`)) await execa('rmmod', [moduleLoaded], { reject: false });
	};
	try {
		if (spec.recipe) {
			const recipe = await loadRecipe(spec.recipe);
			const ctx = recipeContext(pageSize, length / pageSize);
			await recipe.prepare?.(ctx);
			const probe = await recipe.open(ctx);
			const resolved = { length: probe.length, offset: probe.offset };
			probe.close();
			description.label = `recipe ${recipe.name}: ${recipe.description}`;
			description.recipe = recipe.name;
			description.length = resolved.length;
			description.offset = `0x${resolved.offset.toString(16)}`;
			return { description, expect: recipe.expect ?? {}, pageSize, ...limits, open: () => recipe.open(ctx), ...(moduleLoaded ? { moduleName: moduleLoaded } : {}), cleanup };
		}
		let node = spec.device;
		if (spec.chrdev) {
			const major = chrdevMajor(spec.chrdev);
			if (major === undefined) fail('ERR_CHRDEV_NOT_FOUND', `no character device "${spec.chrdev}" in /proc/devices${moduleLoaded ? ` after loading ${moduleLoaded}` : ''}: is it the name the driver passes to register_chrdev()/alloc_chrdev_region()?`);
			node = `/dev/hm-check-${spec.chrdev.replace(/[^\w.-]/g, '_')}`;
			if (existsSync(node)) unlinkSync(node);
			const r = await execa('mknod', ['-m', '0600', node, 'c', String(major), String(spec.minor ?? 0)], { reject: false, all: true });
			if (r.exitCode !== 0) fail('ERR_MKNOD', `mknod ${node} c ${major} ${spec.minor ?? 0} failed: ${(r.all ?? '').trim()}`);
			made.push(node);
			description.chrdev = spec.chrdev;
		}
		if (!node) fail('ERR_NO_TARGET', 'say what to check: --device /dev/NODE, --chrdev NAME (with --module), or --recipe NAME|FILE.mjs');
		if (!(await waitFor(node, 2000))) fail('ERR_DEVICE_NOT_FOUND', `${node} did not appear${moduleLoaded ? ` after loading ${moduleLoaded}` : ''}: a misc or class device gets its node from devtmpfs; a register_chrdev() driver needs --chrdev NAME`);
		if (!statSync(node).isCharacterDevice()) fail('ERR_NOT_A_DEVICE', `${node} is not a character device`);
		description.device = node;
		description.label = `${node}${moduleLoaded ? ` (module ${moduleLoaded})` : ''}`;
		const path_ = node;
		return {
			description,
			expect: {},
			pageSize,
			...limits,
			open: () => {
				const device = openDevice(path_);
				return { device, offset, length, close: () => device.close() };
			},
			...(moduleLoaded ? { moduleName: moduleLoaded } : {}),
			cleanup,
		};
	} catch (err) {
		await cleanup();
		throw err;
	}
}
