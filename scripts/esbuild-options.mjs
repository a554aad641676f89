// The esbuild options every bundle a guest runs shares (scripts/bundle.mjs,
// scripts/device-bundle.mjs): ES modules for this package's Node.
export const NODE_BUNDLE = {
	bundle: true,
	platform: 'node',
	format: 'esm',
	target: 'node20',
	// Dependencies written as CommonJS (execa's cross-spawn) call require(), which an ES module lacks.
	banner: { js: "import { createRequire as __hmCreateRequire } from 'node:module'; const require = __hmCreateRequire(import.meta.url);" },
	// Error and class names stay as written: reports and tests name them.
	keepNames: true,
	legalComments: 'none',
	logLevel: 'warning',
};
