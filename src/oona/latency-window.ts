/**
 * A bounded window of recent latency samples with nearest-rank percentiles, behind
 * `BusMetrics.publishLatency` / `handleLatency`.
 */
import type { LatencySummary } from './bus.js';

/** Samples kept by default. */
export const LATENCY_WINDOW_SAMPLES = 1024;

/** A ring buffer of the last `capacity` samples, in ms. */
export class LatencyWindow {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;

  constructor(capacity = LATENCY_WINDOW_SAMPLES) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`latency window capacity must be an integer ≥ 1, got ${capacity}`);
    }
    this.#samples = new Float64Array(capacity);
  }

  /** Adds one sample (negative values count as 0). */
  record(ms: number): void {
    this.#samples[this.#next] = ms > 0 ? ms : 0;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count += 1;
  }

  /** p50 and p99 over the window; 0 with no samples. */
  summary(): LatencySummary {
    const sorted = this.#samples.slice(0, this.#count).sort();
    return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), samples: this.#count };
  }
}

/** Nearest-rank percentile of an ascending array; 0 when empty. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}
