/**
 * The fused Adam step (`EsperAdamUpdate`): the wasm SIMD module and the cpu loop agree
 * exactly with each other and with tfjs's thirteen-op Adam, on sizes with and without a
 * scalar tail; bad inputs are typed errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { ADAM_UPDATE, adamUpdate, compareOnBackends, initTensorBackend, runOnTensorBackend, tf } from '../../src/tensor/index.js';
import { testRng, uniform } from './fixtures.js';

beforeAll(async () => {
  await initTensorBackend();
});

const ATTRS = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
const rng = testRng(20_261_208);

/** tfjs's Adam arithmetic, op for op (as `tf.train.adam` writes it). */
function reference(inputs: Record<string, tf.Tensor>): tf.Tensor[] {
  const { value, m, v, gradient, accBeta1, accBeta2 } = inputs as Record<string, tf.Tensor>;
  return tf.tidy(() => {
    const m1 = tf.add(tf.mul(m!, ATTRS.beta1), tf.mul(gradient!, 1 - ATTRS.beta1));
    const v1 = tf.add(tf.mul(v!, ATTRS.beta2), tf.mul(tf.square(gradient!), 1 - ATTRS.beta2));
    const mHat = tf.div(m1, tf.sub(1, accBeta1!));
    const vHat = tf.div(v1, tf.sub(1, accBeta2!));
    const next = tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), ATTRS.epsilon)), -ATTRS.learningRate), value!);
    return [next, m1, v1, tf.mul(accBeta1!, ATTRS.beta1), tf.mul(accBeta2!, ATTRS.beta2)];
  });
}

function fused(inputs: Record<string, tf.Tensor>): tf.Tensor[] {
  const out = adamUpdate(inputs as never, ATTRS);
  return [out.value, out.m, out.v, out.accBeta1, out.accBeta2];
}

function state(shape: number[]) {
  return {
    value: uniform(rng, shape),
    m: uniform(rng, shape, -0.1, 0.1),
    v: uniform(rng, shape, 0, 0.01),
    gradient: uniform(rng, shape),
    accBeta1: { shape: [], values: Float32Array.of(0.9 ** 7) },
    accBeta2: { shape: [], values: Float32Array.of(0.999 ** 7) },
  };
}

async function outputsOn(backend: 'wasm' | 'cpu', inputs: ReturnType<typeof state>, fn: (t: Record<string, tf.Tensor>) => tf.Tensor[]) {
  return runOnTensorBackend(backend, () => {
    const tensors = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, tf.tensor(t.values, [...t.shape], 'float32')]));
    const out = fn(tensors);
    const values = out.map((t) => Array.from(t.dataSync()));
    tf.dispose([...out, ...Object.values(tensors)]);
    return values;
  });
}

describe('EsperAdamUpdate', () => {
  // 4·k elements, a scalar tail of 1–3, a lone scalar and a 784×256 kernel.
  const shapes = [[8], [3, 5], [1], [], [7], [784, 256]];

  for (const shape of shapes) {
    it(`is bit-identical to tfjs's Adam ops on wasm and on cpu, shape [${shape}]`, async () => {
      const inputs = state(shape);
      for (const backend of ['wasm', 'cpu'] as const) {
        const ours = await outputsOn(backend, inputs, fused);
        const theirs = await outputsOn(backend, inputs, reference);
        expect(ours, backend).toEqual(theirs);
      }
    });
  }

  it('agrees between wasm and the cpu oracle', async () => {
    const { worstRelativeError } = await compareOnBackends(state([33, 17]), fused);
    expect(worstRelativeError).toBe(0);
  });

  it('writes new tensors and leaves its inputs as they were', () => {
    const inputs = {
      value: tf.ones([5]),
      m: tf.zeros([5]),
      v: tf.zeros([5]),
      gradient: tf.fill([5], 2),
      accBeta1: tf.scalar(0.9),
      accBeta2: tf.scalar(0.999),
    };
    const out = adamUpdate(inputs, ATTRS);
    expect(Array.from(inputs.value.dataSync())).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(inputs.m.dataSync())).toEqual([0, 0, 0, 0, 0]);
    // The first bias-corrected step moves every element by lr·g/(|g|+ε) ≈ lr.
    for (const x of out.value.dataSync()) expect(x).toBeCloseTo(1 - ATTRS.learningRate, 6);
    tf.dispose([...Object.values(inputs), ...Object.values(out)]);
  });

  it('refuses mismatched sizes and non-float inputs with a typed error', () => {
    const good = {
      value: tf.ones([4]),
      m: tf.zeros([4]),
      v: tf.zeros([4]),
      gradient: tf.ones([4]),
      accBeta1: tf.scalar(0.9),
      accBeta2: tf.scalar(0.999),
    };
    const short = tf.ones([3]);
    const ints = tf.ones([4], 'int32');
    const pair = tf.ones([2]);
    expect(() => adamUpdate({ ...good, gradient: short }, ATTRS)).toThrow(
      expect.objectContaining({ code: ErrorCode.TENSOR_KERNEL_UNSUPPORTED }),
    );
    expect(() => adamUpdate({ ...good, m: ints }, ATTRS)).toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_KERNEL_UNSUPPORTED }));
    expect(() => adamUpdate({ ...good, accBeta1: pair }, ATTRS)).toThrow(/products be scalars/);
    tf.dispose([...Object.values(good), short, ints, pair]);
  });

  it('stays registered when the patch kernels are switched off', async () => {
    await initTensorBackend({ patchKernels: false });
    try {
      expect(tf.getKernel(ADAM_UPDATE, 'wasm')).toBeDefined();
      expect(tf.getKernel(ADAM_UPDATE, 'cpu')).toBeDefined();
    } finally {
      await initTensorBackend();
    }
  });
});
