// hybridmem's public API: the device (addon), the kernel log, the evidence
// layer, the VM runner, setup, the scenarios, and `check`.
export * from './device/index.js';
export * from './kmsg/index.js';
export * from './evidence/index.js';
export * from './check/index.js';
export { runInVm, prepareBoot, EXIT_TIMEOUT, EXIT_CRASH, type VmOptions, type VmResult, type VmOutcome } from './vm/runner.js';
export { listKernels, chooseKernel, type KernelInfo } from './vm/kernels.js';
export { setup, type SetupOptions, type SetupResult } from './setup/setup.js';
export { teardown, type TeardownOptions, type TeardownResult } from './setup/teardown.js';
export { status, type Status } from './setup/status.js';
export { buildModule } from './setup/build.js';
export { SetupError } from './setup/errors.js';
export { SCENARIOS, selectScenarios } from './scenarios/catalog.js';
export { runScenarios, type RunOptions } from './scenarios/run.js';
export type { Scenario, ScenarioResult, Check } from './scenarios/types.js';
