#!/usr/bin/env node
// Builds the prebuilt N-API binaries the npm tarball ships, in prebuildify's
// layout: prebuilds/linux-x64/ and prebuilds/linux-arm64/ (cross-compiled with
// Debian's g++-aarch64-linux-gnu, which scripts/bootstrap.sh installs).  The
// same compile as the installed package's source fallback (src/setup/addon.ts);
// needs dist/ (npm run build runs tsc first).  Skips an architecture whose
// binary is newer than every source.  Usage: node scripts/prebuild.mjs [--force]
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { PREBUILT_ARCHES, ELF_MACHINE, CROSS_PACKAGE, addonSources, compileAddon, elfMachine, prebuildFile } = await import(
	resolve(root, 'dist', 'setup', 'addon.js')
);
const force = process.argv.includes('--force');
const newest = Math.max(...addonSources(root).all.map((f) => statSync(f).mtimeMs));

let failed = false;
await Promise.all(
	PREBUILT_ARCHES.map(async (arch) => {
		const out = prebuildFile(arch, 'linux', root);
		if (!force && existsSync(out) && statSync(out).mtimeMs >= newest && elfMachine(out) === ELF_MACHINE[arch]) return;
		const started = Date.now();
		try {
			await compileAddon({ out, arch, root, fixHint: `bash scripts/bootstrap.sh (apt-get install ${CROSS_PACKAGE[arch]})` });
		} catch (err) {
			failed = true;
			console.error(`hybridmem: prebuild for linux-${arch} failed: ${err.message}`);
			return;
		}
		if (elfMachine(out) !== ELF_MACHINE[arch]) {
			failed = true;
			console.error(`hybridmem: ${out} is not an ${arch} binary (ELF machine ${elfMachine(out)})`);
			return;
		}
		console.log(`hybridmem: prebuilt ${out.slice(root.length + 1)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
	}),
);
process.exit(failed ? 1 : 0);
