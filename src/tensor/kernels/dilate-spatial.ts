/**
 * Zero insertion ("dilating" dy by the forward stride), shared by the input-gradient
 * patches of `Conv2DBackpropInput` and `DepthwiseConv2dNativeBackpropInput`.
 *
 * Why: the reference prototype's fast input gradient covered stride 1 only and fell back
 * to the stock scalar loop otherwise (reference `tensor-backend-measurements.md` §2,
 * "Limits"). Spreading dy onto a stride-1 grid turns every strided input gradient into a
 * stride-1 convolution the XNNPACK kernels run fast. It is a JS copy on the wasm heap:
 * O(|dy|) work, negligible beside the convolution.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapF32, zeros } from './wasm-kernel-utils.js';

/**
 * Returns `[N, (OH−1)·sH+1, (OW−1)·sW+1, C]` with `dy[n,oh,ow,:]` at `(oh·sH, ow·sW)` and
 * zeros elsewhere. The caller frees the result.
 */
export function dilateSpatial(backend: BackendWasm, dy: TensorInfo, strideHeight: number, strideWidth: number): TensorInfo {
  const [n, oh, ow, c] = dy.shape as [number, number, number, number];
  const lh = (oh - 1) * strideHeight + 1;
  const lw = (ow - 1) * strideWidth + 1;
  const out = zeros(backend, [n, lh, lw, c]);
  // Views after the last allocation (malloc may grow and detach the heap).
  const src = heapF32(backend, dy);
  const dst = heapF32(backend, out);
  for (let b = 0; b < n; b += 1) {
    for (let r = 0; r < oh; r += 1) {
      const srcRow = (b * oh + r) * ow * c;
      const dstRow = (b * lh + r * strideHeight) * lw * c;
      for (let q = 0; q < ow; q += 1) {
        const s = srcRow + q * c;
        const d = dstRow + q * strideWidth * c;
        if (c >= 16) {
          dst.set(src.subarray(s, s + c), d);
        } else {
          for (let k = 0; k < c; k += 1) dst[d + k] = src[s + k] as number;
        }
      }
    }
  }
  return out;
}
