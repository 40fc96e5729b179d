/**
 * The GNN policy as a distribution over growth decisions, for learning (Simic) and for a
 * policy that explores: a factored categorical — the action among {@link SAMPLED_ACTIONS}
 * (wait, germinate, cull), then for a germinate a site and a blueprint, for a cull a seed,
 * each a softmax over its nodes' scores. Choices Kasmina would refuse get no mass
 * ({@link ChoiceMask}): a germinate is drawn among free sites and, given the site, among the
 * blueprints that fit it; a cull among growing seeds.
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
import { EDGE_ATTR_DIM, type PolicyGraph } from './graph-types.js';
import { STAGE_MAX } from './graph-features.js';
import { BUSY_STAGES, LIVE_STAGES } from './stages.js';
import type { SeedLifecycleStage } from '../leyline/index.js';

/** Column of a seed's stage (stage ÷ {@link STAGE_MAX}) in an `occupies` edge's attributes (`graph-edges.ts`). */
const OCCUPIES_STAGE_ATTR = 1;

/**
 * What a decision may choose on one graph — the choices Kasmina would carry out:
 * - a germinate, a (site, blueprint) pair the graph's `fits` edges join (the blueprint's
 *   family fits the site) at a site no seed keeps busy (a growing seed, a fossil, or one on
 *   its cull path until its reset: Kasmina's G0 refuses `site occupied`/`site embargoed`);
 * - a cull, a seed that is growing (a fossil or a seed already culled cannot be culled).
 *
 * Sampling a site and a blueprint apart, or at a busy site, or culling a fossil would mostly
 * draw decisions Kasmina refuses: no-ops that teach nothing and blur a learner's credit.
 * Seeds' stages are read from the graph's `occupies` edges (stage ÷ the last stage, exact
 * in float32), so the mask of a graph rebuilt from a field report is the one it was
 * sampled under.
 */
export interface ChoiceMask {
  readonly sites: number;
  readonly blueprints: number;
  /** Row-major `[sites, blueprints]`, 1 where a germinate may pair them. */
  readonly pairs: Uint8Array;
  /** Per seed row, 1 where a cull may choose it. */
  readonly seeds: Uint8Array;
}

/** The {@link ChoiceMask} of `graph`. */
export function choiceMaskOf(graph: PolicyGraph): ChoiceMask {
  const sites = graph.nodes.site.ids.length;
  const blueprints = graph.nodes.blueprint.ids.length;
  const pairs = new Uint8Array(sites * blueprints);
  const seeds = new Uint8Array(graph.nodes.seed.ids.length);
  const busy = new Uint8Array(sites);
  const occupies = graph.edges.find(
    (set) => set.relation.name === 'occupies' && set.relation.src === 'seed' && set.relation.dst === 'site',
  );
  if (occupies !== undefined) {
    for (let e = 0; e < occupies.src.length; e += 1) {
      const stage = Math.round((occupies.attrs[e * EDGE_ATTR_DIM + OCCUPIES_STAGE_ATTR] as number) * STAGE_MAX) as SeedLifecycleStage;
      if (BUSY_STAGES.has(stage)) busy[occupies.dst[e] as number] = 1;
      if (LIVE_STAGES.has(stage)) seeds[occupies.src[e] as number] = 1;
    }
  }
  for (const set of graph.edges) {
    if (set.relation.name !== 'fits' || set.relation.src !== 'blueprint' || set.relation.dst !== 'site') continue;
    for (let e = 0; e < set.src.length; e += 1) {
      const site = set.dst[e] as number;
      if (busy[site] === 0) pairs[site * blueprints + (set.src[e] as number)] = 1;
    }
  }
  return { sites, blueprints, pairs, seeds };
}

/** Per site, whether a germinate may choose it (some blueprint may pair with it). */
export function sitesWithFit(mask: ChoiceMask): boolean[] {
  return Array.from({ length: mask.sites }, (_, i) =>
    mask.pairs.subarray(i * mask.blueprints, (i + 1) * mask.blueprints).some((x) => x === 1),
  );
}

/** Per blueprint, whether a germinate at `site` may choose it. */
export function blueprintsFitting(mask: ChoiceMask, site: number): boolean[] {
  return Array.from(mask.pairs.subarray(site * mask.blueprints, (site + 1) * mask.blueprints), (x) => x === 1);
}

/** Per seed, whether a cull may choose it. */
export function cullableSeeds(mask: ChoiceMask): boolean[] {
  return Array.from(mask.seeds, (x) => x === 1);
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

/** Which of {@link SAMPLED_ACTIONS} `mask` allows: `[wait, germinate (a pair may be chosen), cull (a seed may be chosen)]`. */
export function allowedActions(mask: ChoiceMask): readonly boolean[] {
  return [true, mask.pairs.some((x) => x === 1), mask.seeds.some((x) => x === 1)];
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

/** Draws a choice from the policy's distribution over `output` (one forward pass of `graph`'s; `mask` its {@link choiceMaskOf}). */
export function sampleChoice(output: GnnOutput, mask: ChoiceMask, rng: Rng): SampledChoice {
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(mask));
  const a = draw(actions, rng);
  const action = SAMPLED_ACTIONS[a] as SampledAction;
  let logProb = actions[a] as number;
  if (action === PolicyAction.GERMINATE) {
    const sites = maskedLogSoftmax(output.siteScores, sitesWithFit(mask));
    const siteIndex = draw(sites, rng);
    const blueprints = maskedLogSoftmax(output.blueprintScores, blueprintsFitting(mask, siteIndex));
    const blueprintIndex = draw(blueprints, rng);
    logProb += (sites[siteIndex] as number) + (blueprints[blueprintIndex] as number);
    return { choice: { action, siteIndex, blueprintIndex }, logProb };
  }
  if (action === PolicyAction.CULL) {
    const seeds = maskedLogSoftmax(output.seedScores, cullableSeeds(mask));
    const seedIndex = draw(seeds, rng);
    logProb += seeds[seedIndex] as number;
    return { choice: { action, seedIndex }, logProb };
  }
  return { choice: { action }, logProb };
}

/** The most likely choice (each factor's mode), with its log-probability. */
export function modeChoice(output: GnnOutput, mask: ChoiceMask): SampledChoice {
  const argmax = (logProbs: Float64Array): number => logProbs.reduce((best, v, i) => (v > (logProbs[best] as number) ? i : best), 0);
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(mask));
  const a = argmax(actions);
  const action = SAMPLED_ACTIONS[a] as SampledAction;
  let choice: PolicyChoice = { action };
  if (action === PolicyAction.GERMINATE) {
    const siteIndex = argmax(maskedLogSoftmax(output.siteScores, sitesWithFit(mask)));
    choice = { action, siteIndex, blueprintIndex: argmax(maskedLogSoftmax(output.blueprintScores, blueprintsFitting(mask, siteIndex))) };
  } else if (action === PolicyAction.CULL) {
    choice = { action, seedIndex: argmax(maskedLogSoftmax(output.seedScores, cullableSeeds(mask))) };
  }
  return { choice, logProb: choiceLogProb(output, mask, choice) };
}

/** log π(choice) under `output`; −∞ for a choice the graph does not allow. */
export function choiceLogProb(output: GnnOutput, mask: ChoiceMask, choice: PolicyChoice): number {
  const a = SAMPLED_ACTIONS.indexOf(choice.action);
  const actions = maskedLogSoftmax(actionLogits(output), allowedActions(mask));
  let logProb = a < 0 ? -Infinity : (actions[a] as number);
  if (choice.action === PolicyAction.GERMINATE) {
    const site = choice.siteIndex ?? -1;
    logProb += maskedLogSoftmax(output.siteScores, sitesWithFit(mask))[site] ?? -Infinity;
    logProb +=
      site < 0
        ? -Infinity
        : (maskedLogSoftmax(output.blueprintScores, blueprintsFitting(mask, site))[choice.blueprintIndex ?? -1] ?? -Infinity);
  } else if (choice.action === PolicyAction.CULL) {
    logProb += maskedLogSoftmax(output.seedScores, cullableSeeds(mask))[choice.seedIndex ?? -1] ?? -Infinity;
  }
  return logProb;
}
