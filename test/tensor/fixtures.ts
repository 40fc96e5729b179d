/**
 * Shared helpers for the tensor tests: seeded random data as plain arrays (so the same
 * values can be built on wasm and on the cpu oracle) and a worst-error ledger that the
 * parity suites print once at the end.
 */
import { seededRng, tf, type ParityTensor, type Rng } from '../../src/tensor/index.js';

/** Relative error bound every parity check must meet (issue: ≤ 1e-5). */
export const PARITY_TOLERANCE = 1e-5;

/** Uniform float32 data in [lo, hi). */
export function uniform(rng: Rng, shape: readonly number[], lo = -1, hi = 1): ParityTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i += 1) values[i] = lo + (hi - lo) * rng.nextFloat();
  return { shape, values };
}

/** Float32 data drawn from a few integer levels, to force ties (max-pool). */
export function levels(rng: Rng, shape: readonly number[], count: number): ParityTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i += 1) values[i] = rng.nextInt(count);
  return { shape, values };
}

/** Int32 data in [lo, hi). */
export function ints(rng: Rng, shape: readonly number[], lo: number, hi: number): ParityTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Int32Array(size);
  for (let i = 0; i < size; i += 1) values[i] = lo + rng.nextInt(hi - lo);
  return { shape, values };
}

/** A fixed seed per test file so failures reproduce. */
export const testRng = (seed: number): Rng => seededRng(seed);

/** Worst relative error seen per label, printed by {@link printLedger}. */
export class WorstErrorLedger {
  private readonly worst = new Map<string, { error: number; cases: number }>();

  record(label: string, error: number): void {
    const entry = this.worst.get(label) ?? { error: 0, cases: 0 };
    entry.error = Math.max(entry.error, error);
    entry.cases += 1;
    this.worst.set(label, entry);
  }

  entries(): [string, { error: number; cases: number }][] {
    return [...this.worst.entries()];
  }

  /** One line per label: worst relative error over its cases. */
  format(title: string): string {
    const lines = this.entries().map(([label, { error, cases }]) => `  ${label.padEnd(40)} ${error.toExponential(2)}  (${cases} cases)`);
    return `${title}\n${lines.join('\n')}`;
  }
}

/** Builds a tensor from {@link ParityTensor} data on the active backend. */
export function toTensor(data: ParityTensor): tf.Tensor {
  return tf.tensor(data.values, [...data.shape], data.values instanceof Int32Array ? 'int32' : 'float32');
}
