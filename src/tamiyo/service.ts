/**
 * Tamiyo as Tolaria's `Controller` (reference prototype-tamiyo-simic §2): for each state
 * packet, the policy proposes, the risk engine rules, the command builder turns the verdict
 * into a signed, structured command (or nothing for WAIT), and every non-WAIT proposal
 * opens a field-report window that closes on the seed's fate or after its epochs.
 *
 * Timeouts: JavaScript cannot interrupt a synchronous inference, so the budget
 * (`tamiyo.stepTimeoutMs`) is checked when it returns: a late proposal is discarded (the
 * prototype let a late worker overwrite the step's state) and the risk engine turns the
 * step into a PAUSE with RISK_REASON_TIMEOUT_INFERENCE and the HIGH `timeout_inference`
 * event. A controller that hangs is Tolaria's deadline's business (`tamiyo_timeout`):
 * training never waits on Tamiyo.
 *
 * Policy hot swap is the policy's (the GNN policy stages verified updates in its slot and
 * swaps at the start of its next proposal).
 */
import { buildTelemetryPacket, systemClock, type Clock, type MetricInput, type TelemetrySink } from '../core/index.js';
import {
  type SeedLifecycleStage,
  TelemetryLevel,
  type AdaptationCommand,
  type FieldReport,
  type HostDescriptor,
  type SystemStatePacket,
} from '../leyline/index.js';
import type { CallOptions, Controller } from '../tolaria/index.js';
import type { CommandBuilder } from './command-builder.js';
import { assessCoverage, coverageMetrics, coverageSummary } from './coverage.js';
import type { FieldReportPublisher } from './field-report-publisher.js';
import type { FieldReportStore } from './field-report-store.js';
import type { FieldReportBuilder } from './field-reports.js';
import type { BlueprintCandidate } from './graph-builder.js';
import type { FeatureCoverage } from './graph-types.js';
import { TamiyoMetric } from './names.js';
import type { PolicyProposal, TamiyoPolicy } from './policy.js';
import { DecisionKind, type BlueprintRiskInfo, type RiskEngine, type RiskVerdict } from './risk-engine.js';

/** Source of Tamiyo's telemetry. */
export const TAMIYO_SOURCE = 'tamiyo';

/** Field-report plumbing of {@link TamiyoService}. */
export interface TamiyoFieldReports {
  readonly builder: FieldReportBuilder;
  readonly store: FieldReportStore;
  /** Publishes stored reports on Oona after each epoch. */
  readonly publisher?: FieldReportPublisher;
}

/** Options of {@link TamiyoService}. */
export interface TamiyoServiceOptions {
  readonly policy: TamiyoPolicy;
  readonly host: HostDescriptor;
  /** Blueprints the policy may germinate, with their Urza metadata and safety sheets. */
  readonly candidates: readonly BlueprintCandidate[];
  readonly risk: RiskEngine;
  readonly commands: CommandBuilder;
  readonly telemetry: TelemetrySink;
  readonly trainingRunId: string;
  /** Inference budget per decision (`tamiyo.stepTimeoutMs`). */
  readonly stepBudgetMs: number;
  readonly fieldReports?: TamiyoFieldReports;
  /** Coverage of the policy's last input graph (the GNN policy has one). */
  readonly coverage?: () => FeatureCoverage | undefined;
  readonly clock?: Clock;
}

/** One decision, as recorded for the run record. */
export interface TamiyoDecisionRecord {
  readonly globalStep: number;
  readonly epoch: number;
  readonly epochBoundary: boolean;
  readonly proposal: string;
  readonly decision: string;
  readonly reason: number;
  readonly timedOut: boolean;
  readonly latencyMs: number;
  readonly commandId?: string;
  readonly seedId?: string;
  readonly siteId?: string;
  readonly blueprintId?: string;
}

/** Counters of {@link TamiyoService}. */
export interface TamiyoStats {
  readonly decisions: number;
  readonly commands: number;
  readonly timeouts: number;
  readonly fieldReports: number;
  readonly lastLatencyMs: number;
  readonly latencyMsSum: number;
}

/** Tamiyo: decides what grows. */
export class TamiyoService implements Controller {
  readonly #options: TamiyoServiceOptions;
  readonly #clock: Clock;
  readonly #policy: TamiyoPolicy;
  readonly #decisions: TamiyoDecisionRecord[] = [];
  #lastLoss: number | undefined;
  #stats = { decisions: 0, commands: 0, timeouts: 0, fieldReports: 0, lastLatencyMs: 0, latencyMsSum: 0 };

  constructor(options: TamiyoServiceOptions) {
    this.#options = options;
    this.#policy = options.policy;
    this.#clock = options.clock ?? systemClock;
  }

  /** The live policy. */
  get policy(): TamiyoPolicy {
    return this.#policy;
  }

  /** Decisions taken so far (non-WAIT ones and every timeout), oldest first. */
  get decisions(): readonly TamiyoDecisionRecord[] {
    return this.#decisions;
  }

  stats(): TamiyoStats {
    return { ...this.#stats };
  }

  evaluateStep(state: SystemStatePacket, _options: CallOptions): Promise<AdaptationCommand | undefined> {
    return this.#decide(state, false);
  }

  async evaluateEpoch(state: SystemStatePacket, _options: CallOptions): Promise<AdaptationCommand | undefined> {
    await this.#observeEpoch(state);
    return this.#decide(state, true);
  }

  /** Closes every open field-report window as ABORTED and stores it (end of a run). */
  async finish(reason: string): Promise<void> {
    const reports = this.#options.fieldReports;
    if (reports === undefined) return;
    await this.#store(reports.builder.abort('all', reason));
    await reports.publisher?.publishPending();
  }

  async #decide(packet: SystemStatePacket, epochBoundary: boolean): Promise<AdaptationCommand | undefined> {
    const started = this.#clock.monotonicMs();
    const proposal = this.#policy.propose({ packet, host: this.#options.host, candidates: this.#options.candidates, epochBoundary });
    const latencyMs = this.#clock.monotonicMs() - started;
    const timedOut = latencyMs > this.#options.stepBudgetMs;
    const coverage = this.#options.coverage?.();
    const assessed = coverage === undefined ? undefined : assessCoverage(coverage);
    const blueprint = this.#blueprintInfo(proposal);
    const isolationViolations = packet.seedStates.reduce((sum, s) => sum + (s.metrics?.isolationViolations ?? 0), 0);
    const verdict = this.#options.risk.evaluate(proposal.decision, {
      packet,
      timedOut,
      metadataTimedOut: false,
      ...(blueprint === undefined ? {} : { blueprint }),
      ...(assessed === undefined ? {} : { coverage: { average: assessed.average, level: assessed.level } }),
      isolationViolations,
    });
    // A pause of nothing (the policy chose to wait and a risk rule said pause) changes
    // nothing Kasmina would do, so it is telemetry, not a command — except a timeout,
    // whose PAUSE tells Kasmina (and the field reports) that the controller missed.
    const idle =
      proposal.decision.kind === DecisionKind.WAIT &&
      verdict.decision.kind === DecisionKind.PAUSE &&
      verdict.decision.seedId === undefined &&
      !timedOut;
    const command = idle
      ? undefined
      : this.#options.commands.build(proposal, verdict, coverage === undefined ? undefined : coverageSummary(coverage));
    this.#stats.decisions += 1;
    this.#stats.lastLatencyMs = latencyMs;
    this.#stats.latencyMsSum += latencyMs;
    if (timedOut) this.#stats.timeouts += 1;
    if (command !== undefined) this.#stats.commands += 1;
    this.#emit(packet, proposal, verdict, latencyMs, coverage);
    if (proposal.decision.kind !== DecisionKind.WAIT || timedOut) {
      await this.#store(this.#record(packet, epochBoundary, proposal, verdict, timedOut, latencyMs, command));
    }
    return command;
  }

  #blueprintInfo(proposal: PolicyProposal): BlueprintRiskInfo | undefined {
    const id = proposal.decision.blueprintId;
    if (proposal.decision.kind !== DecisionKind.GERMINATE || id === undefined) return undefined;
    const candidate = this.#options.candidates.find((c) => c.descriptor.blueprintId === id);
    if (candidate === undefined) return undefined;
    const bsdsRisk = candidate.bsds?.riskScore ?? 0;
    return {
      descriptor: candidate.descriptor,
      ...(candidate.bsds === undefined ? {} : { bsds: candidate.bsds }),
      quarantined: candidate.quarantined === true || candidate.descriptor.quarantineOnly,
      risk: bsdsRisk > 0 ? bsdsRisk : candidate.descriptor.risk,
    };
  }

  #record(
    packet: SystemStatePacket,
    epochBoundary: boolean,
    proposal: PolicyProposal,
    verdict: RiskVerdict,
    timedOut: boolean,
    latencyMs: number,
    command: AdaptationCommand | undefined,
  ): readonly FieldReport[] {
    const d = verdict.decision;
    this.#decisions.push({
      globalStep: Number(packet.globalStep),
      epoch: packet.currentEpoch,
      epochBoundary,
      proposal: proposal.decision.kind,
      decision: d.kind,
      reason: verdict.reason,
      timedOut,
      latencyMs,
      ...(command === undefined ? {} : { commandId: command.commandId }),
      ...(d.seedId === undefined ? {} : { seedId: d.seedId }),
      ...(d.siteId === undefined ? {} : { siteId: d.siteId }),
      ...(d.blueprintId === undefined ? {} : { blueprintId: d.blueprintId }),
    });
    const reports = this.#options.fieldReports;
    if (reports === undefined || command === undefined || proposal.decision.kind === DecisionKind.WAIT) return [];
    // Windows evicted to make room (more than the builder's cap open) come back as reports.
    return reports.builder.open(command, {
      epoch: packet.currentEpoch,
      seedId: d.seedId ?? command.targetSeedId,
      blueprintId: d.blueprintId ?? '',
      reason: verdict.reason,
      decisionDelta: {
        ...(proposal.valueEstimate === undefined ? {} : { valueEstimate: proposal.valueEstimate }),
        tamiyoLatencyMs: latencyMs,
        ...(proposal.blendingIndex === undefined ? {} : { blendingIndex: proposal.blendingIndex }),
        ...(proposal.seedScore === undefined ? {} : { selectedSeedScore: proposal.seedScore }),
      },
    });
  }

  /** Appends finished field reports durably and counts them. */
  async #store(finished: readonly FieldReport[]): Promise<void> {
    const store = this.#options.fieldReports?.store;
    if (store === undefined) return;
    for (const report of finished) await store.append(report);
    this.#stats.fieldReports += finished.length;
  }

  async #observeEpoch(packet: SystemStatePacket): Promise<void> {
    const reports = this.#options.fieldReports;
    const loss = packet.validationLoss;
    const lossDelta = this.#lastLoss === undefined ? 0 : loss - this.#lastLoss;
    this.#lastLoss = loss;
    if (reports === undefined) return;
    const stages = new Map<string, SeedLifecycleStage>();
    const contributions = new Map<string, number>();
    for (const seed of packet.seedStates) {
      stages.set(seed.seedId, seed.stage);
      const c = seed.metrics?.counterfactualContribution;
      if (c !== undefined) contributions.set(seed.seedId, c);
    }
    const finished = reports.builder.observeEpoch({
      epoch: packet.currentEpoch,
      lossDelta,
      validationAccuracy: packet.validationAccuracy,
      hookLatencyMs: packet.metrics?.hookLatencyMs ?? 0,
      critical: false,
      seedStages: stages,
      contributions,
    });
    await this.#store(finished);
    await reports.publisher?.publishPending();
  }

  #emit(
    packet: SystemStatePacket,
    proposal: PolicyProposal,
    verdict: RiskVerdict,
    latencyMs: number,
    coverage: FeatureCoverage | undefined,
  ): void {
    const metrics: MetricInput[] = [
      { name: TamiyoMetric.INFERENCE_LATENCY_MS, value: latencyMs, unit: 'ms' },
      { name: TamiyoMetric.CONSERVATIVE_MODE, value: verdict.conservativeMode ? 1 : 0, unit: 'bool' },
      { name: TamiyoMetric.LOSS_DELTA, value: packet.metrics?.lossDelta ?? 0, unit: 'loss' },
      ...(proposal.valueEstimate === undefined
        ? []
        : [{ name: TamiyoMetric.POLICY_VALUE_ESTIMATE, value: proposal.valueEstimate, unit: 'value' }]),
      ...verdict.metrics,
      ...(coverage === undefined ? [] : coverageMetrics(coverage)),
    ];
    const events = [...verdict.events];
    if (proposal.decision.kind !== verdict.decision.kind) {
      events.push({
        description: 'decision_downgraded',
        level: TelemetryLevel.INFO,
        attributes: { from: proposal.decision.kind, to: verdict.decision.kind, reason: verdict.reason },
      });
    }
    this.#options.telemetry.emit(
      buildTelemetryPacket({
        source: TAMIYO_SOURCE,
        trainingRunId: this.#options.trainingRunId,
        packetId: `tamiyo-${packet.packetId || String(packet.globalStep)}`,
        clock: this.#clock,
        events,
        metrics,
      }),
    );
  }
}
