// Another driver than hybridmem_test as a stress target, resolved by
// hybridmem check's own code (src/check/target.ts: insmod, mknod, recipes).
// A node (--device, --chrdev) is opened by the executor itself, a fresh
// file per open.  A recipe's fd needs ioctls or syscalls made here, so
// before each program this process makes one per fd slot and the executor
// inherits them (fds 3, 4, 5); its "open" dups one.  This process drops its
// copies as soon as the executor runs, and the executor's processes close
// theirs before they exit with their mappings: the last close of the
// recipe's file happens in the program, while mapped.
import { resolveTarget, type ResolvedTarget, type TargetSpec } from '../check/target.js';
import type { OpenedTarget, TargetDescription } from '../check/types.js';
import type { OpContext } from './program.js';

/** Fd slots of an executor process (FD_SLOTS in hm-stress.c): one source each. */
const SOURCES = 3;

export interface StressDriver {
	description: TargetDescription;
	/** What the reproducer says open does. */
	context: OpContext;
	/** The module to rmmod at the end (a --module we loaded). */
	moduleName?: string;
	/** Per program: the fds to pass and the executor's environment; release() after it ends. */
	sources(): Promise<{ fds: number[]; env: Record<string, string>; dropCopies(): void; release(): void }>;
	/** rmmod what resolving loaded, remove the node it made. */
	cleanup(): Promise<void>;
}

function closeQuietly(o: OpenedTarget): void {
	try {
		o.close();
	} catch {
		/* already closed with the device */
	}
}

export async function resolveStressTarget(spec: TargetSpec, pageSize: number): Promise<StressDriver> {
	const t: ResolvedTarget = await resolveTarget(spec, pageSize);
	const d = t.description;
	const readOnly = !!t.expect.readOnly;
	const prot = readOnly ? 'r' : 'rw';
	const maxPages = Math.floor(d.length / pageSize);
	const base = { description: d, ...(t.moduleName ? { moduleName: t.moduleName } : {}), cleanup: () => t.cleanup() };
	if (d.device && !d.recipe) {
		const node = d.device;
		const env = { HM_STRESS_NODE: node, HM_STRESS_GENERIC: prot, HM_STRESS_MAP: `${BigInt(d.offset)}:${d.length}` };
		return { ...base, context: { open: `open(${node})`, maxPages, offset: d.offset, readOnly }, sources: async () => ({ fds: [], env, dropCopies: () => undefined, release: () => undefined }) };
	}
	return {
		...base,
		context: { open: `dup(fd %d made by recipe ${d.recipe ?? '?'})`, maxPages, offset: d.offset, readOnly },
		async sources() {
			const opened: OpenedTarget[] = [];
			try {
				for (let i = 0; i < SOURCES; i++) opened.push(await t.open());
			} catch (err) {
				opened.forEach(closeQuietly);
				throw err;
			}
			const ro = readOnly || opened.some((o) => o.device.readOnly);
			return {
				fds: opened.map((o) => o.device.fd),
				env: {
					HM_STRESS_GENERIC: ro ? 'r' : 'rw',
					HM_STRESS_MAP: opened.map((o) => `${o.offset}:${o.length}`).join(','),
					HM_STRESS_FDS: opened.map((_, i) => String(3 + i)).join(','),
				},
				// Only the fd: what else open() made (a dumb buffer's handle lives in the file) stays the file's.
				dropCopies: () => opened.forEach((o) => !o.device.closed && o.device.close()),
				release: () => opened.forEach(closeQuietly),
			};
		},
	};
}
