// One traced run inside a guest: the PFN trace's kprobes and tracepoint are
// enabled (kernel text is patched), a /dev/zero mapping is made, written,
// unmapped, and the probes are removed again (patched back).  Prints one
// JSON line.  Used by bench/traced-vm-runs.mjs.
import { openDevice } from '../../dist/device/index.js';
import { analyzeLifecycle, PfnTrace, pagesFromPagemap, readPagemap } from '../../dist/evidence/index.js';

const pages = 64;
const started = process.hrtime.bigint();
const trace = await PfnTrace.start();
const dev = openDevice('/dev/zero');
trace.mark('map');
const m = dev.map(pages * dev.pageSize);
m.fillSync({ pattern: 'address-tag', seed: 1n });
const pm = readPagemap(m.address, pages, { pageSize: dev.pageSize });
const address = m.address;
trace.mark('unmap');
m.unmap();
dev.close();
trace.mark('end');
const log = trace.stop();
const window = { address, length: pages * dev.pageSize, from: 'map', until: 'unmap', end: 'end' };
const lc = analyzeLifecycle(log, window, pagesFromPagemap(pm, window, log));
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - started) / 1e6, probed: log.probed.length, events: log.events.length, pfns: lc.distinctPfns, returned: lc.returned, freedWhileMapped: lc.freedWhileMapped.length }));
