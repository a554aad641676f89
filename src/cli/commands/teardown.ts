// hybridmem teardown
import { parseArgs } from 'node:util';
import { toJson } from '../json.js';
import { parse } from '../options.js';
import { teardown } from '../../setup/teardown.js';
import { DEFAULT_NODE } from '../../setup/paths.js';

export const summary = 'unload the module and remove its node (refused while mappings are alive)';

export const help = `Usage: hybridmem teardown [--node PATH] [--json]

Unloads hybridmem_test and removes the device node.  While any mapping of the
device is alive it refuses, names the processes holding one, and changes
nothing.

Options:
  --node PATH   device node (default ${DEFAULT_NODE})
  --json        print the result as JSON`;

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('teardown', () =>
		parseArgs({ args: argv, strict: true, options: { node: { type: 'string' }, json: { type: 'boolean' } } }),
	);
	const result = await teardown(values.node ? { node: values.node } : {});
	if (values.json) console.log(toJson(result));
	else console.log(`hybridmem_test ${result.module === 'unloaded' ? 'unloaded' : 'was not loaded'}; node ${result.node}`);
	return 0;
}
