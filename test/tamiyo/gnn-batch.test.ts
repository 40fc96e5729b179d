/** A batched forward pass computes, for each graph, what a forward pass of that graph alone computes. */
import { beforeAll, describe, expect, it } from 'vitest';
import { batchGraphs } from '../../src/tamiyo/gnn-batch.js';
import { TamiyoGnn } from '../../src/tamiyo/gnn.js';
import { gnnConfigFor } from '../../src/tamiyo/gnn-config.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { graphOfSize, TEST_RELATIONS } from './fixtures/graphs.js';

beforeAll(async () => {
  await initTensorBackend();
});

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>): void => {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i += 1) expect(actual[i]).toBeCloseTo(expected[i] as number, 4);
};

describe('TamiyoGnn.applyBatch', () => {
  it('gives every graph of a batch its own forward pass', () => {
    const gnn = new TamiyoGnn(gnnConfigFor(TEST_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 }), seededRng(3));
    const rng = seededRng(4);
    const graphs = [graphOfSize(rng, 20), graphOfSize(rng, 35), graphOfSize(rng, 12)];
    const batch = batchGraphs(graphs);
    const out = gnn.applyBatch(batch);
    try {
      const actions = out.actionLogits.arraySync();
      const values = out.value.dataSync();
      const scores = { seed: out.seedScores.dataSync(), site: out.siteScores.dataSync(), blueprint: out.blueprintScores.dataSync() };
      graphs.forEach((graph, g) => {
        const alone = gnn.forward(graph);
        close(actions[g] as number[], alone.actionLogits);
        expect(values[g]).toBeCloseTo(alone.value, 4);
        for (const type of ['seed', 'site', 'blueprint'] as const) {
          const from = batch.rowStart[type][g] as number;
          const to = batch.rowStart[type][g + 1] as number;
          close(scores[type].slice(from, to), alone[`${type}Scores`]);
          expect([...batch.graphOf[type].slice(from, to)].every((owner) => owner === g)).toBe(true);
        }
      });
    } finally {
      tf.dispose(out as unknown as tf.TensorContainer);
      gnn.dispose();
    }
  });

  it('refuses an empty batch', () => {
    expect(() => batchGraphs([])).toThrow(/no graphs/);
  });
});
