import { describe, expect, it } from 'vitest';
import { quantile, recordGc } from '../../bench/stats.js';

describe('bench stats', () => {
  it('takes quantiles by core’s one definition, NaN (printed null) when there are no samples', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([], 0.5)).toBeNaN();
    expect(JSON.stringify({ p50: quantile([], 0.5) })).toBe('{"p50":null}');
  });

  it('sums the GC pauses seen while recording', async () => {
    const gc = recordGc();
    const pauses = await gc.stop();
    expect(pauses.count).toBeGreaterThanOrEqual(0);
    expect(pauses.totalMs).toBeGreaterThanOrEqual(pauses.maxMs);
  });
});
