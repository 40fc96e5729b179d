/**
 * Host gradient parity: the loss and every host-variable gradient computed on wasm (with
 * the patch kernels) against the pure-JS cpu oracle, on the same inputs. A kernel still
 * missing on wasm fails here by name.
 */
import { maxRelativeError, oneHotFloat, runOnTensorBackend, seededRng, tf, TensorBackendName } from '../../../src/tensor/index.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';

/** Relative error bound of the tensor parity suites (issue: ≤ 1e-5). */
export const PARITY_TOLERANCE = 1e-5;

function lossAndGrads(host: BlockHost, inputs: Float32Array, labels: Int32Array, batch: number): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor(inputs, [batch, ...host.descriptor.inputShape]);
    const y = tf.tensor1d(labels, 'int32');
    const classes = host.descriptor.numClasses;
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(oneHotFloat(y, classes), host.forward(x, { training: true })) as tf.Scalar,
      host.trainableVariables(),
    );
    return [value, ...host.variables.map((v) => grads[v.name] as tf.Tensor)].map((t) => Float32Array.from(t.dataSync()));
  });
}

/** Worst relative error (loss and each host-variable gradient) of wasm against cpu. */
export async function hostGradientParity(host: BlockHost, batch: number, seed: number): Promise<{ worst: number; perTensor: number[] }> {
  const rng = seededRng(seed);
  const size = batch * host.descriptor.inputShape.reduce((a, b) => a * b, 1);
  const inputs = Float32Array.from({ length: size }, () => rng.nextFloat());
  const labels = Int32Array.from({ length: batch }, () => rng.nextInt(host.descriptor.numClasses));
  const wasm = await runOnTensorBackend(TensorBackendName.WASM, () => lossAndGrads(host, inputs, labels, batch));
  const cpu = await runOnTensorBackend(TensorBackendName.CPU, () => lossAndGrads(host, inputs, labels, batch));
  const perTensor = wasm.map((w, i) => maxRelativeError(w, cpu[i] ?? new Float32Array()));
  return { worst: Math.max(...perTensor), perTensor };
}
