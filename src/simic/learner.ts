/**
 * Simic's learner: PPO (Schulman et al. 2017) with the clipped ratio and GAE on Tamiyo's
 * GNN — the same network, weights format and hot-swap path as the live policy — over the
 * factored distribution of `gnn-sampling.ts` (action among wait / germinate / cull, then a
 * site and a blueprint, or a seed). One update: advantages by GAE per episode, normalised
 * over the batch; then `epochs` passes over shuffled minibatches, each one batched forward
 * pass (`TamiyoGnn.applyBatch`) and one Adam step with the global gradient norm clipped
 * (1.0, the prototype's); stopped early once the approximate KL to the behaviour policy
 * passes 1.5 × `targetKl`.
 *
 * Why PPO, not V-trace: Simic learns from episodes its own current policy just played
 * (`esper learn`), and from a fleet's reports only those the policy being trained decided
 * (their `tamiyo_policy_version` names it), so the data is on-policy but for the few
 * epochs of one update, which the clipped ratio covers; V-trace's corrections matter for
 * experience many versions old, which Simic does not train on.
 *
 * Every failure mode the 2026 controller hit is a statistic of every update: per-head
 * entropy (collapse), value loss and explained variance (value collapse), approximate KL
 * and clip fraction (steps too large), gradient norm before clipping.
 */
import { optionChecks } from '../core/index.js';
import {
  allowedActions,
  batchGraphs,
  blueprintsFitting,
  choiceMaskOf,
  cullableSeeds,
  PolicyAction,
  SAMPLED_ACTIONS,
  sitesWithFit,
  type GnnBatchTensors,
  type GraphBatch,
  type TamiyoGnn,
} from '../tamiyo/index.js';
import { tf, type NamedTensor, type Rng } from '../tensor/index.js';
import { generalisedAdvantages, type Trajectory, type Transition } from './experience.js';

/** PPO's settings. */
export interface PpoOptions {
  /** Adam's step size. @default 3e-4 */
  readonly learningRate: number;
  /** Ratio clip ε. @default 0.2 */
  readonly clip: number;
  /** Passes over the batch per update. @default 4 */
  readonly epochs: number;
  /** Decisions per minibatch (one batched forward pass each). @default 64 */
  readonly minibatch: number;
  /** Discount γ (episodes are short and end: 1). @default 1 */
  readonly gamma: number;
  /** GAE λ. @default 0.95 */
  readonly lambda: number;
  /** Value-loss weight. @default 0.5 */
  readonly valueCoef: number;
  /** Entropy-bonus weight. @default 0.01 */
  readonly entropyCoef: number;
  /** Global gradient-norm clip. @default 1 */
  readonly maxGradNorm: number;
  /** Stop an update's passes once the approximate KL exceeds 1.5 × this. @default 0.02 */
  readonly targetKl: number;
}

/** PPO's defaults (clip, λ, value weight and epochs as in the PPO paper; the prototype's gradient clip). */
export const PPO_DEFAULTS: Readonly<PpoOptions> = Object.freeze({
  learningRate: 3e-4,
  clip: 0.2,
  epochs: 4,
  minibatch: 64,
  gamma: 1,
  lambda: 0.95,
  valueCoef: 0.5,
  entropyCoef: 0.01,
  maxGradNorm: 1,
  targetKl: 0.02,
});

/** What one update measured (means over its minibatch steps unless said otherwise). */
export interface PpoStats {
  /** Episodes and decisions in the batch. */
  readonly episodes: number;
  readonly decisions: number;
  /** Mean episode return (sum of its rewards). */
  readonly averageReward: number;
  /** Clipped-surrogate loss (to minimise). */
  readonly policyLoss: number;
  /** Mean squared error of the value head against the GAE returns. */
  readonly valueLoss: number;
  /** Entropy of the action head, and of the site, blueprint and seed heads where they chose. */
  readonly entropy: { readonly action: number; readonly site: number; readonly blueprint: number; readonly seed: number };
  /** Mean of the four heads' entropies that had something to choose (the gates' `policy_entropy`). */
  readonly policyEntropy: number;
  /** Approximate KL(behaviour ‖ new), mean of `log π_old − log π_new`, at the last pass. */
  readonly approxKl: number;
  /** Fraction of decisions whose ratio left [1 − ε, 1 + ε], at the last pass. */
  readonly clipFraction: number;
  /** 1 − Var(returns − values) / Var(returns), of the values the episodes were played with. */
  readonly explainedVariance: number;
  /** Global gradient norm before clipping, mean over steps. */
  readonly gradNorm: number;
  /** Passes over the batch done (fewer than `epochs` when the KL stopped it). */
  readonly passes: number;
  /** Share of decisions per action, in {@link SAMPLED_ACTIONS} order. */
  readonly actionShare: readonly number[];
}

/** How {@link PpoLearner.imitate} fits the demonstrations. */
export interface ImitationOptions {
  /** Passes over the demonstrations. @default 16 */
  readonly passes: number;
  /** Adam's step size for the fit (its own optimizer, not PPO's). @default 2e-3 */
  readonly learningRate: number;
}

/**
 * Cloning's defaults, measured on spirals-mlp (256 demonstrations of 16 heuristic runs): at
 * 2e-3, 16 passes generalise to held-out runs (germinate 15 of 15); 3e-4 underfits (the
 * clone stays at WAIT); more passes sharpen the fit on the demonstrations, not on new runs.
 */
export const IMITATION_DEFAULTS: Readonly<ImitationOptions> = Object.freeze({ passes: 16, learningRate: 2e-3 });

/** What {@link PpoLearner.imitate} measured. */
export interface ImitationStats {
  /** Demonstrated episodes and decisions. */
  readonly episodes: number;
  readonly decisions: number;
  readonly passes: number;
  /** The fit's Adam step size. */
  readonly learningRate: number;
  /** Mean −log π(demonstrated choice) over the first pass and over the last. */
  readonly firstLoss: number;
  readonly lastLoss: number;
  /** The value head's mean squared error against the returns, over the last pass. */
  readonly valueLoss: number;
  /** Mean probability the network gave the demonstrated choice, over the last pass. */
  readonly agreement: number;
  /** Share of the demonstrated choices per action, in {@link SAMPLED_ACTIONS} order. */
  readonly actionShare: readonly number[];
}

const NEG = -1e9;

/** Indices of `choice` per decision of a minibatch, as tensors' inputs. */
interface MinibatchInputs {
  readonly batch: GraphBatch;
  readonly action: Int32Array;
  readonly actionMask: Float32Array;
  /**
   * Per batch row of each node type, whether the distribution may choose it: sites some
   * blueprint fits; blueprints fitting the chosen site (germinates) or any site (others).
   */
  readonly siteAllowed: Float32Array;
  readonly blueprintAllowed: Float32Array;
  readonly seedAllowed: Float32Array;
  /** Per decision, whether its blueprint head's entropy counts (a germinate: conditioned on its site). */
  readonly blueprintEntropyCounts: Float32Array;
  /** Row of the chosen node in the batch (0 when unused) and whether it counts. */
  readonly siteRow: Int32Array;
  readonly siteUsed: Float32Array;
  readonly blueprintRow: Int32Array;
  readonly blueprintUsed: Float32Array;
  readonly seedRow: Int32Array;
  readonly seedUsed: Float32Array;
  readonly oldLogProb: Float32Array;
  readonly advantage: Float32Array;
  readonly target: Float32Array;
}

function inputsOf(
  steps: readonly Transition[],
  advantages: Float64Array,
  returns: Float64Array,
  indices: readonly number[],
): MinibatchInputs {
  const batch = batchGraphs(indices.map((i) => (steps[i] as Transition).graph));
  const n = indices.length;
  const action = new Int32Array(n);
  const actionMask = new Float32Array(n * SAMPLED_ACTIONS.length);
  const rows = { site: new Int32Array(n), blueprint: new Int32Array(n), seed: new Int32Array(n) };
  const used = { site: new Float32Array(n), blueprint: new Float32Array(n), seed: new Float32Array(n) };
  const oldLogProb = new Float32Array(n);
  const advantage = new Float32Array(n);
  const target = new Float32Array(n);
  const siteAllowed = new Float32Array(batch.graphOf.site.length);
  const blueprintAllowed = new Float32Array(batch.graphOf.blueprint.length);
  const seedAllowed = new Float32Array(batch.graphOf.seed.length);
  const blueprintEntropyCounts = new Float32Array(n);
  indices.forEach((index, g) => {
    const step = steps[index] as Transition;
    const mask = choiceMaskOf(step.graph);
    const siteStart = batch.rowStart.site[g] as number;
    const blueprintStart = batch.rowStart.blueprint[g] as number;
    const seedStart = batch.rowStart.seed[g] as number;
    sitesWithFit(mask).forEach((ok, i) => {
      siteAllowed[siteStart + i] = ok ? 1 : 0;
    });
    // The blueprint factor is drawn given the chosen site; a decision without one adds no
    // blueprint term (its row is unused and its entropy not counted).
    const chosenSite = step.choice.action === PolicyAction.GERMINATE ? step.choice.siteIndex : undefined;
    if (chosenSite !== undefined) {
      blueprintsFitting(mask, chosenSite).forEach((ok, b) => {
        blueprintAllowed[blueprintStart + b] = ok ? 1 : 0;
      });
    }
    blueprintEntropyCounts[g] = chosenSite === undefined ? 0 : 1;
    cullableSeeds(mask).forEach((ok, i) => {
      seedAllowed[seedStart + i] = ok ? 1 : 0;
    });
    allowedActions(mask).forEach((ok, a) => {
      actionMask[g * SAMPLED_ACTIONS.length + a] = ok ? 1 : 0;
    });
    action[g] = SAMPLED_ACTIONS.indexOf(step.choice.action);
    const pick = (type: 'site' | 'blueprint' | 'seed', index: number | undefined): void => {
      if (index === undefined) return;
      rows[type][g] = (batch.rowStart[type][g] as number) + index;
      used[type][g] = 1;
    };
    if (step.choice.action === PolicyAction.GERMINATE) {
      pick('site', step.choice.siteIndex);
      pick('blueprint', step.choice.blueprintIndex);
    } else if (step.choice.action === PolicyAction.CULL) {
      pick('seed', step.choice.seedIndex);
    }
    oldLogProb[g] = step.logProb;
    advantage[g] = advantages[index] as number;
    target[g] = returns[index] as number;
  });
  return {
    batch,
    action,
    actionMask,
    siteAllowed,
    blueprintAllowed,
    seedAllowed,
    blueprintEntropyCounts,
    siteRow: rows.site,
    siteUsed: used.site,
    blueprintRow: rows.blueprint,
    blueprintUsed: used.blueprint,
    seedRow: rows.seed,
    seedUsed: used.seed,
    oldLogProb,
    advantage,
    target,
  };
}

/**
 * Per-graph log-softmax of node scores over each graph's own allowed rows (`allowed` 1/0 per
 * row; all rows when absent), and per-graph entropy; `present` marks graphs with an allowed row.
 */
function segmentLogSoftmax(
  scores: tf.Tensor1D,
  graphOf: Int32Array,
  graphs: number,
  allowed?: Float32Array,
): { logProbs: tf.Tensor1D; entropy: tf.Tensor1D; present: tf.Tensor1D } {
  if (scores.shape[0] === 0) return { logProbs: scores, entropy: tf.zeros([graphs]), present: tf.zeros([graphs]) };
  const seg = tf.tensor1d(graphOf, 'int32');
  const shift = tf.scalar(tf.max(scores).dataSync()[0] as number); // a constant: shifts cancel in the softmax
  const shifted =
    allowed === undefined ? tf.sub(scores, shift) : tf.add(tf.sub(scores, shift), tf.mul(tf.sub(1, tf.tensor1d(allowed)), NEG));
  const z = tf.unsortedSegmentSum(tf.exp(shifted), seg, graphs);
  const has = new Float32Array(graphs);
  graphOf.forEach((g, row) => {
    if (allowed === undefined || allowed[row] === 1) has[g] = 1;
  });
  const present = tf.tensor1d(has);
  const logZ = tf.log(tf.add(z, tf.sub(1, present))); // graphs without rows: log 1 = 0, never gathered
  const logProbs = tf.sub(shifted, tf.gather(logZ, seg)) as tf.Tensor1D;
  // Disallowed rows have probability 0 (exp of −1e9): they add nothing.
  const entropy = tf.neg(tf.unsortedSegmentSum(tf.mul(tf.exp(logProbs), logProbs), seg, graphs)) as tf.Tensor1D;
  return { logProbs, entropy, present };
}

function chosen(logProbs: tf.Tensor1D, rows: Int32Array, used: Float32Array): tf.Tensor1D {
  if (logProbs.shape[0] === 0) return tf.zeros([rows.length]);
  return tf.mul(tf.gather(logProbs, tf.tensor1d(rows, 'int32')), tf.tensor1d(used)) as tf.Tensor1D;
}

/** Masked mean of `values` (0 when nothing counts). */
function maskedMean(values: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.div(tf.sum(tf.mul(values, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

/** The per-decision log-probabilities and entropies of a minibatch under the network now. */
function distributionOf(out: GnnBatchTensors, inputs: MinibatchInputs) {
  const n = inputs.action.length;
  const logits = tf.gather(out.actionLogits, tf.tensor1d([...SAMPLED_ACTIONS], 'int32'), 1);
  const masked = tf.add(logits, tf.mul(tf.sub(1, tf.tensor2d(inputs.actionMask, [n, 3])), NEG));
  const actionLogProbs = tf.logSoftmax(masked);
  const actionLogProb = tf.sum(tf.mul(actionLogProbs, tf.oneHot(tf.tensor1d(inputs.action, 'int32'), 3)), 1) as tf.Tensor1D;
  const actionEntropy = tf.neg(tf.sum(tf.mul(tf.exp(actionLogProbs), actionLogProbs), 1)) as tf.Tensor1D;
  const site = segmentLogSoftmax(out.siteScores, inputs.batch.graphOf.site, n, inputs.siteAllowed);
  const blueprint = segmentLogSoftmax(out.blueprintScores, inputs.batch.graphOf.blueprint, n, inputs.blueprintAllowed);
  const seed = segmentLogSoftmax(out.seedScores, inputs.batch.graphOf.seed, n, inputs.seedAllowed);
  const logProb = tf.addN([
    actionLogProb,
    chosen(site.logProbs, inputs.siteRow, inputs.siteUsed),
    chosen(blueprint.logProbs, inputs.blueprintRow, inputs.blueprintUsed),
    chosen(seed.logProbs, inputs.seedRow, inputs.seedUsed),
  ]) as tf.Tensor1D;
  return {
    logProb,
    entropy: {
      action: tf.mean(actionEntropy) as tf.Scalar,
      site: maskedMean(site.entropy, site.present),
      blueprint: maskedMean(blueprint.entropy, tf.mul(blueprint.present, tf.tensor1d(inputs.blueprintEntropyCounts)) as tf.Tensor1D),
      seed: maskedMean(seed.entropy, seed.present),
    },
  };
}

/** 0 … n−1 in an order drawn from `rng` (Fisher–Yates). */
function shuffledIndices(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i -= 1) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

function variance(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return 0;
  let mean = 0;
  for (let i = 0; i < n; i += 1) mean += values[i] as number;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i += 1) v += ((values[i] as number) - mean) ** 2;
  return v / n;
}

/** PPO on one {@link TamiyoGnn} (the learner trains it in place; the caller owns it). */
export class PpoLearner {
  readonly options: Readonly<PpoOptions>;
  readonly #gnn: TamiyoGnn;
  readonly #optimizer: tf.AdamOptimizer;
  #updates = 0;

  constructor(gnn: TamiyoGnn, options: Partial<PpoOptions> = {}) {
    const o = { ...PPO_DEFAULTS, ...options };
    const check = optionChecks('PpoOptions');
    check.positive('learningRate', o.learningRate);
    check.positive('clip', o.clip);
    check.integer('epochs', o.epochs, { min: 1, max: 1000 });
    check.integer('minibatch', o.minibatch, { min: 1, max: 1 << 16 });
    for (const [field, value] of [
      ['gamma', o.gamma],
      ['lambda', o.lambda],
    ] as const) {
      if (!(value >= 0 && value <= 1)) check.fail(field, 'a number in [0, 1]', value);
    }
    for (const [field, value] of [
      ['valueCoef', o.valueCoef],
      ['entropyCoef', o.entropyCoef],
    ] as const) {
      if (!(Number.isFinite(value) && value >= 0)) check.fail(field, 'a finite number ≥ 0', value);
    }
    check.positive('maxGradNorm', o.maxGradNorm);
    check.positive('targetKl', o.targetKl);
    this.options = Object.freeze(o);
    this.#gnn = gnn;
    this.#optimizer = tf.train.adam(o.learningRate);
  }

  /** Updates completed. */
  get updates(): number {
    return this.#updates;
  }

  /** One PPO update on `trajectories` (played by the network as it is now); `rng` shuffles. */
  update(trajectories: readonly Trajectory[], rng: Rng): PpoStats {
    const o = this.options;
    const steps: Transition[] = [];
    const advParts: number[] = [];
    const retParts: number[] = [];
    let returnSum = 0;
    for (const trajectory of trajectories) {
      if (trajectory.length === 0) continue;
      const { advantages, returns } = generalisedAdvantages(trajectory, o.gamma, o.lambda);
      steps.push(...trajectory);
      advParts.push(...advantages);
      retParts.push(...returns);
      returnSum += trajectory.reduce((sum, t) => sum + t.reward, 0);
    }
    const episodes = trajectories.filter((t) => t.length > 0).length;
    const n = steps.length;
    const actionShare = SAMPLED_ACTIONS.map((a) => (n === 0 ? 0 : steps.filter((s) => s.choice.action === a).length / n));
    const returns = Float64Array.from(retParts);
    const explainedVariance =
      variance(returns) === 0 ? 0 : 1 - variance(returns.map((r, i) => r - (steps[i] as Transition).value)) / variance(returns);
    // Normalised advantages (batch mean and std).
    const advantages = Float64Array.from(advParts);
    const mean = advantages.reduce((a, b) => a + b, 0) / Math.max(1, n);
    const std = Math.sqrt(variance(advantages)) + 1e-8;
    for (let i = 0; i < n; i += 1) advantages[i] = ((advantages[i] as number) - mean) / std;

    const sums = { policy: 0, value: 0, action: 0, site: 0, blueprint: 0, seed: 0, gradNorm: 0, count: 0 };
    let approxKl = 0;
    let clipFraction = 0;
    let passes = 0;
    const variables = this.#gnn.trainableVariables();
    for (let pass = 0; pass < o.epochs && n > 0; pass += 1) {
      const order = shuffledIndices(n, rng);
      let klSum = 0;
      let clipped = 0;
      for (let start = 0; start < n; start += o.minibatch) {
        const inputs = inputsOf(steps, advantages, returns, order.slice(start, start + o.minibatch));
        const m = inputs.action.length;
        const parts: Record<string, number> = {};
        const { grads, value } = tf.variableGrads(() => {
          const out = this.#gnn.applyBatch(inputs.batch);
          const dist = distributionOf(out, inputs);
          const ratio = tf.exp(tf.sub(dist.logProb, tf.tensor1d(inputs.oldLogProb)));
          const adv = tf.tensor1d(inputs.advantage);
          const surrogate = tf.minimum(tf.mul(ratio, adv), tf.mul(tf.clipByValue(ratio, 1 - o.clip, 1 + o.clip), adv));
          const policyLoss = tf.neg(tf.mean(surrogate));
          const valueLoss = tf.mean(tf.square(tf.sub(out.value, tf.tensor1d(inputs.target))));
          const entropy = tf.addN([dist.entropy.action, dist.entropy.site, dist.entropy.blueprint, dist.entropy.seed]);
          parts.policy = policyLoss.dataSync()[0] as number;
          parts.value = valueLoss.dataSync()[0] as number;
          parts.action = dist.entropy.action.dataSync()[0] as number;
          parts.site = dist.entropy.site.dataSync()[0] as number;
          parts.blueprint = dist.entropy.blueprint.dataSync()[0] as number;
          parts.seed = dist.entropy.seed.dataSync()[0] as number;
          const logRatio = tf.sub(tf.tensor1d(inputs.oldLogProb), dist.logProb).dataSync();
          const r = ratio.dataSync();
          for (let k = 0; k < m; k += 1) {
            klSum += logRatio[k] as number;
            if (Math.abs((r[k] as number) - 1) > o.clip) clipped += 1;
          }
          return tf.sub(tf.add(policyLoss, tf.mul(valueLoss, o.valueCoef)), tf.mul(entropy, o.entropyCoef)) as tf.Scalar;
        }, variables);
        const norm = this.#applyClipped(grads, value);
        sums.policy += parts.policy ?? 0;
        sums.value += parts.value ?? 0;
        sums.action += parts.action ?? 0;
        sums.site += parts.site ?? 0;
        sums.blueprint += parts.blueprint ?? 0;
        sums.seed += parts.seed ?? 0;
        sums.gradNorm += norm;
        sums.count += 1;
      }
      passes += 1;
      approxKl = klSum / n;
      clipFraction = clipped / n;
      if (approxKl > 1.5 * o.targetKl) break;
    }
    this.#updates += 1;
    const c = Math.max(1, sums.count);
    const entropy = { action: sums.action / c, site: sums.site / c, blueprint: sums.blueprint / c, seed: sums.seed / c };
    const heads = [entropy.action, entropy.site, entropy.blueprint, entropy.seed].filter((h) => h > 0);
    return {
      episodes,
      decisions: n,
      averageReward: episodes === 0 ? 0 : returnSum / episodes,
      policyLoss: sums.policy / c,
      valueLoss: sums.value / c,
      entropy,
      policyEntropy: heads.length === 0 ? 0 : heads.reduce((a, b) => a + b, 0) / heads.length,
      approxKl,
      clipFraction,
      explainedVariance,
      gradNorm: sums.gradNorm / c,
      passes,
      actionShare,
    };
  }

  /**
   * Behaviour cloning (the warm start of `esper learn --warm-start`): `passes` passes over
   * the demonstrations in shuffled minibatches, each one Adam step at `learningRate` (with
   * PPO's gradient clip) on the mean negative log-likelihood of the demonstrated choices
   * under the factored distribution, plus `valueCoef` × the value head's squared error
   * against each decision's return (so the critic starts from the demonstrator's returns).
   * The fit has its own Adam, dropped afterwards: cloning wants a larger step than PPO
   * (measured on spirals-mlp: at 3e-4, 16 passes left the clone at WAIT; at 2e-3 it chose the
   * heuristic's germinates on held-out runs), and supervised moments do not belong in PPO's
   * first update. `logProb` and `value` of the demonstrations are not read. Not an update:
   * `updates` is unchanged.
   */
  imitate(demonstrations: readonly Trajectory[], rng: Rng, fit: ImitationOptions = IMITATION_DEFAULTS): ImitationStats {
    const o = this.options;
    const { passes, learningRate } = fit;
    const check = optionChecks('PpoLearner.imitate');
    check.integer('passes', passes, { min: 1, max: 10_000 });
    check.positive('learningRate', learningRate);
    const steps: Transition[] = [];
    const returnParts: number[] = [];
    for (const trajectory of demonstrations) {
      // GAE with λ = 1 telescopes to the discounted return, whatever the recorded values.
      steps.push(...trajectory);
      returnParts.push(...generalisedAdvantages(trajectory, o.gamma, 1).returns);
    }
    const n = steps.length;
    const returns = Float64Array.from(returnParts);
    const unused = new Float64Array(n);
    const variables = this.#gnn.trainableVariables();
    const optimizer = tf.train.adam(learningRate);
    const perPass: { nll: number; value: number; agreement: number }[] = [];
    try {
      for (let pass = 0; pass < passes && n > 0; pass += 1) {
        const order = shuffledIndices(n, rng);
        const sums = { nll: 0, value: 0, agreement: 0 };
        for (let start = 0; start < n; start += o.minibatch) {
          const inputs = inputsOf(steps, unused, returns, order.slice(start, start + o.minibatch));
          const m = inputs.action.length;
          const { grads, value } = tf.variableGrads(() => {
            const out = this.#gnn.applyBatch(inputs.batch);
            const { logProb } = distributionOf(out, inputs);
            const nll = tf.neg(tf.mean(logProb));
            const valueLoss = tf.mean(tf.square(tf.sub(out.value, tf.tensor1d(inputs.target))));
            sums.nll += (nll.dataSync()[0] as number) * m;
            sums.value += (valueLoss.dataSync()[0] as number) * m;
            sums.agreement += tf.sum(tf.exp(logProb)).dataSync()[0] as number;
            return tf.add(nll, tf.mul(valueLoss, o.valueCoef)) as tf.Scalar;
          }, variables);
          this.#applyClipped(grads, value, optimizer);
        }
        perPass.push({ nll: sums.nll / n, value: sums.value / n, agreement: sums.agreement / n });
      }
    } finally {
      optimizer.dispose();
    }
    const first = perPass[0];
    const last = perPass.at(-1);
    return {
      episodes: demonstrations.filter((t) => t.length > 0).length,
      decisions: n,
      passes: perPass.length,
      learningRate,
      firstLoss: first?.nll ?? 0,
      lastLoss: last?.nll ?? 0,
      valueLoss: last?.value ?? 0,
      agreement: last?.agreement ?? 0,
      actionShare: SAMPLED_ACTIONS.map((a) => (n === 0 ? 0 : steps.filter((t) => t.choice.action === a).length / n)),
    };
  }

  /** One Adam step on `grads` with the global norm clipped to `maxGradNorm`; frees them and `value`; returns the norm before clipping. */
  #applyClipped(grads: tf.NamedTensorMap, value: tf.Scalar, optimizer: tf.Optimizer = this.#optimizer): number {
    const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0] as number);
    const scale = norm > this.options.maxGradNorm ? this.options.maxGradNorm / norm : 1;
    // tfjs's Adam keeps its moments by position in the list, so the list always names every
    // variable in the same order; one the loss did not reach (`variableGrads` leaves it out)
    // gets a null gradient, which Adam skips while keeping its slot.
    const scaled = this.#gnn.trainableVariables().map(({ name }) => {
      const g = grads[name];
      return { name, tensor: g === undefined ? null : scale === 1 ? g : tf.mul(g, scale) };
    });
    optimizer.applyGradients(scaled as NamedTensor[]);
    tf.dispose([value, ...Object.values(grads), ...(scale === 1 ? [] : scaled.flatMap((x) => (x.tensor === null ? [] : [x.tensor])))]);
    return norm;
  }

  /** Frees the optimizer's state (the network stays the caller's). */
  dispose(): void {
    this.#optimizer.dispose();
  }
}
