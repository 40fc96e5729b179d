/**
 * The learned policy behind Tamiyo's policy interface: graph builder → GNN (eval mode) →
 * decoded decision → {@link PolicyProposal}. An untrained network picks WAIT (the action
 * head's prior, reference §7.2), so a fresh policy is safe; whatever it proposes still goes
 * through the risk engine.
 *
 * The network is held in a slot so a validated policy update can replace it between
 * decisions (`replace`); the old network is disposed.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import type { BlendMode } from '../leyline/index.js';
import { decodeOutput, PolicyAction, type PolicyDecision, type TamiyoGnn } from './gnn.js';
import type { GraphBuilder } from './graph-builder.js';
import type { FeatureCoverage, PolicyGraph } from './graph-types.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';
import { DecisionKind, type ProposedDecision } from './risk-engine.js';

/** Options of {@link GnnPolicy}. */
export interface GnnPolicyOptions {
  readonly gnn: TamiyoGnn;
  readonly builder: GraphBuilder;
  /** Version stamped on proposals (replaced by policy updates). */
  readonly version: string;
}

/** Tamiyo's GNN as a {@link TamiyoPolicy}. */
export class GnnPolicy implements TamiyoPolicy {
  readonly name = 'gnn';
  readonly #builder: GraphBuilder;
  #gnn: TamiyoGnn;
  #version: string;
  #lastCoverage: FeatureCoverage | undefined;
  #lastDecision: PolicyDecision | undefined;
  #germinations = 0;

  constructor(options: GnnPolicyOptions) {
    if (options.version.trim().length === 0) throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'a GNN policy needs a version');
    this.#gnn = options.gnn;
    this.#builder = options.builder;
    this.#version = options.version;
  }

  get version(): string {
    return this.#version;
  }

  /** The live network. */
  get gnn(): TamiyoGnn {
    return this.#gnn;
  }

  /** Coverage of the last graph built (Tamiyo exports it as `tamiyo.gnn.feature_coverage*`). */
  get lastCoverage(): FeatureCoverage | undefined {
    return this.#lastCoverage;
  }

  /** Swaps in a new network (validated by the caller) and disposes the old one. */
  replace(gnn: TamiyoGnn, version: string): void {
    const old = this.#gnn;
    this.#gnn = gnn;
    this.#version = version;
    if (old !== gnn) old.dispose();
  }

  propose(context: PolicyContext): PolicyProposal {
    const graph = this.#builder.build({ packet: context.packet, host: context.host, blueprints: context.candidates });
    this.#lastCoverage = graph.coverage;
    const output = this.#gnn.forward(graph);
    const decision = decodeOutput(output);
    this.#lastDecision = decision;
    return {
      decision: this.#decisionOf(decision, graph),
      policyVersion: this.#version,
      actionId: decision.actionIndex,
      valueEstimate: decision.value,
      riskIndex: decision.riskIndex,
      blendingIndex: decision.blendIndex,
      blendMode: decision.blendMode as BlendMode,
      blendLogits: Array.from(output.blendLogits),
      schedule: { start: decision.scheduleStart, end: decision.scheduleEnd },
      ...(decision.siteIndex === undefined ? {} : { seedScore: output.siteScores[decision.siteIndex] ?? 0 }),
      ...(decision.blueprintIndex === undefined ? {} : { blueprintScore: output.blueprintScores[decision.blueprintIndex] ?? 0 }),
    };
  }

  snapshot(): unknown {
    return { version: this.#version, parameters: this.#gnn.parameterCount, lastAction: this.#lastDecision?.action, germinations: this.#germinations };
  }

  #decisionOf(decision: PolicyDecision, graph: PolicyGraph): ProposedDecision {
    const risk = { policyRiskScore: decision.riskProbability };
    switch (decision.action) {
      case PolicyAction.GERMINATE: {
        const siteId = decision.siteIndex === undefined ? undefined : graph.nodes.site.ids[decision.siteIndex];
        const blueprintId = decision.blueprintIndex === undefined ? undefined : graph.nodes.blueprint.ids[decision.blueprintIndex];
        if (siteId === undefined || blueprintId === undefined) return { kind: DecisionKind.WAIT, ...risk };
        this.#germinations += 1;
        return { kind: DecisionKind.GERMINATE, siteId, blueprintId, seedId: `${siteId}#g${this.#germinations}`, ...risk };
      }
      case PolicyAction.CULL: {
        const seedId = decision.seedIndex === undefined ? undefined : graph.nodes.seed.ids[decision.seedIndex];
        return seedId === undefined ? { kind: DecisionKind.WAIT, ...risk } : { kind: DecisionKind.CULL, seedId, ...risk };
      }
      case PolicyAction.OPTIMIZER:
        return { kind: DecisionKind.OPTIMIZER, paramDelta: decision.paramDelta, ...risk };
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
}
