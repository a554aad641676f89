// Every input the module must refuse, each with its errno and nothing else:
// no oops, no leaked page, the module still usable afterwards.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadBinding, type MapMode } from '../device/index.js';
import { eventsOf } from '../evidence/module-trace.js';
import { loadedParams } from '../setup/kernel-state.js';
import type { ScenarioContext } from './context.js';
import { Evidence } from './evidence.js';
import { expectNoLeak } from './mapping-checks.js';
import { zapSemantics } from './kernel-features.js';
import type { Scenario } from './types.js';

const TOTAL_CAP_PARAM = '/sys/module/hybridmem_test/parameters/max_total_bytes';

/** Lowers the module's global page cap (a 0644 parameter) for the duration of fn. */
function withTotalCap<T>(cap: number, fn: () => T): T {
	const old = readFileSync(TOTAL_CAP_PARAM, 'utf8').trim();
	writeFileSync(TOTAL_CAP_PARAM, String(cap));
	try {
		return fn();
	} finally {
		writeFileSync(TOTAL_CAP_PARAM, old);
	}
}

export const badInput: Scenario = {
	name: 'bad-input',
	title: 'every rejected input gets its errno, and nothing else happens',
	expectation: 'MAP_PRIVATE, a non-zero offset and more than max_map_bytes → EINVAL; passing the global cap (max_total_bytes) → ENOMEM; mode mixed without allow_bug, free_after_map and leak_on_error without allow_as_written → EPERM; a bad SET_MODE → EINVAL; an unknown ioctl → ENOTTY; a bad user pointer → EFAULT; mremap growth refused; ZAP outside a mapping → EINVAL; ZAP and REMAP of a vm_insert_page mapping both succeed, REMAP with the NOOP flag (zeroed in place), ZAP with it up to 7.0 (zap_vma_ptes cannot empty it) and without it where the kernel has zap_special_vma_range; no page leaks and the device still maps afterwards',
	async run(ctx: ScenarioContext) {
		const ev = new Evidence();
		using dev = ctx.open({ mode: 'remap_pfn', zapAfterMap: false, failAt: null });
		const info = dev.info();
		const ps = dev.pageSize;
		const before = dev.stats();
		const zap = await zapSemantics();
		const valid: [bigint, MapMode][] = [];
		// The kernel log for crash reports (an oops or a WARN is only printed), the trace for what the module did.
		const log = await ctx.kernelLog(() => ctx.traced(() => {
			ev.throws('MAP_PRIVATE → EINVAL', () => dev.map(ps, { shared: false }), 'EINVAL');
			ev.throws('offset ≠ 0 → EINVAL', () => dev.map(ps, { offset: ps }), 'EINVAL');
			ev.throws(`max_map_bytes + 1 page (${info.maxMapBytes + ps} bytes) → EINVAL`, () => dev.map(info.maxMapBytes + ps), 'EINVAL');
			ev.throws('passing max_total_bytes → ENOMEM', () => withTotalCap(8 * ps, () => dev.map(16 * ps)), 'ENOMEM');
			if (!info.allowBug) {
				dev.setMode({ mode: 'mixed' });
				ev.throws('mode mixed without allow_bug → EPERM', () => dev.map(2 * ps), 'EPERM');
				dev.setMode({ mode: 'remap_pfn' });
			}
			if (loadedParams().allow_as_written === 'N') {
				for (const mode of ['free_after_map', 'leak_on_error'] as const) {
					dev.setMode({ mode });
					ev.throws(`mode ${mode} without allow_as_written → EPERM`, () => dev.map(2 * ps), 'EPERM');
				}
				dev.setMode({ mode: 'remap_pfn' });
			}
			const binding = loadBinding();
			ev.throws('SET_MODE with an unknown map_mode → EINVAL', () => binding.setMode(dev.fd, { mapMode: 99, zapAfterMap: 0, failAt: -1 }), 'EINVAL');
			ev.throws('SET_MODE with fail_at < -1 → EINVAL', () => binding.setMode(dev.fd, { mapMode: 0, zapAfterMap: 0, failAt: -5 }), 'EINVAL');
			ev.throws('ZAP of an address outside any mapping → EINVAL', () => binding.zap(dev.fd, 0x10000n, ps), 'EINVAL');
			const unknownCmd = (binding.constants.IOC_MAGIC << 8) | 0x7f; // _IO(magic, 0x7f)
			ev.throws('unknown ioctl → ENOTTY', () => binding.ioctlRaw(dev.fd, unknownCmd, 0n), 'ENOTTY');
			ev.throws('GET_INFO into an unmapped user address → EFAULT', () => binding.ioctlRaw(dev.fd, binding.constants.IOC_GET_INFO, 1n), 'EFAULT');
			const m = dev.map(4 * ps);
			valid.push([m.address, 'remap_pfn']);
			ev.throws('mremap growing the mapping → EFAULT (VM_DONTEXPAND)', () => binding.mremapGrow(m.address, 4 * ps, 8 * ps), 'EFAULT');
			ev.throws('ZAP of an unaligned length → EINVAL', () => binding.zap(dev.fd, m.address, 100), 'EINVAL');
			ev.throws('ZAP running past the mapping → EINVAL', () => binding.zap(dev.fd, m.address, 8 * ps), 'EINVAL');
			m.unmap();
			dev.setMode({ mode: 'insert_page' });
			const ins = dev.map(4 * ps);
			valid.push([ins.address, 'insert_page']);
			ev.eq(
				zap.zapsMixedmap ? `ZAP of a vm_insert_page mapping answers 0 without NOOP (${zap.fn} zaps VM_MIXEDMAP)` : 'ZAP of a vm_insert_page mapping answers 0 with NOOP',
				dev.zap(ins).noop,
				!zap.zapsMixedmap,
			);
			ev.eq('REMAP of a vm_insert_page mapping answers 0 with NOOP (zeroed in place)', dev.remap(ins).noop, true);
			ins.unmap();
			dev.setMode({ mode: 'remap_pfn' });
		}));
		const events = log.value.events;
		ev.eq('only the valid mmaps reached the mapping code (hybridmem_map: [start, mode])', eventsOf(events, 'map').map((e) => [e.start, e.mode]), valid);
		ev.eq('…and each returned 0 (hybridmem_map_end err)', eventsOf(events, 'mapEnd').map((e) => e.error), valid.map(() => 0));
		ev.eq('refused ZAPs zapped nothing: one hybridmem_zap, of the vm_insert_page mapping', eventsOf(events, 'zap').map((z) => [z.address, z.pages]), [[valid[1]?.[0], 4]]);
		ev.eq('no crash report in the kernel log', log.reports.length, 0);
		const ok = dev.map(4 * ps);
		await ok.fill({ pattern: 'counter' });
		ev.ok('the device still maps and verifies afterwards', (await ok.verify({ pattern: 'counter' })).ok);
		ok.unmap();
		expectNoLeak(ev, before, dev.stats());
		const refused = ev.checks.filter((c) => c.name.includes('→') && c.ok).length;
		return { checks: ev.checks, summary: `${refused} bad inputs refused with the right errno, no leak, no oops` };
	},
};
