/**
 * Fast `MaxPoolGrad` for wasm: our own wasm module (`max-pool-grad.wat`) on the backend's
 * memory, four channels at a time. The stock kernel took 81 ms on [64,32,32,32] 2×2 (with
 * its forward) against 32–40 ms for a JS loop on the heap (reference
 * `tensor-backend-measurements.md` §1 per-kernel table); that JS loop later took ≈ 11 ms
 * of a ≈ 140 ms CNN training step, at 5 ns an element.
 *
 * Semantics match the cpu backend exactly: each output's gradient goes to the *first*
 * strictly-greatest input of its window in row-major order (padding never wins; a window
 * of NaN/−∞ routes nothing), and overlapping windows add their gradients in the same order.
 */
import { backend_util, MaxPoolGrad, type KernelFunc, type MaxPoolGradAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import { MAX_POOL_GRAD_WASM_BASE64 } from './max-pool-grad-wasm.gen.js';
import { heapOffset, ownWasmFunction } from './own-wasm.js';
import { asKernelFunc, runKernelFunc, type WasmKernelArgs } from './wasm-kernel-utils.js';

type MaxPoolGradWasm = (
  x: number,
  dy: number,
  out: number,
  batch: number,
  h: number,
  w: number,
  ch: number,
  oh: number,
  ow: number,
  sh: number,
  sw: number,
  fh: number,
  fw: number,
  pt: number,
  pl: number,
) => void;

function create(stock: KernelFunc | undefined): KernelFunc {
  return asKernelFunc(({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo => {
    const dy = inputs['dy'] as TensorInfo;
    const input = inputs['input'] as TensorInfo;
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') {
      return runKernelFunc(stock, backend, inputs, attrs, MaxPoolGrad);
    }
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const dx = backend.makeOutput([...input.shape], 'float32');
    ownWasmFunction<MaxPoolGradWasm>(backend, MAX_POOL_GRAD_WASM_BASE64, 'maxPoolGrad')(
      heapOffset(backend, input),
      heapOffset(backend, dy),
      heapOffset(backend, dx),
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.strideHeight,
      info.strideWidth,
      info.effectiveFilterHeight,
      info.effectiveFilterWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
    return dx;
  });
}

/** Registry entry for the heap-loop `MaxPoolGrad`. */
export const maxPoolGradPatch: PatchKernelConfig = {
  kernelName: MaxPoolGrad,
  kind: PatchKind.REPLACEMENT,
  answers: 'MaxPoolGrad is slow on wasm (81 ms vs 32–40 ms heap loop, reference §1).',
  create,
};
