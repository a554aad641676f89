// JSON for parsed logs: bigints (addresses) become "0x..." hex strings, which
// is how people read and compare kernel addresses.

/** JSON.stringify replacer that writes bigints as "0x" hex strings. */
export function bigintReplacer(_key: string, value: unknown): unknown {
	return typeof value === 'bigint' ? '0x' + value.toString(16) : value;
}

/** JSON text of any parse result (events, reports, records) with bigints as hex strings. */
export function toJson(value: unknown, space?: number | string): string {
	return JSON.stringify(value, bigintReplacer, space);
}
