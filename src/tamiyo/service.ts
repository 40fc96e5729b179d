/**
 * Tamiyo as Tolaria's `Controller`: for each state packet the policy proposes, the risk
 * engine rules, the command builder signs the verdict (or nothing for a wait), and every
 * non-WAIT proposal opens a field-report window. Each command's fate (`commandOutcome`:
 * from the trainer directly, or from Kasmina's acknowledgement through the control
 * responder) is counted once, and the window of a command that never took effect is
 * aborted (`aborted:command_<status>[:<reason>]`) rather than judged on epochs it did not
 * shape. The service owns its policy and frees it on {@link TamiyoService.close}.
 * Inference budgets and windows: docs/architecture.md (Tamiyo).
 */
import {
  buildTelemetryPacket,
  closeOnce,
  ErrorCode,
  EsperError,
  runCleanup,
  ServiceState,
  systemClock,
  type Clock,
  type EventInput,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  TelemetryLevel,
  type AdaptationCommand,
  type FieldReport,
  type HostDescriptor,
  type SeedLifecycleStage,
  type SystemStatePacket,
} from '../leyline/index.js';
import type { CallOptions } from '../tolaria/index.js';
import { admitCandidates, type BlueprintCandidate, type BsdsVerifier, type RejectedCandidate } from './candidates.js';
import type { CommandBuilder } from './command-builder.js';
import {
  CommandFateStatus,
  CommandLedger,
  neverApplied,
  type CommandFate,
  type FateController,
  type TamiyoCommandOutcomes,
} from './command-outcomes.js';
import { assessCoverage, coverageMetrics, coverageSummary } from './coverage.js';
import { DecisionKind } from './decision.js';
import type { FieldReportPublisher } from './field-report-publisher.js';
import type { FieldReportStore } from './field-report-store.js';
import type { FieldReportBuilder } from './field-reports.js';
import type { SampledDecision } from './gnn-policy.js';
import type { FeatureCoverage } from './graph-types.js';
import { decisionContextOf } from './policy-graph-snapshot.js';
import { TAMIYO_TELEMETRY_SOURCE, TamiyoMetric } from './names.js';
import type { PolicyProposal, TamiyoPolicy } from './policy.js';
import type { RiskEngine, RiskVerdict } from './risk-engine.js';
import type { BlueprintRiskInfo } from './risk-rules/rule.js';

/** Field-report plumbing of {@link TamiyoService}. */
export interface TamiyoFieldReports {
  readonly builder: FieldReportBuilder;
  readonly store: FieldReportStore;
  /** Publishes stored reports on Oona after each epoch. */
  readonly publisher?: FieldReportPublisher;
}

/** Options of {@link TamiyoService}. */
export interface TamiyoServiceOptions {
  /** The policy; the service owns it from now on and frees it on close. */
  readonly policy: TamiyoPolicy;
  readonly host: HostDescriptor;
  /** Blueprints the policy may germinate, with their Urza metadata and safety sheets. */
  readonly candidates: readonly BlueprintCandidate[];
  /** Verifies every candidate's safety data sheet; required when any candidate carries one. */
  readonly bsdsVerifier?: BsdsVerifier;
  readonly risk: RiskEngine;
  readonly commands: CommandBuilder;
  readonly telemetry: TelemetrySink;
  readonly trainingRunId: string;
  /** Inference budget per decision (`tamiyo.stepTimeoutMs`). */
  readonly stepBudgetMs: number;
  readonly fieldReports?: TamiyoFieldReports;
  /** Coverage of the policy's last input graph (the GNN policy has one). */
  readonly coverage?: () => FeatureCoverage | undefined;
  /**
   * Takes (and forgets) the decision a sampling GNN policy drew on the proposal just made,
   * if it drew one; called after every proposal. A command that carries that decision's
   * choice gets it in its field report (`decision_context`), for Simic to learn from.
   * @default none: reports carry no decision context
   */
  readonly takeSampledDecision?: () => SampledDecision | undefined;
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
  /** What became of the decision's command, once known. */
  readonly fate?: TamiyoCommandFate;
}

/** A command's fate as its decision record keeps it. */
export interface TamiyoCommandFate {
  readonly status: CommandFateStatus;
  readonly reason: string;
  /** Optimizer steps the run had taken when the fate was known (given by acknowledgements). */
  readonly globalStep?: number;
}

/** Counters of {@link TamiyoService}. */
export interface TamiyoStats {
  readonly decisions: number;
  /** Commands issued. */
  readonly commands: number;
  /** What became of them: `commands` = applied + rejected + notApplied + timedOut + failed + runEnded + pending. */
  readonly commandOutcomes: TamiyoCommandOutcomes;
  readonly timeouts: number;
  readonly fieldReports: number;
  readonly lastLatencyMs: number;
  readonly latencyMsSum: number;
}

/** Reason of the windows {@link TamiyoService.close} aborts when none is given. */
export const TAMIYO_CLOSE_REASON = 'tamiyo_closed';

/** States of a {@link TamiyoService}: decisions only while `running`. */
export type TamiyoServiceState = 'running' | 'closing' | 'closed';

/** Tamiyo: decides what grows. */
export class TamiyoService implements FateController, AsyncDisposable {
  readonly #options: TamiyoServiceOptions;
  readonly #clock: Clock;
  readonly #policy: TamiyoPolicy;
  readonly #candidates: readonly BlueprintCandidate[];
  readonly #rejected: readonly RejectedCandidate[];
  readonly #decisions: TamiyoDecisionRecord[] = [];
  /** Index in `#decisions` of each command's record, while its fate is unknown. */
  readonly #recordOf = new Map<string, number>();
  readonly #ledger = new CommandLedger();
  /** Reports of windows aborted by a command's fate, stored at the next decision, epoch or close. */
  #settledReports: FieldReport[] = [];
  #lastLoss: number | undefined;
  /** A CRITICAL event was raised since the last epoch observation. */
  #criticalSinceEpoch = false;
  /** The last coverage assessed, and its assessment: a policy that built no graph since repeats the same object. */
  #coverageSeen: { readonly coverage: FeatureCoverage; readonly assessed: ReturnType<typeof assessCoverage> } | undefined;
  readonly #state = new ServiceState<TamiyoServiceState>('tamiyo service', 'running');
  readonly #close = closeOnce(async (reason: string) => {
    this.#state.set('closing');
    const reports = this.#options.fieldReports;
    try {
      // The policy is freed even when storing or publishing the aborted reports fails.
      await runCleanup('tamiyo service', [
        reports !== undefined &&
          (async () => {
            await this.#storeSettled();
            await this.#store(reports.builder.abort('all', reason));
            await reports.publisher?.publishPending();
          }),
        () => this.#policy.dispose?.(),
      ]);
    } finally {
      this.#state.set('closed');
    }
  });
  #stats = { decisions: 0, commands: 0, timeouts: 0, fieldReports: 0, lastLatencyMs: 0, latencyMsSum: 0 };

  /**
   * @throws EsperError INVALID_ARGUMENT for a blank host site id, a blank or duplicate
   *   blueprint id, or a candidate sheet without `bsdsVerifier`.
   */
  constructor(options: TamiyoServiceOptions) {
    this.#options = options;
    this.#policy = options.policy;
    this.#clock = options.clock ?? systemClock;
    for (const [index, site] of options.host.sites.entries()) {
      if (site.siteId.trim().length === 0) {
        throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host site #${index} has a blank site id`, {
          details: { field: `host.sites[${index}].siteId` },
        });
      }
    }
    const admitted = admitCandidates(options.candidates, {
      verifier: options.bsdsVerifier,
      telemetry: options.telemetry,
      trainingRunId: options.trainingRunId,
      clock: this.#clock,
    });
    this.#candidates = admitted.accepted;
    this.#rejected = admitted.rejected;
  }

  /** `running` until {@link TamiyoService.close}, then `closing` and `closed`. */
  get state(): TamiyoServiceState {
    return this.#state.current;
  }

  /** The live policy. */
  get policy(): TamiyoPolicy {
    return this.#policy;
  }

  /** The candidates the policy sees: those whose sheets verified (or that carry none). */
  get candidates(): readonly BlueprintCandidate[] {
    return this.#candidates;
  }

  /** Candidates left out because their safety data sheet failed verification. */
  get rejectedCandidates(): readonly RejectedCandidate[] {
    return this.#rejected;
  }

  /** Decisions taken so far (non-WAIT ones and every timeout), oldest first. */
  get decisions(): readonly TamiyoDecisionRecord[] {
    return this.#decisions;
  }

  stats(): TamiyoStats {
    return { ...this.#stats, commandOutcomes: this.#ledger.stats() };
  }

  /**
   * Told what became of a command it issued (by the trainer, or by the control responder
   * from Kasmina's acknowledgement). Counted once per command: a second fate for a settled
   * command, or one for a command this service did not issue, is ignored (and counted).
   * The window of a command that never took effect is aborted; its report is stored with
   * the next decision, epoch or close. Never throws; counts in every state.
   */
  commandOutcome(fate: CommandFate): void {
    if (!this.#ledger.settle(fate)) return;
    const index = this.#recordOf.get(fate.commandId);
    this.#recordOf.delete(fate.commandId);
    const record = index === undefined ? undefined : this.#decisions[index];
    if (index !== undefined && record !== undefined) {
      this.#decisions[index] = {
        ...record,
        fate: { status: fate.status, reason: fate.reason, ...(fate.globalStep === undefined ? {} : { globalStep: fate.globalStep }) },
      };
    }
    const reports = this.#options.fieldReports;
    if (reports === undefined || !neverApplied(fate.status) || !this.#state.is('running')) return;
    const detail = fate.status === CommandFateStatus.RUN_ENDED || fate.reason === '' ? '' : `:${fate.reason}`;
    this.#settledReports.push(...reports.builder.abort(fate.commandId, `command_${fate.status}${detail}`));
  }

  async evaluateStep(state: SystemStatePacket, _options: CallOptions): Promise<AdaptationCommand | undefined> {
    this.#state.require('running', 'evaluate a step');
    await this.#storeSettled();
    return this.#decide(state, false);
  }

  async evaluateEpoch(state: SystemStatePacket, _options: CallOptions): Promise<AdaptationCommand | undefined> {
    this.#state.require('running', 'evaluate an epoch');
    await this.#storeSettled();
    await this.#observeEpoch(state);
    return this.#decide(state, true);
  }

  /**
   * Closes every open field-report window as ABORTED with `reason`, stores and publishes
   * them, then frees the policy. Idempotent (returns the first call's promise); the policy
   * is freed even when storing fails.
   */
  close(reason: string = TAMIYO_CLOSE_REASON): Promise<void> {
    return this.#close(reason);
  }

  /** Same as {@link TamiyoService.close} with the default reason. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close(TAMIYO_CLOSE_REASON);
  }

  async #decide(packet: SystemStatePacket, epochBoundary: boolean): Promise<AdaptationCommand | undefined> {
    const started = this.#clock.monotonicMs();
    const proposal = this.#policy.propose({ packet, host: this.#options.host, candidates: this.#candidates, epochBoundary });
    const latencyMs = this.#clock.monotonicMs() - started;
    const sampled = this.#options.takeSampledDecision?.();
    const overBudget = latencyMs > this.#options.stepBudgetMs;
    // Observed only (core.latencyBudgets: observe): the risk engine reports it, nothing pauses.
    const timedOut = overBudget && this.#options.risk.options.latencyBudgets === 'enforce';
    const coverage = this.#options.coverage?.();
    // A graph's coverage is one observation: assessed and exported once, when the policy built
    // it, not again on every call it did not build one (a policy deciding at epoch ends only).
    const fresh = coverage !== undefined && coverage !== this.#coverageSeen?.coverage;
    if (fresh) this.#coverageSeen = { coverage, assessed: assessCoverage(coverage) };
    const assessed = coverage === undefined ? undefined : this.#coverageSeen?.assessed;
    const blueprint = this.#blueprintInfo(proposal);
    const isolationViolations = packet.seedStates.reduce((sum, s) => sum + (s.metrics?.isolationViolations ?? 0), 0);
    const verdict = this.#options.risk.evaluate(proposal.decision, {
      packet,
      timedOut: overBudget,
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
    if (command !== undefined) {
      this.#stats.commands += 1;
      this.#ledger.issue(command.commandId);
    }
    const events = this.#emit(packet, proposal, verdict, latencyMs, fresh ? coverage : undefined);
    if (events.some((e) => e.level === TelemetryLevel.CRITICAL)) this.#criticalSinceEpoch = true;
    if (proposal.decision.kind !== DecisionKind.WAIT || timedOut) {
      await this.#store(this.#record(packet, epochBoundary, proposal, verdict, timedOut, latencyMs, command, sampled));
    }
    return command;
  }

  #blueprintInfo(proposal: PolicyProposal): BlueprintRiskInfo | undefined {
    const decision = proposal.decision;
    if (decision.kind !== DecisionKind.GERMINATE) return undefined;
    const candidate = this.#candidates.find((c) => c.descriptor.blueprintId === decision.blueprintId);
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
    sampled: SampledDecision | undefined,
  ): readonly FieldReport[] {
    const d = verdict.decision;
    if (command !== undefined) this.#recordOf.set(command.commandId, this.#decisions.length);
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
    const seedId = d.seedId ?? command.targetSeedId;
    const seed = packet.seedStates.find((s) => s.seedId === seedId);
    const contribution = seed?.metrics?.counterfactualContribution;
    // The sampled choice is what the command does only when the risk engine let it through
    // unchanged; a downgraded decision is not the policy's action, so nothing is learned from it.
    const policyContext =
      sampled !== undefined && d.kind === proposal.decision.kind && sampled.policyVersion === proposal.policyVersion
        ? decisionContextOf(sampled)
        : undefined;
    // Windows evicted to make room (more than the builder's cap open) come back as reports.
    return reports.builder.open(command, {
      epoch: packet.currentEpoch,
      seedId,
      blueprintId: d.blueprintId ?? '',
      reason: verdict.reason,
      ...(seed === undefined ? {} : { seedStage: seed.stage }),
      ...(contribution === undefined ? {} : { contribution }),
      ...(policyContext === undefined ? {} : { policyContext }),
      decisionDelta: {
        ...(proposal.valueEstimate === undefined ? {} : { valueEstimate: proposal.valueEstimate }),
        tamiyoLatencyMs: latencyMs,
        ...(proposal.blendingIndex === undefined ? {} : { blendingIndex: proposal.blendingIndex }),
        ...(proposal.seedScore === undefined ? {} : { selectedSeedScore: proposal.seedScore }),
      },
    });
  }

  /** Stores the reports of windows aborted by commands' fates. */
  async #storeSettled(): Promise<void> {
    if (this.#settledReports.length === 0) return;
    const settled = this.#settledReports;
    this.#settledReports = [];
    await this.#store(settled);
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
    const critical = this.#criticalSinceEpoch;
    this.#criticalSinceEpoch = false;
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
      critical,
      seedStages: stages,
      contributions,
    });
    await this.#store(finished);
    await reports.publisher?.publishPending();
  }

  /** Emits the decision's telemetry packet; returns its events. */
  #emit(
    packet: SystemStatePacket,
    proposal: PolicyProposal,
    verdict: RiskVerdict,
    latencyMs: number,
    coverage: FeatureCoverage | undefined,
  ): readonly EventInput[] {
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
        source: TAMIYO_TELEMETRY_SOURCE,
        trainingRunId: this.#options.trainingRunId,
        packetId: `tamiyo-${packet.packetId || String(packet.globalStep)}`,
        clock: this.#clock,
        events,
        metrics,
      }),
    );
    return events;
  }
}
