/**
 * The learned policy behind Tamiyo's policy interface: graph builder → GNN (eval mode) →
 * decoded decision → {@link PolicyProposal}. An untrained network picks WAIT (the action
 * head's prior, reference §7.2), so a fresh policy is safe; whatever it proposes still goes
 * through the risk engine.
 *
 * The network lives in a {@link PolicySlot}: a verified policy update is staged there
 * (`stage`) and goes live at the start of the next proposal, never inside one; the network
 * it replaces is disposed.
 */
import { optionChecks } from '../core/index.js';
import { MAX_COMMANDED_LR } from '../tolaria/index.js';
import { PolicyAction } from './gnn-config.js';
import { blendChoiceAmong, decodeOutput, type GnnOutput, type PolicyDecision } from './gnn-output.js';
import { BlendMode, blendModesAt } from '../leyline/index.js';
import type { TamiyoGnn } from './gnn.js';
import type { GraphBuilder } from './graph-builder.js';
import type { FeatureCoverage, PolicyGraph } from './graph-types.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';
import { PolicySlot, type PolicySlotOptions } from './policy-slot.js';
import type { LoadedPolicy } from './policy-weights.js';
import { DecisionKind, toId, type ProposedDecision } from './decision.js';
import { choiceMaskOf, modeChoice, sampleChoice, type PolicyChoice } from './gnn-sampling.js';
import type { Rng } from '../tensor/index.js';

/** One decision a sampling {@link GnnPolicy} made: what Simic learns from. */
export interface SampledDecision {
  /** The graph the policy read (its input, as built). */
  readonly graph: PolicyGraph;
  readonly choice: PolicyChoice;
  /** log π(choice | graph) under the network that chose. */
  readonly logProb: number;
  /** The value head's estimate. */
  readonly value: number;
  /** Version of the deciding network. */
  readonly policyVersion: string;
  /** The packet's global step and epoch. */
  readonly step: number;
  readonly epoch: number;
}

/** How a sampling {@link GnnPolicy} draws its decisions. */
export interface GnnSamplingOptions {
  /** The draws' source (seeded per run, so a run's decisions replay). */
  readonly rng: Rng;
  /** Called with every decision, in order (must not throw). */
  readonly onDecision?: (decision: SampledDecision) => void;
  /**
   * Decide at the first epoch end and every k-th after (epochs 0, k, 2k, …, counted from 0
   * as the state packets count them; WAIT at the others): fewer,
   * further-apart decisions for a learner to assign credit to. @default 1 (every epoch)
   */
  readonly everyEpochs?: number;
  /**
   * `sample`: draw each decision from the policy's distribution (how it learns: PPO's
   * episodes explore). `mode`: take each factor's most likely choice (`modeChoice`): the
   * policy's best guess, without the draws' noise. @default 'sample'
   */
  readonly decide?: 'sample' | 'mode';
}

/** Options of {@link GnnPolicy}. */
export interface GnnPolicyOptions {
  readonly gnn: TamiyoGnn;
  readonly builder: GraphBuilder;
  /** Version stamped on proposals (replaced by policy updates). */
  readonly version: string;
  /** Telemetry of the swaps (`policy_update_applied`). */
  readonly slot?: PolicySlotOptions;
  /**
   * Decide by drawing from the policy's distribution over growth decisions
   * (`gnn-sampling.ts`: wait, germinate at a site with a blueprint, cull a seed), at epoch
   * ends only, instead of decoding every head's argmax at every call. Learned policies act
   * this way: a policy trained as a distribution is not its argmax.
   * @default argmax decoding at every call
   */
  readonly sampling?: GnnSamplingOptions;
}

/**
 * The decoded action as a Tamiyo decision: a germinate needs a scored site and blueprint
 * (`seedIdFor(siteId)` names the new seed), a cull a scored seed; anything unusable is WAIT.
 * Node ids are non-blank (the graph builder refuses blank ones).
 */
export function decisionOfOutput(decoded: PolicyDecision, graph: PolicyGraph, seedIdFor: (siteId: string) => string): ProposedDecision {
  const risk = { policyRiskScore: decoded.riskScore };
  switch (decoded.action) {
    case PolicyAction.GERMINATE: {
      const siteId = decoded.siteIndex === undefined ? undefined : graph.nodes.site.ids[decoded.siteIndex];
      const blueprintId = decoded.blueprintIndex === undefined ? undefined : graph.nodes.blueprint.ids[decoded.blueprintIndex];
      if (siteId === undefined || blueprintId === undefined) return { kind: DecisionKind.WAIT, ...risk };
      return {
        kind: DecisionKind.GERMINATE,
        siteId: toId(siteId, 'site id'),
        blueprintId: toId(blueprintId, 'blueprint id'),
        seedId: toId(seedIdFor(siteId), 'seed id'),
        ...risk,
      };
    }
    case PolicyAction.CULL: {
      const seedId = decoded.seedIndex === undefined ? undefined : graph.nodes.seed.ids[decoded.seedIndex];
      return seedId === undefined
        ? { kind: DecisionKind.WAIT, ...risk }
        : { kind: DecisionKind.CULL, seedId: toId(seedId, 'seed id'), ...risk };
    }
    case PolicyAction.OPTIMIZER:
      return { kind: DecisionKind.OPTIMIZER, paramDelta: decoded.paramDelta, ...risk };
    case PolicyAction.PAUSE:
      return { kind: DecisionKind.PAUSE, ...risk };
    case PolicyAction.BREAKER_OPEN:
      return { kind: DecisionKind.BREAKER_OPEN, ...risk };
    case PolicyAction.BREAKER_CLOSE:
      return { kind: DecisionKind.BREAKER_CLOSE, ...risk };
    default:
      return { kind: DecisionKind.WAIT, ...risk };
  }
}

/**
 * The rate an optimizer decision asks for: the current rate times 2^delta, the delta
 * clamped to [−1, 1] (at most halve or double per decision), capped at the most Tolaria
 * accepts ({@link MAX_COMMANDED_LR}). Undefined without a usable current rate.
 */
export function commandedLearningRate(currentLr: number | undefined, paramDelta: number): number | undefined {
  if (currentLr === undefined || !(Number.isFinite(currentLr) && currentLr > 0) || !Number.isFinite(paramDelta)) return undefined;
  const delta = Math.min(1, Math.max(-1, paramDelta));
  return Math.min(MAX_COMMANDED_LR, currentLr * 2 ** delta);
}

function riskOf(decision: ProposedDecision): Pick<ProposedDecision, 'policyRiskScore'> {
  return decision.policyRiskScore === undefined ? {} : { policyRiskScore: decision.policyRiskScore };
}

/** A proposal carrying `decision` and what the network's heads said about it. */
export function proposalOfOutput(
  decoded: PolicyDecision,
  output: GnnOutput,
  decision: ProposedDecision,
  policyVersion: string,
): PolicyProposal {
  return {
    decision,
    policyVersion,
    actionId: decision.kind === DecisionKind.GERMINATE ? PolicyAction.GERMINATE : decoded.actionIndex,
    valueEstimate: decoded.value,
    riskIndex: decoded.riskIndex,
    blendingIndex: decoded.blendIndex,
    blendMode: decoded.blendMode,
    blendLogits: Array.from(output.blendLogits),
    schedule: { start: decoded.scheduleStart, end: decoded.scheduleEnd },
    ...(decoded.siteIndex === undefined ? {} : { seedScore: output.siteScores[decoded.siteIndex] ?? 0 }),
    ...(decoded.blueprintIndex === undefined ? {} : { blueprintScore: output.blueprintScores[decoded.blueprintIndex] ?? 0 }),
  };
}

/**
 * The blend a germinate at `siteId` asks for: the blend head's most likely mode among those
 * the site accepts ({@link blendModesAt}) and this policy can configure (not CHANNEL: the
 * network gives no per-channel alpha vector). Without one (a site the host does not
 * describe), UNSPECIFIED: Kasmina's default for the site.
 */
function blendAtSite(decoded: PolicyDecision, output: GnnOutput, context: PolicyContext, siteId: string): PolicyDecision {
  const site = context.host.sites.find((s) => s.siteId === siteId);
  const allowed = site === undefined ? [] : blendModesAt(site).filter((m) => m !== BlendMode.CHANNEL);
  return { ...decoded, ...(blendChoiceAmong(output.blendLogits, allowed) ?? { blendMode: BlendMode.UNSPECIFIED }) };
}

/** Tamiyo's GNN as a {@link TamiyoPolicy}. */
export class GnnPolicy implements TamiyoPolicy {
  readonly name = 'gnn';
  readonly #builder: GraphBuilder;
  readonly #slot: PolicySlot;
  #lastCoverage: FeatureCoverage | undefined;
  #lastDecision: PolicyDecision | undefined;
  #germinations = 0;
  readonly #sampling: GnnSamplingOptions | undefined;
  readonly stepDecisions: boolean;

  constructor(options: GnnPolicyOptions) {
    if (options.version.trim().length === 0) optionChecks('GnnPolicyOptions').fail('version', 'a non-blank string', options.version);
    this.#slot = new PolicySlot({ gnn: options.gnn, version: options.version }, options.slot);
    this.#builder = options.builder;
    const every = options.sampling?.everyEpochs;
    if (every !== undefined) optionChecks('GnnPolicyOptions').integer('sampling.everyEpochs', every, { min: 1, max: 1_000_000 });
    this.#sampling = options.sampling;
    this.stepDecisions = options.sampling === undefined;
  }

  get version(): string {
    return this.#slot.current.version;
  }

  /** The live network. */
  get gnn(): TamiyoGnn {
    return this.#slot.current.gnn;
  }

  /** Coverage of the last graph built (Tamiyo exports it as `tamiyo.gnn.feature_coverage*`). */
  get lastCoverage(): FeatureCoverage | undefined {
    return this.#lastCoverage;
  }

  /**
   * Stages a verified policy (taking ownership of its network); it goes live at the start
   * of the next proposal. A newer stage replaces (and frees) an older pending one.
   */
  stage(loaded: Pick<LoadedPolicy, 'gnn' | 'version'>): void {
    this.#slot.stage(loaded);
  }

  propose(context: PolicyContext): PolicyProposal {
    this.#slot.swapIfPending();
    const sampling = this.#sampling;
    if (sampling !== undefined && !(context.epochBoundary && context.packet.currentEpoch % (sampling.everyEpochs ?? 1) === 0)) {
      return { decision: { kind: DecisionKind.WAIT }, policyVersion: this.version, actionId: PolicyAction.WAIT };
    }
    const graph = this.#builder.build({ packet: context.packet, host: context.host, blueprints: context.candidates });
    this.#lastCoverage = graph.coverage;
    const output = this.gnn.forward(graph);
    let decoded = decodeOutput(output);
    if (sampling !== undefined) {
      const mask = choiceMaskOf(graph);
      const { choice, logProb } = sampling.decide === 'mode' ? modeChoice(output, mask) : sampleChoice(output, mask, sampling.rng);
      decoded = { ...decoded, ...choice, actionIndex: choice.action };
      sampling.onDecision?.({
        graph,
        choice,
        logProb,
        value: output.value,
        policyVersion: this.version,
        step: Number(context.packet.globalStep),
        epoch: context.packet.currentEpoch,
      });
    }
    const decision = decisionOfOutput(decoded, graph, (siteId) => {
      this.#germinations += 1;
      return `${siteId}#g${this.#germinations}`;
    });
    if (decision.kind === DecisionKind.GERMINATE) decoded = blendAtSite(decoded, output, context, decision.siteId);
    this.#lastDecision = decoded;
    if (decision.kind !== DecisionKind.OPTIMIZER) return proposalOfOutput(decoded, output, decision, this.version);
    // An optimizer decision asks for an absolute rate: the packet's rate scaled by the delta.
    const learningRate = commandedLearningRate(context.packet.metrics?.optimizerLr, decoded.paramDelta);
    if (learningRate === undefined)
      return proposalOfOutput(decoded, output, { kind: DecisionKind.WAIT, ...riskOf(decision) }, this.version);
    return { ...proposalOfOutput(decoded, output, decision, this.version), learningRate };
  }

  snapshot(): unknown {
    return {
      version: this.version,
      parameters: this.gnn.parameterCount,
      lastAction: this.#lastDecision?.action,
      germinations: this.#germinations,
    };
  }

  /** Frees the live network and any staged one. */
  dispose(): void {
    this.#slot.dispose();
  }
}
