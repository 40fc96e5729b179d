/**
 * The files `report.html` inlines so that it needs no network: uPlot's script and style
 * from the `uplot` npm package, resolved from this module (so it works from `src/` under
 * tsx and from `dist/` after `npm run build`) and read once per process.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { describeError, ErrorCode, EsperError } from '../../core/index.js';

/** uPlot's files as text. */
export interface ReportAssets {
  readonly uplotJs: string;
  readonly uplotCss: string;
}

/** The package paths of the inlined files. */
export const REPORT_ASSET_PATHS = Object.freeze({
  uplotJs: 'uplot/dist/uPlot.iife.min.js',
  uplotCss: 'uplot/dist/uPlot.min.css',
});

let cached: Promise<ReportAssets> | undefined;

/**
 * uPlot's script and style, read on first use.
 * @throws EsperError `NISSA_REPORT_ASSET_MISSING` naming the file that could not be resolved or read
 */
export function loadReportAssets(): Promise<ReportAssets> {
  cached ??= (async () => ({
    uplotJs: await readAsset(REPORT_ASSET_PATHS.uplotJs),
    uplotCss: await readAsset(REPORT_ASSET_PATHS.uplotCss),
  }))();
  // A failed read is not cached: the next report tries again.
  cached.catch(() => (cached = undefined));
  return cached;
}

async function readAsset(specifier: string): Promise<string> {
  try {
    return await readFile(createRequire(import.meta.url).resolve(specifier), 'utf8');
  } catch (error) {
    throw new EsperError(
      ErrorCode.NISSA_REPORT_ASSET_MISSING,
      `report.html needs ${specifier} (npm package uplot): ${describeError(error)}`,
      {
        cause: error,
        details: { asset: specifier },
      },
    );
  }
}
