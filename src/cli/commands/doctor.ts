// hybridmem doctor [--json] [--probe-kvm]
import { parseArgs } from 'node:util';
import { toJson } from '../json.js';
import { parse } from '../options.js';
import { runDoctor, type DoctorReport } from '../../setup/doctor.js';
import { runInVm } from '../../vm/runner.js';

export const summary = 'what this machine can and cannot do for hybridmem, and the command that fixes each gap';

export const help = `Usage: hybridmem doctor [--json] [--probe-kvm]

Checks root, module support and headers of the running kernel, QEMU, KVM,
busybox, the kernels the VM runner can boot, the node addon and the module
built for each kernel; prints the fix for each gap and says whether scenarios
will run natively (root, module support, headers and HYBRIDMEM_NATIVE=1) or
in the VM runner.

Options:
  --json        print the findings as data
  --probe-kvm   when no KVM verdict is cached yet, boot one VM (as 'hybridmem vm'
                would) to find out; without it doctor never boots a guest

Exit status 0 when scenarios can run (natively or in the VM runner), 1 otherwise.`;

const PATH_NAMES = { native: 'natively', vm: 'in the VM runner' } as const;

/** Whether the module (or the addon) is still to be built, which run does by itself. */
function firstRunBuilds(r: DoctorReport): boolean {
	return r.checks.some((c) => c.status === 'missing' && c.neededFor.length === 0 && (c.id === 'addon' || c.id.startsWith('module:')));
}

export function renderReport(r: DoctorReport): string {
	const lines: string[] = [];
	for (const c of r.checks) {
		const need = c.neededFor.length ? '' : ' (optional)';
		lines.push(`${c.status === 'ok' ? 'ok     ' : 'missing'}  ${c.title}${need}: ${c.detail}`);
		if (c.fix) lines.push(`         fix: ${c.fix}`);
	}
	lines.push('');
	const why = (p: 'native' | 'vm') => (r.paths[p].usable ? 'ready' : `not ready (missing: ${r.paths[p].missing.join(', ')})`);
	lines.push(`native path: ${why('native')}`);
	lines.push(`VM path:     ${why('vm')}`);
	lines.push(
		r.scenarios === 'none'
			? 'Scenarios cannot run here yet: apply the fixes above.'
			: `Scenarios will run ${PATH_NAMES[r.scenarios]}${firstRunBuilds(r) ? ' (hybridmem run builds what is not built yet first)' : ''}.`,
	);
	return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('doctor', () =>
		parseArgs({ args: argv, strict: true, options: { json: { type: 'boolean' }, 'probe-kvm': { type: 'boolean' } } }),
	);
	const report = await runDoctor(
		values['probe-kvm']
			? {
					probeKvm: async () => {
						const r = await runInVm({ command: ['true'], accel: 'auto', timeoutMs: 120_000, stdout: 'pipe', stderr: 'pipe' });
						return r.accel;
					},
				}
			: {},
	);
	console.log(values.json ? toJson(report) : renderReport(report));
	return report.scenarios === 'none' ? 1 : 0;
}
