// Counting lost records from /dev/kmsg sequence numbers. Each record carries
// a 64-bit seq that grows by one; when the ring overwrites records before a
// reader gets them, read() fails once with EPIPE and continues at the oldest
// record still there, so the gap in seq is exactly what was lost.

export class SequenceTracker {
	/** seq of the last record accepted (undefined before the first). */
	last: number | undefined;
	/** Records skipped over since tracking started. */
	lost = 0;
	/** How many times read() reported an overrun (EPIPE). */
	overruns = 0;

	constructor(last?: number) {
		this.last = last;
	}

	/**
	 * Account for a record; false when it is not newer than the last one
	 * (it must then be dropped: a capture returns each record once).
	 */
	accept(seq: number): boolean {
		if (this.last !== undefined) {
			if (seq <= this.last) return false;
			this.lost += seq - this.last - 1;
		}
		this.last = seq;
		return true;
	}

	/** read() returned EPIPE: the next record's seq shows how many were lost. */
	overrun(): void {
		this.overruns++;
	}
}
