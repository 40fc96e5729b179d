import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../../src/oona/latency-window.js';

describe('LatencyWindow', () => {
  it('reports zeros with no samples', () => {
    expect(new LatencyWindow().summary()).toEqual({ p50Ms: 0, p99Ms: 0, samples: 0 });
  });

  it('computes nearest-rank p50 and p99', () => {
    const window = new LatencyWindow();
    for (let i = 100; i >= 1; i -= 1) window.record(i);
    expect(window.summary()).toEqual({ p50Ms: 50, p99Ms: 99, samples: 100 });
  });

  it('keeps only the most recent samples', () => {
    const window = new LatencyWindow(4);
    for (const ms of [1000, 1000, 1, 2, 3, 4]) window.record(ms);
    expect(window.summary()).toEqual({ p50Ms: 2, p99Ms: 4, samples: 4 });
  });
});
