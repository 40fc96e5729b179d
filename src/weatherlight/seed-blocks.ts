/**
 * The compute a grafted seed adds, as the study's FLOP blocks, read from its compiled
 * artifact's variables: a weight matrix `[in, out]` is a dense block (at a CONV site it mixes
 * channels at every position: a 1×1 convolution over the site's map), a kernel
 * `[k, k, in, out]` a convolution producing the site's map; vectors (biases, scales) add no
 * multiply–accumulates. A widen seed at a WIDEN site (`U [in, k]`, `V [k, out]`) thus adds
 * dense in×k and k×out. A channel-widening seed at a conv WIDEN site (`U [k, k, c, n]`,
 * `V [k', k', n, c']` or `[h'·w'·n, out]`) adds its convolution at the widened map and, in
 * build order, the next convolution at that block's map (or a dense block). Every weight is
 * counted as used once per example (per position at CONV sites), an upper bound for modules
 * that gate some of their weights away.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { convWidenMaps } from '../leyline/index.js';
import type { FlopBlock } from '../study/index.js';
import { siteOfArtifact, type ArtifactHeader } from '../tezzeret/index.js';

/** The FLOP blocks of the module an artifact holds, at the site it was compiled for. */
export function seedFlopBlocks(header: Pick<ArtifactHeader, 'blueprintId' | 'site' | 'variables'>): FlopBlock[] {
  const conv = header.site.kind === 'CONV';
  const [height = 1, width = 1] = header.site.shape;
  const maps = header.site.convWiden === undefined ? undefined : convWidenMaps(siteOfArtifact(header.site, header.blueprintId));
  // The maps the kernels produce, in build order: the site's own, or a conv WIDEN path's.
  const kernelMaps = maps === undefined ? [] : [maps.widened, ...(maps.next === undefined ? [] : [maps.next])];
  const blocks: FlopBlock[] = [];
  for (const variable of header.variables) {
    const shape = variable.shape;
    if (shape.length <= 1 || shape.some((d) => d === 0)) continue;
    if (shape.length === 4) {
      const [kh = 1, kw = 1, inputChannels = 1, outputChannels = 1] = shape;
      if (kh !== kw) {
        throw new EsperError(
          ErrorCode.INVALID_ARGUMENT,
          `${header.blueprintId}: variable ${variable.name} has a ${kh}×${kw} kernel; only square kernels are counted`,
          { details: { blueprintId: header.blueprintId, variable: variable.name, shape: shape.join('x') } },
        );
      }
      const [outputHeight, outputWidth] = kernelMaps.shift() ?? [height, width];
      blocks.push({ kind: 'conv2d', outputHeight, outputWidth, kernelSize: kh, inputChannels, outputChannels });
      continue;
    }
    // A matrix, or a higher-rank weight read as one: every leading dimension feeds the last.
    const outputUnits = shape[shape.length - 1] ?? 1;
    const inputUnits = shape.slice(0, -1).reduce((n, d) => n * d, 1);
    blocks.push(
      conv
        ? {
            kind: 'conv2d',
            outputHeight: height,
            outputWidth: width,
            kernelSize: 1,
            inputChannels: inputUnits,
            outputChannels: outputUnits,
          }
        : { kind: 'dense', inputUnits, outputUnits },
    );
  }
  return blocks;
}
