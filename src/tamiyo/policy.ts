/**
 * The one interface Tamiyo's policies implement (the learned GNN policy and the rule-based
 * heuristic). A proposal carries structured data only; every field maps onto a typed field
 * of the command or its `DecisionMetadata` (spec 01: no annotations).
 */
import type { BlendMode, HostDescriptor, SystemStatePacket } from '../leyline/index.js';
import type { BlueprintCandidate } from './candidates.js';
import type { ProposedDecision } from './decision.js';

/** Everything a policy sees on one call. */
export interface PolicyContext {
  /** The step's or epoch's state packet (the caller's; never mutated). */
  readonly packet: SystemStatePacket;
  /** The host's architecture and seed sites. */
  readonly host: HostDescriptor;
  /** Blueprints the policy may germinate (Urza/Karn records with their metadata). */
  readonly candidates: readonly BlueprintCandidate[];
  /** True for the per-epoch call (validation results filled in), false per step. */
  readonly epochBoundary: boolean;
}

/** Blend schedule, as fractions of Kasmina's blending window, `0 ≤ start ≤ end ≤ 1`. */
export interface BlendSchedule {
  readonly start: number;
  readonly end: number;
}

/** What a policy proposes on one call. */
export interface PolicyProposal {
  /** The decision, before risk. */
  readonly decision: ProposedDecision;
  /** Version of the deciding policy (`PolicyMetadata.policy_version`); non-empty. */
  readonly policyVersion: string;
  /** Index of the chosen action (`PolicyMetadata.action_id`, see gnn.ts `PolicyAction`). */
  readonly actionId: number;
  /** The value head's estimate. @default 0 on the command */
  readonly valueEstimate?: number;
  /** Chosen risk class (`PolicyMetadata.risk_index`). @default 0 */
  readonly riskIndex?: number;
  /** Chosen blend class (`PolicyMetadata.blending_index`). @default 0 */
  readonly blendingIndex?: number;
  /** Blend mode of a germinate; unset leaves Kasmina's default (CONVEX). */
  readonly blendMode?: BlendMode;
  /** The blend head's logits (`BlendConfig.policy_logits`); ≥ 2 needed for CONFIDENCE. */
  readonly blendLogits?: readonly number[];
  /** Per-channel-group alpha, each in [0, 1]; required for BLEND_MODE_CHANNEL. */
  readonly alphaVec?: readonly number[];
  /** Blend schedule of a germinate. @default { start: 0, end: 0 } */
  readonly schedule?: BlendSchedule;
  /** Score of the selected seed/site (`SelectionContext.seed_score`). */
  readonly seedScore?: number;
  /** Score of the selected blueprint (`SelectionContext.blueprint_score`). */
  readonly blueprintScore?: number;
  /**
   * Absolute learning rate an `optimizer` decision asks for
   * (`CommandOptimizerAdjustment.learning_rate`), derived by the policy from
   * `decision.paramDelta` and the packet's `optimizer_lr`. Required for `optimizer`
   * decisions: an adjustment that sets nothing is never built.
   */
  readonly learningRate?: number;
  /** Human-readable reason, for logs and the run record; never parsed. */
  readonly notes?: string;
}

/** A Tamiyo policy. Implementations may keep state across calls; calls come in order. */
export interface TamiyoPolicy {
  /** Short name ("heuristic", "gnn"). */
  readonly name: string;
  /** Version stamped on every proposal (`PolicyMetadata.policy_version`). */
  readonly version: string;
  /**
   * False when the policy decides at epoch boundaries only (per-step calls propose WAIT):
   * a trainer in lockstep with it then need not wait for its answer to a step's packet.
   * @default true
   */
  readonly stepDecisions?: boolean;
  /** Proposes one decision for `context`. */
  propose(context: PolicyContext): PolicyProposal;
  /** The policy's internal state, for the run record. */
  snapshot?(): unknown;
  /** Frees the policy's tensor memory; the service that owns the policy calls it once, on close. */
  dispose?(): void;
}
