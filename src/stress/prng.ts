// A small seeded PRNG (splitmix32-style mixing over a 32-bit state): the
// same seed gives the same operations on every machine and Node version.
export interface Rng {
	/** An integer in [0, n). */
	int(n: number): number;
	/** True with probability p. */
	chance(p: number): boolean;
	/** One of the weighted keys. */
	weighted<K extends string>(weights: Readonly<Record<K, number>>): K;
}

export function rng(seed: number, stream = 0): Rng {
	let state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream >>> 0, 0x85ebca6b) ^ 0x6d2b79f5) >>> 0;
	const next = () => {
		state = (state + 0x9e3779b9) >>> 0;
		let z = state;
		z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
		z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
		return (z ^ (z >>> 16)) >>> 0;
	};
	const int = (n: number) => (n <= 1 ? 0 : Math.floor((next() / 0x1_0000_0000) * n));
	return {
		int,
		chance: (p) => next() / 0x1_0000_0000 < p,
		weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
			const entries = Object.entries(weights) as [K, number][];
			let r = int(entries.reduce((s, [, w]) => s + w, 0));
			for (const [k, w] of entries) {
				if (r < w) return k;
				r -= w;
			}
			return entries[0]![0];
		},
	};
}
