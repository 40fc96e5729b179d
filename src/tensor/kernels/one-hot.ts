/**
 * Correct `OneHot` for wasm. The stock kernel writes int32 bit patterns whatever the
 * requested dtype, so `tf.oneHot(idx, depth, 1, 0, 'float32')` returns 1.4e-45 instead of 1
 * (reference `tensor-backend-measurements.md` §2, "Bug found"). Replacing the kernel makes
 * every `tf.oneHot` in the process safe, not only the calls that remember the workaround.
 *
 * A JS fill on the wasm heap with TF semantics: indices outside `[0, depth)` give an
 * all-`offValue` row.
 */
import { OneHot, type KernelFunc, type OneHotAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { PatchKind, type PatchKernelConfig } from './patch-kernel.js';
import { asKernelFunc, heap, readIndices, type WasmKernelArgs } from './wasm-kernel-utils.js';

function oneHot({ inputs, attrs, backend }: WasmKernelArgs): TensorInfo {
  const indices = inputs['indices'] as TensorInfo;
  const { depth, onValue, offValue, dtype } = attrs as unknown as OneHotAttrs;
  const out = backend.makeOutput([...indices.shape, depth], dtype);
  const ids = readIndices(backend, indices);
  const dst = heap(backend, out);
  dst.fill(offValue);
  for (let i = 0; i < ids.length; i += 1) {
    const id = ids[i] as number;
    if (id >= 0 && id < depth) dst[i * depth + id] = onValue;
  }
  return out;
}

/** Registry entry for the dtype-correct `OneHot`. */
export const oneHotPatch: PatchKernelConfig = {
  kernelName: OneHot,
  kind: PatchKind.REPLACEMENT,
  answers: "tf.oneHot(..., 'float32') returns int32 bit patterns on wasm (reference §2, bug found).",
  create: (): KernelFunc => asKernelFunc(oneHot),
};
