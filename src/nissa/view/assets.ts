/**
 * The live view's static files, read once: uPlot's build from its npm package (no CDN), and
 * the page's own script and stylesheet from `assets/nissa/` at the repository root. The
 * directory is found relative to this module, three levels up from both
 * `src/nissa/view/` (tsx, vitest) and `dist/nissa/view/` (after `npm run build`).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** One served file. */
export interface ViewAsset {
  /** Path under the view's `/assets/`. */
  readonly name: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** Where the page's own script and stylesheet live. */
export const VIEW_ASSETS_DIR = fileURLToPath(new URL('../../../assets/nissa/', import.meta.url));

/** Reads every asset the page loads; throws when one is missing (a broken install). */
export function loadViewAssets(): readonly ViewAsset[] {
  const require = createRequire(import.meta.url);
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  return [
    { name: 'uPlot.iife.min.js', contentType: js, body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')) },
    { name: 'uPlot.min.css', contentType: css, body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')) },
    { name: 'live-view.js', contentType: js, body: readFileSync(`${VIEW_ASSETS_DIR}live-view.js`) },
    { name: 'live-view.css', contentType: css, body: readFileSync(`${VIEW_ASSETS_DIR}live-view.css`) },
  ];
}
