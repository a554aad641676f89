// hybridmem kernels [--json]
import { parseArgs } from 'node:util';
import { parse } from '../options.js';
import { listKernels } from '../../vm/kernels.js';

export const summary = 'list the kernels the VM runner can boot, and why others cannot be used';

export const help = `Usage: hybridmem kernels [--json]

Lists the kernels under /boot and /lib/modules.  A kernel is usable when its
image, its modules and its headers (to build the module) are all installed;
the first usable one is the VM runner's default.`;

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('kernels', () => parseArgs({ args: argv, strict: true, options: { json: { type: 'boolean' } } }));
	const kernels = listKernels();
	if (values.json) {
		console.log(JSON.stringify(kernels, null, 2));
		return 0;
	}
	if (kernels.length === 0) {
		console.log('no kernels found under /boot; run `hybridmem bootstrap` to install Debian\'s');
		return 1;
	}
	let marked = false;
	for (const k of kernels) {
		const mark = k.usable && !marked ? '*' : ' ';
		if (k.usable) marked = true;
		console.log(`${mark} ${k.version.padEnd(28)} ${k.usable ? 'usable' : `not usable: ${k.reason}`}`);
	}
	console.log('\n* = default for hybridmem vm');
	return kernels.some((k) => k.usable) ? 0 : 1;
}
