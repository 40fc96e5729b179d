/**
 * The inference pass (`TamiyoGnn.forward`, gnn-inference.ts) against the tensor pass
 * (`TamiyoGnn.apply`, gnn-layers.ts, which Simic differentiates and which stays the
 * definition): the same outputs within 1e-5 relative per head, on the default sizes and on
 * odd ones, on trained-looking (random) weights, after the weights change, and through a
 * policy file; plus the GELU it uses and its tensor hygiene.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { gnnConfigFor, DEFAULT_GNN_CONFIG } from '../../src/tamiyo/gnn-config.js';
import { gelu } from '../../src/tamiyo/gnn-inference-math.js';
import { TENSOR_OUTPUT_KEYS, type GnnOutput } from '../../src/tamiyo/gnn-output.js';
import type { TamiyoGnn } from '../../src/tamiyo/gnn.js';
import { GRAPH_RELATIONS } from '../../src/tamiyo/graph-relations.js';
import { loadPolicy, serialisePolicy } from '../../src/tamiyo/policy-weights.js';
import type { PolicyGraph } from '../../src/tamiyo/graph-types.js';
import { initTensorBackend, maxRelativeError, seededRng, tf, type Rng } from '../../src/tensor/index.js';
import { graphOfSize, randomGraph, TEST_RELATIONS } from './fixtures/graphs.js';
import { withGnn } from './fixtures/gnn.js';

/** Largest relative difference allowed between the two passes (max |Δ| / max |reference| per head). */
const TOLERANCE = 1e-5;

beforeAll(async () => {
  await initTensorBackend();
});

/** Every weight redrawn around its initial value, so every head (the action head's zero init included) depends on the input. */
function perturb(gnn: TamiyoGnn, rng: Rng, scale = 0.3): void {
  for (const v of gnn.trainableVariables()) {
    const values = v.dataSync() as Float32Array;
    const next = Float32Array.from(values, (x) => x + scale * (2 * rng.nextFloat() - 1));
    tf.tidy(() => v.assign(tf.tensor(next, v.shape, 'float32')));
  }
}

/** The tensor pass's outputs as plain arrays. */
function tensorPass(gnn: TamiyoGnn, graph: PolicyGraph): Record<string, Float32Array> {
  return tf.tidy(() => {
    const out = gnn.apply(graph);
    return Object.fromEntries(TENSOR_OUTPUT_KEYS.map((key) => [key, out[key].dataSync() as Float32Array]));
  });
}

function expectSameOutputs(actual: GnnOutput, expected: Record<string, Float32Array>, label: string): void {
  for (const key of TENSOR_OUTPUT_KEYS) {
    const a = key === 'value' ? [actual.value] : Array.from(actual[key]);
    const e = Array.from(expected[key] as Float32Array);
    expect(a.length, `${label} ${key}`).toBe(e.length);
    if (e.length > 0) expect(maxRelativeError(a, e), `${label} ${key}`).toBeLessThanOrEqual(TOLERANCE);
  }
}

describe('TamiyoGnn inference pass', () => {
  it('gives the tensor pass outputs within 1e-5 at the default sizes, 10 to 200 nodes', () => {
    withGnn(gnnConfigFor(TEST_RELATIONS, DEFAULT_GNN_CONFIG), 5, (gnn) => {
      perturb(gnn, seededRng(50));
      for (const size of [10, 50, 200]) {
        const graph = graphOfSize(seededRng(size), size, { density: 1.5 });
        expectSameOutputs(gnn.forward(graph), tensorPass(gnn, graph), `${size} nodes`);
      }
    });
  });

  it('gives the tensor pass outputs on the graph builder relations at the untrained init', () => {
    withGnn(gnnConfigFor(GRAPH_RELATIONS, DEFAULT_GNN_CONFIG), 1, (gnn) => {
      const graph = graphOfSize(seededRng(3), 50, { relations: GRAPH_RELATIONS });
      expectSameOutputs(gnn.forward(graph), tensorPass(gnn, graph), 'init');
    });
  });

  it('handles widths that are not multiples of four, a width change at the first GAT layer, and empty node types', () => {
    const odd = gnnConfigFor(TEST_RELATIONS, { hidden: 10, gatHidden: 6, heads: 3, actionClasses: 9, blendClasses: 3 });
    withGnn(odd, 7, (gnn) => {
      perturb(gnn, seededRng(70));
      const graphs = [
        graphOfSize(seededRng(71), 40, { density: 2 }),
        randomGraph(seededRng(72), { global: 1, seed: 0, site: 0, blueprint: 0, layer: 0, activation: 3, parameter: 2 }),
        randomGraph(seededRng(73), { global: 1, seed: 0, site: 0, blueprint: 0, layer: 0, activation: 0, parameter: 0 }),
      ];
      graphs.forEach((graph, i) => expectSameOutputs(gnn.forward(graph), tensorPass(gnn, graph), `graph ${i}`));
    });
  });

  it('follows the weights when a variable changes (an optimizer step or a restore assigns it)', () => {
    withGnn(gnnConfigFor(TEST_RELATIONS, DEFAULT_GNN_CONFIG), 9, (gnn) => {
      const graph = graphOfSize(seededRng(90), 50);
      const before = gnn.forward(graph);
      const action = gnn.variablesByName().get('head/action/w') as tf.Variable;
      tf.tidy(() => action.assign(tf.randomUniform(action.shape, -1, 1, 'float32', 91)));
      const after = gnn.forward(graph);
      expect(maxRelativeError(after.actionLogits, before.actionLogits)).toBeGreaterThan(1e-3);
      expectSameOutputs(after, tensorPass(gnn, graph), 'after assign');
      perturb(gnn, seededRng(92));
      expectSameOutputs(gnn.forward(graph), tensorPass(gnn, graph), 'after perturb');
    });
  });

  it('decides the same through a policy file: loaded weights give bit-identical forwards', () => {
    withGnn(gnnConfigFor(GRAPH_RELATIONS, DEFAULT_GNN_CONFIG), 11, (gnn) => {
      perturb(gnn, seededRng(110));
      const loaded = loadPolicy(serialisePolicy(gnn, { version: 'v-test' }), gnn.config, 'test');
      try {
        const graph = graphOfSize(seededRng(111), 50, { relations: GRAPH_RELATIONS });
        const a = gnn.forward(graph);
        const b = loaded.gnn.forward(graph);
        for (const key of TENSOR_OUTPUT_KEYS) expect(b[key], key).toEqual(a[key]);
      } finally {
        loaded.gnn.dispose();
      }
    });
  });

  it('leaves no tensors behind, on the first forward (weights read) and later ones', () => {
    withGnn(gnnConfigFor(TEST_RELATIONS, DEFAULT_GNN_CONFIG), 13, (gnn) => {
      const graph = graphOfSize(seededRng(130), 200);
      const before = tf.memory().numTensors;
      gnn.forward(graph);
      gnn.forward(graph);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('gelu (inference pass)', () => {
  it('is the exact erf form to float32 precision, 0 and x beyond ±6, and keeps NaN', () => {
    const exact = (x: number): number =>
      tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.scalar(x * Math.SQRT1_2)), 1)).dataSync()[0] as number);
    for (let x = -8; x <= 8; x += 0.0625 + 0.001) {
      expect(Math.abs(gelu(x) - exact(x)), `x=${x}`).toBeLessThan(2e-7 * Math.max(1, Math.abs(x)));
    }
    expect(gelu(7)).toBe(7);
    expect(gelu(-7)).toBe(-0);
    expect(Number.isNaN(gelu(Number.NaN))).toBe(true);
  });
});
