/**
 * A policy graph and a sampled decision on the wire (Leyline `PolicyGraphSnapshot`,
 * `DecisionContext` in a field report) and back: the round trip is exact through protobuf
 * binary, the network gives the same output on the graph it gets back, and a malformed
 * snapshot is refused naming its field.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { isEsperError } from '../../src/core/index.js';
import { FieldReportSchema, PolicyGraphSnapshotSchema } from '../../src/leyline/index.js';
import {
  decisionContextOf,
  decodeDecisionContext,
  gnnConfigFor,
  graphOfSnapshot,
  PolicyAction,
  choiceMaskOf,
  sampleChoice,
  snapshotOfGraph,
  TamiyoGnn,
  type PolicyGraph,
} from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import { graphOfSize, randomGraph, TEST_RELATIONS } from './fixtures/graphs.js';

beforeAll(async () => {
  await initTensorBackend();
});

function throughWire(graph: PolicyGraph): PolicyGraph {
  const bytes = toBinary(PolicyGraphSnapshotSchema, snapshotOfGraph(graph));
  return graphOfSnapshot(fromBinary(PolicyGraphSnapshotSchema, bytes));
}

function expectSameGraph(actual: PolicyGraph, expected: PolicyGraph): void {
  for (const type of Object.keys(expected.nodes) as (keyof PolicyGraph['nodes'])[]) {
    expect(actual.nodes[type].ids).toEqual(expected.nodes[type].ids);
    expect(actual.nodes[type].features).toEqual(expected.nodes[type].features);
  }
  expect(actual.edges.map((e) => e.relation)).toEqual(expected.edges.map((e) => e.relation));
  for (const [i, e] of expected.edges.entries()) {
    expect(actual.edges[i]?.src).toEqual(e.src);
    expect(actual.edges[i]?.dst).toEqual(e.dst);
    expect(actual.edges[i]?.attrs).toEqual(e.attrs);
  }
  expect(actual.coverage.average).toBe(Math.fround(expected.coverage.average));
}

describe('policy graph snapshots', () => {
  it('round-trips a graph exactly through protobuf binary, and the network reads the same graph', () => {
    const graph = graphOfSize(seededRng(3), 60);
    const back = throughWire(graph);
    expectSameGraph(back, graph);
    const gnn = new TamiyoGnn(gnnConfigFor(TEST_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 }), seededRng(1));
    try {
      const a = gnn.forward(graph);
      const b = gnn.forward(back);
      expect(Array.from(b.actionLogits)).toEqual(Array.from(a.actionLogits));
      expect(Array.from(b.siteScores)).toEqual(Array.from(a.siteScores));
      expect(b.value).toBe(a.value);
    } finally {
      gnn.dispose();
    }
  });

  it('round-trips any graph (property)', () => {
    const counts = fc.record({
      global: fc.constant(1),
      seed: fc.nat(5),
      site: fc.nat(4),
      blueprint: fc.nat(4),
      layer: fc.nat(6),
      activation: fc.nat(4),
      parameter: fc.nat(4),
    });
    fc.assert(
      fc.property(counts, fc.integer({ min: 0, max: 1e6 }), (c, seed) => {
        const graph = randomGraph(seededRng(seed), c);
        expectSameGraph(throughWire(graph), graph);
      }),
      { numRuns: 60 },
    );
  });

  it('a sampled decision survives a field report: graph, choice, log-probability and value', () => {
    const graph = graphOfSize(seededRng(9), 40);
    const gnn = new TamiyoGnn(gnnConfigFor(TEST_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 }), seededRng(2));
    try {
      const rng = seededRng(4);
      const output = gnn.forward(graph);
      // Draw until each action appeared once, so every optional index is exercised (the
      // random graph's seeds are dormant: here every seed is made cullable).
      const mask = choiceMaskOf(graph);
      const everySeed = { ...mask, seeds: new Uint8Array(mask.seeds.length).fill(1) };
      const seen = new Set<number>();
      for (let i = 0; i < 200 && seen.size < 3; i += 1) {
        const { choice, logProb } = sampleChoice(output, everySeed, rng);
        if (seen.has(choice.action)) continue;
        seen.add(choice.action);
        const report = create(FieldReportSchema, {
          reportId: 'r',
          decisionContext: decisionContextOf({ graph, choice, logProb, value: output.value }),
        });
        const wire = fromBinary(FieldReportSchema, toBinary(FieldReportSchema, report));
        const decoded = decodeDecisionContext(wire.decisionContext!);
        expect(decoded.choice).toEqual(choice);
        expect(decoded.logProb).toBe(Math.fround(logProb));
        expect(decoded.value).toBe(Math.fround(output.value));
        expectSameGraph(decoded.graph, graph);
      }
      expect(seen.size).toBe(3);
    } finally {
      gnn.dispose();
    }
  });

  it('refuses a malformed snapshot naming the field', () => {
    const graph = graphOfSize(seededRng(5), 30);
    const field = (mutate: (s: ReturnType<typeof snapshotOfGraph>) => void): unknown => {
      const snapshot = snapshotOfGraph(graph);
      mutate(snapshot);
      try {
        graphOfSnapshot(snapshot, 'report r1');
        return undefined;
      } catch (error) {
        expect(isEsperError(error, 'ESPER_TAMIYO_GRAPH_INVALID')).toBe(true);
        return (error as { details: { field: string } }).details.field;
      }
    };
    expect(field((s) => s.nodes[1]!.features.pop())).toBe('nodes[1].features');
    expect(field((s) => (s.nodes[2]!.type = 'planet'))).toBe('nodes[2].type');
    expect(field((s) => s.nodes.splice(3, 1))).toBe('nodes');
    expect(field((s) => (s.edges.find((e) => e.src.length > 0)!.dst[0] = 10_000))).toMatch(/^edges\[\d+\]\.dst$/);
    expect(field((s) => (s.nodes[0]!.features[0] = Number.NaN))).toBe('nodes[0].features');
    const context = decisionContextOf({ graph, choice: { action: PolicyAction.CULL, seedIndex: 99 }, logProb: -1, value: 0 });
    expect(() => decodeDecisionContext(context)).toThrow(/seed_index/);
  });
});
