/** Forge jobs: a blueprint compiled for one site, keyed by blueprint and Urza site key. */
import {
  BlockActivation,
  SeedSiteKind,
  WindowPadding,
  type ConvWidenPath,
  type SeedSiteDescriptor,
  type SquareWindow,
} from '../leyline/index.js';
import type { KarnCatalog } from '../karn/index.js';
import { sha256Hex } from './artifact.js';

/** One forge job: a blueprint compiled for one site. */
export interface ForgeJob {
  readonly blueprintId: string;
  readonly site: SeedSiteDescriptor;
  /** Urza site key of the artifact. @default {@link siteKeyOf}(site) */
  readonly siteKey?: string;
}

/** A {@link ForgeJob} with its site key filled in. */
export type ResolvedForgeJob = Required<ForgeJob>;

/**
 * Urza site key of a site: `<kind>:<d1>x<d2>…`, e.g. `dense:256`, `conv:16x16x32`, with
 * `->` and the output shape where the site has one (`widen:784->256`), and `;` and the conv
 * path of a conv WIDEN site (`widen:14x14x4->10;conv3s1same-relu-pool2s2valid-dense`: two
 * sites with the same shapes but other kernels or pools need other artifacts).
 */
export function siteKeyOf(site: SeedSiteDescriptor): string {
  const kind = (SeedSiteKind[site.kind] as string | undefined)?.toLowerCase() ?? `kind${site.kind}`;
  const output = site.outputShape.length > 0 ? `->${site.outputShape.join('x')}` : '';
  const path = site.convWiden === undefined ? '' : `;${convPathKey(site.convWiden)}`;
  return `${kind}:${site.shape.join('x')}${output}${path}`;
}

function convPathKey(path: ConvWidenPath): string {
  const window = (name: string, w: SquareWindow): string =>
    `${name}${w.size}s${w.stride}${(WindowPadding[w.padding] as string | undefined)?.toLowerCase() ?? w.padding}`;
  const parts = [
    path.conv === undefined ? 'conv?' : window('conv', path.conv),
    (BlockActivation[path.activation] as string | undefined)?.toLowerCase() ?? `activation${path.activation}`,
    ...(path.pool === undefined ? [] : [window('pool', path.pool)]),
    path.nextConv === undefined ? 'dense' : window('conv', path.nextConv),
  ];
  return parts.join('-');
}

/** Every descriptor of `catalog` × every site in `sites` that its family fits, in catalog order. */
export function forgeJobsFor(catalog: KarnCatalog, sites: readonly SeedSiteDescriptor[]): ForgeJob[] {
  const jobs: ForgeJob[] = [];
  for (const descriptor of catalog.list()) {
    const family = catalog.familyOf(descriptor.blueprintId);
    for (const site of sites) if (family.fits(site)) jobs.push({ blueprintId: descriptor.blueprintId, site, siteKey: siteKeyOf(site) });
  }
  return jobs;
}

/** `job` with its default site key. */
export function resolveJob(job: ForgeJob): ResolvedForgeJob {
  return { blueprintId: job.blueprintId, site: job.site, siteKey: job.siteKey ?? siteKeyOf(job.site) };
}

/** The job's key in the WAL and in telemetry: `<blueprintId>@<siteKey>`. */
export function jobKey(job: { readonly blueprintId: string; readonly siteKey: string }): string {
  return `${job.blueprintId}@${job.siteKey}`;
}

/** The default weight seed of a job: a hash of its key, stable across runs. */
export function defaultJobSeed(job: ResolvedForgeJob): number {
  return Number.parseInt(sha256Hex(jobKey(job)).slice(0, 8), 16);
}
