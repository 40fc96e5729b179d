/**
 * `Conv2DBackpropFilter` for wasm — **missing** in tfjs-backend-wasm 4.22, so CNN training
 * throws without it (reference `tensor-backend-measurements.md` §2; upstream
 * tensorflow/tfjs#8474). The cpu fallback takes ≈103 s per call on the benchmark CNN.
 *
 * Composition (reference §2, "Conv2DBackpropFilter via existing wasm kernels"): the filter
 * gradient `dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s+kh−pt, ow·s+kw−pl, ci] · dy[n,oh,ow,co]`
 * is itself a convolution with the batch axis as the contraction:
 * `Conv2D(input = xᵀ : [Ci,H,W,N], filter = dyᵀ : [OH,OW,N,Co], stride 1, dilation = s,
 * padding = the forward padding)` gives `[Ci, KH', KW', Co]` (KH' ≥ KH), sliced to KH×KW and
 * transposed to `[KH,KW,Ci,Co]`. Every step is a fast stock wasm kernel (Transpose, the
 * XNNPACK Conv2D, Slice); the im2col variant measured slower.
 */
import { Conv2DBackpropFilter, type Conv2DBackpropFilterAttrs, type KernelFunc } from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import {
  asKernelFunc,
  assertChannelsLast,
  conv2dExplicit,
  conv2dInfo,
  free,
  slice,
  transpose,
  type WasmKernelArgs,
} from './wasm-kernel-utils.js';
import type { TensorInfo } from '@tensorflow/tfjs-core';

function conv2dBackpropFilter({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  assertChannelsLast(Conv2DBackpropFilter, dataFormat);
  const info = conv2dInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false);
  const [kh, kw, ci, co] = filterShape;
  const { top, bottom, left, right } = info.padInfo;

  const xT = transpose(backend, x, [3, 1, 2, 0]);
  const dyT = transpose(backend, dy, [1, 2, 0, 3]);
  let grad: TensorInfo | undefined;
  let cropped: TensorInfo | undefined;
  try {
    // The forward stride becomes the dilation of the composed conv (its taps are dy's
    // output positions, spaced s apart in x).
    grad = conv2dExplicit(backend, xT, dyT, [1, 1], [info.strideHeight, info.strideWidth], [top, bottom, left, right]);
    const [, gh, gw] = grad.shape as [number, number, number, number];
    // VALID padding with a stride that does not divide the input leaves extra rows; they
    // are not filter taps.
    cropped = gh === kh && gw === kw ? grad : slice(backend, grad, [0, 0, 0, 0], [ci, kh, kw, co]);
    return transpose(backend, cropped, [1, 2, 0, 3]);
  } finally {
    free(backend, xT, dyT, grad);
    if (cropped !== grad) free(backend, cropped);
  }
}

/** Registry entry for the composed `Conv2DBackpropFilter`. */
export const conv2dBackpropFilterPatch: PatchKernelConfig = {
  kernelName: Conv2DBackpropFilter,
  kind: PatchKind.MISSING,
  answers: 'Conv2DBackpropFilter is not registered for wasm: CNN training throws (reference §2).',
  create: (): KernelFunc => asKernelFunc(conv2dBackpropFilter),
};
