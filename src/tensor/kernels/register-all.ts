/**
 * Every wasm patch kernel and gradient override, listed once (spec 02 "Registries"). Add a
 * kernel by adding its config here; `test/tensor/kernel-parity.test.ts` requires a parity
 * case for every entry.
 *
 * Registration happens after the wasm backend has initialised, so the stock kernels this
 * module captures (and the patches delegate to) have already run their `setupFunc`.
 */
import {
  getGradient,
  getKernel,
  registerGradient,
  registerKernel,
  unregisterGradient,
  unregisterKernel,
  type GradConfig,
  type KernelConfig,
} from '@tensorflow/tfjs-core';
import { batchMatMulGradPatch } from './batch-mat-mul-grad.js';
import { batchMatMulPatch } from './batch-mat-mul.js';
import { conv2dBackpropFilterPatch } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputPatch } from './conv2d-backprop-input.js';
import { depthwiseConv2dBackpropFilterPatch } from './depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dBackpropInputPatch } from './depthwise-conv2d-backprop-input.js';
import { gatherV2Patch } from './gather-v2.js';
import { maxPoolGradPatch } from './max-pool-grad.js';
import { oneHotPatch } from './one-hot.js';
import { sumPatch } from './sum.js';
import { transposePatch } from './transpose.js';
import type { PatchGradientConfig, PatchKernelConfig } from './patch-kernel.js';
import { unsortedSegmentSumGradPatch } from './unsorted-segment-sum-grad.js';
import { unsortedSegmentSumPatch } from './unsorted-segment-sum.js';
import { WASM } from './wasm-kernel-utils.js';

/** Every wasm patch kernel, in registration order. */
export const PATCH_KERNELS: readonly PatchKernelConfig[] = [
  conv2dBackpropFilterPatch,
  unsortedSegmentSumPatch,
  depthwiseConv2dBackpropInputPatch,
  depthwiseConv2dBackpropFilterPatch,
  batchMatMulPatch,
  conv2dBackpropInputPatch,
  maxPoolGradPatch,
  gatherV2Patch,
  oneHotPatch,
  sumPatch,
  transposePatch,
];

/** Every gradient override. */
export const PATCH_GRADIENTS: readonly PatchGradientConfig[] = [unsortedSegmentSumGradPatch, batchMatMulGradPatch];

/** What registration replaced, so it can be undone. */
interface Installed {
  readonly stockKernels: ReadonlyMap<string, KernelConfig | undefined>;
  readonly stockGradients: ReadonlyMap<string, GradConfig | undefined>;
}

let installed: Installed | undefined;

/** Whether the patch kernels are currently registered. */
export function patchKernelsRegistered(): boolean {
  return installed !== undefined;
}

/**
 * Registers every patch kernel for `wasm` and every gradient override. Idempotent. Call
 * only after the wasm backend has initialised.
 */
export function registerPatchKernels(): void {
  if (installed !== undefined) return;
  const stockKernels = new Map<string, KernelConfig | undefined>();
  const stockGradients = new Map<string, GradConfig | undefined>();
  for (const patch of PATCH_KERNELS) {
    const stock = getKernel(patch.kernelName, WASM);
    stockKernels.set(patch.kernelName, stock);
    if (stock !== undefined) unregisterKernel(patch.kernelName, WASM);
    registerKernel({ kernelName: patch.kernelName, backendName: WASM, kernelFunc: patch.create(stock?.kernelFunc) });
  }
  for (const patch of PATCH_GRADIENTS) {
    const stock = getGradient(patch.kernelName);
    stockGradients.set(patch.kernelName, stock);
    if (stock !== undefined) unregisterGradient(patch.kernelName);
    registerGradient(patch.gradient);
  }
  installed = { stockKernels, stockGradients };
}

/**
 * Restores the stock registrations (missing kernels become missing again). Used by the
 * benchmark and the "stock path" comparisons; idempotent.
 */
export function unregisterPatchKernels(): void {
  if (installed === undefined) return;
  for (const [name, stock] of installed.stockKernels) {
    unregisterKernel(name, WASM);
    if (stock !== undefined) registerKernel(stock);
  }
  for (const [name, stock] of installed.stockGradients) {
    unregisterGradient(name);
    if (stock !== undefined) registerGradient(stock);
  }
  installed = undefined;
}
