/**
 * Gradient override for `BatchMatMul` that reduces over broadcast batch dimensions.
 *
 * Why: tfjs 4.22's stock gradient returns the per-batch gradient unreduced, so a shared
 * operand — the projection weight of `[B,T,D]·[D,E]`, the usual way to write attention —
 * fails with "The gradient of input 'b' has shape '3,8,8', which does not match the shape
 * of the input '8,8'" (found by `test/tensor/gradient-parity.test.ts`; the reference's
 * "keep matmuls 2-D" watch-out, §7.5, works around the same gap). The products are the
 * stock ones; each is then summed over the axes its operand was broadcast along and
 * reshaped to the operand's shape, as tfjs does for elementwise ops.
 */
import {
  backend_util,
  BatchMatMul,
  matMul,
  reshape,
  sum,
  util,
  type GradConfig,
  type NamedAttrMap,
  type Tensor,
} from '@tensorflow/tfjs-core';
import type { PatchGradientConfig } from './patch-kernel.js';

/** Sums `grad` over the batch axes `input` was broadcast along, then takes its shape. */
function reduceToShape(grad: Tensor, inputShape: readonly number[]): Tensor {
  if (util.arraysEqual(grad.shape, [...inputShape])) return grad;
  const gradBatch = grad.shape.slice(0, -2);
  const inputBatch = inputShape.slice(0, -2);
  const axes = backend_util.getReductionAxes(inputBatch, gradBatch);
  const summed = axes.length > 0 ? sum(grad, axes) : grad;
  return reshape(summed, [...inputShape]);
}

const gradient: GradConfig = {
  kernelName: BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const g = dy as Tensor;
    const a = saved[0] as Tensor;
    const b = saved[1] as Tensor;
    const transposeA = attrs?.['transposeA'] === true;
    const transposeB = attrs?.['transposeB'] === true;
    // The same products as the stock gradient, case by case.
    const da = (): Tensor =>
      !transposeA
        ? transposeB
          ? matMul(g, b, false, false)
          : matMul(g, b, false, true)
        : transposeB
          ? matMul(b, g, true, true)
          : matMul(b, g, false, true);
    const db = (): Tensor =>
      !transposeA
        ? transposeB
          ? matMul(g, a, true, false)
          : matMul(a, g, true, false)
        : transposeB
          ? matMul(g, a, true, true)
          : matMul(a, g, false, false);
    return {
      a: () => reduceToShape(da(), a.shape),
      b: () => reduceToShape(db(), b.shape),
    };
  },
};

/** Registry entry for the broadcast-aware `BatchMatMul` gradient. */
export const batchMatMulGradPatch: PatchGradientConfig = {
  kernelName: BatchMatMul,
  answers:
    "The stock BatchMatMul gradient does not reduce over broadcast batch dims: [B,T,D]·[D,E] cannot train (found here; reference §7.5 'keep matmuls 2-D').",
  gradient,
};
