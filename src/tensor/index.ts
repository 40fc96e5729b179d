/**
 * Tensor: TensorFlow.js 4.22 on the wasm backend (SIMD, single thread) with the project's
 * patch kernels, seeded initialisation, in-memory weights I/O and parity tooling. Other
 * subsystems import only from this file.
 *
 * Call {@link initTensorBackend} once at start-up before any tensor work. Use functional
 * ops (`tf.mul(a, b)`): chained ops (`a.mul(b)`) are not registered by the tfjs bundles in
 * use. The `tf` namespace is re-exported so every subsystem shares this module's tfjs-core
 * instance and the setup done here.
 */
export * as tf from '@tensorflow/tfjs-core';
export {
  describeTensorBackend,
  initTensorBackend,
  resolveTensorBackendOptions,
  runOnTensorBackend,
  TENSOR_BACKEND_DEFAULTS,
  TensorBackendName,
  useTensorBackend,
  wasmBinaryDirectory,
  type ResolvedTensorBackendOptions,
  type TensorBackendDescription,
  type TensorBackendOptions,
} from './backend.js';
export { PATCH_GRADIENTS, PATCH_KERNELS } from './kernels/register-all.js';
export { ADAM_UPDATE, adamUpdate, type AdamUpdateAttrs, type AdamUpdateInputs, type AdamUpdateOutputs } from './kernels/adam-update.js';
export { PatchKind, type PatchGradientConfig, type PatchKernelConfig } from './kernels/patch-kernel.js';
export { oneHotFloat } from './one-hot.js';
export { rngFromState, seededRng, type Rng, type RngState } from './rng.js';
export { computeFans, Initializer, initializerValues, initTensor, initVariable, type Fans } from './init.js';
export {
  decodeWeights,
  decodeWeightsFromBytes,
  encodeWeights,
  encodeWeightsToBytes,
  restoreOptimizerState,
  restoreVariables,
  saveOptimizerState,
  saveVariables,
  type EncodedWeights,
  type NamedTensor,
  type RestoreOptimizerStateOptions,
  type RestoreVariablesOptions,
} from './weights-io.js';
export { findMissingKernels, kernelsUsedBy, missingKernelFromError, unregisteredKernels } from './kernel-coverage.js';
export {
  checkGradientParity,
  compareOnBackends,
  maxRelativeError,
  type GradientParityReport,
  type GradientParitySpec,
  type OutputParity,
  type ParityTensor,
} from './parity.js';
export { stopGradient } from './stop-gradient.js';
export { symmetricEigen, topRightSingularVectors, type SymmetricEigen } from './eigen.js';
