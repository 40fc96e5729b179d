/**
 * Leak test (spec 02 "Tensors"; issue: N training steps leave `tf.memory().numTensors`
 * flat). Also watches the wasm backend's live data ids, which catch intermediates a patch
 * kernel allocates on the heap and forgets to free (they are not tensors, so numTensors
 * alone would miss them).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Initializer, initTensorBackend, initVariable, oneHotFloat, seededRng, tf } from '../../src/tensor/index.js';

beforeAll(async () => {
  await initTensorBackend();
});

const liveDataIds = (): number => tf.engine().backend.numDataIds();

interface Model {
  readonly variables: tf.Variable[];
  loss(x: tf.Tensor, labels: tf.Tensor): tf.Scalar;
}

function cnn(): Model {
  const rng = seededRng(3);
  const k1 = initVariable('leak/cnn/k1', Initializer.HE_NORMAL, [3, 3, 3, 8], rng);
  const k2 = initVariable('leak/cnn/k2', Initializer.HE_NORMAL, [3, 3, 8, 8], rng);
  const dw = initVariable('leak/cnn/dw', Initializer.HE_NORMAL, [3, 3, 8, 1], rng);
  const wo = initVariable('leak/cnn/wo', Initializer.GLOROT_UNIFORM, [3 * 3 * 8, 4], rng);
  return {
    variables: [k1, k2, dw, wo],
    loss: (x, labels) => {
      const h1 = tf.maxPool(tf.relu(tf.conv2d(x as tf.Tensor4D, k1 as tf.Tensor4D, 1, 'same')) as tf.Tensor4D, 2, 2, 'valid');
      const h2 = tf.relu(tf.conv2d(h1, k2 as tf.Tensor4D, 2, 'same')) as tf.Tensor4D;
      const h3 = tf.depthwiseConv2d(h2, dw as tf.Tensor4D, 1, 'same');
      const logits = tf.matMul(tf.reshape(h3, [x.shape[0] as number, -1]), wo);
      return tf.losses.softmaxCrossEntropy(oneHotFloat(labels, 4), logits) as tf.Scalar;
    },
  };
}

function mlpWithAttentionAndGraph(): Model {
  const rng = seededRng(4);
  const w1 = initVariable('leak/mix/w1', Initializer.HE_NORMAL, [12, 16], rng);
  const wq = initVariable('leak/mix/wq', Initializer.GLOROT_UNIFORM, [4, 4], rng);
  const wo = initVariable('leak/mix/wo', Initializer.GLOROT_UNIFORM, [16, 4], rng);
  const src = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7, 1, 3], 'int32');
  const dst = tf.tensor1d([1, 2, 3, 4, 5, 6, 7, 0, 5, 0], 'int32');
  return {
    variables: [w1, wq, wo],
    loss: (x, labels) => {
      const h = tf.relu(tf.matMul(x, w1)); // [8,16]
      const seq = tf.reshape(h, [8, 4, 4]);
      const q = tf.matMul(seq, wq); // broadcast weight
      const attn = tf.matMul(tf.softmax(tf.matMul(q, seq, false, true)), seq); // batched
      const nodes = tf.reshape(attn, [8, 16]);
      const messages = tf.unsortedSegmentSum(tf.gather(nodes, src), dst, 8);
      const logits = tf.matMul(tf.add(nodes, messages), wo);
      return tf.losses.softmaxCrossEntropy(oneHotFloat(labels, 4), logits) as tf.Scalar;
    },
  };
}

describe('training steps leave memory flat', () => {
  it.each([
    ['CNN (conv s1/s2, max-pool, depthwise) with Adam', cnn, [4, 12, 12, 3]],
    ['MLP + attention + message passing with SGD momentum', mlpWithAttentionAndGraph, [8, 12]],
  ] as const)('%s', (_label, build, xShape) => {
    const model = build();
    const optimizer = xShape.length === 4 ? tf.train.adam(1e-3) : tf.train.momentum(0.01, 0.9);
    const rng = seededRng(11);
    const x = tf.tensor(
      Float32Array.from({ length: xShape.reduce((a, b) => a * b, 1) }, () => rng.nextFloat()),
      [...xShape],
    );
    const labels = tf.tensor1d(
      Int32Array.from({ length: xShape[0] }, () => rng.nextInt(4)),
      'int32',
    );
    const step = (): number => {
      const loss = optimizer.minimize(() => model.loss(x, labels), true, model.variables);
      const value = (loss as tf.Scalar).dataSync()[0] as number;
      (loss as tf.Scalar).dispose();
      return value;
    };
    step(); // creates the optimizer's slot variables
    const tensors = tf.memory().numTensors;
    const dataIds = liveDataIds();
    const losses: number[] = [];
    for (let i = 0; i < 12; i += 1) losses.push(step());
    expect(tf.memory().numTensors).toBe(tensors);
    expect(liveDataIds()).toBe(dataIds);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] as number);
    optimizer.dispose();
    tf.dispose([x, labels, ...model.variables]);
  });
});
