// hybridmem bootstrap [--dry-run] [--json]
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { toJson } from '../json.js';
import { parse } from '../options.js';
import { PACKAGES, bootstrap } from '../../setup/bootstrap.js';

export const summary = 'install the Debian packages hybridmem needs (QEMU, kernels and headers, busybox, compilers); idempotent';

export const help = `Usage: hybridmem bootstrap [--dry-run] [--json]

Installs with apt the Debian packages that are missing, and does nothing when
all are there (one dpkg-query).  Needs root (or sudo) when it installs.

Packages:
${Object.entries(PACKAGES).map(([p, why]) => `  ${p.padEnd(25)} ${why}`).join('\n')}

Options:
  --dry-run   only say what is missing
  --json      print {missing, installed} as data`;

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('bootstrap', () =>
		parseArgs({ args: argv, strict: true, options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } } }),
	);
	const log = (m: string) => {
		if (!values.json) console.error(`bootstrap: ${m}`);
	};
	let r;
	try {
		r = await bootstrap({ dryRun: !!values['dry-run'], log });
	} catch (err) {
		throw new CliError(`bootstrap: ${(err as Error).message}`, 1);
	}
	if (values.json) console.log(toJson(r));
	else if (r.missing.length === 0) console.log(`bootstrap: all ${Object.keys(PACKAGES).length} packages are installed`);
	else if (values['dry-run']) console.log(`bootstrap: missing ${r.missing.join(' ')}; \`hybridmem bootstrap\` installs them`);
	else console.log(`bootstrap: installed ${r.installed.join(' ')}`);
	return values['dry-run'] && r.missing.length ? 1 : 0;
}
