// Types of matrix-table.mjs, for its host test.
export interface MatrixKernel {
	version: string;
	origin?: string;
	suite?: string;
	flavour?: string;
}
export interface MatrixScenario {
	name: string;
	passed: boolean;
	finding?: string;
	crash?: { file?: string; line?: number };
	summary?: string;
	error?: string;
}
export interface Counts {
	passed: number;
	failed: number;
	skipped: number;
}
export interface MatrixRun {
	kernel: MatrixKernel;
	build?: { ok: boolean; detail?: string };
	scenarios?: MatrixScenario[];
	scenariosError?: string;
	device?: Counts;
	deviceError?: string;
}
export interface MatrixCell {
	text: string;
	ok: boolean;
}
export interface MatrixTable {
	header: string[];
	rows: { name: string; cells: MatrixCell[] }[];
	findings: { scenario: string; groups: { fact: string; kernels: string[] }[] }[];
	passed: boolean;
	counts: { passed: number; failed: number };
}
export function kernelLabel(k: MatrixKernel): string;
export function resultFinding(r: MatrixScenario): string | undefined;
export function matrixTable(runs: MatrixRun[]): MatrixTable;
export function matrixMarkdown(table: MatrixTable, opts?: { date?: string; title?: string }): string;
export function matrixText(table: MatrixTable): string;
