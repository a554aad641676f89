// hybridmem status
import { parseArgs } from 'node:util';
import { toJson } from '../json.js';
import { parse } from '../options.js';
import { status } from '../../setup/status.js';
import { DEFAULT_NODE } from '../../setup/paths.js';

export const summary = 'show whether the module is loaded, its node, parameters and counters';

export const help = `Usage: hybridmem status [--node PATH] [--json]

Exit status 0 when the module is loaded and the node matches it, 3 otherwise.`;

export async function main(argv: string[]): Promise<number> {
	const { values } = parse('status', () =>
		parseArgs({ args: argv, strict: true, options: { node: { type: 'string' }, json: { type: 'boolean' } } }),
	);
	const s = status(values.node ?? DEFAULT_NODE);
	const ok = s.loaded && s.node.matchesModule === true;
	if (values.json) {
		console.log(toJson(s));
		return ok ? 0 : 3;
	}
	if (!s.kernelLoadsModules) console.log('this kernel cannot load modules: use hybridmem vm or run --vm');
	console.log(`module:  ${s.loaded ? `loaded, kex major ${s.major ?? '?'}` : 'not loaded'}`);
	const n = s.node;
	console.log(
		`node:    ${n.path} ` +
			(!n.exists ? 'missing' : `mode ${n.mode}${n.major !== undefined ? `, c ${n.major} ${n.minor}` : ', not a char device'}${n.matchesModule ? '' : ' (does not match the module)'}`),
	);
	if (s.loaded) {
		console.log(`params:  ${Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join(' ')}`);
		console.log(`counters: ${Object.entries(s.counters).map(([k, v]) => `${k}=${v}`).join(' ')}`);
	}
	return ok ? 0 : 3;
}
