/**
 * `DepthwiseConv2dNativeBackpropFilter` for wasm — **missing** in tfjs-backend-wasm 4.22
 * (reference `tensor-backend-measurements.md` §2).
 *
 * Composition, the depthwise analogue of the `Conv2DBackpropFilter` patch: fold the batch
 * into the channels so each (n, c) pair is one depthwise channel,
 * `x' = reshape(transpose(x, [1,2,0,3]), [1,H,W,N·C])` and
 * `f' = reshape(transpose(reshape(dy, [N,OH,OW,C,M]), [1,2,0,3,4]), [OH,OW,N·C,M])`; then a
 * depthwise conv with stride = the forward dilation and dilation = the forward stride
 * gives `[1,KH',KW',N·C·M]`, which is cropped to KH×KW and summed over N.
 */
import {
  DepthwiseConv2dNativeBackpropFilter,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import {
  asKernelFunc,
  conv2dInfo,
  depthwiseConv2dExplicit,
  free,
  reshape,
  runWasmKernel,
  slice,
  transpose,
  type WasmKernelArgs,
} from './wasm-kernel-utils.js';

function depthwiseConv2dBackpropFilter({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = conv2dInfo(x.shape, filterShape, strides, dilations, pad, dimRoundingMode, true);
  const [kh, kw, c, m] = filterShape;
  const [n, h, w] = x.shape as [number, number, number, number];
  const [, oh, ow] = dy.shape as [number, number, number, number];
  const { top, bottom, left, right } = info.padInfo;
  const owned: TensorInfo[] = [];
  const keep = <T extends TensorInfo>(t: T): T => {
    owned.push(t);
    return t;
  };
  try {
    const xT = keep(transpose(backend, x, [1, 2, 0, 3]));
    const xFolded = keep(reshape(backend, xT, [1, h, w, n * c]));
    const dy5 = keep(reshape(backend, dy, [n, oh, ow, c, m]));
    const dyT = keep(transpose(backend, dy5, [1, 2, 0, 3, 4]));
    const dyFilter = keep(reshape(backend, dyT, [oh, ow, n * c, m]));
    const grad = keep(
      depthwiseConv2dExplicit(
        backend,
        xFolded,
        dyFilter,
        [info.dilationHeight, info.dilationWidth],
        [info.strideHeight, info.strideWidth],
        [top, bottom, left, right],
      ),
    );
    const [, gh, gw] = grad.shape as [number, number, number, number];
    const cropped = gh === kh && gw === kw ? grad : keep(slice(backend, grad, [0, 0, 0, 0], [1, kh, kw, n * c * m]));
    const perBatch = keep(reshape(backend, cropped, [kh, kw, n, c * m]));
    const summed = keep(runWasmKernel(backend, 'Sum', { x: perBatch }, { axis: [2], keepDims: false }));
    return reshape(backend, summed, [kh, kw, c, m]);
  } finally {
    free(backend, ...owned);
  }
}

/** Registry entry for the composed `DepthwiseConv2dNativeBackpropFilter`. */
export const depthwiseConv2dBackpropFilterPatch: PatchKernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  kind: PatchKind.MISSING,
  answers: 'DepthwiseConv2dNativeBackpropFilter is not registered for wasm: depthwise/separable seeds cannot train (reference §2).',
  create: (): KernelFunc => asKernelFunc(depthwiseConv2dBackpropFilter),
};
