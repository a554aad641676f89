#!/usr/bin/env node
// The hybridmem command: dispatches to one module per command, loaded on
// demand so that a command's dependencies (the native addon, QEMU) are only
// needed by the commands that use them.
import { CliError, errorMessage } from './errors.js';

interface CommandModule {
	help: string;
	summary: string;
	main(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<CommandModule>> = {
	run: () => import('./commands/run.js'),
	check: () => import('./commands/check.js'),
	stress: () => import('./commands/stress.js'),
	setup: () => import('./commands/setup.js'),
	teardown: () => import('./commands/teardown.js'),
	status: () => import('./commands/status.js'),
	build: () => import('./commands/build.js'),
	dmesg: () => import('./commands/dmesg.js'),
	vm: () => import('./commands/vm.js'),
	kernels: () => import('./commands/kernels.js'),
	doctor: () => import('./commands/doctor.js'),
	bootstrap: () => import('./commands/bootstrap.js'),
};

async function usage(): Promise<string> {
	const lines = ['Usage: hybridmem <command> [options]', '', 'Commands:'];
	for (const [name, load] of Object.entries(COMMANDS)) {
		let summary = '';
		try {
			summary = (await load()).summary;
		} catch {
			summary = '(unavailable in this build)';
		}
		lines.push(`  ${name.padEnd(10)} ${summary}`);
	}
	lines.push(
		'',
		'Options:',
		'  -h, --help     this help; hybridmem help <command> (or <command> --help) for a command\'s',
		'  -V, --version  print the version',
		'',
		"Run 'hybridmem help <command>' for a command's options.",
	);
	return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
	const [name, ...rest] = argv;
	if (name === 'help' && rest[0] !== undefined) {
		const load = COMMANDS[rest[0]];
		if (!load) {
			console.error(`hybridmem: unknown command '${rest[0]}'\n\n${await usage()}`);
			return 2;
		}
		console.log((await load()).help);
		return 0;
	}
	if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
		console.log(await usage());
		return name === undefined ? 2 : 0;
	}
	if (name === '--version' || name === '-V' || name === '-v') {
		const { createRequire } = await import('node:module');
		console.log((createRequire(import.meta.url)('../../package.json') as { version: string }).version);
		return 0;
	}
	const load = COMMANDS[name];
	if (!load) {
		console.error(`hybridmem: unknown command '${name}'\n\n${await usage()}`);
		return 2;
	}
	const cmd = await load();
	if (rest.includes('--help') || rest.includes('-h')) {
		const dash = rest.indexOf('--');
		const helpAt = Math.max(rest.indexOf('--help'), rest.indexOf('-h'));
		if (dash === -1 || helpAt < dash) {
			console.log(cmd.help);
			return 0;
		}
	}
	return cmd.main(rest);
}

main(process.argv.slice(2)).then(
	(code) => {
		process.exitCode = code;
	},
	(err: unknown) => {
		console.error(`hybridmem: ${errorMessage(err)}`);
		process.exitCode = err instanceof CliError ? err.exitCode : 1;
	},
);
