// hybridmem build
import { existsSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { parse } from '../options.js';
import { buildAddon, buildModule, type Toolchain } from '../../setup/build.js';
import { chooseKernel, listAllKernels } from '../../vm/kernels.js';

export const summary = 'build the module (kbuild) and make sure the addon is there, skipping what is up to date';

export const help = `Usage: hybridmem build [--kernel VER ...] [--all-kernels] [--force] [--strict] [--no-addon | --no-module]

Builds hybridmem_test.ko with kbuild into the per-user cache
($HYBRIDMEM_CACHE, else $XDG_CACHE_HOME/hybridmem, else ~/.cache/hybridmem),
for the running kernel, or, when it has no headers (not a Debian kernel, or
one that cannot load modules), for the kernel the VM runner boots by default;
or for each --kernel given.  The N-API addon: the package's prebuilt binary
when one fits this platform, else compiled from source into the same cache.

Options:
  --kernel VER    kernel release to build the module for (repeatable)
  --all-kernels   every usable kernel, installed or fetched
  --force         rebuild the module even when up to date
  --strict        build with W=1 and fail on any compiler warning
  --no-addon      only the module
  --no-module     only the addon
  --toolchain T   auto (default): the compiler the kernel's headers name if
                  this machine has it, else for a fetched kernel the host's
                  gcc, then a chroot of the kernel's suite (mmdebstrap);
                  or one of kernel-compiler, host-gcc, chroot
                  (also HYBRIDMEM_TOOLCHAIN)`;

/** The kernel a plain `hybridmem build` is for, and why, when it is not the running one. */
export function defaultBuildKernel(release = os.release()): { kver: string; note?: string } {
	if (existsSync(`/lib/modules/${release}/build/Makefile`)) return { kver: release };
	let vmDefault: string;
	try {
		vmDefault = chooseKernel().version;
	} catch (err) {
		throw new CliError(
			`build: the running kernel ${release} has no headers, and the VM runner has no kernel to build for (${(err as Error).message})`,
			1,
		);
	}
	return { kver: vmDefault, note: `no headers for the running kernel ${release}: building for ${vmDefault}, the kernel the VM runner boots by default` };
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('build', () =>
		parseArgs({
			args: argv,
			strict: true,
			options: {
				kernel: { type: 'string', multiple: true },
				'all-kernels': { type: 'boolean' },
				force: { type: 'boolean' },
				strict: { type: 'boolean' },
				'no-addon': { type: 'boolean' },
				'no-module': { type: 'boolean' },
				toolchain: { type: 'string' },
			},
		}),
	);
	if (values['no-addon'] && values['no-module']) throw new CliError('build: --no-addon and --no-module leave nothing to build', 2);
	if (values.toolchain && !['auto', 'kernel-compiler', 'host-gcc', 'chroot'].includes(values.toolchain))
		throw new CliError(`build: --toolchain takes auto, kernel-compiler, host-gcc or chroot, not '${values.toolchain}'`, 2);
	let kernels: string[];
	if (values['no-module']) kernels = [];
	else if (values['all-kernels']) kernels = listAllKernels().filter((k) => k.usable).map((k) => k.version);
	else if (values.kernel) kernels = values.kernel;
	else {
		const d = defaultBuildKernel();
		if (d.note) console.log(d.note);
		kernels = [d.kver];
	}
	if (kernels.length === 0 && !values['no-module']) throw new CliError('build: no kernel with headers found; run `hybridmem bootstrap` to install Debian\'s', 1);
	let failed = false;
	for (const kver of kernels) {
		const r = await buildModule(kver, {
			force: !!values.force,
			extraWarnings: !!values.strict,
			...(values.toolchain ? { toolchain: values.toolchain as 'auto' | Toolchain } : {}),
			onProgress: (m) => console.error(`build: ${m}`),
		});
		console.log(`module for ${kver}: ${r.built ? 'built' : 'up to date'} (${r.file})${r.toolchain ? ` with ${r.toolchain}` : ''}`);
		for (const w of r.warnings) console.log(`  ${w}`);
		if (values.strict && r.warnings.length) failed = true;
	}
	if (!values['no-addon']) {
		const a = await buildAddon();
		console.log(`addon: ${a.state === 'prebuilt' ? `prebuilt for ${process.platform}-${process.arch}` : a.state} (${a.file})`);
	}
	if (failed) throw new CliError('build: compiler warnings with --strict', 1);
	return 0;
}
