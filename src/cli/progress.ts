// The one progress line a command keeps at the bottom of a terminal: what is
// happening and the elapsed time, redrawn in place (every second while it
// waits), cleared before any other output and at the end.  Disabled, it
// writes nothing at all: piped output and --json/--tap stay exactly the
// results.
export class StatusLine {
	private message = '';
	private timer: NodeJS.Timeout | undefined;
	private readonly started = Date.now();

	constructor(
		private readonly enabled: boolean,
		private readonly stream: NodeJS.WriteStream = process.stderr,
	) {}

	private render(): void {
		if (!this.enabled || !this.message) return;
		const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
		const width = Math.max(20, (this.stream.columns || 100) - 1);
		this.stream.write(`\r\x1b[K${`[${elapsed} s] ${this.message}`.slice(0, width)}`);
	}

	/** Shows `message` as what is happening now. */
	set(message: string): void {
		if (!this.enabled) return;
		this.message = message;
		this.render();
		this.timer ??= setInterval(() => this.render(), 1000).unref();
	}

	private clear(): void {
		if (this.enabled && this.message) this.stream.write('\r\x1b[K');
	}

	/** Prints `text` on stdout with the progress line out of its way. */
	print(text: string): void {
		this.clear();
		process.stdout.write(`${text}\n`);
		this.render();
	}

	/** Removes the line for good. */
	done(): void {
		this.clear();
		this.message = '';
		if (this.timer) clearInterval(this.timer);
		this.timer = undefined;
	}
}
