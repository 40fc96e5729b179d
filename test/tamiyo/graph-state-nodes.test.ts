import { beforeAll, describe, expect, it } from 'vitest';
import { initGraphFixtures, newBuilder, fullInput, row } from './fixtures/graph-inputs.js';

beforeAll(initGraphFixtures);

describe('state nodes', () => {
  it('fills seed features from the typed seed state and metrics', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    const a = row(graph, 'seed', 'seed-a');
    expect(a[0]).toBe(Math.fround(4 / 11));
    expect(a[1]).toBe(Math.fround(0.4));
    expect(a[2]).toBe(1);
    expect(a[3]).toBe(Math.fround(Math.tanh(1)));
    expect(a[5]).toBe(1);
    expect(a[7]).toBe(1);
    expect(a[9]).toBe(1);
    expect(a[12]).toBeGreaterThan(0);
    expect(a[13]).toBe(0.25);
    const b = row(graph, 'seed', 'seed-b');
    expect([b[2], b[4], b[5]]).toEqual([0, 0, 0]);
  });
});
