#!/usr/bin/env node
// map()/unmap() cost through the public API with no other mapping alive and
// with 40,000 live mappings of the same device: map() must not scan the live
// ones (issue 15 measured 26 µs with none and 4.4 ms at 40,000). Also the
// same with m.bytes taken before unmap (an ArrayBuffer, then the reservation
// of the range until it is collected). A benchmark, not a test.
// usage: node bench/map.mjs [--live 40000] [--ops 5000] [--rounds 7] [--json] [--dist DIR]
import { pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
	options: {
		live: { type: 'string', default: '40000' },
		ops: { type: 'string', default: '5000' },
		rounds: { type: 'string', default: '7' },
		json: { type: 'boolean', default: false },
		dist: { type: 'string', default: join(root, 'dist') },
	},
});
const liveCount = Number(values.live);
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const { openDevice } = await import(pathToFileURL(join(resolve(values.dist), 'index.js')).href);

const device = openDevice('/dev/zero');
const pageSize = device.pageSize;

const cases = {
	'map + unmap': () => device.map(pageSize).unmap(),
	'map + bytes + unmap': () => {
		const m = device.map(pageSize);
		m.bytes[0] = 1;
		m.unmap();
	},
};

/** Median and min of `rounds` rounds, each the mean µs of `ops` calls. */
function measure(fn) {
	for (let i = 0; i < ops; i++) fn(); // warm up
	const perOp = [];
	for (let r = 0; r < rounds; r++) {
		const t0 = process.hrtime.bigint();
		for (let i = 0; i < ops; i++) fn();
		perOp.push(Number(process.hrtime.bigint() - t0) / 1000 / ops);
	}
	perOp.sort((a, b) => a - b);
	return { median: perOp[Math.floor(perOp.length / 2)], min: perOp[0] };
}

const rows = [];
const baseline = {};
for (const [name, fn] of Object.entries(cases)) {
	baseline[name] = measure(fn);
	rows.push({ case: name, live: 0, ...baseline[name] });
}
const held = [];
for (let i = 0; i < liveCount; i++) held.push(device.map(pageSize));
for (const [name, fn] of Object.entries(cases)) {
	const r = measure(fn);
	rows.push({ case: name, live: liveCount, ...r, ratio: r.median / baseline[name].median });
}
for (const m of held) m.unmap();
device.close();

if (values.json) {
	console.log(JSON.stringify({ ops, rounds, rows }, null, 2));
} else {
	console.log(`map/unmap of one ${pageSize}-byte page of /dev/zero, ${rounds} rounds of ${ops} calls (node ${process.version})`);
	console.log(`${'case'.padEnd(22)} ${'live'.padStart(7)} ${'median µs'.padStart(10)} ${'min µs'.padStart(8)} ${'vs none'.padStart(8)}`);
	for (const r of rows) {
		const ratio = r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`;
		console.log(`${r.case.padEnd(22)} ${String(r.live).padStart(7)} ${r.median.toFixed(2).padStart(10)} ${r.min.toFixed(2).padStart(8)} ${ratio.padStart(8)}`);
	}
}
