// Collects a scenario's checks: each compares what happened with what the
// scenario expected and keeps both for the report.
import type { Check } from './types.js';

function show(v: unknown): string {
	if (typeof v === 'bigint') return `0x${v.toString(16)}`;
	if (Array.isArray(v)) return v.length > 6 ? `[${v.slice(0, 6).map(show).join(', ')}, … ${v.length} items]` : `[${v.map(show).join(', ')}]`;
	return typeof v === 'string' ? v : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x));
}

export class Evidence {
	readonly checks: Check[] = [];

	ok(name: string, ok: boolean, detail?: string): boolean {
		this.checks.push({ name, ok, ...(detail !== undefined ? { detail } : {}) });
		return ok;
	}

	eq<T>(name: string, actual: T, expected: T): boolean {
		const ok = show(actual) === show(expected);
		return this.ok(name, ok, ok ? show(actual) : `expected ${show(expected)}, got ${show(actual)}`);
	}

	/** Runs fn expecting it to throw an Error with `code`. */
	throws(name: string, fn: () => unknown, code: string): boolean {
		try {
			fn();
		} catch (err) {
			const got = (err as { code?: string }).code;
			return this.ok(name, got === code, got === code ? code : `expected ${code}, got ${got ?? String(err)}`);
		}
		return this.ok(name, false, `expected ${code}, but it succeeded`);
	}

	get passed(): boolean {
		return this.checks.length > 0 && this.checks.every((c) => c.ok);
	}
}
