import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Initializer, initTensorBackend, initVariable, seededRng, tf, type NamedTensor } from '../../src/tensor/index.js';
import { PerVariableAdam } from '../../src/tolaria/adam.js';

beforeAll(async () => {
  await initTensorBackend();
});

const owned: { dispose(): void }[] = [];
afterEach(() => {
  for (const o of owned.splice(0)) o.dispose();
});

function variable(name: string, shape: number[], seed: number): tf.Variable {
  const v = initVariable(name, Initializer.GLOROT_UNIFORM, shape, seededRng(seed));
  owned.push(v);
  return v;
}

/** Gradients of a fixed quadratic-ish loss, different every step (so moments move). */
function gradients(variables: readonly tf.Variable[], step: number): NamedTensor[] {
  return variables.map((v, i) => ({
    name: v.name,
    tensor: tf.tidy(() => tf.add(tf.mul(v, (i + 1) * 0.5), tf.scalar(Math.sin(step + i)))),
  }));
}

function stepWith(optimizer: tf.Optimizer, variables: readonly tf.Variable[], step: number): void {
  const grads = gradients(variables, step);
  optimizer.applyGradients(grads);
  tf.dispose(grads.map((g) => g.tensor));
}

const values = (v: tf.Tensor): number[] => Array.from(v.dataSync());

describe('PerVariableAdam', () => {
  it('trains a fixed variable set bit-identically to tfjs Adam', () => {
    const ours = [variable('pa/a', [3, 4], 1), variable('pa/b', [4], 2)];
    const theirs = [variable('pb/a', [3, 4], 1), variable('pb/b', [4], 2)];
    const adam = new PerVariableAdam(0.01, 0.9, 0.999);
    const reference = tf.train.adam(0.01, 0.9, 0.999);
    owned.push(adam, reference);
    for (let s = 0; s < 25; s++) {
      stepWith(adam, ours, s);
      stepWith(reference, theirs, s);
    }
    ours.forEach((v, i) => expect(values(v)).toEqual(values(theirs[i] as tf.Variable)));
    expect(adam.iterations).toBe(25);
  });

  it('bias-corrects a variable added late by its own step count', () => {
    const host = variable('late/host', [2], 3);
    const grown = variable('late/new', [5], 4);
    const adam = new PerVariableAdam(0.001, 0.9, 0.999);
    const reference = tf.train.adam(0.001, 0.9, 0.999);
    owned.push(adam, reference);
    for (let s = 0; s < 500; s++) stepWith(adam, [host], s);
    const hostRef = variable('late/hostRef', [2], 3);
    const grownRef = variable('late/newRef', [5], 4);
    for (let s = 0; s < 500; s++) stepWith(reference, [hostRef], s);

    const before = values(grown);
    const beforeRef = values(grownRef);
    stepWith(adam, [host, grown], 500);
    stepWith(reference, [hostRef, grownRef], 500);
    const moved = values(grown).map((x, i) => Math.abs(x - (before[i] as number)));
    const movedRef = values(grownRef).map((x, i) => Math.abs(x - (beforeRef[i] as number)));
    // A bias-corrected first step is lr·g/(|g|+ε) ≈ lr. tfjs's shared count gives
    // lr·(1−β₁)/√((1−β₂)/(1−β₂⁵⁰⁰)) ≈ 1.98·lr here (→ 3.16·lr as the count grows).
    for (const m of moved) expect(m).toBeCloseTo(0.001, 5);
    for (const m of movedRef) expect(m).toBeCloseTo(0.001985, 5);
  });

  it('advances a variable only on steps where it has a gradient', () => {
    const a = variable('skip/a', [3], 5);
    const b = variable('skip/b', [3], 6);
    const adam = new PerVariableAdam(0.01, 0.9, 0.999);
    owned.push(adam);
    stepWith(adam, [a, b], 0);
    const idle = values(b);
    for (let s = 1; s < 10; s++) {
      const grads = gradients([a], s);
      adam.applyGradients([...grads, { name: b.name, tensor: null as unknown as tf.Tensor }]);
      tf.dispose(grads.map((g) => g.tensor));
    }
    expect(values(b)).toEqual(idle);
    return adam.getWeights().then((weights) => {
      const product = weights.find((w) => w.name === 'skip/b/acc_beta1');
      expect(product?.tensor.dataSync()[0]).toBeCloseTo(0.9 * 0.9, 6);
      tf.dispose(weights.filter((w) => w.name === 'iter').map((w) => w.tensor));
    });
  });

  it('resumes from getWeights/setWeights bit-identically', async () => {
    const run = [variable('res/a', [4], 7), variable('res/b', [2, 2], 8)];
    const copy = [variable('res/ca', [4], 7), variable('res/cb', [2, 2], 8)];
    const first = new PerVariableAdam(0.01, 0.9, 0.999);
    owned.push(first);
    for (let s = 0; s < 7; s++) stepWith(first, run, s);
    copy.forEach((v, i) => v.assign(run[i] as tf.Variable));
    const saved = await first.getWeights();
    const resumed = new PerVariableAdam(0.01, 0.9, 0.999);
    owned.push(resumed);
    await resumed.setWeights(saved.map((w) => ({ name: w.name.replace(/^res\/(a|b)\//, 'res/c$1/'), tensor: w.tensor })));
    tf.dispose(saved.filter((w) => w.name === 'iter').map((w) => w.tensor));
    expect(resumed.iterations).toBe(7);
    for (let s = 7; s < 12; s++) {
      stepWith(first, run, s);
      stepWith(resumed, copy, s);
    }
    copy.forEach((v, i) => expect(values(v)).toEqual(values(run[i] as tf.Variable)));
  });

  it('restores state saved before per-variable counts at the global count', async () => {
    const ours = variable('legacy/a', [3], 9);
    const theirs = variable('legacy/b', [3], 9);
    const reference = tf.train.adam(0.01, 0.9, 0.999);
    owned.push(reference);
    for (let s = 0; s < 4; s++) stepWith(reference, [theirs], s);
    ours.assign(theirs);
    const saved = await reference.getWeights();
    // Restoring and disposing leaves no tensor behind (the legacy products are made by the restore).
    const tensorsBefore = tf.memory().numTensors;
    const probe = new PerVariableAdam(0.01, 0.9, 0.999);
    await probe.setWeights(saved.map((w) => ({ name: w.name.replace('legacy/b', 'legacy/a'), tensor: w.tensor })));
    probe.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const adam = new PerVariableAdam(0.01, 0.9, 0.999);
    owned.push(adam);
    await adam.setWeights(saved.map((w) => ({ name: w.name.replace('legacy/b', 'legacy/a'), tensor: w.tensor })));
    tf.dispose(saved.filter((w) => w.name === 'iter').map((w) => w.tensor));
    stepWith(adam, [ours], 4);
    stepWith(reference, [theirs], 4);
    const a = values(ours);
    values(theirs).forEach((x, i) => expect(a[i]).toBeCloseTo(x, 6));
  });
});
