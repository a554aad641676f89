// perf ring retention (README "What check found in in-tree drivers"): run in a
// guest, `hybridmem vm --kernel VER -- node bench/perf-retention.mjs`.  Child
// processes each do N perf_event_open + mmap + munmap + close cycles; printed:
// free pages and /proc/meminfo Mapped in the child and after its exit.
import { openPerfEvent } from '../dist/device/index.js';
import { freePages } from '../dist/evidence/free-pages.js';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const mapped = () => parseInt(/Mapped:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]);
if (process.argv[2] === 'child') {
  const n = Number(process.argv[3]);
  const cycle = () => { const d = openPerfEvent(); const m = d.map(9*4096, {prot:'r'}); m.probe({touch:true}); m.unmap(); d.close(); };
  const f0 = freePages(), m0 = mapped();
  for (let i = 0; i < n; i++) cycle();
  await new Promise(r => setTimeout(r, 1000));
  const vmas = readFileSync('/proc/self/maps', 'utf8').split('\n').filter(l => /perf_event/.test(l)).length;
  console.log(`  in the child after ${n} cycles: ${f0 - freePages()} pages missing, Mapped +${mapped() - m0} kB, perf_event vmas still in /proc/self/maps: ${vmas}`);
  process.exit(0);
}
await new Promise(r => setTimeout(r, 300));
const f0 = freePages(), m0 = mapped();
for (const n of [0, 512, 512, 0, 512]) {
spawnSync(process.execPath, [process.argv[1], 'child', String(n)], { stdio: 'inherit' });
await new Promise(r => setTimeout(r, 1500));
console.log(`after a child of ${n} cycles exited: ${f0 - freePages()} pages missing since the start, Mapped ${mapped() - m0 >= 0 ? '+' : ''}${mapped() - m0} kB`);
}
