/**
 * Shape rules of `SeedSiteDescriptor` that every reader shares: what a seed at a site
 * returns. DENSE and CONV seeds return the site's activation shape (`output_shape` empty);
 * a WIDEN seed returns a contribution to the next dense block's pre-activation, shaped
 * `output_shape`.
 */
import { SeedSiteKind, type SeedSiteDescriptor } from './gen/esper/leyline/v1/state_pb.js';

/**
 * Per-example shape (batch excluded) of what a seed module at `site` returns: the site's
 * `output_shape` when set, else its `shape`.
 */
export function siteOutputShape(site: Pick<SeedSiteDescriptor, 'shape' | 'outputShape'>): readonly number[] {
  return site.outputShape.length > 0 ? site.outputShape : site.shape;
}

/** True when `site` is a WIDEN site (its seed contributes to the next block's pre-activation). */
export function isWidenSite(site: Pick<SeedSiteDescriptor, 'kind'>): boolean {
  return site.kind === SeedSiteKind.WIDEN;
}
