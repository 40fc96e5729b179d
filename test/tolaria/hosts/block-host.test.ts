/**
 * BlockHost behaviour: forward through blocks and seed sites, hooks (attach, detach, the
 * activation they see, gradient isolation through stopGradient), typed errors, disposal
 * and tensor memory. Small hosts keep the file fast; the bench-sized models are covered
 * in mlp-host / cnn-host tests.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type EsperError } from '../../../src/core/index.js';
import { initTensorBackend, oneHotFloat, seededRng, tf } from '../../../src/tensor/index.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';
import { cnnHost } from '../../../src/tolaria/hosts/cnn-host.js';
import { mlpHost } from '../../../src/tolaria/hosts/mlp-host.js';
import { ResidualSeedHook, ShapeBreakingHook, type HookMode } from './seed-hooks.js';

beforeAll(async () => {
  await initTensorBackend();
});

const BATCH = 4;

function randomInputs(shape: readonly number[], seed: number): tf.Tensor {
  const rng = seededRng(seed);
  const size = BATCH * shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => 2 * rng.nextFloat() - 1),
    [BATCH, ...shape],
  );
}

function randomLabels(classes: number, seed: number): tf.Tensor1D {
  const rng = seededRng(seed);
  return tf.tensor1d(
    Int32Array.from({ length: BATCH }, () => rng.nextInt(classes)),
    'int32',
  );
}

function crossEntropy(logits: tf.Tensor, labels: tf.Tensor, classes: number): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(oneHotFloat(labels, classes), logits) as tf.Scalar;
}

/** Loss and every trainable variable's gradient, as plain arrays keyed by variable name. */
function gradients(host: BlockHost, x: tf.Tensor, labels: tf.Tensor): Map<string, Float32Array> {
  const classes = host.descriptor.numClasses;
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(host.forward(x, { training: true }), labels, classes),
    host.trainableVariables(),
  );
  const out = new Map(Object.entries(grads).map(([name, g]) => [name, Float32Array.from(g.dataSync())]));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

function values(t: tf.Tensor): Float32Array {
  const out = Float32Array.from(t.dataSync());
  t.dispose();
  return out;
}

function caught(fn: () => unknown): EsperError {
  try {
    fn();
  } catch (error) {
    if (isEsperError(error)) return error;
    throw error;
  }
  throw new Error('expected an EsperError');
}

const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('BlockHost with an MLP', () => {
  let host: BlockHost;
  let x: tf.Tensor;
  let labels: tf.Tensor1D;
  let hooks: ResidualSeedHook[];
  let baseline: number;

  beforeEach(() => {
    baseline = tf.memory().numTensors;
    host = mlpHost({ inputSize: 6, hidden: [5, 4], numClasses: 3, seed: 1, hostId: 'bh' });
    x = randomInputs([6], 2);
    labels = randomLabels(3, 3);
    hooks = [];
  });

  afterEach(() => {
    host.dispose();
    for (const hook of hooks) hook.dispose();
    tf.dispose([x, labels]);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  const hook = (name: string, shape: readonly number[], mode: HookMode): ResidualSeedHook => {
    const h = new ResidualSeedHook(name, shape, mode);
    hooks.push(h);
    return h;
  };

  const variable = (name: string): tf.Variable => {
    const found = host.variables.find((v) => v.name === `bh/${name}`);
    if (found === undefined) throw new Error(`no variable bh/${name}`);
    return found;
  };

  it('computes the plain block composition when no hook is attached (sites are the identity)', () => {
    const expected = tf.tidy(() => {
      const dense = (h: tf.Tensor, block: string): tf.Tensor =>
        tf.add(tf.matMul(h, variable(`${block}/kernel`)), variable(`${block}/bias`));
      return dense(tf.relu(dense(tf.relu(dense(x, 'hidden1')), 'hidden2')), 'head');
    });
    const actual = tf.tidy(() => host.forward(x, { training: false }));
    expect(actual.shape).toEqual([BATCH, 3]);
    expect(values(actual)).toEqual(values(expected));
  });

  it('hands the hook the site activation and training flag, and continues with what it returns', () => {
    const plain = values(tf.tidy(() => host.forward(x, { training: true })));
    const seed = hook('seed-a', [5], 'joint');
    host.attach('hidden1', seed);
    const hooked = values(tf.tidy(() => host.forward(x, { training: true })));
    values(tf.tidy(() => host.forward(x, { training: false })));
    expect(seed.seenShapes).toEqual([
      [BATCH, 5],
      [BATCH, 5],
    ]);
    expect(seed.seenTraining).toEqual([true, false]);
    expect(hooked).not.toEqual(plain);
    expect(host.hooks.get('hidden1')).toBe(seed);
  });

  it('restores the identity output exactly when the hook is detached', () => {
    const plain = values(tf.tidy(() => host.forward(x, { training: true })));
    const seed = hook('seed-a', [4], 'joint');
    host.attach('hidden2', seed);
    expect(host.detach('hidden2')).toBe(seed);
    expect(host.hooks.size).toBe(0);
    expect(values(tf.tidy(() => host.forward(x, { training: true })))).toEqual(plain);
    expect(host.trainableVariables()).toEqual(host.variables);
  });

  it('sends gradients to the hook variables in isolated and joint modes, none in constant mode', () => {
    for (const mode of ['isolated', 'joint', 'constant'] as const) {
      const seed = hook(`seed-${mode}`, [5], mode);
      host.attach('hidden1', seed);
      const grads = gradients(host, x, labels);
      host.detach('hidden1');
      const g = grads.get(`seed-${mode}/weight`) ?? new Float32Array();
      expect(g.length).toBe(25);
      if (mode === 'constant') expect(maxAbs(g)).toBe(0);
      else expect(maxAbs(g)).toBeGreaterThan(0);
    }
  });

  it('keeps host gradients equal to a constant seed contribution when the hook stops gradients (stopGradient path)', () => {
    const gradsWith = (mode: HookMode): Map<string, Float32Array> => {
      const seed = hook(`seed-${mode}`, [5], mode);
      host.attach('hidden1', seed);
      try {
        return gradients(host, x, labels);
      } finally {
        host.detach('hidden1');
      }
    };
    const isolated = gradsWith('isolated');
    const constant = gradsWith('constant');
    const joint = gradsWith('joint');
    for (const v of host.variables) {
      // Bit-identical: the stopped branch only adds zeros to the identity path's gradient.
      expect(isolated.get(v.name), v.name).toEqual(constant.get(v.name));
    }
    // Above the site, the forward value (hence every upstream gradient) is the same in all modes.
    expect(joint.get('bh/hidden2/kernel')).toEqual(constant.get('bh/hidden2/kernel'));
    expect(joint.get('bh/head/kernel')).toEqual(constant.get('bh/head/kernel'));
    // Below the site, the joint hook's path through the seed changes the host's gradient.
    expect(joint.get('bh/hidden1/kernel')).not.toEqual(constant.get('bh/hidden1/kernel'));
  });

  it('lists host variables first, then hook variables in site order', () => {
    const second = hook('seed-2', [4], 'joint');
    const first = hook('seed-1', [5], 'joint');
    host.attach('hidden2', second);
    host.attach('hidden1', first);
    expect(host.trainableVariables().map((v) => v.name)).toEqual([...host.variables.map((v) => v.name), 'seed-1/weight', 'seed-2/weight']);
  });

  it('rejects an unknown site with INVALID_ARGUMENT and an occupied one with INVALID_STATE', () => {
    const seed = hook('seed-a', [5], 'joint');
    const unknown = caught(() => host.attach('nowhere', seed));
    expect(unknown.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(unknown.details.siteId).toBe('nowhere');
    expect(caught(() => host.detach('nowhere')).code).toBe(ErrorCode.INVALID_ARGUMENT);
    host.attach('hidden1', seed);
    const occupied = caught(() => host.attach('hidden1', hook('seed-b', [5], 'joint')));
    expect(occupied.code).toBe(ErrorCode.INVALID_STATE);
    expect(occupied.details.siteId).toBe('hidden1');
    expect(host.detach('hidden2')).toBeUndefined();
  });

  it('rejects a hook returning another shape with a typed error naming the site, leaking nothing', () => {
    host.attach('hidden2', new ShapeBreakingHook());
    const before = tf.memory().numTensors;
    const error = caught(() => tf.tidy(() => host.forward(x, { training: true })));
    expect(error.code).toBe(ErrorCode.TOLARIA_SITE_SHAPE_MISMATCH);
    expect(error.details).toMatchObject({ siteId: 'hidden2', hostId: 'bh', expected: `[${BATCH}, 4]`, actual: `[${BATCH}, 3]` });
    expect(error.message).toContain("'hidden2'");
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects inputs of the wrong per-example shape', () => {
    const wrong = tf.zeros([BATCH, 7]);
    try {
      expect(caught(() => host.forward(wrong, { training: false })).code).toBe(ErrorCode.INVALID_ARGUMENT);
    } finally {
      wrong.dispose();
    }
  });

  it('frees its variables on dispose, idempotently, and refuses to run afterwards', () => {
    const seed = hook('seed-a', [5], 'joint');
    host.attach('hidden1', seed);
    const names = host.variables.map((v) => v.name);
    const before = tf.memory().numTensors;
    host.dispose();
    host.dispose();
    expect(host.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before - names.length);
    for (const name of names) expect(tf.engine().registeredVariables[name]).toBeUndefined();
    expect(seed.weight.isDisposed).toBe(false);
    expect(caught(() => host.forward(x, { training: false })).code).toBe(ErrorCode.INVALID_STATE);
    expect(caught(() => host.attach('hidden2', seed)).code).toBe(ErrorCode.INVALID_STATE);
    expect(host.detach('hidden1')).toBe(seed);
  });

  it('keeps tensor memory flat across training steps with hooks attached', () => {
    host.attach('hidden1', hook('seed-a', [5], 'isolated'));
    host.attach('hidden2', hook('seed-b', [4], 'joint'));
    const optimizer = tf.train.sgd(0.1);
    const step = (): number => {
      const loss = optimizer.minimize(() => crossEntropy(host.forward(x, { training: true }), labels, 3), true, host.trainableVariables());
      const value = (loss as tf.Scalar).dataSync()[0] as number;
      (loss as tf.Scalar).dispose();
      return value;
    };
    const first = step();
    const tensors = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 10; i += 1) last = step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(last).toBeLessThan(first);
    optimizer.dispose();
  });
});

describe('BlockHost with a CNN', () => {
  it('passes the [h, w, c] feature map through a CONV site hook and trains through it without leaking', () => {
    const baseline = tf.memory().numTensors;
    const host = cnnHost({ inputShape: [8, 8, 2], channels: [3, 4], numClasses: 3, seed: 5, hostId: 'bhc' });
    const seed = new ResidualSeedHook('seed-conv', [4, 4, 3], 'isolated');
    const x = randomInputs([8, 8, 2], 6);
    const labels = randomLabels(3, 7);
    try {
      const plain = values(tf.tidy(() => host.forward(x, { training: true })));
      host.attach('block1', seed);
      const hooked = values(tf.tidy(() => host.forward(x, { training: true })));
      expect(seed.seenShapes).toEqual([[BATCH, 4, 4, 3]]);
      expect(hooked).not.toEqual(plain);
      const grads = gradients(host, x, labels);
      expect([...grads.keys()]).toEqual(host.trainableVariables().map((v) => v.name));
      expect(maxAbs(grads.get('seed-conv/weight') ?? new Float32Array())).toBeGreaterThan(0);
      expect(maxAbs(grads.get('bhc/conv1/kernel') ?? new Float32Array())).toBeGreaterThan(0);
    } finally {
      host.dispose();
      seed.dispose();
      tf.dispose([x, labels]);
    }
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
