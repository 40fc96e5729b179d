import { describe, expect, it } from 'vitest';
import { gnnConfigFor, PolicyAction } from '../../src/tamiyo/gnn-config.js';
import { HEAD_HIDDEN, initialWeights } from '../../src/tamiyo/gnn-init.js';
import { relationLayout } from '../../src/tamiyo/gnn-plan.js';
import { NODE_TYPES } from '../../src/tamiyo/graph-types.js';
import { seededRng } from '../../src/tensor/index.js';
import { TEST_RELATIONS } from './fixtures/graphs.js';

const CONFIG = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 6, heads: 2 });

function weights(seed: number): Map<string, { shape: readonly number[]; values: Float32Array }> {
  const out = new Map<string, { shape: readonly number[]; values: Float32Array }>();
  initialWeights(CONFIG, relationLayout(CONFIG.relations), seededRng(seed), (logical, shape, values) => {
    expect(out.has(logical)).toBe(false);
    expect(values.length).toBe(shape.reduce((a, b) => a * b, 1));
    out.set(logical, { shape, values });
  });
  return out;
}

describe('initialWeights', () => {
  it('creates the documented block layout: encoders per type, fused SAGE and GAT blocks, and the heads', () => {
    const w = weights(1);
    for (const type of NODE_TYPES) {
      expect(w.get(`encoder/${type}/w`)?.shape).toEqual([CONFIG.nodeDims[type], CONFIG.hidden]);
      expect(w.has(`sage1/root/${type}`)).toBe(true);
      expect(w.has(`gat2/bias/${type}`)).toBe(true);
    }
    expect(w.get('gat1/att_edge')?.shape).toEqual([3, CONFIG.relations.length * CONFIG.heads]);
    expect(w.get('head/param/l1/w')?.shape).toEqual([CONFIG.gatHidden, HEAD_HIDDEN]);
  });

  it('starts the action head at WAIT (weights 0, bias −0.5, bias[WAIT] +0.5) and is reproducible from the seed', () => {
    const w = weights(1);
    expect([...(w.get('head/action/w')?.values ?? [])].every((x) => x === 0)).toBe(true);
    const bias = w.get('head/action/b')?.values ?? new Float32Array();
    expect(bias[PolicyAction.WAIT]).toBe(0.5);
    expect(bias[PolicyAction.GERMINATE]).toBe(-0.5);
    expect(weights(1).get('sage1/neigh/seed')?.values).toEqual(w.get('sage1/neigh/seed')?.values);
    expect(weights(2).get('sage1/neigh/seed')?.values).not.toEqual(w.get('sage1/neigh/seed')?.values);
  });
});
