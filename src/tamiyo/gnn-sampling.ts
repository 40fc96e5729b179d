/**
 * The GNN policy as a distribution over growth decisions, for learning (Simic) and for a
 * policy that explores: a factored categorical — the action among {@link SAMPLED_ACTIONS}
 * (wait, germinate, cull), then for a germinate a site and a blueprint, for a cull a seed,
 * each a softmax over its nodes' scores. Actions that cannot be carried out on the graph
 * (a germinate without a site or blueprint node, a cull without a seed) get no mass.
 *
 * The optimizer, pause and breaker actions stay out: the reward a learned policy is trained
 * on (final accuracy gain, less a parameter cost) says nothing about them, so exploring
 * them would only add variance; the risk engine keeps deciding breakers. The same numbers
 * come out of {@link choiceLogProb} here (plain arrays, at decision time) and out of
 * Simic's tensor version (training), which a test holds equal.
 */
import type { Rng } from '../tensor/index.js';
import { PolicyAction } from './gnn-config.js';
import type { GnnOutput } from './gnn-output.js';

/** The actions a sampled decision chooses among, in order. */
export const SAMPLED_ACTIONS = [PolicyAction.WAIT, PolicyAction.GERMINATE, PolicyAction.CULL] as const;

/** One of {@link SAMPLED_ACTIONS}. */
export type SampledAction = (typeof SAMPLED_ACTIONS)[number];

/** A decision as indices into the graph it was made on. */
export interface PolicyChoice {
  readonly action: SampledAction;
  /** Row of the `site` node a germinate grows at. */
  readonly siteIndex?: number;
  /** Row of the `blueprint` node a germinate grafts. */
  readonly blueprintIndex?: number;
  /** Row of the `seed` node a cull removes. */
  readonly seedIndex?: number;
}

/** A choice with its log-probability under the distribution it was drawn from. */
export interface SampledChoice {
  readonly choice: PolicyChoice;
  readonly logProb: number;
}

/** Which of {@link SAMPLED_ACTIONS} the graph allows: `[wait, germinate, cull]`. */
export function allowedActions(counts: { readonly seed: number; readonly site: number; readonly blueprint: number }): readonly boolean[] {
  return [true, counts.site > 0 && counts.blueprint > 0, counts.seed > 0];
}

/** Log-softmax of `logits` over the entries `allowed` keeps (others −∞). */
export function maskedLogSoftmax(logits: ArrayLike<number>, allowed?: readonly boolean[]): Float64Array {
  const out = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i += 1) {
    const v = logits[i] as number;
    if ((allowed === undefined || allowed[i] === true) && Number.isFinite(v)) max = Math.max(max, v);
  }
  let sum = 0;
  for (let i = 0; i < logits.length; i += 1) {
    const v = logits[i] as number;
    if ((allowed === undefined || allowed[i] === true) && Number.isFinite(v)) sum += Math.exp(v - max);
  }
  const logZ = max + Math.log(sum);
  for (let i = 0; i < logits.length; i += 1) {
    const v = logits[i] as number;
    out[i] = (allowed === undefined || allowed[i] === true) && Number.isFinite(v) ? v - logZ : -Infinity;
  }
  return out;
}

function draw(logProbs: Float64Array, rng: Rng): number {
  const u = rng.nextFloat();
  let acc = 0;
  let last = -1;
  for (let i = 0; i < logProbs.length; i += 1) {
    const p = Math.exp(logProbs[i] as number);
    if (p === 0) continue;
    last = i;
    acc += p;
    if (u < acc) return i;
  }
  return last; // rounding left u above the total: the last possible entry
}

function actionLogits(output: GnnOutput): number[] {
  return SAMPLED_ACTIONS.map((a) => output.actionLogits[a] as number);
}

function countsOf(output: GnnOutput): { seed: number; site: number; blueprint: number } {
  return { seed: output.seedScores.length, site: output.siteScores.length, blueprint: output.blueprintScores.length };
}

/** Draws a choice from the policy's distribution over `output` (one forward pass of one graph). */
export function sampleChoice(output: GnnOutput, rng: Rng): SampledChoice {
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(countsOf(output)));
  const a = draw(actions, rng);
  const action = SAMPLED_ACTIONS[a] as SampledAction;
  let logProb = actions[a] as number;
  if (action === PolicyAction.GERMINATE) {
    const sites = maskedLogSoftmax(output.siteScores);
    const blueprints = maskedLogSoftmax(output.blueprintScores);
    const siteIndex = draw(sites, rng);
    const blueprintIndex = draw(blueprints, rng);
    logProb += (sites[siteIndex] as number) + (blueprints[blueprintIndex] as number);
    return { choice: { action, siteIndex, blueprintIndex }, logProb };
  }
  if (action === PolicyAction.CULL) {
    const seeds = maskedLogSoftmax(output.seedScores);
    const seedIndex = draw(seeds, rng);
    logProb += seeds[seedIndex] as number;
    return { choice: { action, seedIndex }, logProb };
  }
  return { choice: { action }, logProb };
}

/** The most likely choice (each factor's mode), with its log-probability. */
export function modeChoice(output: GnnOutput): SampledChoice {
  const argmax = (logProbs: Float64Array): number => logProbs.reduce((best, v, i) => (v > (logProbs[best] as number) ? i : best), 0);
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(countsOf(output)));
  const a = argmax(actions);
  const action = SAMPLED_ACTIONS[a] as SampledAction;
  const choice: PolicyChoice =
    action === PolicyAction.GERMINATE
      ? { action, siteIndex: argmax(maskedLogSoftmax(output.siteScores)), blueprintIndex: argmax(maskedLogSoftmax(output.blueprintScores)) }
      : action === PolicyAction.CULL
        ? { action, seedIndex: argmax(maskedLogSoftmax(output.seedScores)) }
        : { action };
  return { choice, logProb: choiceLogProb(output, choice) };
}

/** log π(choice) under `output`; −∞ for a choice the graph does not allow. */
export function choiceLogProb(output: GnnOutput, choice: PolicyChoice): number {
  const a = SAMPLED_ACTIONS.indexOf(choice.action);
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(countsOf(output)));
  let logProb = a < 0 ? -Infinity : (actions[a] as number);
  if (choice.action === PolicyAction.GERMINATE) {
    logProb += maskedLogSoftmax(output.siteScores)[choice.siteIndex ?? -1] ?? -Infinity;
    logProb += maskedLogSoftmax(output.blueprintScores)[choice.blueprintIndex ?? -1] ?? -Infinity;
  } else if (choice.action === PolicyAction.CULL) {
    logProb += maskedLogSoftmax(output.seedScores)[choice.seedIndex ?? -1] ?? -Infinity;
  }
  return logProb;
}
