/**
 * Whole-model gradient parity: small MLP, CNN, GNN and attention stacks built from raw
 * ops, every parameter gradient on wasm (patched) against the cpu oracle, and a kernel
 * coverage check that fails naming any kernel still missing on wasm.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkGradientParity,
  initTensorBackend,
  maxRelativeError,
  oneHotFloat,
  tf,
  type GradientParityReport,
  type GradientParitySpec,
} from '../../src/tensor/index.js';
import { ints, PARITY_TOLERANCE, testRng, toTensor, uniform, WorstErrorLedger } from './fixtures.js';

const rng = testRng(7);
const ledger = new WorstErrorLedger();

beforeAll(async () => {
  await initTensorBackend();
});

afterAll(async () => {
  await initTensorBackend();
  console.info(ledger.format('worst relative error vs cpu, per model (loss and every parameter gradient):'));
});

const p = (t: Record<string, tf.Tensor>, name: string): tf.Tensor => {
  const value = t[name];
  if (value === undefined) throw new Error(`no tensor '${name}'`);
  return value;
};

/** Softmax cross-entropy against integer labels through the safe float one-hot. */
function crossEntropy(logits: tf.Tensor, labels: tf.Tensor, classes: number): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(oneHotFloat(labels, classes), logits) as tf.Scalar;
}

const dense = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.add(tf.matMul(x, w), b);

function mlpSpec(): GradientParitySpec {
  return {
    params: {
      w1: uniform(rng, [20, 16], -0.4, 0.4),
      b1: uniform(rng, [16], -0.1, 0.1),
      w2: uniform(rng, [16, 10], -0.4, 0.4),
      b2: uniform(rng, [10], -0.1, 0.1),
    },
    inputs: { x: uniform(rng, [8, 20]), y: ints(rng, [8], 0, 10) },
    loss: (w, d) => {
      const h = tf.relu(dense(p(d, 'x'), p(w, 'w1'), p(w, 'b1')));
      return crossEntropy(dense(h, p(w, 'w2'), p(w, 'b2')), p(d, 'y'), 10);
    },
  };
}

function cnnSpec(): GradientParitySpec {
  return {
    params: {
      k1: uniform(rng, [3, 3, 3, 4], -0.3, 0.3),
      c1: uniform(rng, [4], -0.1, 0.1),
      k2: uniform(rng, [3, 3, 4, 6], -0.3, 0.3),
      c2: uniform(rng, [6], -0.1, 0.1),
      dw: uniform(rng, [3, 3, 6, 2], -0.3, 0.3),
      wo: uniform(rng, [2 * 2 * 12, 5], -0.3, 0.3),
      bo: uniform(rng, [5], -0.1, 0.1),
    },
    inputs: { x: uniform(rng, [2, 14, 14, 3]), y: ints(rng, [2], 0, 5) },
    loss: (w, d) => {
      const x = p(d, 'x') as tf.Tensor4D;
      // conv 3×3 stride 1 'same' → maxpool 2 → conv 3×3 stride 2 'same' → depthwise ×2 'valid'.
      const h1 = tf.relu(tf.add(tf.conv2d(x, p(w, 'k1') as tf.Tensor4D, 1, 'same'), p(w, 'c1'))) as tf.Tensor4D;
      const pooled = tf.maxPool(h1, 2, 2, 'valid');
      const h2 = tf.relu(tf.add(tf.conv2d(pooled, p(w, 'k2') as tf.Tensor4D, 2, 'same'), p(w, 'c2'))) as tf.Tensor4D;
      const h3 = tf.relu(tf.depthwiseConv2d(h2, p(w, 'dw') as tf.Tensor4D, 1, 'valid'));
      const flat = tf.reshape(h3, [2, -1]);
      return crossEntropy(dense(flat, p(w, 'wo'), p(w, 'bo')), p(d, 'y'), 5);
    },
  };
}

function gnnSpec(): GradientParitySpec {
  const nodes = 12;
  const edges = 30;
  return {
    params: {
      ws1: uniform(rng, [6, 8], -0.4, 0.4),
      wm1: uniform(rng, [6, 8], -0.4, 0.4),
      b1: uniform(rng, [8], -0.1, 0.1),
      ws2: uniform(rng, [8, 8], -0.4, 0.4),
      wm2: uniform(rng, [8, 8], -0.4, 0.4),
      b2: uniform(rng, [8], -0.1, 0.1),
      wo: uniform(rng, [8, 3], -0.4, 0.4),
    },
    inputs: {
      h: uniform(rng, [nodes, 6]),
      src: ints(rng, [edges], 0, nodes),
      dst: ints(rng, [edges], 0, nodes),
      y: ints(rng, [nodes], 0, 3),
    },
    loss: (w, d) => {
      // relu(h·Ws + Σ_{edges→v} (h·Wm)[src] + b), twice (reference §1 GNN).
      const layer = (h: tf.Tensor, ws: string, wm: string, b: string): tf.Tensor => {
        const messages = tf.gather(tf.matMul(h, p(w, wm)), p(d, 'src') as tf.Tensor1D);
        const summed = tf.unsortedSegmentSum(messages, p(d, 'dst') as tf.Tensor1D, nodes);
        return tf.relu(tf.add(tf.add(tf.matMul(h, p(w, ws)), summed), p(w, b)));
      };
      const h2 = layer(layer(p(d, 'h'), 'ws1', 'wm1', 'b1'), 'ws2', 'wm2', 'b2');
      return crossEntropy(tf.matMul(h2, p(w, 'wo')), p(d, 'y'), 3);
    },
  };
}

function attentionSpec(): GradientParitySpec {
  const [batch, seq, dim] = [3, 5, 8];
  return {
    params: {
      wq: uniform(rng, [dim, dim], -0.4, 0.4),
      wk: uniform(rng, [dim, dim], -0.4, 0.4),
      wv: uniform(rng, [dim, dim], -0.4, 0.4),
      wo: uniform(rng, [dim, 4], -0.4, 0.4),
    },
    inputs: { x: uniform(rng, [batch, seq, dim]), y: ints(rng, [batch], 0, 4) },
    loss: (w, d) => {
      const x = p(d, 'x');
      // [B,T,D]·[D,D] (shared weight), then batched q·kᵀ and attn·v.
      const q = tf.matMul(x, p(w, 'wq'));
      const k = tf.matMul(x, p(w, 'wk'));
      const v = tf.matMul(x, p(w, 'wv'));
      const scores = tf.div(tf.matMul(q, k, false, true), Math.sqrt(dim));
      const attended = tf.matMul(tf.softmax(scores), v);
      const pooled = tf.mean(attended, 1);
      return crossEntropy(tf.matMul(pooled, p(w, 'wo')), p(d, 'y'), 4);
    },
  };
}

const MODELS: [string, () => GradientParitySpec, readonly string[]][] = [
  ['MLP 20-16-10', mlpSpec, ['BatchMatMul']],
  [
    'CNN conv s1 → maxpool → conv s2 → depthwise',
    cnnSpec,
    [
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'MaxPoolGrad',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
    ],
  ],
  ['GNN 2 message-passing layers', gnnSpec, ['GatherV2', 'UnsortedSegmentSum']],
  ['attention (batched matmul)', attentionSpec, ['BatchMatMul']],
];

function missingKernelMessage(report: GradientParityReport): string {
  return `kernels missing on wasm: ${report.missingKernels.join(', ')}`;
}

describe('gradient parity wasm vs cpu', () => {
  it.each(MODELS)('%s: every parameter gradient agrees within 1e-5 and no kernel is missing', async (label, spec, expectedKernels) => {
    const report = await checkGradientParity(spec());
    expect(report.missingKernels, missingKernelMessage(report)).toEqual([]);
    // The stack really exercised the patched kernels it was built for.
    for (const kernel of expectedKernels) expect(report.kernelsUsed).toContain(kernel);
    ledger.record(label, report.worstRelativeError);
    for (const [name, error] of Object.entries(report.gradientRelativeErrors)) {
      expect(error, `${label} d/d${name}`).toBeLessThanOrEqual(PARITY_TOLERANCE);
    }
    expect(report.lossRelativeError).toBeLessThanOrEqual(PARITY_TOLERANCE);
  });

  it('names every kernel missing on stock wasm instead of passing', async () => {
    await initTensorBackend({ patchKernels: false });
    try {
      const cnn = await checkGradientParity(cnnSpec());
      expect(cnn.missingKernels).toEqual(
        expect.arrayContaining(['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']),
      );
      expect(Number.isNaN(cnn.worstRelativeError)).toBe(true);
      const gnn = await checkGradientParity(gnnSpec());
      expect(gnn.missingKernels).toEqual(['UnsortedSegmentSum']);
    } finally {
      await initTensorBackend();
    }
  });

  it('reduces a broadcast matmul gradient to the shared operand (same as the 2-D formulation)', async () => {
    const x = uniform(rng, [3, 5, 8]);
    const w = uniform(rng, [8, 6]);
    const grads = (broadcast: boolean): Float32Array[] =>
      tf.tidy(() => {
        const xs = toTensor(x);
        const ws = toTensor(w);
        const f = (a: tf.Tensor, b: tf.Tensor): tf.Scalar =>
          tf.sum(tf.square(broadcast ? tf.matMul(a, b) : tf.reshape(tf.matMul(tf.reshape(a, [15, 8]), b), [3, 5, 6])));
        return tf
          .grads(f)([xs, ws])
          .map((g) => Float32Array.from(g.dataSync()));
      });
    const [dx3, dw3] = grads(true);
    const [dx2, dw2] = grads(false);
    expect(maxRelativeError(dw3!, dw2!)).toBeLessThanOrEqual(PARITY_TOLERANCE);
    expect(maxRelativeError(dx3!, dx2!)).toBeLessThanOrEqual(PARITY_TOLERANCE);
    expect(dw3).toHaveLength(8 * 6);
  });

  it('leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    await checkGradientParity(mlpSpec());
    expect(tf.memory().numTensors).toBe(before);
  });
});
