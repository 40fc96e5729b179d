/**
 * `UnsortedSegmentSum` for wasm — **missing** in tfjs-backend-wasm 4.22, so any GNN fails
 * even at inference, and every `gather` gradient needs it (reference
 * `tensor-backend-measurements.md` §2; upstream tensorflow/tfjs#8082). The cpu kernel is
 * O(segments·E·D): 138 s for one call into 1600 segments.
 *
 * A single JS pass on the wasm heap, O(E·D), with TF semantics: ids outside
 * `[0, numSegments)` are dropped. Sums accumulate in float64 and are rounded once, like the
 * cpu backend's reduction, so results agree with cpu to float32 rounding.
 */
import { UnsortedSegmentSum, util, type KernelFunc, type TensorInfo, type UnsortedSegmentSumAttrs } from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import { asKernelFunc, heap, readIndices, type WasmKernelArgs } from './wasm-kernel-utils.js';
import { ErrorCode, EsperError } from '../../core/index.js';

function unsortedSegmentSum({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const segmentIds = inputs['segmentIds'] as TensorInfo;
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new EsperError(ErrorCode.TENSOR_KERNEL_UNSUPPORTED, `UnsortedSegmentSum on wasm: unsupported dtype ${x.dtype}`, {
      details: { kernelName: UnsortedSegmentSum, dtype: x.dtype },
    });
  }
  const idsRank = segmentIds.shape.length;
  const outShape = [numSegments, ...x.shape.slice(idsRank)];
  const inner = util.sizeFromShape(x.shape.slice(idsRank));
  const out = backend.makeOutput(outShape, x.dtype);
  const acc = new Float64Array(numSegments * inner);
  const ids = readIndices(backend, segmentIds);
  const src = heap(backend, x);
  for (let i = 0; i < ids.length; i += 1) {
    const id = ids[i] as number;
    if (id < 0 || id >= numSegments) continue;
    const s = i * inner;
    const d = id * inner;
    for (let k = 0; k < inner; k += 1) acc[d + k] = (acc[d + k] as number) + (src[s + k] as number);
  }
  // Take the output view last: nothing is allocated after it.
  heap(backend, out).set(acc);
  return out;
}

/** Registry entry for the heap-loop `UnsortedSegmentSum`. */
export const unsortedSegmentSumPatch: PatchKernelConfig = {
  kernelName: UnsortedSegmentSum,
  kind: PatchKind.MISSING,
  answers: 'UnsortedSegmentSum is not registered for wasm: GNNs fail even at inference, gather gradients fail (reference §2).',
  create: (): KernelFunc => asKernelFunc(unsortedSegmentSum),
};
