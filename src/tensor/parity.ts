/**
 * Parity checks of the wasm backend (with the patch kernels) against the pure-JS cpu
 * backend, the oracle of reference `tensor-backend-measurements.md` §7.3: per-kernel
 * outputs and whole-model parameter gradients. Used by the tensor tests and meant for the
 * host-model and blueprint gradient-parity tests that follow.
 *
 * The error measure is the reference's: `max|actual − expected| / max|expected|` over a
 * tensor (a relative error of the tensor, robust to individual near-zero entries).
 */
import * as tf from '@tensorflow/tfjs-core';
import { runOnTensorBackend, TensorBackendName } from './backend.js';
import { missingKernelFromError, kernelsUsedBy, unregisteredKernels } from './kernel-coverage.js';

/** Plain data for a tensor, so the same values can be built on either backend. */
export interface ParityTensor {
  readonly shape: readonly number[];
  readonly values: Float32Array | Int32Array;
}

/** `max|actual − expected| / max|expected|`; `Infinity` when NaN/∞ placement differs. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Number.POSITIVE_INFINITY;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i += 1) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!Number.isFinite(a) || !Number.isFinite(e)) {
      if (Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e))) continue;
      return Number.POSITIVE_INFINITY;
    }
    maxDiff = Math.max(maxDiff, Math.abs(a - e));
    maxRef = Math.max(maxRef, Math.abs(e));
  }
  if (maxDiff === 0) return 0;
  return maxRef === 0 ? Number.POSITIVE_INFINITY : maxDiff / maxRef;
}

function build(data: ParityTensor): tf.Tensor {
  return tf.tensor(data.values, [...data.shape], data.values instanceof Int32Array ? 'int32' : 'float32');
}

function buildAll(data: Readonly<Record<string, ParityTensor>>): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(data).map(([name, t]) => [name, build(t)]));
}

/** Output values of one backend run. */
type Outputs = Float32Array[];

async function runOutputs(
  backend: TensorBackendName,
  inputs: Readonly<Record<string, ParityTensor>>,
  fn: (inputs: Record<string, tf.Tensor>) => tf.Tensor | readonly tf.Tensor[],
): Promise<Outputs> {
  return runOnTensorBackend(backend, () =>
    tf.tidy(() => {
      const out = fn(buildAll(inputs));
      const list = Array.isArray(out) ? (out as readonly tf.Tensor[]) : [out as tf.Tensor];
      return list.map((t) => Float32Array.from(t.dataSync()));
    }),
  );
}

/** Result of {@link compareOnBackends}. */
export interface OutputParity {
  /** Relative error per output. */
  readonly relativeErrors: readonly number[];
  /** The largest of {@link relativeErrors}. */
  readonly worstRelativeError: number;
}

/**
 * Runs `fn` on the same inputs on `candidate` (default wasm) and `reference` (default cpu)
 * and compares every output.
 */
export async function compareOnBackends(
  inputs: Readonly<Record<string, ParityTensor>>,
  fn: (inputs: Record<string, tf.Tensor>) => tf.Tensor | readonly tf.Tensor[],
  options: { readonly candidate?: TensorBackendName; readonly reference?: TensorBackendName } = {},
): Promise<OutputParity> {
  const candidate = await runOutputs(options.candidate ?? TensorBackendName.WASM, inputs, fn);
  const reference = await runOutputs(options.reference ?? TensorBackendName.CPU, inputs, fn);
  const relativeErrors = reference.map((ref, i) => maxRelativeError(candidate[i] ?? new Float32Array(0), ref));
  return { relativeErrors, worstRelativeError: Math.max(0, ...relativeErrors) };
}

/** What {@link checkGradientParity} compares. */
export interface GradientParitySpec {
  /** Trainable float parameters; a gradient is taken for each. */
  readonly params: Readonly<Record<string, ParityTensor>>;
  /** Constant inputs (data, labels, index tensors). */
  readonly inputs?: Readonly<Record<string, ParityTensor>>;
  /** The scalar loss. */
  readonly loss: (params: Record<string, tf.Tensor>, inputs: Record<string, tf.Tensor>) => tf.Scalar;
}

/** Result of {@link checkGradientParity}. */
export interface GradientParityReport {
  /**
   * Kernels the loss or its gradient needs that wasm lacks. Non-empty means the wasm run
   * was skipped or failed, and the error figures are `NaN`.
   */
  readonly missingKernels: readonly string[];
  /** Every kernel the forward and backward pass ran (profiled on cpu). */
  readonly kernelsUsed: readonly string[];
  /** Relative error of the loss value. */
  readonly lossRelativeError: number;
  /** Relative error of each parameter's gradient. */
  readonly gradientRelativeErrors: Readonly<Record<string, number>>;
  /** The largest error over the loss and every gradient. */
  readonly worstRelativeError: number;
}

async function lossAndGrads(backend: TensorBackendName, spec: GradientParitySpec, names: readonly string[]): Promise<Outputs> {
  return runOnTensorBackend(backend, () =>
    tf.tidy(() => {
      const inputs = buildAll(spec.inputs ?? {});
      const params = names.map((name) => build(spec.params[name] as ParityTensor));
      const f = (...xs: tf.Tensor[]): tf.Scalar => spec.loss(Object.fromEntries(names.map((n, i) => [n, xs[i] as tf.Tensor])), inputs);
      const { value, grads } = tf.valueAndGrads(f)(params);
      return [value, ...grads].map((t) => Float32Array.from(t.dataSync()));
    }),
  );
}

/**
 * Compares the loss and every parameter gradient between wasm and the cpu oracle, and
 * lists kernels wasm lacks (profiling the cpu run, plus the error of the wasm run itself).
 */
export async function checkGradientParity(spec: GradientParitySpec): Promise<GradientParityReport> {
  const names = Object.keys(spec.params);
  const kernelsUsed = await kernelsUsedBy(() => {
    const inputs = buildAll(spec.inputs ?? {});
    const params = names.map((name) => build(spec.params[name] as ParityTensor));
    const f = (...xs: tf.Tensor[]): tf.Scalar => spec.loss(Object.fromEntries(names.map((n, i) => [n, xs[i] as tf.Tensor])), inputs);
    const { value, grads } = tf.valueAndGrads(f)(params);
    return [value, ...grads, ...params, ...Object.values(inputs)];
  });
  const missing = unregisteredKernels(kernelsUsed, TensorBackendName.WASM);
  const failed = (kernels: string[]): GradientParityReport => ({
    missingKernels: kernels,
    kernelsUsed,
    lossRelativeError: Number.NaN,
    gradientRelativeErrors: Object.fromEntries(names.map((n) => [n, Number.NaN])),
    worstRelativeError: Number.NaN,
  });
  if (missing.length > 0) return failed(missing);
  let candidate: Outputs;
  try {
    candidate = await lossAndGrads(TensorBackendName.WASM, spec, names);
  } catch (error) {
    const kernel = missingKernelFromError(error);
    if (kernel !== undefined) return failed([kernel]);
    throw error;
  }
  const reference = await lossAndGrads(TensorBackendName.CPU, spec, names);
  const errors = reference.map((ref, i) => maxRelativeError(candidate[i] ?? new Float32Array(0), ref));
  return {
    missingKernels: [],
    kernelsUsed,
    lossRelativeError: errors[0] ?? Number.NaN,
    gradientRelativeErrors: Object.fromEntries(names.map((n, i) => [n, errors[i + 1] ?? Number.NaN])),
    worstRelativeError: Math.max(...errors),
  };
}
