/**
 * The GNN policy as a distribution over growth decisions, for learning (Simic) and for a
 * policy that explores: a factored categorical — the action among {@link SAMPLED_ACTIONS}
 * (wait, germinate, cull), then for a germinate a site and a blueprint, for a cull a seed,
 * each a softmax over its nodes' scores. Actions that cannot be carried out on the graph
 * get no mass: a germinate needs a (site, blueprint) pair the graph's `fits` edges join, and
 * its blueprint is drawn among those fitting the drawn site; a cull needs a seed.
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
import type { PolicyGraph } from './graph-types.js';

/**
 * Which (site, blueprint) pairs a germinate may choose: the graph's `fits` edges (blueprint
 * → site, present when the blueprint's family fits the site). Sampling a site and a
 * blueprint apart would mostly draw pairs Kasmina refuses (`does not fit site`), which
 * teach nothing.
 */
export interface FitMask {
  readonly sites: number;
  readonly blueprints: number;
  /** Row-major `[sites, blueprints]`, 1 where the pair fits. */
  readonly pairs: Uint8Array;
}

/** The {@link FitMask} of `graph` (from its `fits` relation; none fit without one). */
export function fitMaskOf(graph: PolicyGraph): FitMask {
  const sites = graph.nodes.site.ids.length;
  const blueprints = graph.nodes.blueprint.ids.length;
  const pairs = new Uint8Array(sites * blueprints);
  for (const set of graph.edges) {
    if (set.relation.name !== 'fits' || set.relation.src !== 'blueprint' || set.relation.dst !== 'site') continue;
    for (let e = 0; e < set.src.length; e += 1) pairs[(set.dst[e] as number) * blueprints + (set.src[e] as number)] = 1;
  }
  return { sites, blueprints, pairs };
}

/** Per site, whether some blueprint fits it. */
export function sitesWithFit(fits: FitMask): boolean[] {
  return Array.from({ length: fits.sites }, (_, i) =>
    fits.pairs.subarray(i * fits.blueprints, (i + 1) * fits.blueprints).some((x) => x === 1),
  );
}

/** Per blueprint, whether it fits `site`. */
export function blueprintsFitting(fits: FitMask, site: number): boolean[] {
  return Array.from(fits.pairs.subarray(site * fits.blueprints, (site + 1) * fits.blueprints), (x) => x === 1);
}

/** The actions a sampled decision chooses among, in order. */
export const SAMPLED_ACTIONS = [PolicyAction.WAIT, PolicyAction.GERMINATE, PolicyAction.CULL] as const;

/** Names of {@link SAMPLED_ACTIONS}, in order, for reports. */
export const SAMPLED_ACTION_NAMES: readonly string[] = Object.freeze(['wait', 'germinate', 'cull']);

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

/** Which of {@link SAMPLED_ACTIONS} the graph allows: `[wait, germinate (a fitting pair exists), cull (a seed exists)]`. */
export function allowedActions(seeds: number, fits: FitMask): readonly boolean[] {
  return [true, fits.pairs.some((x) => x === 1), seeds > 0];
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
  // (An all −∞ row cannot reach here: every factor drawn has at least one allowed entry.)
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

/** Draws a choice from the policy's distribution over `output` (one forward pass of `graph`'s; `fits` its {@link fitMaskOf}). */
export function sampleChoice(output: GnnOutput, fits: FitMask, rng: Rng): SampledChoice {
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(output.seedScores.length, fits));
  const a = draw(actions, rng);
  const action = SAMPLED_ACTIONS[a] as SampledAction;
  let logProb = actions[a] as number;
  if (action === PolicyAction.GERMINATE) {
    const sites = maskedLogSoftmax(output.siteScores, sitesWithFit(fits));
    const siteIndex = draw(sites, rng);
    const blueprints = maskedLogSoftmax(output.blueprintScores, blueprintsFitting(fits, siteIndex));
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
export function modeChoice(output: GnnOutput, fits: FitMask): SampledChoice {
  const argmax = (logProbs: Float64Array): number => logProbs.reduce((best, v, i) => (v > (logProbs[best] as number) ? i : best), 0);
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(output.seedScores.length, fits));
  const a = argmax(actions);
  const action = SAMPLED_ACTIONS[a] as SampledAction;
  let choice: PolicyChoice = { action };
  if (action === PolicyAction.GERMINATE) {
    const siteIndex = argmax(maskedLogSoftmax(output.siteScores, sitesWithFit(fits)));
    choice = { action, siteIndex, blueprintIndex: argmax(maskedLogSoftmax(output.blueprintScores, blueprintsFitting(fits, siteIndex))) };
  } else if (action === PolicyAction.CULL) {
    choice = { action, seedIndex: argmax(maskedLogSoftmax(output.seedScores)) };
  }
  return { choice, logProb: choiceLogProb(output, fits, choice) };
}

/** log π(choice) under `output`; −∞ for a choice the graph does not allow. */
export function choiceLogProb(output: GnnOutput, fits: FitMask, choice: PolicyChoice): number {
  const a = SAMPLED_ACTIONS.indexOf(choice.action);
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(output.seedScores.length, fits));
  let logProb = a < 0 ? -Infinity : (actions[a] as number);
  if (choice.action === PolicyAction.GERMINATE) {
    const site = choice.siteIndex ?? -1;
    logProb += maskedLogSoftmax(output.siteScores, sitesWithFit(fits))[site] ?? -Infinity;
    logProb +=
      site < 0
        ? -Infinity
        : (maskedLogSoftmax(output.blueprintScores, blueprintsFitting(fits, site))[choice.blueprintIndex ?? -1] ?? -Infinity);
  } else if (choice.action === PolicyAction.CULL) {
    logProb += maskedLogSoftmax(output.seedScores)[choice.seedIndex ?? -1] ?? -Infinity;
  }
  return logProb;
}
