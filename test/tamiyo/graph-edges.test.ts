import { beforeAll, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { BSDSSchema, HandlingClass, HazardBand } from '../../src/leyline/index.js';
import type { BlueprintCandidate } from '../../src/tamiyo/candidates.js';
import { initGraphFixtures, metadata, fullPacket, newBuilder, fullInput, edges, pairs, attrsOf, row } from './fixtures/graph-inputs.js';

beforeAll(initGraphFixtures);

describe('policy graph edges', () => {
  it('keeps layer adjacency from the metadata within the kept layers, per blueprint', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    const ids = graph.nodes.layer.ids;
    const connects = pairs(edges(graph, 'layer', 'connects', 'layer')).map(([s, d]) => `${ids[s]}>${ids[d]}`);
    // BP010's [3, 4] is beyond the 3-layer cap and dropped; its order [0→2, 2→1] is kept, not chained.
    expect(connects).toEqual(['BP009-L0>BP009-L1', 'BP009-L1>BP009-L2', 'BP010-L0>BP010-L2', 'BP010-L2>BP010-L1', 'BP002-L0>BP002-L1']);
    const connectsSet = edges(graph, 'layer', 'connects', 'layer');
    expect(attrsOf(connectsSet, 2)).toEqual([Math.fround(1 / 3), 1, Math.fround(0.3)]);
    expect(graph.coverage.byKey.get('edges.layer_connects')).toBe(1);
  });
  it('falls back to a chain and reports layer_connects absent when no adjacency pair is usable', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const [first] = input.blueprints;
    const lonely = { ...first!, graph: { ...first!.graph!, adjacency: [[7, 9]] as [number, number][] } };
    const graph = builder.build({ ...input, blueprints: [lonely] });
    expect(pairs(edges(graph, 'layer', 'connects', 'layer'))).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(graph.coverage.byKey.get('edges.layer_connects')).toBe(0);
  });
  it('gives blend-allowed seeds capability edges to their blueprint parameters only', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    const allowed = edges(graph, 'seed', 'allowed', 'parameter');
    expect(pairs(allowed)).toEqual([[0, 0]]);
    expect(graph.nodes.parameter.ids[0]).toBe('BP009-depth');
    expect(attrsOf(allowed, 0)).toEqual([1, 1, Math.fround(4 / 11)]);
    expect(pairs(edges(graph, 'parameter', 'associated', 'seed'))).toEqual([[0, 0]]);
    expect(graph.coverage.byKey.get('edges.seed_param_allowed')).toBe(1);
    expect(graph.coverage.byGroup.has('edges.seed_param_allowed')).toBe(false);
  });
  it('has no capability edges when no seed may blend', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const packet = fullPacket();
    packet.seedStates = [packet.seedStates[1]!];
    const graph = builder.build({ ...input, packet });
    expect(edges(graph, 'seed', 'allowed', 'parameter').src.length).toBe(0);
    expect(graph.coverage.byKey.get('edges.seed_param_allowed')).toBe(0);
  });
  it('links each seed to the layers of its blueprint, weighted by BSDS-tightened monitors', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const bp009 = input.blueprints[0]!;
    const tightened: BlueprintCandidate = {
      descriptor: bp009.descriptor,
      graph: { ...bp009.graph!, monitors: metadata(bp009.descriptor, [], [], { monitorFactor: 0.1 }).monitors },
      bsds: create(BSDSSchema, {
        blueprintId: 'BP009',
        riskScore: 0.7,
        hazardBand: HazardBand.CRITICAL,
        handlingClass: HandlingClass.QUARANTINE,
      }),
    };
    const graph = builder.build({ ...input, blueprints: [tightened, ...input.blueprints.slice(1)] });
    const monitors = edges(graph, 'seed', 'monitors', 'layer');
    const layerIds = graph.nodes.layer.ids;
    expect(pairs(monitors).map(([s, l]) => `${graph.nodes.seed.ids[s]}>${layerIds[l]}`)).toEqual([
      'seed-a>BP009-L0',
      'seed-a>BP009-L1',
      'seed-a>BP009-L2',
      'seed-b>BP010-L0',
      'seed-b>BP010-L1',
      'seed-b>BP010-L2',
    ]);
    expect(attrsOf(monitors, 0)).toEqual([Math.fround(4 / 11), Math.fround(0.3), Math.fround(0.1)]);
    expect(attrsOf(monitors, 3)).toEqual([Math.fround(3 / 11), 0.5, 1]);
    expect(pairs(edges(graph, 'layer', 'monitored_by', 'seed'))).toEqual(pairs(monitors).map(([s, l]) => [l, s]));
    // The BSDS overrides the descriptor risk and flags hazard, handling and quarantine.
    const bp = row(graph, 'blueprint', 'BP009');
    expect(bp[2]).toBeCloseTo(0.7, 6);
    expect(bp[6]).toBe(1);
    expect(bp[7]).toBe(1);
    expect(bp[8]).toBe(1);
    expect(bp[9]).toBe(1);
  });
  it('relates sites: occupancy, exact-compile vs family fit, host order', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    expect(pairs(edges(graph, 'seed', 'occupies', 'site'))).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(pairs(edges(graph, 'site', 'next', 'site'))).toEqual([
      [0, 1],
      [1, 2],
    ]);
    const fits = edges(graph, 'blueprint', 'fits', 'site');
    const byPair = new Map(pairs(fits).map(([b, s], i) => [`${graph.nodes.blueprint.ids[b]}@${s}`, attrsOf(fits, i)]));
    expect([...byPair.keys()].filter((k) => k.startsWith('BP013'))).toEqual([]);
    expect(byPair.get('BP009@0')).toEqual([1, Math.fround(0.3), Math.fround(1 / 3)]);
    expect(byPair.get('BP002@2')?.[0]).toBe(0.5);
    expect(row(graph, 'site', 'hidden1')).toEqual([
      1,
      0,
      Math.fround(Math.log2(33) / 12),
      0,
      1,
      Math.fround(4 / 11),
      Math.fround(0.4),
      Math.fround(0.02),
      1,
      0,
    ]);
    expect(row(graph, 'site', 'hidden3')).toEqual([1, 0, Math.fround(Math.log2(33) / 12), Math.fround(2 / 3), 0, 0, 0, 0, 0, 1]);
    expect(row(graph, 'blueprint', 'BP013')[11]).toBe(0);
    expect(row(graph, 'blueprint', 'BP009')[11]).toBe(1);
  });
});
