import { defineConfig } from 'vitest/config';

// Three projects, by where a test can run:
//  host:   anywhere; parsers, argument handling, the addon on /dev/zero and memfd.
//  vm:     on the host, booting real VMs through the runner (QEMU must be installed).
//  device: only where hybridmem_test.ko is loaded (inside the VM runner or a
//          machine that set HYBRIDMEM_NATIVE=1); scripts/test.mjs arranges that.
// forks, not threads: a native addon that maps device memory belongs in its
// own process (vitest's own advice for native code).
// HYBRIDMEM_DEVICE_BUNDLE: the device suite as scripts/device-bundle.mjs
// wrote it (scripts/device-suite.mjs --bundled, in TCG guests): vitest
// transforms its test files only and leaves their shared chunks to Node.
const deviceBundle = process.env.HYBRIDMEM_DEVICE_BUNDLE;

export default defineConfig({
	test: {
		pool: 'forks',
		projects: [
			// 30 s: a hang guard, not a speed test; CLI spawns take seconds while VMs run beside them (npm test's queue).
			{ extends: true, test: { name: 'host', include: ['test/host/**/*.test.ts'], testTimeout: 30_000 } },
			{
				extends: true,
				// Files one at a time; tests a file marks concurrent run two at a time (a VM each, one vCPU: this is a 2-core machine).
				test: { name: 'vm', include: ['test/vm/**/*.test.ts'], testTimeout: 300_000, hookTimeout: 300_000, fileParallelism: false, maxConcurrency: 2 },
			},
			{
				extends: true,
				// One worker for all files, no re-import per file: under TCG every
				// module import costs, and the files share one loaded module anyway.
				test: {
					name: 'device',
					include: deviceBundle ? [`${deviceBundle}/*.test.js`] : ['test/device/**/*.test.ts'],
					...(deviceBundle ? { server: { deps: { external: [/\/chunk-[A-Z0-9]+\.js$/] } } } : {}),
					testTimeout: 120_000,
					hookTimeout: 120_000,
					fileParallelism: false,
					isolate: false,
				},
			},
		],
	},
});
