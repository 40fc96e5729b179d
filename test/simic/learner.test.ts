/**
 * Simic's PPO learner: its log-probabilities are the ones the policy sampled with, GAE is
 * the textbook recursion, on a task with one rewarded choice it learns that choice, and
 * behaviour cloning makes a demonstrator's choices likely.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generalisedAdvantages, type Trajectory, type Transition } from '../../src/simic/experience.js';
import { PpoLearner } from '../../src/simic/learner.js';
import {
  choiceLogProb,
  choiceMaskOf,
  gnnConfigFor,
  PolicyAction,
  sampleChoice,
  TamiyoGnn,
  type PolicyGraph,
} from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng, type Rng } from '../../src/tensor/index.js';
import { graphOfSize, TEST_RELATIONS } from '../tamiyo/fixtures/graphs.js';

beforeAll(async () => {
  await initTensorBackend();
});

const smallGnn = (seed: number): TamiyoGnn =>
  new TamiyoGnn(gnnConfigFor(TEST_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 }), seededRng(seed));

/** One-decision episodes: reward 1 for germinating blueprint row 0, else 0. */
function play(gnn: TamiyoGnn, graphs: readonly PolicyGraph[], rng: Rng): { trajectories: Trajectory[]; hitRate: number } {
  let hits = 0;
  const trajectories = graphs.map((graph) => {
    const output = gnn.forward(graph);
    const fits = choiceMaskOf(graph);
    const { choice, logProb } = sampleChoice(output, fits, rng);
    expect(logProb).toBeCloseTo(choiceLogProb(output, fits, choice), 9);
    const hit = choice.action === PolicyAction.GERMINATE && choice.blueprintIndex === 0;
    if (hit) hits += 1;
    const step: Transition = { graph, choice, logProb, value: output.value, reward: hit ? 1 : 0 };
    return [step];
  });
  return { trajectories, hitRate: hits / graphs.length };
}

describe('generalisedAdvantages', () => {
  it('is the GAE recursion with no bootstrap after the last decision', () => {
    const t = (reward: number, value: number): Transition => ({
      graph: undefined as unknown as PolicyGraph,
      choice: { action: PolicyAction.WAIT },
      logProb: 0,
      value,
      reward,
    });
    const { advantages, returns } = generalisedAdvantages([t(0, 0.5), t(0, 0.2), t(1, 0.4)], 0.9, 0.8);
    const d2 = 1 - 0.4;
    const d1 = 0 + 0.9 * 0.4 - 0.2;
    const d0 = 0 + 0.9 * 0.2 - 0.5;
    expect(advantages[2]).toBeCloseTo(d2, 12);
    expect(advantages[1]).toBeCloseTo(d1 + 0.72 * d2, 12);
    expect(advantages[0]).toBeCloseTo(d0 + 0.72 * (d1 + 0.72 * d2), 12);
    expect(returns[0]).toBeCloseTo((advantages[0] as number) + 0.5, 12);
  });
});

describe('PpoLearner', () => {
  it('evaluates the sampled choices at the probabilities they were drawn with (ratio 1 before any step)', () => {
    const gnn = smallGnn(1);
    const rng = seededRng(2);
    const graphs = Array.from({ length: 24 }, () => graphOfSize(rng, 25));
    const { trajectories } = play(gnn, graphs, rng);
    const learner = new PpoLearner(gnn, { learningRate: 1e-12, epochs: 1, minibatch: 24 });
    const stats = learner.update(trajectories, rng);
    expect(Math.abs(stats.approxKl)).toBeLessThan(1e-5);
    expect(stats.clipFraction).toBe(0);
    expect(stats.decisions).toBe(24);
    expect(stats.entropy.action).toBeGreaterThan(0);
    learner.dispose();
    gnn.dispose();
  });

  it('learns the one rewarded choice of a bandit, with its entropy, KL and clip statistics finite', () => {
    const gnn = smallGnn(5);
    const rng = seededRng(6);
    const graphs = Array.from({ length: 32 }, () => graphOfSize(rng, 20));
    const learner = new PpoLearner(gnn, { learningRate: 3e-3, minibatch: 32, entropyCoef: 0 });
    const before = play(gnn, graphs, seededRng(100)).hitRate;
    for (let i = 0; i < 15; i += 1) {
      const stats = learner.update(play(gnn, graphs, rng).trajectories, rng);
      for (const v of [stats.policyLoss, stats.valueLoss, stats.approxKl, stats.clipFraction, stats.explainedVariance, stats.gradNorm]) {
        expect(Number.isFinite(v)).toBe(true);
      }
    }
    const after = play(gnn, graphs, seededRng(100)).hitRate;
    expect(after).toBeGreaterThan(before + 0.3);
    learner.dispose();
    gnn.dispose();
  }, 60_000);

  it('behaviour cloning makes the demonstrated choices likely and fits the value head to their returns, at its own rate, without counting an update', () => {
    const gnn = smallGnn(7);
    const rng = seededRng(8);
    const graphs = Array.from({ length: 24 }, () => graphOfSize(rng, 20)).filter((g) => choiceMaskOf(g).pairs.includes(1));
    // The demonstrator germinates the first pair each graph allows; its episodes return 0.5.
    const demonstrations: Trajectory[] = graphs.map((graph) => {
      const mask = choiceMaskOf(graph);
      const pair = mask.pairs.indexOf(1);
      const choice = {
        action: PolicyAction.GERMINATE,
        siteIndex: Math.floor(pair / mask.blueprints),
        blueprintIndex: pair % mask.blueprints,
      };
      return [{ graph, choice, logProb: 0, value: 0, reward: 0.5 }];
    });
    const likelihood = (): number =>
      demonstrations.reduce((sum, [t]) => sum + Math.exp(choiceLogProb(gnn.forward(t!.graph), choiceMaskOf(t!.graph), t!.choice)), 0) /
      demonstrations.length;
    const before = likelihood();
    // PPO's rate is far too small to learn anything: the fit moves only at its own rate.
    const learner = new PpoLearner(gnn, { learningRate: 1e-9, minibatch: 32 });
    const stats = learner.imitate(demonstrations, rng, { passes: 40, learningRate: 3e-3 });
    expect(stats).toMatchObject({ episodes: demonstrations.length, decisions: demonstrations.length, passes: 40, learningRate: 3e-3 });
    expect(stats.lastLoss).toBeLessThan(stats.firstLoss);
    expect(likelihood()).toBeGreaterThan(Math.max(0.5, before + 0.3));
    expect(stats.agreement).toBeGreaterThan(0.5);
    expect(stats.actionShare).toEqual([0, 1, 0]);
    expect(Math.abs(gnn.forward(graphs[0]!).value - 0.5)).toBeLessThan(0.2);
    expect(learner.updates).toBe(0);
    expect(() => learner.imitate(demonstrations, rng, { passes: 0, learningRate: 3e-3 })).toThrow(/passes/);
    expect(() => learner.imitate(demonstrations, rng, { passes: 1, learningRate: 0 })).toThrow(/learningRate/);
    learner.dispose();
    gnn.dispose();
  }, 60_000);
});
