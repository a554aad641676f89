// hybridmem build
import os from 'node:os';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { parse } from '../options.js';
import { buildAddon, buildModule } from '../../setup/build.js';
import { listKernels } from '../../vm/kernels.js';

export const summary = 'build the module (kbuild) and the addon (node-gyp), skipping what is up to date';

export const help = `Usage: hybridmem build [--kernel VER ...] [--all-kernels] [--force] [--strict] [--no-addon]

Builds hybridmem_test.ko into build/kmod/<kernel>/ with kbuild, for the
running kernel or each --kernel given, and the N-API addon with node-gyp.

Options:
  --kernel VER    kernel release to build the module for (repeatable)
  --all-kernels   every kernel with headers under /lib/modules
  --force         rebuild even when up to date
  --strict        build with W=1 and fail on any compiler warning
  --no-addon      only the module`;

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
			},
		}),
	);
	const kernels = values['all-kernels']
		? listKernels().filter((k) => k.usable).map((k) => k.version)
		: (values.kernel ?? [os.release()]);
	if (kernels.length === 0) throw new CliError('build: no kernel with headers found; run scripts/bootstrap.sh', 1);
	let failed = false;
	for (const kver of kernels) {
		const r = await buildModule(kver, { force: !!values.force, extraWarnings: !!values.strict });
		console.log(`module for ${kver}: ${r.built ? 'built' : 'up to date'} (${r.file})`);
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
