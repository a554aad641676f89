// Shared option handling for the commands: parseArgs with usage errors that
// name the command, and the KEY=VALUE lists several commands take.
import { CliError } from './errors.js';

/** Runs a parseArgs call, turning its complaint into a usage error that names the command. */
export function parse<R>(command: string, parseFn: () => R): R {
	try {
		return parseFn();
	} catch (err) {
		throw new CliError(`${command}: ${parseArgsMessage(err as Error & { code?: string })}; see 'hybridmem ${command} --help'`, 2);
	}
}

/**
 * parseArgs's complaint in one clean clause: its unknown-option message adds
 * advice about '--' whose quotes do not pair up ('-- "--bogus"), which reads
 * as garbage after our own quoting.
 */
export function parseArgsMessage(err: Error & { code?: string }): string {
	const unknown = /^Unknown option '([^']+)'/.exec(err.message);
	if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) return `unknown option '${unknown[1]}'`;
	return err.message.replace(/\.$/, '');
}

/** Parses ["K=V", ...]; `what` names the option in the error. */
export function keyValues(list: string[] | undefined, what: string): Record<string, string> {
	const out: Record<string, string> = {};
	for (const item of list ?? []) {
		const eq = item.indexOf('=');
		if (eq <= 0) throw new CliError(`${what} expects KEY=VALUE, got '${item}'`, 2);
		out[item.slice(0, eq)] = item.slice(eq + 1);
	}
	return out;
}

/** A positive number option, or the default. */
export function positiveNumber(value: string | undefined, what: string, fallback: number): number {
	if (value === undefined) return fallback;
	const n = Number(value);
	if (!Number.isFinite(n) || n <= 0) throw new CliError(`${what} expects a positive number, got '${value}'`, 2);
	return n;
}

/** Lets a command stop its children on Ctrl-C or SIGTERM instead of dying under them. */
export function abortOnSignals(): { signal: AbortSignal; exitCodeFor(): number | undefined; dispose(): void } {
	const controller = new AbortController();
	let received: NodeJS.Signals | undefined;
	const handler = (sig: NodeJS.Signals) => {
		received ??= sig;
		controller.abort();
	};
	process.on('SIGINT', handler);
	process.on('SIGTERM', handler);
	return {
		signal: controller.signal,
		exitCodeFor: () => (received === 'SIGINT' ? 130 : received === 'SIGTERM' ? 143 : undefined),
		dispose() {
			process.off('SIGINT', handler);
			process.off('SIGTERM', handler);
		},
	};
}
