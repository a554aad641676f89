// hybridmem vm [options] -- CMD [ARGS...]
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { abortOnSignals, keyValues, parse, positiveNumber } from '../options.js';
import { runInVm, DEFAULT_TIMEOUT_MS } from '../../vm/runner.js';
import type { AccelRequest } from '../../vm/accel.js';

export const summary = 'run a command as root in a throwaway VM booting a real Debian kernel';

export const help = `Usage: hybridmem vm [options] -- CMD [ARGS...]

Runs CMD as root in a fresh QEMU virtual machine that boots a Debian kernel
from /boot.  The host's root filesystem is visible read-only at the same paths
(writes land in a tmpfs overlay and vanish with the VM), and the working
directory is the current one.  CMD reads this command's stdin, and its stdout
and stderr stream here live; the kernel console goes to a log file.

Options:
  --kernel VER        kernel release to boot (default: newest with headers; see 'hybridmem kernels')
  --arch ARCH         amd64 (default) or arm64: an arm64 guest boots a fetched arm64 kernel
                      (hybridmem kernels --fetch trixie:arm64 or trixie:arm64-16k) under TCG
  --rw DIR            share DIR writable at the same path (repeatable)
  --env K=V           set a variable for CMD (repeatable); PATH, HOME, TERM, CI, LANG, HYBRIDMEM_CACHE, XDG_CACHE_HOME pass by default
  --mem MIB           guest memory in MiB (default 2048)
  --cpus N            virtual CPUs (default 2)
  --timeout SECONDS   kill the VM after this long (default ${DEFAULT_TIMEOUT_MS / 1000})
  --accel auto|kvm|tcg  accelerator (default auto: KVM only if a test guest boots with it)
  --machine microvm|q35  QEMU machine (default microvm, the faster boot; q35 when
                      there are more --rw shares than microvm has virtio slots,
                      or the host TSC frequency is unknown; see 'hybridmem doctor')
  --append ARGS       extra kernel command-line words, after the runner's own
                      (so they win), e.g. --append 'rodata=on initcall_debug'
  --console-log FILE  save the kernel console here (default: a file in the temp dir, named on failure)
  --show-console      also copy the kernel console to stderr, live
  --stop-at=REGEX     end the VM as soon as a console line matches, e.g.
                      --stop-at='---\\[ end trace' after an oops whose task never
                      exits; exit status 0 then
  --snapshot          start from a snapshot of this configuration (kernel, initramfs,
                      command line, memory, vCPUs, shares) taken just before the
                      guest mounts the host root, instead of booting; the first run
                      saves it (in the cache, about 100 MB). x86 guests only
  --verbose           say which kernel and accelerator were used

Exit status: CMD's own; 124 when the timeout fired; 125 when the guest kernel
crashed or gave no exit status; 130/143 when interrupted.`;

export async function main(argv: string[]): Promise<number> {
	const dash = argv.indexOf('--');
	const own = dash === -1 ? argv : argv.slice(0, dash);
	const command = dash === -1 ? [] : argv.slice(dash + 1);
	const { values } = parse('vm', () => parseArgs({ args: own, strict: true, options: {
		kernel: { type: 'string' },
		arch: { type: 'string' },
		rw: { type: 'string', multiple: true },
		env: { type: 'string', multiple: true },
		mem: { type: 'string' },
		cpus: { type: 'string' },
		timeout: { type: 'string' },
		accel: { type: 'string' },
		machine: { type: 'string' },
		append: { type: 'string', multiple: true },
		'console-log': { type: 'string' },
		'show-console': { type: 'boolean' },
		'stop-at': { type: 'string' },
		snapshot: { type: 'boolean' },
		verbose: { type: 'boolean' },
	} }));
	if (command.length === 0) throw new CliError("vm: no command given; usage: hybridmem vm [options] -- CMD [ARGS...]", 2);
	const accel = values.accel ?? 'auto';
	if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new CliError(`vm: --accel must be auto, kvm or tcg, not '${accel}'`, 2);
	const arch = values.arch;
	if (arch !== undefined && arch !== 'amd64' && arch !== 'arm64') throw new CliError(`vm: --arch must be amd64 or arm64, not '${arch}'`, 2);
	const machine = values.machine;
	if (machine !== undefined && machine !== 'microvm' && machine !== 'q35') throw new CliError(`vm: --machine must be microvm or q35, not '${machine}'`, 2);
	let stopWhen: RegExp | undefined;
	try {
		if (values['stop-at'] !== undefined) stopWhen = new RegExp(values['stop-at']);
	} catch (err) {
		throw new CliError(`vm: --stop-at is not a valid regular expression: ${(err as Error).message}`, 2);
	}
	const signals = abortOnSignals();
	try {
		const result = await runInVm({
			command,
			...(values.kernel ? { kernel: values.kernel } : {}),
			...(arch ? { arch } : {}),
			rw: values.rw ?? [],
			env: keyValues(values.env, '--env'),
			memMiB: positiveNumber(values.mem, '--mem', 2048),
			cpus: positiveNumber(values.cpus, '--cpus', 2),
			timeoutMs: positiveNumber(values.timeout, '--timeout', DEFAULT_TIMEOUT_MS / 1000) * 1000,
			accel: accel as AccelRequest,
			...(machine ? { machine } : {}),
			...(values.append ? { extraKernelArgs: values.append.flatMap((a) => a.split(/\s+/).filter(Boolean)) } : {}),
			...(values['console-log'] ? { consoleLog: values['console-log'] } : {}),
			...(values.snapshot ? { snapshot: true } : {}),
			stdin: 'inherit',
			stdout: 'inherit',
			stderr: 'inherit',
			signal: signals.signal,
			...(stopWhen ? { stopWhen } : {}),
			...(values['show-console'] ? { onConsoleLine: (l: string) => process.stderr.write(`[console] ${l}\n`) } : {}),
			onNotice: (m) => {
				if (values.verbose || process.stderr.isTTY) process.stderr.write(`hybridmem vm: ${m}\n`);
			},
		});
		const kept = result.consoleLogKept && !values['console-log'] ? ` (console log kept: ${result.consoleLog})` : '';
		if (result.outcome === 'stopped') process.stderr.write(`hybridmem vm: stopped at console line: ${result.matchedLine ?? ''}${kept}\n`);
		else if (result.outcome === 'timeout')
			process.stderr.write(`hybridmem vm: timed out; the VM was killed (console log: ${result.consoleLog})\n`);
		else if (result.outcome === 'crashed')
			process.stderr.write(
				`hybridmem vm: the guest kernel crashed or gave no exit status. Last console lines:\n` +
					result.consoleTail.map((l) => `  ${l}\n`).join('') +
					`console log: ${result.consoleLog}\n`,
			);
		else if (result.outcome === 'exited' && kept) process.stderr.write(`hybridmem vm: the command exited ${result.exitCode}${kept}\n`);
		else if (result.outcome === 'aborted' && kept) process.stderr.write(`hybridmem vm: aborted${kept}\n`);
		return signals.exitCodeFor() ?? result.exitCode;
	} finally {
		signals.dispose();
	}
}
