// How the CLI turns a thrown value into one line a person can act on.

/** An error whose message already says what to do; exit code 2 means usage, 1 failure. */
export class CliError extends Error {
	constructor(
		message: string,
		readonly exitCode = 1,
	) {
		super(message);
		this.name = 'CliError';
	}
}

export function errorMessage(err: unknown): string {
	if (err instanceof Error) return err.message;
	return String(err);
}
