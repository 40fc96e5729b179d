/**
 * Shape rules of `SeedSiteDescriptor` that every reader shares: what a seed at a site
 * returns. DENSE and CONV seeds return the site's activation shape (`output_shape` empty);
 * a WIDEN seed returns a contribution to the next weighted block's pre-activation, shaped
 * `output_shape`. A WIDEN site on a conv block also carries the path its new channels take
 * (`conv_widen`); {@link convWidenMaps} gives the spatial sizes along it.
 */
import { BlendMode } from './gen/esper/leyline/v1/command_pb.js';
import {
  SeedSiteKind,
  WindowPadding,
  type ConvWidenPath,
  type SeedSiteDescriptor,
  type SquareWindow,
} from './gen/esper/leyline/v1/state_pb.js';

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

const WIDEN_BLEND_MODES: readonly BlendMode[] = Object.freeze([BlendMode.RESIDUAL]);
const BLEND_MODES: readonly BlendMode[] = Object.freeze([BlendMode.CONVEX, BlendMode.RESIDUAL, BlendMode.CHANNEL, BlendMode.CONFIDENCE]);

/**
 * The blend modes a seed at `site` may blend with: RESIDUAL only at a WIDEN site (its units
 * add to the next layer's pre-activation, which no other mode can scale down), every mode
 * elsewhere. Kasmina refuses any other (`widen_requires_residual`); a controller chooses
 * among these.
 */
export function blendModesAt(site: Pick<SeedSiteDescriptor, 'kind'>): readonly BlendMode[] {
  return isWidenSite(site) ? WIDEN_BLEND_MODES : BLEND_MODES;
}

/**
 * Output length of `window` sliding along an axis of `input` pixels (TensorFlow's rule:
 * SAME `⌈n / stride⌉`, VALID `⌈(n − size + 1) / stride⌉`); `undefined` when the window is
 * malformed (size or stride 0, padding unspecified) or the output is empty.
 */
export function windowedLength(input: number, window: SquareWindow): number | undefined {
  if (!(window.size >= 1 && window.stride >= 1 && input >= 1)) return undefined;
  let length: number;
  if (window.padding === WindowPadding.SAME) length = Math.ceil(input / window.stride);
  else if (window.padding === WindowPadding.VALID) length = Math.ceil((input - window.size + 1) / window.stride);
  else return undefined;
  return length >= 1 ? length : undefined;
}

/** Spatial sizes `[height, width]` along a conv WIDEN site's {@link ConvWidenPath}. */
export interface ConvWidenMaps {
  /** The widened convolution's output: the new channels' map. */
  readonly widened: readonly [number, number];
  /** After the pool (the widened map when there is none): what the next block's weights read. */
  readonly pooled: readonly [number, number];
  /** The next convolution's output; `undefined` when the next block is dense (after a flatten). */
  readonly next: readonly [number, number] | undefined;
}

/**
 * The maps along `site`'s conv WIDEN path, from its `[h, w, c]` input; `undefined` when the
 * site has no conv path, its input is not rank 3, or a window of the path is malformed or
 * empties the map.
 */
export function convWidenMaps(site: Pick<SeedSiteDescriptor, 'shape' | 'convWiden'>): ConvWidenMaps | undefined {
  const path: ConvWidenPath | undefined = site.convWiden;
  if (path?.conv === undefined || site.shape.length !== 3) return undefined;
  const slide = (map: readonly [number, number] | undefined, window: SquareWindow): [number, number] | undefined => {
    if (map === undefined) return undefined;
    const [h, w] = [windowedLength(map[0], window), windowedLength(map[1], window)];
    return h === undefined || w === undefined ? undefined : [h, w];
  };
  const widened = slide([site.shape[0] as number, site.shape[1] as number], path.conv);
  const pooled = path.pool === undefined ? widened : slide(widened, path.pool);
  if (widened === undefined || pooled === undefined) return undefined;
  if (path.nextConv === undefined) return { widened, pooled, next: undefined };
  const next = slide(pooled, path.nextConv);
  return next === undefined ? undefined : { widened, pooled, next };
}
