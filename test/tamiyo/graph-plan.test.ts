import { beforeAll, describe, expect, it } from 'vitest';
import { host, initGraphFixtures, fullPacket, newBuilder, edges, pairs, row, expectWellFormed } from './fixtures/graph-inputs.js';

beforeAll(initGraphFixtures);

describe('candidate rows', () => {
  it('emits the §5.1 defaults when no candidate has metadata, and falls back to depth-based monitors', () => {
    const { builder } = newBuilder();
    const packet = fullPacket();
    const graph = builder.build({ packet, host, blueprints: [] });
    expectWellFormed(graph);
    expect(graph.nodes.blueprint.ids).toEqual([]);
    expect(graph.nodes.layer.ids).toEqual(['default-L0', 'default-L1', 'default-L2']);
    expect(graph.nodes.activation.ids).toEqual(['default-A0']);
    expect(graph.nodes.parameter.ids).toEqual(['default-alpha']);
    expect(row(graph, 'layer', 'default-L1')).toEqual([Math.fround(2 / 3), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // seed-a has layer_depth 1; seed-b depth 0.
    expect(pairs(edges(graph, 'seed', 'monitors', 'layer'))).toEqual([
      [0, 1],
      [1, 0],
    ]);
    expect(pairs(edges(graph, 'seed', 'allowed', 'parameter'))).toEqual([[0, 0]]);
    expect(edges(graph, 'layer', 'connects', 'layer').src.length).toBe(2);
    expect(graph.coverage.byKey.get('node.layer.descriptor')).toBe(0);
    expect(graph.coverage.byKey.get('edges.global_operates')).toBe(0);
    expect(graph.coverage.byKey.get('edges.layer_connects')).toBe(0);
  });
});
