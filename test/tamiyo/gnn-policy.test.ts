/** The GNN policy's optimizer decisions ask for an absolute learning rate, never an empty adjustment. */
import { describe, expect, it } from 'vitest';
import { commandedLearningRate } from '../../src/tamiyo/gnn-policy.js';
import { MAX_COMMANDED_LR } from '../../src/tolaria/index.js';

describe('commandedLearningRate', () => {
  it('scales the current rate by 2^delta, the delta clamped to [-1, 1]', () => {
    expect(commandedLearningRate(0.002, 0)).toBe(0.002);
    expect(commandedLearningRate(0.002, 1)).toBe(0.004);
    expect(commandedLearningRate(0.002, -1)).toBe(0.001);
    expect(commandedLearningRate(0.002, 5)).toBe(0.004);
    expect(commandedLearningRate(0.002, -5)).toBe(0.001);
    expect(commandedLearningRate(0.002, 0.5)).toBeCloseTo(0.002 * Math.SQRT2, 15);
  });

  it('never asks for more than the cap Tolaria accepts', () => {
    expect(commandedLearningRate(0.8, 1)).toBe(MAX_COMMANDED_LR);
  });

  it('asks for nothing without a usable current rate or delta (the decision becomes a wait)', () => {
    for (const [lr, delta] of [
      [undefined, 0.5],
      [0, 0.5],
      [-0.1, 0.5],
      [Number.NaN, 0.5],
      [0.002, Number.NaN],
      [0.002, Number.POSITIVE_INFINITY],
    ] as const) {
      expect(commandedLearningRate(lr, delta)).toBeUndefined();
    }
  });
});
