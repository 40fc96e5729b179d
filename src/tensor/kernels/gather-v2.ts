/**
 * Fast `GatherV2` for wasm: row copies on the wasm heap. The stock kernel took 27.8 ms for
 * [1600,64] by 6400 indices against 3.2 ms (reference `tensor-backend-measurements.md` §1
 * per-kernel table) — it is the GNN message-passing gather, and `gather`'s gradient is
 * `UnsortedSegmentSum`, so both sides of every GNN layer went through slow or missing
 * kernels.
 *
 * Semantics are the stock ones: out-of-range indices throw (as on cpu); `batchDims` and
 * any axis are supported through the same `[batch, outer, dim, slice]` flattening tfjs
 * uses.
 */
import { backend_util, GatherV2, util, type GatherV2Attrs, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import { asKernelFunc, heap, readIndices, runKernelFunc, type WasmKernelArgs } from './wasm-kernel-utils.js';
import { ErrorCode, EsperError } from '../../core/index.js';

/** Below this slice length a scalar loop beats `subarray` + `set`. */
const BLOCK_COPY_MIN = 16;

function create(stock: KernelFunc | undefined): KernelFunc {
  return asKernelFunc(({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo => {
    const x = inputs['x'] as TensorInfo;
    const indices = inputs['indices'] as TensorInfo;
    const { axis, batchDims } = attrs as unknown as GatherV2Attrs;
    if (x.dtype === 'string' || x.dtype === 'complex64') {
      return runKernelFunc(stock, backend, inputs, attrs, GatherV2);
    }
    const parsedAxis = util.parseAxisParam(axis, x.shape)[0] as number;
    const info = backend_util.segment_util.collectGatherOpShapeInfo(x as never, indices as never, parsedAxis, batchDims);
    const { batchSize, outerSize, dimSize, sliceSize, outputShape } = info;
    const indicesSize = util.sizeFromShape(indices.shape);
    const perBatch = indicesSize / batchSize;
    const out = backend.makeOutput(outputShape, x.dtype);
    if (util.sizeFromShape(outputShape) === 0) return out;
    const ids = readIndices(backend, indices);
    for (let i = 0; i < ids.length; i += 1) {
      const id = ids[i] as number;
      if (id < 0 || id >= dimSize) {
        backend.disposeData(out.dataId);
        throw new EsperError(ErrorCode.INVALID_ARGUMENT, `GatherV2: the index value ${id} is not in [0, ${dimSize - 1}]`, {
          details: { kernelName: GatherV2, index: id, dimSize },
        });
      }
    }
    const src = heap(backend, x);
    const dst = heap(backend, out);
    let d = 0;
    for (let b = 0; b < batchSize; b += 1) {
      for (let o = 0; o < outerSize; o += 1) {
        const srcBase = (b * outerSize + o) * dimSize * sliceSize;
        for (let i = 0; i < perBatch; i += 1) {
          const s = srcBase + (ids[b * perBatch + i] as number) * sliceSize;
          if (sliceSize >= BLOCK_COPY_MIN) {
            dst.set(src.subarray(s, s + sliceSize), d);
          } else {
            for (let k = 0; k < sliceSize; k += 1) dst[d + k] = src[s + k] as number;
          }
          d += sliceSize;
        }
      }
    }
    return out;
  });
}

/** Registry entry for the heap-copy `GatherV2`. */
export const gatherV2Patch: PatchKernelConfig = {
  kernelName: GatherV2,
  kind: PatchKind.REPLACEMENT,
  answers: 'GatherV2 is slow on wasm (27.8 ms vs 3.2 ms row copies, reference §1).',
  create,
};
