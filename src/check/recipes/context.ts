// What a recipe gets to work with, and what it is.  A recipe is a way to get
// an mmap-able fd that needs more than open(); a user's own is an ES module
// exporting the same shape (default export or `recipe`): README "hybridmem
// check".
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KexDevice, loadBinding, openDevice, openIoUring, openPacketRing, openPerfEvent, openSealedMemFile } from '../../device/index.js';
import type { OpenedTarget, TargetExpectations } from '../types.js';
import { ioc, IoctlBuffer } from './ioctl.js';

export interface RecipeContext {
	pageSize: number;
	/** Pages to map when the recipe lets the checker choose a size. */
	pages: number;
	openDevice: typeof openDevice;
	/** Wraps an fd the recipe got some other way (an ioctl's answer) so it maps like a device; closing it closes the fd. */
	adoptFd(fd: number, label: string): KexDevice;
	openPacketRing: typeof openPacketRing;
	openIoUring: typeof openIoUring;
	openPerfEvent: typeof openPerfEvent;
	openSealedMemFile: typeof openSealedMemFile;
	IoctlBuffer: typeof IoctlBuffer;
	ioc: typeof ioc;
	modprobe(name: string, params?: string[]): Promise<void>;
	/** Throws the error that makes every check a skip: the driver is not in this kernel. */
	unavailable(why: string): never;
	/** The first /sys/class/CLASS entry whose `name` attribute is NAME, polled while a module probes. */
	classDevice(cls: string, match: (name: string, entry: string) => boolean, attribute?: string): Promise<string | undefined>;
}

export interface Recipe {
	name: string;
	description: string;
	expect?: TargetExpectations;
	/** Loads modules and finds the device; runs once. */
	prepare?(ctx: RecipeContext): Promise<void> | void;
	/** A fresh fd (and buffer) to map; called once per check step. */
	open(ctx: RecipeContext): Promise<OpenedTarget> | OpenedTarget;
}

export function unavailable(why: string): never {
	throw Object.assign(new Error(why), { code: 'ERR_TARGET_UNAVAILABLE' });
}

async function modprobe(name: string, params: string[] = []): Promise<void> {
	const r = await execa('modprobe', [name, ...params], { reject: false, all: true });
	if (r.exitCode === 0) return;
	const out = (r.all ?? '').trim();
	if (/not found in directory|FATAL: Module .* not found/i.test(out)) unavailable(`module ${name} is not in this kernel (${out})`);
	throw Object.assign(new Error(`modprobe ${name} failed: ${out || `exit ${r.exitCode}`}`), { code: 'ERR_RECIPE_MODULE' });
}

async function classDevice(cls: string, match: (name: string, entry: string) => boolean, attribute = 'name'): Promise<string | undefined> {
	const dir = `/sys/class/${cls}`;
	for (let i = 0; i < 100; i++) {
		for (const entry of existsSync(dir) ? readdirSync(dir) : []) {
			const file = path.join(dir, entry, attribute);
			const value = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
			if (match(value, entry)) return entry;
		}
		await new Promise((r) => setTimeout(r, 20));
	}
	return undefined;
}

export function recipeContext(pageSize: number, pages: number): RecipeContext {
	return {
		pageSize,
		pages,
		openDevice,
		adoptFd: (fd, label) => KexDevice.fromFd(loadBinding(), fd, label, false),
		openPacketRing,
		openIoUring,
		openPerfEvent,
		openSealedMemFile,
		IoctlBuffer,
		ioc,
		modprobe,
		unavailable,
		classDevice,
	};
}

/** Closes what a recipe opened when the rest of open() throws. */
export function closingOnError<T>(close: () => void, body: () => T): T {
	try {
		return body();
	} catch (err) {
		close();
		throw err;
	}
}

/** Opens `node` and hands it to `body` with an ioctl buffer; the node is closed if body throws, the buffer always. */
export function openNode(ctx: RecipeContext, node: string, body: (device: KexDevice, buf: IoctlBuffer) => OpenedTarget): OpenedTarget {
	const device = ctx.openDevice(node);
	return closingOnError(
		() => device.close(),
		() => {
			using buf = new ctx.IoctlBuffer(ctx.pageSize);
			return body(device, buf);
		},
	);
}

/**
 * The shape of every dma-buf recipe: open a control node, have one ioctl on it
 * return a new fd, map that fd at 0.  The control node is closed once the fd
 * is adopted (the fd holds what it exports); an ioctl error closes it too.
 */
export function fdFromIoctl(ctx: RecipeContext, node: string, label: string, body: (control: KexDevice, buf: IoctlBuffer) => { fd: number; length: number }): OpenedTarget {
	const control = ctx.openDevice(node);
	try {
		using buf = new ctx.IoctlBuffer(ctx.pageSize);
		const { fd, length } = body(control, buf);
		const device = ctx.adoptFd(fd, label);
		return { device, offset: 0n, length, close: () => !device.closed && device.close() };
	} finally {
		control.close();
	}
}
