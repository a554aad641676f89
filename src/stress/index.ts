export { runStressHere, runStressInVm, STRESS_DEFAULTS, type StressOptions, type StressReport } from './run.js';
export { generateProgram } from './generate.js';
export { formatProgram, parseProgram, describeOp, OPS, type Op, type Program } from './program.js';
export { shrink } from './shrink.js';
export { rng } from './prng.js';
