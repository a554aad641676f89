// hybridmem setup
import os from 'node:os';
import { parseArgs } from 'node:util';
import { toJson } from '../json.js';
import { keyValues, parse } from '../options.js';
import { setup } from '../../setup/setup.js';
import { DEFAULT_MODE, DEFAULT_NODE, moduleFile } from '../../setup/paths.js';

export const summary = 'load the module and create its device node, as the notes did by hand';

export const help = `Usage: hybridmem setup [--param K=V ...] [--node PATH] [--mode MODE] [--module FILE] [--reload] [--json]

Does the notes' steps, idempotently: insmod hybridmem_test.ko, read the "kex"
major from /proc/devices, mknod PATH c MAJOR 0 (replacing a stale node with
other numbers), chmod.  Needs root on a kernel that can load modules; elsewhere
use 'hybridmem vm -- hybridmem setup' or 'hybridmem run --vm'.

Options:
  --param K=V     module parameter (repeatable): map_mode, zap_after_map, fail_at,
                  max_map_bytes, max_total_bytes, allow_bug, log_pages,
                  log_budget
  --node PATH     device node (default ${DEFAULT_NODE})
  --mode MODE     node permissions (default ${DEFAULT_MODE}; the notes used 0666,
                  which lets any user map kernel pages: only on request)
  --module FILE   the .ko to load (default ${moduleFile(os.release())})
  --reload        unload first if already loaded (refused while mappings are alive)
  --json          print the result as JSON`;

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('setup', () =>
		parseArgs({
			args: argv,
			strict: true,
			options: {
				param: { type: 'string', multiple: true },
				node: { type: 'string' },
				mode: { type: 'string' },
				module: { type: 'string' },
				reload: { type: 'boolean' },
				json: { type: 'boolean' },
			},
		}),
	);
	const result = await setup({
		params: keyValues(values.param, '--param'),
		...(values.node ? { node: values.node } : {}),
		...(values.mode ? { mode: values.mode } : {}),
		...(values.module ? { module: values.module } : {}),
		...(values.reload ? { reload: true } : {}),
	});
	if (values.json) console.log(toJson(result));
	else {
		const mod = { loaded: 'loaded', 'already-loaded': 'already loaded', reloaded: 'reloaded' }[result.module];
		console.log(`hybridmem_test ${mod}; kex major ${result.major}; ${result.path} ${result.node} (c ${result.major} 0, mode ${result.mode})`);
	}
	return 0;
}
