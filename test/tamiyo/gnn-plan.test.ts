import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { gnnConfigFor } from '../../src/tamiyo/gnn-config.js';
import { planForward, relationLayout } from '../../src/tamiyo/gnn-plan.js';
import { EDGE_ATTR_DIM, type PolicyGraph } from '../../src/tamiyo/graph-types.js';
import { seededRng } from '../../src/tensor/index.js';
import { countsForSize, graphOfSize, randomGraph, TEST_RELATIONS } from './fixtures/graphs.js';
import { errorOf } from './fixtures/errors.js';

const SMALL = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 6, heads: 2 });
const LAYOUT = relationLayout(SMALL.relations);

describe('planForward', () => {
  it('lays out every node type-major (global first) and every edge of every relation', () => {
    const graph = graphOfSize(seededRng(5), 30);
    const plan = planForward(graph, SMALL, LAYOUT);
    expect(plan.offsets.global).toBe(0);
    expect(plan.counts.global).toBe(1);
    expect(plan.totalNodes).toBe(Object.values(graph.nodes).reduce((n, set) => n + set.ids.length, 0));
    expect(plan.edges).toBe(graph.edges.reduce((n, set) => n + set.src.length, 0));
  });

  const graph = graphOfSize(seededRng(77), 20);
  const reject = (mutated: unknown): void => {
    const error = errorOf(() => planForward(mutated as PolicyGraph, SMALL, LAYOUT));
    expect(isEsperError(error, ErrorCode.TAMIYO_GRAPH_INVALID)).toBe(true);
  };

  it('rejects a graph without exactly one global node', () => {
    reject(randomGraph(seededRng(1), { ...countsForSize(10), global: 2 }));
    reject(randomGraph(seededRng(1), { ...countsForSize(10), global: 0 }));
  });

  it('rejects missing, unknown and duplicated relations', () => {
    reject({ ...graph, edges: graph.edges.slice(1) });
    reject({ ...graph, edges: [...graph.edges, { ...graph.edges[0], relation: { src: 'seed', name: 'other', dst: 'seed' } }] });
    reject({ ...graph, edges: [...graph.edges, graph.edges[0]] });
  });

  it('rejects out-of-range edges, mismatched lengths, wrong feature widths and non-finite values', () => {
    const edges0 = graph.edges[0];
    if (edges0 === undefined) throw new Error('fixture has no relations');
    const withEdges = (patch: object): unknown => ({ ...graph, edges: [{ ...edges0, ...patch }, ...graph.edges.slice(1)] });
    reject(withEdges({ src: Int32Array.of(0), dst: Int32Array.of(999), attrs: new Float32Array(EDGE_ATTR_DIM) }));
    reject(withEdges({ src: Int32Array.of(-1), dst: Int32Array.of(0), attrs: new Float32Array(EDGE_ATTR_DIM) }));
    reject(withEdges({ src: Int32Array.of(0), dst: Int32Array.of(0), attrs: new Float32Array(1) }));
    reject(withEdges({ src: Int32Array.of(0), dst: Int32Array.of(0), attrs: Float32Array.of(0, Number.NaN, 0) }));
    const seed = graph.nodes.seed;
    reject({ ...graph, nodes: { ...graph.nodes, seed: { ids: seed.ids, features: seed.features.subarray(1) } } });
    const nan = Float32Array.from(seed.features);
    nan[3] = Number.POSITIVE_INFINITY;
    reject({ ...graph, nodes: { ...graph.nodes, seed: { ids: seed.ids, features: nan } } });
  });
});
