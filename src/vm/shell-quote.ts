// POSIX single-quote quoting for the guest's run script.  The host never runs
// a shell string; the guest's /bin/sh reads a script whose every word is
// quoted here, so arguments arrive byte for byte.
export function shellQuote(word: string): string {
	if (word.includes('\0')) throw new Error('arguments cannot contain NUL bytes');
	return `'${word.replaceAll("'", `'\\''`)}'`;
}
