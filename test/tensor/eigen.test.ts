import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { seededRng, symmetricEigen, topRightSingularVectors } from '../../src/tensor/index.js';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, v, i) => s + v * (b[i] as number), 0);

/** `Q·diag(values)·Qᵀ` for the orthonormal columns `q` (each an array of length n). */
function compose(q: readonly number[][], values: readonly number[]): number[] {
  const n = values.length;
  const out = new Array<number>(n * n).fill(0);
  for (let i = 0; i < n; i += 1)
    for (let j = 0; j < n; j += 1) out[i * n + j] = values.reduce((s, l, c) => s + l * (q[c]![i] as number) * (q[c]![j] as number), 0);
  return out;
}

describe('symmetricEigen (cyclic Jacobi)', () => {
  it('recovers a known decomposition: eigenvalues descending, eigenvectors up to sign', () => {
    // An orthonormal basis of R³ (a rotation) and known eigenvalues.
    const s = Math.SQRT1_2;
    const q = [
      [s, s, 0],
      [-s, s, 0],
      [0, 0, 1],
    ];
    const values = [1, 5, 3];
    const { values: got, vectors } = symmetricEigen(compose(q, values), 3);
    expect(Array.from(got).map((v) => Number(v.toFixed(10)))).toEqual([5, 3, 1]);
    for (const [i, expected] of [q[1]!, q[2]!, q[0]!].entries()) expect(Math.abs(dot(vectors[i]!, expected))).toBeCloseTo(1, 10);
  });

  it('returns orthonormal vectors with A·v = λ·v on a random symmetric 12×12 matrix', () => {
    const rng = seededRng(7);
    const n = 12;
    const b = Array.from({ length: n * n }, () => rng.nextNormal());
    const a = Array.from({ length: n * n }, (_, k) => (b[k]! + b[(k % n) * n + Math.floor(k / n)]!) / 2);
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 1; i < n; i += 1) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    for (const [i, v] of vectors.entries()) {
      for (const [j, w] of vectors.entries()) expect(dot(v, w)).toBeCloseTo(i === j ? 1 : 0, 10);
      for (let r = 0; r < n; r += 1) expect(dot(a.slice(r * n, r * n + n), v)).toBeCloseTo(values[i]! * v[r]!, 9);
    }
  });

  it('refuses a non-square, non-finite or asymmetric matrix', () => {
    const codeOf = (f: () => unknown): unknown => {
      try {
        f();
      } catch (error) {
        return isEsperError(error, ErrorCode.INVALID_ARGUMENT);
      }
      return 'no error';
    };
    expect(codeOf(() => symmetricEigen([1, 2, 3], 2))).toBe(true);
    expect(codeOf(() => symmetricEigen([1, Number.NaN, Number.NaN, 1], 2))).toBe(true);
    expect(codeOf(() => symmetricEigen([1, 2, 0, 1], 2))).toBe(true);
  });
});

describe('topRightSingularVectors', () => {
  it('finds the right singular vectors of M = σ₁·a₁b₁ᵀ + σ₂·a₂b₂ᵀ in order', () => {
    // rows 4, cols 3; a orthonormal in R⁴, b orthonormal in R³.
    const a1 = [0.5, 0.5, 0.5, 0.5];
    const a2 = [0.5, -0.5, 0.5, -0.5];
    const b1 = [0, 0, 1];
    const b2 = [0.6, 0.8, 0];
    const m = Array.from({ length: 12 }, (_, k) => {
      const [r, c] = [Math.floor(k / 3), k % 3];
      return 2 * a1[r]! * b1[c]! + 7 * a2[r]! * b2[c]!;
    });
    const { singularValues, vectors } = topRightSingularVectors(m, 4, 3, 2);
    expect(Array.from(singularValues).map((v) => Number(v.toFixed(8)))).toEqual([7, 2]);
    expect(Math.abs(dot(vectors[0]!, b2))).toBeCloseTo(1, 10);
    expect(Math.abs(dot(vectors[1]!, b1))).toBeCloseTo(1, 10);
    expect(() => topRightSingularVectors(m, 4, 3, 4)).toThrow(/k must be an integer in \[1, 3\]/);
    expect(() => topRightSingularVectors(m, 3, 3, 1)).toThrow(/3×3 matrix/);
  });
});
