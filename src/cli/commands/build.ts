// hybridmem build
import os from 'node:os';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { parse } from '../options.js';
import { buildAddon, buildModule, type Toolchain } from '../../setup/build.js';
import { listAllKernels } from '../../vm/kernels.js';

export const summary = 'build the module (kbuild) and the addon (node-gyp), skipping what is up to date';

export const help = `Usage: hybridmem build [--kernel VER ...] [--all-kernels] [--force] [--strict] [--no-addon]

Builds hybridmem_test.ko into build/kmod/<kernel>/ with kbuild, for the
running kernel or each --kernel given, and the N-API addon with node-gyp.

Options:
  --kernel VER    kernel release to build the module for (repeatable)
  --all-kernels   every usable kernel, installed or fetched
  --force         rebuild even when up to date
  --strict        build with W=1 and fail on any compiler warning
  --no-addon      only the module
  --toolchain T   auto (default): the compiler the kernel's headers name if
                  this machine has it, else for a fetched kernel the host's
                  gcc, then a chroot of the kernel's suite (mmdebstrap);
                  or one of kernel-compiler, host-gcc, chroot
                  (also HYBRIDMEM_TOOLCHAIN)`;

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
				toolchain: { type: 'string' },
			},
		}),
	);
	if (values.toolchain && !['auto', 'kernel-compiler', 'host-gcc', 'chroot'].includes(values.toolchain))
		throw new CliError(`build: --toolchain takes auto, kernel-compiler, host-gcc or chroot, not '${values.toolchain}'`, 2);
	const kernels = values['all-kernels']
		? listAllKernels().filter((k) => k.usable).map((k) => k.version)
		: (values.kernel ?? [os.release()]);
	if (kernels.length === 0) throw new CliError('build: no kernel with headers found; run scripts/bootstrap.sh', 1);
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
		await buildAddon();
		console.log('addon: up to date');
	}
	if (failed) throw new CliError('build: compiler warnings with --strict', 1);
	return 0;
}
