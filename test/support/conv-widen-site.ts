/**
 * A conv WIDEN site as Tolaria's CNN host declares it (3×3 same conv, ReLU, 2×2 pool), for
 * tests that need one without building a host: into a 3×3 same conv when `outputShape` is
 * `[h, w, c]`, into a dense block after a flatten when it is `[units]`.
 */
import { create } from '@bufbuild/protobuf';
import {
  BlockActivation,
  ConvWidenPathSchema,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  SquareWindowSchema,
  WindowPadding,
  type SeedSiteDescriptor,
} from '../../src/leyline/index.js';

const window = (size: number, stride: number, padding: WindowPadding) => create(SquareWindowSchema, { size, stride, padding });

/** A conv WIDEN site with input `shape` `[h, w, c]` contributing `outputShape`. */
export function convWidenSite(
  shape: readonly number[],
  outputShape: readonly number[],
  siteId = `widen-conv-${shape.join('x')}`,
): SeedSiteDescriptor {
  return create(SeedSiteDescriptorSchema, {
    siteId,
    kind: SeedSiteKind.WIDEN,
    shape: [...shape],
    outputShape: [...outputShape],
    convWiden: create(ConvWidenPathSchema, {
      conv: window(3, 1, WindowPadding.SAME),
      activation: BlockActivation.RELU,
      pool: window(2, 2, WindowPadding.VALID),
      ...(outputShape.length === 3 ? { nextConv: window(3, 1, WindowPadding.SAME) } : {}),
    }),
  });
}
