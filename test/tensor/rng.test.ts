/**
 * The seeded generator: same seed → same stream, checkpointable state, unbiased helpers.
 */
import { describe, expect, it } from 'vitest';
import { isEsperError, ErrorCode } from '../../src/core/index.js';
import { rngFromState, seededRng } from '../../src/tensor/index.js';

const draw = (seed: number, n: number): number[] => {
  const rng = seededRng(seed);
  return Array.from({ length: n }, () => rng.nextUint32());
};

describe('seededRng (xoshiro128** seeded by splitmix32)', () => {
  it('gives the same stream for the same seed and different streams for nearby seeds', () => {
    expect(draw(42, 64)).toEqual(draw(42, 64));
    expect(draw(42, 8)).not.toEqual(draw(43, 8));
    expect(draw(0, 8)).not.toEqual(draw(1, 8));
  });

  it('accepts seeds beyond 32 bits without collapsing them', () => {
    expect(draw(2 ** 32 + 5, 4)).not.toEqual(draw(5, 4));
  });

  it('resumes exactly from a checkpointed state', () => {
    const rng = seededRng(7);
    for (let i = 0; i < 100; i += 1) rng.nextUint32();
    const state = rng.getState();
    const ahead = Array.from({ length: 16 }, () => rng.nextFloat());
    const resumed = rngFromState(state);
    expect(Array.from({ length: 16 }, () => resumed.nextFloat())).toEqual(ahead);
  });

  it('produces floats in [0, 1) with a plausible mean', () => {
    const rng = seededRng(9);
    let sum = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const x = rng.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(Math.abs(sum / 20_000 - 0.5)).toBeLessThan(0.01);
  });

  it('draws unbiased bounded integers and standard normals', () => {
    const rng = seededRng(10);
    const counts = new Array<number>(3).fill(0);
    for (let i = 0; i < 30_000; i += 1) counts[rng.nextInt(3)]! += 1;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const z = rng.nextNormal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / 20_000)).toBeLessThan(0.03);
    expect(Math.abs(s2 / 20_000 - 1)).toBeLessThan(0.05);
  });

  it('shuffles and permutes deterministically, keeping every element', () => {
    const a = seededRng(5).shuffle(Array.from({ length: 50 }, (_, i) => i));
    const b = seededRng(5).shuffle(Array.from({ length: 50 }, (_, i) => i));
    expect(a).toEqual(b);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    const p = seededRng(5).permutation(50);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('forks independent streams without advancing the parent', () => {
    const parent = seededRng(1);
    const before = parent.getState();
    const init = parent.fork(1);
    const order = parent.fork(2);
    expect(parent.getState()).toEqual(before);
    expect(init.nextUint32()).not.toBe(order.nextUint32());
    expect(seededRng(1).fork(1).nextUint32()).toBe(seededRng(1).fork(1).nextUint32());
  });

  it('rejects bad seeds and states with a typed error', () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => seededRng(bad)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
    let caught: unknown;
    try {
      rngFromState([0, 0, 0, 0]);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(() => seededRng(1).nextInt(0)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});
