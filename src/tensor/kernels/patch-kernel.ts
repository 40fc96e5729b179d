/**
 * The shape of one entry in the wasm patch registry (spec 02 "Registries": one config
 * object per pluggable piece, all listed in `register-all.ts`).
 */
import type { GradConfig, KernelFunc } from '@tensorflow/tfjs-core';

/** Why a kernel is patched. */
export const PatchKind = {
  /** tfjs-backend-wasm 4.22 registers no kernel under this name. */
  MISSING: 'missing',
  /** A stock wasm kernel exists but runs a slow scalar path; the patch replaces it. */
  REPLACEMENT: 'replacement',
} as const;

/** Union of {@link PatchKind} values. */
export type PatchKind = (typeof PatchKind)[keyof typeof PatchKind];

/** One patch kernel for the `wasm` backend. */
export interface PatchKernelConfig {
  /** The tfjs kernel name (`'Conv2DBackpropFilter'`, …). */
  readonly kernelName: string;
  /** Whether the stock kernel is missing or merely slow. */
  readonly kind: PatchKind;
  /** The reference finding this patch answers (for the registry description and docs). */
  readonly answers: string;
  /**
   * Builds the kernelFunc. `stock` is the kernel registered for `wasm` before the patch
   * (undefined for a missing kernel); patches delegate to it for cases they do not
   * accelerate.
   */
  readonly create: (stock: KernelFunc | undefined) => KernelFunc;
}

/** One gradient override (gradients are backend-independent in tfjs). */
export interface PatchGradientConfig {
  /** The kernel whose gradient is overridden. */
  readonly kernelName: string;
  /** The reference finding this override answers. */
  readonly answers: string;
  /** The gradient config to register. */
  readonly gradient: GradConfig;
}
