// The shipped recipes: in-tree drivers that exist without hardware in
// Debian's kernels, each a way to get an mmap-able fd that needs more than
// open().  A user's own recipe is an ES module exporting the same shape
// (context.ts; README "hybridmem check").
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sndDummy } from './alsa.js';
import type { Recipe } from './context.js';
import { dmaHeapSystem, udmabuf } from './dmabuf.js';
import { vgem, vgemDmabuf } from './drm.js';
import { vfb } from './fbdev.js';
import { ioUring } from './io-uring.js';
import { packetRx, packetTx } from './packet.js';
import { perf } from './perf.js';
import { vivid } from './v4l2.js';

export type { Recipe, RecipeContext } from './context.js';
export { recipeContext } from './context.js';

export const RECIPES: readonly Recipe[] = [vgem, vgemDmabuf, vfb, vivid, sndDummy, udmabuf, dmaHeapSystem, packetRx, packetTx, ioUring, perf];

/** A shipped recipe by name, or a user's from an ES module file. */
export async function loadRecipe(nameOrFile: string): Promise<Recipe> {
	const shipped = RECIPES.find((r) => r.name === nameOrFile);
	if (shipped) return shipped;
	if (!/\.(m?js)$/.test(nameOrFile) || !existsSync(nameOrFile))
		throw Object.assign(new Error(`unknown recipe ${nameOrFile}; shipped: ${RECIPES.map((r) => r.name).join(', ')}; or give the path of an ES module exporting a recipe`), { code: 'ERR_UNKNOWN_RECIPE' });
	const mod = (await import(pathToFileURL(path.resolve(nameOrFile)).href)) as { default?: Recipe; recipe?: Recipe };
	const r = mod.default ?? mod.recipe;
	if (!r || typeof r.open !== 'function') throw Object.assign(new Error(`${nameOrFile} exports no recipe (a default export or \`recipe\` with an open() function)`), { code: 'ERR_UNKNOWN_RECIPE' });
	return { ...r, name: r.name ?? path.basename(nameOrFile), description: r.description ?? nameOrFile };
}
