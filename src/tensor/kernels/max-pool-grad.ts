/**
 * Fast `MaxPoolGrad` for wasm: a JS loop on the wasm heap. The stock kernel took 81 ms on
 * [64,32,32,32] 2×2 (with its forward) against 32–40 ms for the heap loop (reference
 * `tensor-backend-measurements.md` §1 per-kernel table).
 *
 * Semantics match the cpu backend exactly: each output's gradient goes to the *first*
 * strictly-greatest input of its window in row-major order (padding never wins; a window
 * of NaN/−∞ routes nothing). Channels are innermost in NHWC, so the loop keeps one running
 * maximum per channel and walks each window once.
 */
import { backend_util, MaxPoolGrad, type KernelFunc, type MaxPoolGradAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import { asKernelFunc, heapF32, runKernelFunc, zeros, type WasmKernelArgs } from './wasm-kernel-utils.js';

function create(stock: KernelFunc | undefined): KernelFunc {
  return asKernelFunc(({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo => {
    const dy = inputs['dy'] as TensorInfo;
    const input = inputs['input'] as TensorInfo;
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') {
      if (stock === undefined) throw new Error('MaxPoolGrad: no stock kernel to delegate to');
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
    const dx = zeros(backend, input.shape);
    const x = heapF32(backend, input);
    const g = heapF32(backend, dy);
    const out = heapF32(backend, dx);
    const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, strideHeight, strideWidth } = info;
    const fh = info.effectiveFilterHeight;
    const fw = info.effectiveFilterWidth;
    const padTop = info.padInfo.top;
    const padLeft = info.padInfo.left;
    const best = new Float32Array(ch);
    const bestAt = new Int32Array(ch);
    for (let b = 0; b < batchSize; b += 1) {
      for (let yr = 0; yr < outHeight; yr += 1) {
        const r0 = yr * strideHeight - padTop;
        const rMin = Math.max(0, r0);
        const rMax = Math.min(inHeight, r0 + fh);
        for (let yc = 0; yc < outWidth; yc += 1) {
          const c0 = yc * strideWidth - padLeft;
          const cMin = Math.max(0, c0);
          const cMax = Math.min(inWidth, c0 + fw);
          if (rMin >= rMax || cMin >= cMax) continue;
          // Seed the running maximum with the window's first tap (no fill pass); −∞/NaN
          // seeds are marked "none yet" so that only a strictly greater value wins.
          const first = ((b * inHeight + rMin) * inWidth + cMin) * ch;
          for (let d = 0; d < ch; d += 1) {
            const v = x[first + d] as number;
            const seeded = v > Number.NEGATIVE_INFINITY;
            best[d] = seeded ? v : Number.NEGATIVE_INFINITY;
            bestAt[d] = seeded ? first + d : -1;
          }
          for (let r = rMin; r < rMax; r += 1) {
            for (let c = r === rMin ? cMin + 1 : cMin; c < cMax; c += 1) {
              const base = ((b * inHeight + r) * inWidth + c) * ch;
              for (let d = 0; d < ch; d += 1) {
                const v = x[base + d] as number;
                if (v > (best[d] as number)) {
                  best[d] = v;
                  bestAt[d] = base + d;
                }
              }
            }
          }
          const dyBase = ((b * outHeight + yr) * outWidth + yc) * ch;
          for (let d = 0; d < ch; d += 1) {
            const at = bestAt[d] as number;
            if (at >= 0) out[at] = (out[at] as number) + (g[dyBase + d] as number);
          }
        }
      }
    }
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
