/**
 * `DepthwiseConv2dNativeBackpropInput` for wasm — **missing** in tfjs-backend-wasm 4.22
 * (reference `tensor-backend-measurements.md` §2: "depthwise backprops … uncovered"), so a
 * seed with a depthwise or separable conv cannot train on wasm without it.
 *
 * Composition: with filter `[KH,KW,C,M]` and dy channel `c·M+q`,
 * `dx[n,h,w,c] = Σ_{kh,kw,q} dyUp[n, h+pt−kh·d, w+pl−kw·d, c·M+q] · W[kh,kw,c,q]`, i.e. a
 * stride-1 depthwise conv (multiplier 1) of dy — spread onto the input grid for stride > 1
 * — with the spatially reversed filter viewed as `[KH,KW,C·M,1]` (a free reshape, since
 * C·M is already contiguous), followed by a sum over the M multiplier channels. Explicit
 * padding larger than the filter is handled by cropping the full convolution.
 */
import {
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { dilateSpatial } from './dilate-spatial.js';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import {
  asKernelFunc,
  conv2dInfo,
  depthwiseConv2dExplicit,
  free,
  reshape,
  reverse,
  runWasmKernel,
  slice,
  type WasmKernelArgs,
} from './wasm-kernel-utils.js';

/** Padding of the stride-1 "full" conv over the spread dy, and the rows to crop first. */
interface FullPadding {
  readonly before: number;
  readonly after: number;
  /** Leading output rows to drop (explicit forward padding larger than the filter). */
  readonly offset: number;
}

/**
 * Ordinary geometry needs `before = effK − 1 − pad` and `after = in − spread + pad`; when
 * explicit forward padding exceeds the filter, `before` would be negative, so the conv
 * runs with `before = 0` and the first `offset` output rows are cropped instead.
 */
function fullPadding(inSize: number, outSize: number, stride: number, effectiveFilterSize: number, padBefore: number): FullPadding {
  const spread = (outSize - 1) * stride + 1;
  const ideal = effectiveFilterSize - 1 - padBefore;
  const before = Math.max(0, ideal);
  const offset = before - ideal;
  const after = Math.max(0, inSize + offset - spread - before + effectiveFilterSize - 1);
  return { before, after, offset };
}

function create(): KernelFunc {
  return asKernelFunc(({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo => {
    const dy = inputs['dy'] as TensorInfo;
    const filter = inputs['filter'] as TensorInfo;
    const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
    const info = conv2dInfo(inputShape, filter.shape, strides, dilations, pad, dimRoundingMode, true);
    const rows = fullPadding(info.inHeight, info.outHeight, info.strideHeight, info.effectiveFilterHeight, info.padInfo.top);
    const cols = fullPadding(info.inWidth, info.outWidth, info.strideWidth, info.effectiveFilterWidth, info.padInfo.left);
    const [kh, kw, c, m] = filter.shape as [number, number, number, number];
    const [n, h, w] = inputShape;
    const strided = info.strideHeight > 1 || info.strideWidth > 1;
    const spread = strided ? dilateSpatial(backend, dy, info.strideHeight, info.strideWidth) : dy;
    const flipped = reverse(backend, filter, [0, 1]);
    const perChannel = reshape(backend, flipped, [kh, kw, c * m, 1]);
    let full: TensorInfo | undefined;
    let conv: TensorInfo | undefined;
    let split: TensorInfo | undefined;
    try {
      full = depthwiseConv2dExplicit(
        backend,
        spread,
        perChannel,
        [1, 1],
        [info.dilationHeight, info.dilationWidth],
        [rows.before, rows.after, cols.before, cols.after],
      );
      const cropped = rows.offset > 0 || cols.offset > 0 || full.shape[1] !== h || full.shape[2] !== w;
      conv = cropped ? slice(backend, full, [0, rows.offset, cols.offset, 0], [n, h, w, c * m]) : full;
      if (cropped) free(backend, full);
      full = undefined;
      if (m === 1) {
        const out = conv;
        conv = undefined;
        return out;
      }
      split = reshape(backend, conv, [n, h, w, c, m]);
      return runWasmKernel(backend, 'Sum', { x: split }, { axis: [4], keepDims: false });
    } finally {
      free(backend, flipped, perChannel, full, conv, split);
      if (strided) free(backend, spread);
    }
  });
}

/** Registry entry for the composed `DepthwiseConv2dNativeBackpropInput`. */
export const depthwiseConv2dBackpropInputPatch: PatchKernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  kind: PatchKind.MISSING,
  answers: 'DepthwiseConv2dNativeBackpropInput is not registered for wasm: depthwise/separable seeds cannot train (reference §2).',
  create,
};
