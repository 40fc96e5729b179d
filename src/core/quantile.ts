/**
 * The one quantile of Esper: linear interpolation between order statistics (Hyndman–Fan
 * type 7, numpy's and R's default). Why this one: docs/architecture.md, Core.
 */
import { optionChecks } from './options.js';

const check = optionChecks('quantile');

/**
 * The `q`-quantile of ascending `sorted`: with `h = (n − 1)·q`, the value at `⌊h⌋` plus
 * `h − ⌊h⌋` of the step to the next. `undefined` when empty.
 * @throws EsperError `INVALID_ARGUMENT` unless `0 ≤ q ≤ 1`
 */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number | undefined {
  check.number('q', q, { min: 0, max: 1 });
  if (sorted.length === 0) return undefined;
  const h = (sorted.length - 1) * q;
  const low = Math.floor(h);
  const a = sorted[low] as number;
  if (low === h) return a;
  const b = sorted[low + 1] as number;
  return a + (b - a) * (h - low);
}

/**
 * The `q`-quantile of `values` in any order (see {@link quantileOfSorted}); `undefined` when
 * empty. Sorts a copy: to take several quantiles of one series, sort once and call
 * {@link quantileOfSorted}.
 */
export function quantile(values: Iterable<number>, q: number): number | undefined {
  return quantileOfSorted(Float64Array.from(values).sort(), q);
}

/**
 * A ring buffer of the last `capacity` samples (latencies, sizes) and their quantiles.
 * `record` is O(1); `quantiles` sorts a copy of the window.
 */
export class SampleWindow {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;

  /** @throws EsperError `INVALID_ARGUMENT` unless `capacity` is an integer ≥ 1 */
  constructor(capacity: number) {
    this.#samples = new Float64Array(optionChecks('SampleWindow').integer('capacity', capacity, { min: 1 }));
  }

  /** Most samples kept. */
  get capacity(): number {
    return this.#samples.length;
  }

  /** Samples in the window now. */
  get size(): number {
    return this.#count;
  }

  /** Adds a sample, replacing the oldest once the window is full. */
  record(sample: number): void {
    this.#samples[this.#next] = sample;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count += 1;
  }

  /** The samples in the window, ascending (a copy). */
  sorted(): Float64Array {
    return this.#samples.slice(0, this.#count).sort();
  }

  /** One quantile per entry of `qs`, over one sort of the window; `undefined`s when empty. */
  quantiles(qs: readonly number[]): (number | undefined)[] {
    const sorted = this.sorted();
    return qs.map((q) => quantileOfSorted(sorted, q));
  }
}
