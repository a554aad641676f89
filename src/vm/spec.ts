// The per-run specification the guest reads through the 9p root: run.sh (the
// working directory, the environment and the command, all quoted) and mounts
// (the writable shares as "tag path" lines).
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { shellQuote } from './shell-quote.js';

export interface GuestCommand {
	argv: string[];
	cwd: string;
	env: Record<string, string>;
	/** Host directories mounted writable at the same path, with their 9p tags. */
	shares: { tag: string; dir: string }[];
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function runScript(cmd: GuestCommand): string {
	if (cmd.argv.length === 0) throw new Error('no command given');
	const lines = ['# written by hybridmem: the command to run in the guest'];
	for (const [k, v] of Object.entries(cmd.env)) {
		if (!NAME_RE.test(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`);
		lines.push(`export ${k}=${shellQuote(v)}`);
	}
	lines.push(`cd ${shellQuote(cmd.cwd)} || exit 125`);
	lines.push(`exec ${cmd.argv.map(shellQuote).join(' ')}`);
	return lines.join('\n') + '\n';
}

export function mountsFile(cmd: GuestCommand): string {
	for (const s of cmd.shares)
		if (/[\n\r]/.test(s.dir) || !path.isAbsolute(s.dir)) throw new Error(`cannot share ${JSON.stringify(s.dir)}: needs an absolute path without newlines`);
	return cmd.shares.map((s) => `${s.tag} ${s.dir}`).join('\n') + '\n';
}

/** Writes the spec to a fresh directory and returns its path. */
export function writeSpec(cmd: GuestCommand, parent = os.tmpdir()): string {
	const dir = mkdtempSync(path.join(parent, 'hybridmem-vm-'));
	writeFileSync(path.join(dir, 'run.sh'), runScript(cmd));
	writeFileSync(path.join(dir, 'mounts'), mountsFile(cmd));
	return dir;
}
