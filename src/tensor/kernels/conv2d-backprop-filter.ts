/**
 * `Conv2DBackpropFilter` for wasm — **missing** in tfjs-backend-wasm 4.22, so CNN training
 * throws without it (reference `tensor-backend-measurements.md` §2; upstream
 * tensorflow/tfjs#8474). The cpu fallback takes ≈103 s per call on the benchmark CNN.
 *
 * The filter gradient `dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s+kh−pt, ow·s+kw−pl, ci] ·
 * dy[n,oh,ow,co]` is one matrix product: the transposed im2col of `x`, `[KH·KW·Ci,
 * N·OH·OW]` (zeros in the padding), times `dy` as `[N·OH·OW, Co]`, which is `dW` in HWIO
 * order. Our SIMD-free wasm module `im2col.wat` writes the columns straight into the
 * backend's memory; the product is the XNNPACK matmul (neither operand transposed).
 *
 * It replaced a composition that ran the gradient as an XNNPACK convolution with `dy` as
 * the filter: that convolution re-created its operator every call, and creating it (the
 * filter reordered and packed) took 25–30 ms of the 30–60 ms per call on the benchmark
 * CNN, against ≈ 10 ms to pack `dy` as matmul weights.
 */
import { BatchMatMul, Conv2DBackpropFilter, type Conv2DBackpropFilterAttrs, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { ErrorCode, EsperError } from '../../core/index.js';
import { IM2COL_WASM_BASE64 } from './im2col-wasm.gen.js';
import { heapOffset, ownWasmFunction } from './own-wasm.js';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import {
  asKernelFunc,
  assertChannelsLast,
  conv2dInfo,
  free,
  reshape,
  runWasmKernel,
  zeros,
  type WasmKernelArgs,
} from './wasm-kernel-utils.js';

type Im2colT = (
  input: number,
  out: number,
  n: number,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  pt: number,
  pl: number,
) => void;

function conv2dBackpropFilter({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  assertChannelsLast(Conv2DBackpropFilter, dataFormat);
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `${Conv2DBackpropFilter} on wasm takes float32 only`, {
      details: { x: x.dtype, dy: dy.dtype },
    });
  }
  const info = conv2dInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false);
  const [kh, kw, ci, co] = filterShape;
  const positions = info.batchSize * info.outHeight * info.outWidth;
  if (positions === 0 || kh * kw * ci === 0) return zeros(backend, filterShape);
  const columns = backend.makeOutput([1, kh * kw * ci, positions], 'float32');
  let dy3: TensorInfo | undefined;
  let product: TensorInfo | undefined;
  try {
    ownWasmFunction<Im2colT>(backend, IM2COL_WASM_BASE64, 'im2colT')(
      heapOffset(backend, x),
      heapOffset(backend, columns),
      info.batchSize,
      info.inHeight,
      info.inWidth,
      ci,
      info.outHeight,
      info.outWidth,
      kh,
      kw,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
    dy3 = reshape(backend, dy, [1, positions, co]);
    product = runWasmKernel(backend, BatchMatMul, { a: columns, b: dy3 }, { transposeA: false, transposeB: false });
    return reshape(backend, product, filterShape);
  } finally {
    free(backend, columns, dy3, product);
  }
}

/** Registry entry for the composed `Conv2DBackpropFilter`. */
export const conv2dBackpropFilterPatch: PatchKernelConfig = {
  kernelName: Conv2DBackpropFilter,
  kind: PatchKind.MISSING,
  answers: 'Conv2DBackpropFilter is not registered for wasm: CNN training throws (reference §2).',
  create: (): KernelFunc => asKernelFunc(conv2dBackpropFilter),
};
