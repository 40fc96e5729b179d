/**
 * Statistics the benches share: quantiles (core's one definition) and the
 * garbage-collection pauses seen while a series ran.
 */
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { quantile as coreQuantile } from '../src/core/index.js';

/**
 * The `q`-quantile of `values` in any order, by core's one definition (linear interpolation
 * between order statistics, as numpy); NaN when empty, so a bench prints `null`.
 */
export function quantile(values: readonly number[], q: number): number {
  return coreQuantile(values, q) ?? Number.NaN;
}

/** Garbage-collection pauses observed while a series ran (they explain part of the tail). */
export interface GcPauses {
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
}

/** Starts recording GC pauses; `stop()` ends it and sums them, rounded to `digits`. */
export function recordGc(digits = 2): { stop(): Promise<GcPauses> } {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  const round = (x: number): number => Number(x.toFixed(digits));
  return {
    async stop() {
      // GC entries are delivered on a later macrotask, not through takeRecords().
      await new Promise((resolve) => setTimeout(resolve, 0));
      entries.push(...observer.takeRecords());
      observer.disconnect();
      const durations = entries.map((e) => e.duration);
      return { count: durations.length, totalMs: round(durations.reduce((a, b) => a + b, 0)), maxMs: round(Math.max(0, ...durations)) };
    },
  };
}
