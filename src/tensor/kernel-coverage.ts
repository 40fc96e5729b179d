/**
 * Finds kernels a computation needs that a backend does not register — the check the
 * issue asks of every host model's (and later every blueprint's) gradient-parity test.
 *
 * Why two mechanisms: running on wasm stops at the *first* missing kernel ("Kernel 'X' not
 * registered for backend 'wasm'"); profiling the same computation on the cpu oracle, which
 * registers every kernel, lists *all* kernels it runs, forward and backward, so every gap
 * shows up in one pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { errorMessage } from '../core/index.js';
import { runOnTensorBackend, TensorBackendName } from './backend.js';

const NOT_REGISTERED = /Kernel '([^']+)' not registered for backend '([^']+)'/;

/** The kernel name in a tfjs "not registered" error, if `error` is one. */
export function missingKernelFromError(error: unknown): string | undefined {
  const message = errorMessage(error);
  return NOT_REGISTERED.exec(message)?.[1];
}

/**
 * Names of every kernel `fn` runs (forward and gradient), profiled on the cpu backend.
 * Tensors `fn` returns are disposed; an error `fn` throws is rethrown after profiling.
 */
export async function kernelsUsedBy(fn: () => tf.TensorContainer): Promise<string[]> {
  let failure: { error: unknown } | undefined;
  const info = await runOnTensorBackend(TensorBackendName.CPU, () =>
    tf.profile(() => {
      // A throw inside tf.profile would leave the engine in profiling mode for good.
      try {
        tf.dispose(tf.tidy(() => fn()));
      } catch (error) {
        failure = { error };
      }
      return [] as tf.Tensor[];
    }),
  );
  if (failure !== undefined) throw failure.error;
  // The profiler also lists custom-gradient ops (`softmaxCrossEntropy__op`): keep real kernels.
  const names = info.kernelNames.filter((name) => tf.getKernel(name, TensorBackendName.CPU) !== undefined);
  return [...new Set(names)].sort();
}

/** The subset of `kernelNames` with no kernel registered for `backendName`. */
export function unregisteredKernels(kernelNames: readonly string[], backendName: string = TensorBackendName.WASM): string[] {
  return kernelNames.filter((name) => tf.getKernel(name, backendName) === undefined);
}

/** Kernels `fn` needs that `backendName` lacks (profiled on cpu; see {@link kernelsUsedBy}). */
export async function findMissingKernels(fn: () => tf.TensorContainer, backendName: string = TensorBackendName.WASM): Promise<string[]> {
  return unregisteredKernels(await kernelsUsedBy(fn), backendName);
}
