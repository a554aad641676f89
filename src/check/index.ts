// `hybridmem check` as an API: run the conformance checks on a target in a
// throwaway VM (or in this kernel), and render the report as the CLI does.
export { runChecksInVm, runChecksHere, runTargetsInVm, type CheckOptions, type VmCheckOptions } from './run.js';
export type { TargetSpec } from './target.js';
export { formatReport, ktap, junit } from './report.js';
export { RECIPES, loadRecipe, type Recipe, type RecipeContext } from './recipes/index.js';
export { CATEGORIES as CHECK_CATEGORIES } from './types.js';
export type { Category as CheckCategory, CheckStatus, CheckResult, CheckReport, TargetDescription, TargetExpectations, OpenedTarget } from './types.js';
