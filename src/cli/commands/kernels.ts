// hybridmem kernels [--json] [--fetch SPEC ...] [--force] [--remove VER ...]
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { parse } from '../options.js';
import { describeFeatures, listAllKernels } from '../../vm/kernels.js';
import { fetchKernel, FLAVOURS, removeFetched, SUITES } from '../../vm/debian.js';

export const summary = "list the kernels the VM runner can boot, and why others cannot be used; fetch Debian's";

export const help = `Usage: hybridmem kernels [--json]
       hybridmem kernels --fetch SPEC [--fetch SPEC ...] [--force]
       hybridmem kernels --remove VER

Lists the kernels under /boot and /lib/modules, and those fetched from
Debian's archive, with what each has that the VM runner needs (9p, virtio as
a module m or built in y), PREEMPT_RT and the page size.  A kernel is usable
when its image, its modules and its headers (to build the module) are all
there and it has what the runner needs; the first usable installed one is
the VM runner's default, a fetched one is booted with --kernel VER.

--fetch downloads a kernel's image and header packages with apt under a
private configuration in the cache (its own sources list, lists and archives,
Debian's archive keyring; the machine's apt sources are never read or
changed) and unpacks them there with dpkg-deb, without installing them.
SPEC is SUITE or SUITE:FLAVOUR, or a kernel release (5.10.0-32-amd64) or
SUITE:RELEASE:
  suites:   ${Object.keys(SUITES).join(', ')}
  flavours: ${Object.keys(FLAVOURS).join(', ')} (default amd64)
--force fetches again a kernel already fetched; --remove deletes one.`;

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('kernels', () =>
		parseArgs({
			args: argv,
			strict: true,
			options: {
				json: { type: 'boolean' },
				fetch: { type: 'string', multiple: true },
				force: { type: 'boolean' },
				remove: { type: 'string', multiple: true },
			},
		}),
	);
	if (values.remove?.length) {
		for (const v of values.remove) {
			if (!removeFetched(v)) throw new CliError(`kernels: ${v} is not a fetched kernel`, 1);
			console.log(`removed ${v}`);
		}
		return 0;
	}
	if (values.fetch?.length) {
		const results = [];
		for (const spec of values.fetch) {
			let r;
			try {
				r = await fetchKernel(spec, { force: !!values.force, onProgress: (m) => console.error(`kernels: ${m}`) });
			} catch (err) {
				throw new CliError(`kernels --fetch ${spec}: ${(err as Error).message}`, 1);
			}
			results.push(r);
			if (values.json) continue;
			const t = (k: string) => (r.timings[k] !== undefined ? `${(r.timings[k] / 1000).toFixed(1)} s` : '-');
			if (existsSync(`/boot/vmlinuz-${r.kernel.release}`)) console.log(`${r.kernel.release}: also installed in /boot; --kernel ${r.kernel.release} boots the installed one`);
			if (r.alreadyFetched) console.log(`${r.kernel.release}: already fetched (${r.dir}); --force fetches it again`);
			else
				console.log(
					`${r.kernel.release}: fetched from ${r.kernel.suite} into ${r.dir}: ${(r.downloadedBytes / 1e6).toFixed(0)} MB; ` +
						`apt-get update ${t('update')}, download ${t('download')}, unpack ${t('unpack')}, depmod ${t('depmod')}`,
				);
		}
		if (values.json) console.log(JSON.stringify(results, null, 2));
		return 0;
	}
	const kernels = listAllKernels();
	if (values.json) {
		console.log(JSON.stringify(kernels, null, 2));
		return 0;
	}
	if (kernels.length === 0) {
		console.log("no kernels found under /boot, none fetched; run `hybridmem bootstrap` to install Debian's, or hybridmem kernels --fetch SUITE");
		return 1;
	}
	let marked = false;
	for (const k of kernels) {
		const mark = k.usable && !marked && k.origin === 'boot' ? '*' : ' ';
		if (mark === '*') marked = true;
		const from = k.origin === 'boot' ? 'installed' : `fetched (${k.suite}${k.flavour ? `:${k.flavour}` : ''})`;
		console.log(`${mark} ${k.version.padEnd(28)} ${from.padEnd(20)} ${k.usable ? 'usable' : `not usable: ${k.reason}`}`);
		if (k.features) console.log(`  ${''.padEnd(28)} ${describeFeatures(k.features)}`);
	}
	console.log('\n* = default for hybridmem vm; others with --kernel VER');
	return kernels.some((k) => k.usable) ? 0 : 1;
}
