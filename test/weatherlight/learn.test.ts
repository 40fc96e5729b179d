/**
 * `esper learn`'s experiment on a cut-down task, through real child-process runs: a warm
 * start cloning the heuristic, then one PPO update on two episodes of a learned policy (decision logs, rewards, policy files with
 * their cadence), the held-out evaluation of every arm with paired differences, and the
 * episode evaluator a fleet's Simic uses before it publishes.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, type EsperSettings } from '../../src/core/index.js';
import { findTask, type TaskDefinition } from '../../src/study/index.js';
import { gnnConfigFor, GRAPH_RELATIONS, loadPolicy, TamiyoGnn } from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import {
  episodeEvaluator,
  EVALUATION_ARMS,
  evaluateLearnedPolicy,
  learnPolicy,
  runKeyRing,
  type LearnResult,
} from '../../src/weatherlight/index.js';

/** TEST-ONLY: spirals-mlp cut to 320 steps (10 epochs of 32). */
const QUICK_SPIRALS: TaskDefinition = { ...findTask('spirals-mlp'), id: 'spirals-quick', steps: 320 };

let root: string;
let settings: EsperSettings;
let learned: LearnResult;

beforeAll(async () => {
  await initTensorBackend();
  root = await mkdtemp(path.join(tmpdir(), 'esper-learn-'));
  settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') }, core: { latencyBudgets: 'observe' } } });
  await runKeyRing(settings);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('learnPolicy', () => {
  it('clones the heuristic (warm start), then plays episodes with the current policy and makes one PPO update on their decisions and rewards', async () => {
    const events: string[] = [];
    learned = await learnPolicy({
      task: QUICK_SPIRALS,
      settings,
      directory: path.join(root, 'learn'),
      minutes: 30,
      maxUpdates: 1,
      episodesPerUpdate: 2,
      baselineRuns: 1,
      everyEpochs: 2,
      concurrency: 2,
      warmStart: { episodes: 2, passes: 3 },
      onEvent: (e) => events.push(e.type),
    });
    expect(events).toEqual(['baseline', 'warm_start', 'update']);
    // The warm start: the heuristic's decisions at epoch ends 0, 2, 4, 6, 8 of two runs.
    const warm = learned.warmStart;
    expect(warm?.version).toBe('simic-bc');
    expect(warm?.episodes.map((e) => e.seed)).toEqual([0, 1]);
    expect(warm?.stats).toMatchObject({ episodes: 2, decisions: 10, passes: 3 });
    expect(warm?.stats.agreement).toBeGreaterThan(0);
    expect(warm?.stats.agreement).toBeLessThanOrEqual(1);
    expect(learned.episodes).toBe(4);
    // PPO's first batch was played by the clone, on the next seeds.
    expect(learned.updates).toHaveLength(1);
    const [update] = learned.updates;
    expect(update?.failedEpisodes).toBe(0);
    expect(update?.episodes.map((e) => e.seed)).toEqual([2, 3]);
    // Epoch ends 0, 2, 4, 6, 8 (the tenth ends the run: no decision there): five per episode.
    expect(update?.stats.decisions).toBe(10);
    expect(update?.stats.episodes).toBe(2);
    for (const e of update?.episodes ?? []) {
      expect(e.reward).toBeCloseTo(e.accuracy - learned.baselineAccuracy - 0.05 * ((e.parameters - 22) / 300), 9);
      expect(e.skippedSteps).toBe(0);
    }
    expect(update?.stats.averageReward).toBeCloseTo((update?.episodes ?? []).reduce((s, e) => s + e.reward, 0) / 2, 9);
    for (const v of [update?.stats.policyLoss, update?.stats.valueLoss, update?.stats.approxKl, update?.stats.explainedVariance]) {
      expect(Number.isFinite(v)).toBe(true);
    }
    // Policies carry their cadence; decision logs are not left behind.
    const policy = loadPolicy(await readFile(learned.policyFile), undefined, learned.policyFile);
    expect(policy.version).toBe('simic-v1');
    expect(policy.decisionEveryEpochs).toBe(2);
    policy.gnn.dispose();
    expect(await readdir(path.join(root, 'learn', 'episodes'))).toEqual([]);
    expect((await readdir(path.join(root, 'learn', 'policies'))).sort()).toEqual(['simic-bc.bin', 'simic-v0.bin', 'simic-v1.bin']);
    const record = JSON.parse(await readFile(path.join(root, 'learn', 'learn.json'), 'utf8')) as {
      updates: unknown[];
      warmStart: { stats: { decisions: number } };
    };
    expect(record.updates).toHaveLength(1);
    expect(record.warmStart.stats.decisions).toBe(10);
  }, 240_000);

  it('evaluates every arm on the same held-out seeds, with paired differences and what each grew', async () => {
    const evaluation = await evaluateLearnedPolicy({
      task: QUICK_SPIRALS,
      settings,
      directory: path.join(root, 'learn'),
      policyFile: learned.policyFile,
      initialPolicyFile: learned.initialPolicyFile,
      seeds: 2,
      stats: learned.updates[0]?.stats,
    });
    expect(evaluation.seeds).toEqual([1_000_000, 1_000_001]);
    expect(evaluation.arms.map((a) => a.arm)).toEqual([...EVALUATION_ARMS]);
    for (const arm of evaluation.arms) {
      expect(arm.runs.map((r) => r.seed)).toEqual(evaluation.seeds);
      if (arm.arm === 'small') expect(arm.reward.mean).toBeCloseTo(0, 12); // the reward's reference
    }
    const diff = evaluation.differences.find((d) => d.a === 'learned' && d.b === 'heuristic' && d.metric === 'accuracy');
    const learnedArm = evaluation.arms.find((a) => a.arm === 'learned');
    const heuristicArm = evaluation.arms.find((a) => a.arm === 'heuristic');
    expect(diff?.summary.mean).toBeCloseTo((learnedArm?.accuracy.mean ?? 0) - (heuristicArm?.accuracy.mean ?? 0), 12);
    const shares = Object.values(evaluation.learnedActionShare);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(typeof evaluation.gates.passed).toBe('boolean');
    if (!evaluation.gates.passed) expect(evaluation.gates.reasons.length).toBeGreaterThan(0);
    expect((await readdir(path.join(root, 'learn'))).filter((f) => f.endsWith('.dec'))).toEqual([]);
  }, 240_000);
});

describe('a policy that breaks its runs', () => {
  it('shows in the evaluation as failed runs scored at accuracy 0, not as an error of the evaluation', async () => {
    const broken = path.join(root, 'broken.bin');
    await writeFile(broken, 'not a policy');
    const evaluation = await evaluateLearnedPolicy({
      task: QUICK_SPIRALS,
      settings,
      directory: path.join(root, 'learn'),
      policyFile: broken,
      initialPolicyFile: learned.initialPolicyFile,
      seeds: 2,
      arms: ['small', 'learned'],
    });
    const [small, learnedArm] = evaluation.arms;
    expect(learnedArm).toMatchObject({ arm: 'learned', failed: 2, grewNothing: 0 });
    expect(learnedArm?.accuracy.mean).toBe(0);
    learnedArm?.runs.forEach((r, i) => expect(r.reward).toBeCloseTo(-(small?.runs[i]?.accuracy ?? 0), 12));
    expect(small?.failed).toBe(0);
  }, 240_000);
});

describe('episodeEvaluator', () => {
  it("rates a fleet's candidate, its current policy and the heuristic by their mean held-out reward", async () => {
    const candidate = new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(1));
    const current = new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(2));
    try {
      const directory = path.join(root, 'evaluations');
      const evaluate = episodeEvaluator({ task: QUICK_SPIRALS, settings, directory, seeds: 2, decisionEveryEpochs: 3 });
      const result = await evaluate(candidate, { current, currentVersion: 'fleet-v4' });
      expect(result.seeds).toBe(2);
      for (const v of [result.candidate, result.current, result.heuristic]) expect(Number.isFinite(v)).toBe(true);
      expect(await readdir(directory)).toEqual([]);
    } finally {
      candidate.dispose();
      current.dispose();
    }
  }, 240_000);
});
