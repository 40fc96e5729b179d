/**
 * TamiyoGnn: shapes, the untrained WAIT bias, determinism, tensor hygiene, empty node types
 * and relations, graph/config validation, decoding, gradients, and agreement with a naive
 * per-relation implementation of reference §7.2 written in plain JS (float64).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { gnnConfigFor, PolicyAction, relationKey } from '../../src/tamiyo/gnn-config.js';
import { decodeOutput, type GnnOutput } from '../../src/tamiyo/gnn-output.js';
import { TamiyoGnn } from '../../src/tamiyo/gnn.js';
import { EDGE_ATTR_DIM, NODE_TYPES, type NodeType, type PolicyGraph, type RelationSpec } from '../../src/tamiyo/graph-types.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { countsForSize, graphOfSize, randomGraph, TEST_RELATIONS, type NodeCounts } from './fixtures/graphs.js';
import { withGnn } from './fixtures/gnn.js';
import { errorOf } from './fixtures/errors.js';

/** Small sizes keep the naive reference and the test fast. */
const SMALL = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 6, heads: 2 });

beforeAll(async () => {
  await initTensorBackend();
});

function expectAllFinite(output: GnnOutput): void {
  for (const [key, value] of Object.entries(output)) {
    const values = typeof value === 'number' ? [value] : [...(value as Float32Array)];
    for (const v of values) expect(Number.isFinite(v), key).toBe(true);
  }
}

describe('TamiyoGnn forward', () => {
  it('returns every head with its configured width and one score per seed, site and blueprint node', () => {
    const graph = graphOfSize(seededRng(1), 50);
    const output = withGnn(gnnConfigFor(TEST_RELATIONS), 1, (gnn) => gnn.forward(graph));
    expect(output.actionLogits).toHaveLength(32);
    expect(output.paramVector).toHaveLength(4);
    expect(output.blendLogits).toHaveLength(4);
    expect(output.schedule).toHaveLength(2);
    expect(output.riskLogits).toHaveLength(5);
    expect(output.breakerLogits).toHaveLength(2);
    expect(output.seedScores).toHaveLength(graph.nodes.seed.ids.length);
    expect(output.siteScores).toHaveLength(graph.nodes.site.ids.length);
    expect(output.blueprintScores).toHaveLength(graph.nodes.blueprint.ids.length);
    expectAllFinite(output);
    for (const v of [...output.paramVector, ...output.schedule]) expect(Math.abs(v)).toBeLessThanOrEqual(1);
  });

  it('makes an untrained net choose WAIT on any graph (action head init of §7.2)', () => {
    withGnn(SMALL, 3, (gnn) => {
      for (const size of [2, 10, 40]) {
        const output = gnn.forward(graphOfSize(seededRng(size), size));
        expect(output.actionLogits[0]).toBeCloseTo(0.5, 6);
        for (const v of output.actionLogits.subarray(1)) expect(v).toBeCloseTo(-0.5, 6);
        expect(decodeOutput(output).action).toBe(PolicyAction.WAIT);
      }
    });
  });

  it('gives bit-identical weights and outputs for the same config and seed, different ones for another seed', () => {
    const graph = graphOfSize(seededRng(5), 30);
    const run = (seed: number): { weights: Float32Array[]; output: GnnOutput } =>
      withGnn(SMALL, seed, (gnn) => ({
        weights: gnn.trainableVariables().map((v) => v.dataSync() as Float32Array),
        output: gnn.forward(graph),
      }));
    const a = run(11);
    const b = run(11);
    const c = run(12);
    expect(a.weights.map((w) => [...w])).toEqual(b.weights.map((w) => [...w]));
    for (const key of Object.keys(a.output) as (keyof GnnOutput)[]) {
      const x = a.output[key];
      const y = b.output[key];
      if (typeof x === 'number') expect(Object.is(x, y)).toBe(true);
      else expect(Buffer.from((x as Float32Array).buffer).equals(Buffer.from((y as Float32Array).buffer))).toBe(true);
    }
    expect([...c.output.seedScores]).not.toEqual([...a.output.seedScores]);
  });

  it('is deterministic across repeated forwards of one instance', () => {
    withGnn(SMALL, 2, (gnn) => {
      const graph = graphOfSize(seededRng(9), 25);
      const first = gnn.forward(graph);
      const second = gnn.forward(graph);
      expect([...second.seedScores]).toEqual([...first.seedScores]);
      expect(second.value).toBe(first.value);
    });
  });

  it('leaves no tensors behind after forward, apply, or a rejected graph', () => {
    withGnn(SMALL, 4, (gnn) => {
      const graph = graphOfSize(seededRng(4), 50);
      const before = tf.memory().numTensors;
      gnn.forward(graph);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(Object.values(gnn.apply(graph)));
      expect(tf.memory().numTensors).toBe(before);
      const bad = { ...graph, edges: graph.edges.slice(1) };
      expect(
        isEsperError(
          errorOf(() => gnn.forward(bad)),
          ErrorCode.TAMIYO_GRAPH_INVALID,
        ),
      ).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  it('frees every variable on dispose and refuses to run afterwards', () => {
    const before = tf.memory().numTensors;
    const gnn = new TamiyoGnn(SMALL, seededRng(1));
    const count = gnn.trainableVariables().length;
    expect(tf.memory().numTensors).toBe(before + count);
    gnn.dispose();
    gnn.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(gnn.disposed).toBe(true);
    expect(
      isEsperError(
        errorOf(() => gnn.forward(graphOfSize(seededRng(1), 10))),
        ErrorCode.INVALID_STATE,
      ),
    ).toBe(true);
  });

  it('handles node types with zero rows (no seeds, sites, blueprints, layers) and scores none', () => {
    const counts: NodeCounts = { global: 1, seed: 0, site: 0, blueprint: 0, layer: 0, activation: 3, parameter: 2 };
    const graph = randomGraph(seededRng(8), counts);
    withGnn(SMALL, 8, (gnn) => {
      const output = gnn.forward(graph);
      expect(output.seedScores).toHaveLength(0);
      expect(output.siteScores).toHaveLength(0);
      expect(output.blueprintScores).toHaveLength(0);
      expectAllFinite(output);
      const decision = decodeOutput(output);
      expect(decision.seedIndex).toBeUndefined();
      expect(decision.siteIndex).toBeUndefined();
      expect(decision.blueprintIndex).toBeUndefined();
    });
  });

  it('runs a graph that is only the global node, and one with every relation empty', () => {
    const lone: NodeCounts = { global: 1, seed: 0, site: 0, blueprint: 0, layer: 0, activation: 0, parameter: 0 };
    const emptyAll = TEST_RELATIONS.map(relationKey);
    withGnn(SMALL, 6, (gnn) => {
      expectAllFinite(gnn.forward(randomGraph(seededRng(1), lone)));
      const output = gnn.forward(randomGraph(seededRng(2), countsForSize(20), { emptyRelations: emptyAll }));
      expectAllFinite(output);
      expect(output.seedScores.length).toBeGreaterThan(0);
    });
  });

  it('matches a naive per-relation implementation of §7.2 (float64 JS)', () => {
    withGnn(SMALL, 21, (gnn) => {
      for (const seed of [1, 2]) {
        const graph = graphOfSize(seededRng(100 + seed), 24, { density: 1.5 });
        const expected = naiveForward(gnn, graph);
        const actual = gnn.forward(graph);
        const compare = (a: ArrayLike<number>, b: readonly number[], label: string): void => {
          expect(a.length, label).toBe(b.length);
          for (let i = 0; i < b.length; i += 1) expect(Math.abs((a[i] as number) - (b[i] as number)), `${label}[${i}]`).toBeLessThan(2e-4);
        };
        compare(actual.seedScores, expected.seedScores, 'seedScores');
        compare(actual.siteScores, expected.siteScores, 'siteScores');
        compare(actual.blueprintScores, expected.blueprintScores, 'blueprintScores');
        compare(actual.riskLogits, expected.riskLogits, 'riskLogits');
        compare(actual.paramVector, expected.paramVector, 'paramVector');
        compare([actual.value], [expected.value], 'value');
      }
    });
  });

  it('permutes seed scores with the seed rows (node-order equivariance)', () => {
    withGnn(SMALL, 31, (gnn) => {
      const graph = randomGraph(seededRng(31), { ...countsForSize(20), seed: 4 });
      const perm = [2, 0, 3, 1]; // new row i holds old row perm[i]
      const inverse = new Int32Array(4);
      perm.forEach((old, row) => (inverse[old] = row));
      const dim = graph.nodes.seed.features.length / 4;
      const features = new Float32Array(graph.nodes.seed.features.length);
      perm.forEach((old, row) => features.set(graph.nodes.seed.features.subarray(old * dim, (old + 1) * dim), row * dim));
      const remap = (ids: Int32Array, isSeed: boolean): Int32Array => (isSeed ? ids.map((i) => inverse[i] as number) : ids);
      const permuted: PolicyGraph = {
        ...graph,
        nodes: { ...graph.nodes, seed: { ids: perm.map((i) => `seed-${i}`), features } },
        edges: graph.edges.map((e) => ({
          ...e,
          src: remap(e.src, e.relation.src === 'seed'),
          dst: remap(e.dst, e.relation.dst === 'seed'),
        })),
      };
      const a = gnn.forward(graph);
      const b = gnn.forward(permuted);
      perm.forEach((old, row) => expect(b.seedScores[row]).toBeCloseTo(a.seedScores[old] as number, 4));
      expect(b.value).toBeCloseTo(a.value, 4);
    });
  });

  it('is differentiable: every variable gets a finite gradient from apply()', () => {
    withGnn(SMALL, 41, (gnn) => {
      const graph = graphOfSize(seededRng(41), 20);
      const before = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => {
        const out = gnn.apply(graph);
        const terms = [out.actionLogits, out.paramVector, out.blendLogits, out.schedule, out.riskLogits, out.value, out.breakerLogits];
        const scores = [out.seedScores, out.siteScores, out.blueprintScores];
        return tf.add(tf.sum(tf.square(tf.concat(terms))), tf.sum(tf.concat(scores))) as tf.Scalar;
      }, gnn.trainableVariables());
      const names = gnn.trainableVariables().map((v) => v.name);
      expect(Object.keys(grads).sort()).toEqual([...names].sort());
      let nonZero = 0;
      for (const g of Object.values(grads)) {
        const data = g.dataSync();
        expect(data.every((x) => Number.isFinite(x))).toBe(true);
        if (data.some((x) => x !== 0)) nonZero += 1;
      }
      expect(nonZero).toBeGreaterThan(names.length * 0.8);
      tf.dispose([value, ...Object.values(grads)]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

// ---------------------------------------------------------------------------------------
// Naive reference: per relation, per node, float64, straight from §7.2 and the documented
// block layout of the weights.

type Matrix = { rows: number; cols: number; data: Float64Array };

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): ample for a 2e-4 tolerance.
  const sign = x < 0 ? -1 : 1;
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return sign * y;
}
const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

function naiveForward(
  gnn: TamiyoGnn,
  graph: PolicyGraph,
): {
  seedScores: number[];
  siteScores: number[];
  blueprintScores: number[];
  riskLogits: number[];
  paramVector: number[];
  value: number;
} {
  const { config } = gnn;
  const { hidden, gatHidden: c, heads } = config;
  const vars = gnn.variablesByName();
  const w = (name: string): Matrix => {
    const v = vars.get(name);
    if (v === undefined) throw new Error(`no variable ${name}`);
    const rows = v.shape.length === 1 ? 1 : (v.shape[0] as number);
    return { rows, cols: v.size / rows, data: Float64Array.from(v.dataSync()) };
  };
  const at = (m: Matrix, i: number, j: number): number => m.data[i * m.cols + j] as number;
  const matvec = (x: readonly number[], m: Matrix, col0: number, width: number): number[] =>
    Array.from({ length: width }, (_, j) => x.reduce((acc, xi, i) => acc + xi * at(m, i, col0 + j), 0));
  const add = (a: readonly number[], b: readonly number[]): number[] => a.map((x, i) => x + (b[i] as number));
  const bySrc = (type: NodeType): RelationSpec[] => config.relations.filter((r) => r.src === type);
  const byDst = (type: NodeType): RelationSpec[] => config.relations.filter((r) => r.dst === type);
  const edgesOf = (r: RelationSpec) => {
    const set = graph.edges.find((e) => relationKey(e.relation) === relationKey(r));
    if (set === undefined) throw new Error('missing relation');
    return set;
  };

  let h: Record<NodeType, number[][]> = {} as Record<NodeType, number[][]>;
  for (const type of NODE_TYPES) {
    const dim = config.nodeDims[type];
    const { features, ids } = graph.nodes[type];
    h[type] = ids.map((_, i) => {
      const x = Array.from(features.subarray(i * dim, (i + 1) * dim));
      const y = add(matvec(x, w(`encoder/${type}/w`), 0, hidden), [...w(`encoder/${type}/b`).data]).map(gelu);
      const mean = y.reduce((a, b) => a + b, 0) / y.length;
      const variance = y.reduce((a, b) => a + (b - mean) ** 2, 0) / y.length;
      const gamma = w(`encoder/${type}/ln_gamma`).data;
      const beta = w(`encoder/${type}/ln_beta`).data;
      return y.map((v, j) => ((v - mean) / Math.sqrt(variance + 1e-5)) * (gamma[j] as number) + (beta[j] as number));
    });
  }

  const finish = (next: Record<NodeType, number[][]>, prev: Record<NodeType, number[][]>): Record<NodeType, number[][]> => {
    const out = {} as Record<NodeType, number[][]>;
    for (const type of NODE_TYPES) {
      out[type] = next[type].map((row, i) => {
        const g = row.map(gelu);
        const p = prev[type][i] as number[];
        return p.length === g.length ? add(g, p) : g;
      });
    }
    return out;
  };

  for (const layer of [1, 2]) {
    const next = {} as Record<NodeType, number[][]>;
    for (const type of NODE_TYPES) {
      const rels = byDst(type);
      next[type] = h[type].map((xi, i) => {
        let acc = new Array<number>(hidden).fill(0);
        for (const r of rels) {
          const set = edgesOf(r);
          const slot = bySrc(r.src).indexOf(r);
          const neighbours: number[][] = [];
          set.dst.forEach((d, e) => {
            if (d === i) neighbours.push(h[r.src][set.src[e] as number] as number[]);
          });
          const mean = new Array<number>(hidden).fill(0);
          for (const n of neighbours) n.forEach((v, j) => (mean[j] = (mean[j] as number) + v / neighbours.length));
          acc = add(acc, matvec(mean, w(`sage${layer}/neigh/${r.src}`), slot * hidden, hidden));
        }
        acc = acc.map((v) => v / rels.length);
        // root/bias hold the relation mean of W_r and b already.
        return add(add(acc, matvec(xi, w(`sage${layer}/root/${type}`), 0, hidden)), [...w(`sage${layer}/bias/${type}`).data]);
      });
    }
    h = finish(next, h);
  }

  for (const layer of [1, 2]) {
    const next = {} as Record<NodeType, number[][]>;
    const relIndex = (r: RelationSpec): number => config.relations.indexOf(r);
    for (const type of NODE_TYPES) {
      const rels = byDst(type);
      next[type] = h[type].map((xi, i) => {
        const acc = new Array<number>(c).fill(0);
        for (const r of rels) {
          const set = edgesOf(r);
          const sSlot = bySrc(r.src).indexOf(r);
          const dSlot = byDst(r.dst).indexOf(r);
          const wSrc = w(`gat${layer}/src/${r.src}`);
          const attSrc = w(`gat${layer}/att_src/${r.src}`).data;
          const attDst = w(`gat${layer}/att_dst/${type}`);
          const attEdge = w(`gat${layer}/att_edge`);
          const incoming: { xs: number[]; logit: number[] }[] = [];
          set.dst.forEach((d, e) => {
            if (d !== i) return;
            const xj = h[r.src][set.src[e] as number] as number[];
            const xs = matvec(xj, wSrc, sSlot * heads * c, heads * c);
            const attr = Array.from(set.attrs.subarray(e * EDGE_ATTR_DIM, (e + 1) * EDGE_ATTR_DIM));
            const logit = Array.from({ length: heads }, (_, hd) => {
              let s = 0;
              for (let k = 0; k < c; k += 1) s += (xs[hd * c + k] as number) * (attSrc[(sSlot * heads + hd) * c + k] as number);
              s += matvec(xi, attDst, dSlot * heads + hd, 1)[0] as number;
              s += matvec(attr, attEdge, relIndex(r) * heads + hd, 1)[0] as number;
              return s > 0 ? s : 0.2 * s;
            });
            incoming.push({ xs, logit });
          });
          for (let hd = 0; hd < heads; hd += 1) {
            const max = Math.max(...incoming.map((m) => m.logit[hd] as number));
            const z = incoming.reduce((a, m) => a + Math.exp((m.logit[hd] as number) - max), 0);
            for (const m of incoming) {
              const alpha = Math.exp((m.logit[hd] as number) - max) / z;
              for (let k = 0; k < c; k += 1) acc[k] = (acc[k] as number) + (alpha * (m.xs[hd * c + k] as number)) / heads / rels.length;
            }
          }
        }
        return add(acc, [...w(`gat${layer}/bias/${type}`).data]);
      });
    }
    h = finish(next, h);
  }

  const g = h.global[0] as number[];
  const linear = (x: readonly number[], prefix: string): number[] => {
    const m = w(`${prefix}/w`);
    return add(matvec(x, m, 0, m.cols), [...w(`${prefix}/b`).data]);
  };
  const score = (type: NodeType, prefix: string): number[] => h[type].map((x) => linear(x, prefix)[0] as number);
  return {
    seedScores: score('seed', 'head/seed_score'),
    siteScores: score('site', 'head/site_score'),
    blueprintScores: score('blueprint', 'head/blueprint_score'),
    riskLogits: linear(g, 'head/risk'),
    paramVector: linear(linear(g, 'head/param/l1').map(gelu), 'head/param/l2').map(Math.tanh),
    value: linear(g, 'head/value')[0] as number,
  };
}
