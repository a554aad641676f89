// JSON output for --json: bigints (addresses, counters) become strings,
// addresses in hex as the kernel prints them, counters in decimal.
export function toJson(value: unknown): string {
	return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
