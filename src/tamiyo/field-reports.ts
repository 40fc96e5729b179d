/**
 * Field reports: every Tamiyo decision becomes one FieldReport from which Simic learns
 * (reference prototype-tamiyo-simic §12.2–§12.4; spec 00 §2 "Durable field reports";
 * spec 01: typed `FieldReportDelta`, `extra_metrics` ≤ 8, no metrics map).
 *
 * A decision opens one observation window keyed by its command id; each epoch summary
 * updates every open window; a window closes after `windowEpochs` epochs, early when its
 * seed fossilizes or is culled, or explicitly through `abort`. Closing classifies the
 * outcome ({@link classifyOutcome}) and builds the report.
 *
 * Departures from the prototype (reference §12.4, §17.5):
 * - one window per command, not one per step, capped at `maxOpenWindows` (the oldest is
 *   closed early, as `evicted`, when a new one would exceed the cap) and closed at the
 *   latest once an epoch at or past its last epoch is observed;
 * - the report id is final when the report is built (`fr-<trainingRunId>-<uuid>`), before
 *   anyone appends it; ids never collide;
 * - ABORTED is produced (explicit `abort`);
 * - `observation_window_epochs` is the number of epochs actually observed, so an early
 *   close says how much evidence the outcome rests on.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  buildExtraMetrics,
  buildTelemetryPacket,
  ErrorCode,
  EsperError,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  CommandType,
  FieldReportDeltaSchema,
  FieldReportOutcome,
  FieldReportSchema,
  HealthStatus,
  RiskReason,
  SeedLifecycleStage,
  TelemetryLevel,
  type AdaptationCommand,
  type FieldReport,
  type FieldReportDelta,
} from '../leyline/index.js';

/** Telemetry source of every field-report packet. */
export const FIELD_REPORT_SOURCE = 'tamiyo';

/** Event names of the field-report lifecycle (reference §11.2, §11.3). */
export const FieldReportEvent = {
  /** INFO: a window closed and its report was built. */
  SYNTHESISED: 'field_report_synthesised',
  /** WARNING: the oldest window was closed early because the cap was reached. */
  WINDOW_EVICTED: 'field_report_window_evicted',
  /** WARNING: a publish failed and a retry is scheduled. */
  RETRY: 'field_report_retry',
  /** ERROR: a report was given up after its last retry (or a terminal publish error). */
  DROPPED: 'field_report_dropped',
  /** WARNING: the store cut a torn tail off a log when it opened. */
  STORE_RECOVERED: 'field_report_store_recovered',
  /** Summary of one publish pass (health summary, reference §11.3). */
  PUBLISH_SUMMARY: 'field_report_publish_summary',
} as const;

/** One of {@link FieldReportEvent}. */
export type FieldReportEvent = (typeof FieldReportEvent)[keyof typeof FieldReportEvent];

/** Metric names of the field-report lifecycle (reference §11.3; Nissa maps `total`). */
export const FieldReportMetric = {
  PUBLISHED_TOTAL: 'tamiyo.field_reports.published_total',
  RETRIES_TOTAL: 'tamiyo.field_reports.retries_total',
  DROPPED_TOTAL: 'tamiyo.field_reports.dropped_total',
  PENDING_TOTAL: 'tamiyo.field_reports.pending_total',
  /** Published reports by `outcome` attribute; Nissa exposes it as `esper_field_reports_total`. */
  TOTAL: 'tamiyo.field_reports.total',
} as const;

/** The numeric slots of {@link FieldReportDelta}. */
export type FieldReportDeltaField = Exclude<keyof FieldReportDelta, '$typeName' | '$unknown'>;

/** Any subset of the delta's slots; an omitted slot is 0. */
export type FieldReportDeltaInput = Partial<Readonly<Record<FieldReportDeltaField, number>>>;

/** Every delta slot, in field-number order. */
const DELTA_FIELDS = [
  'lossDelta',
  'paramDelta',
  'riskIndex',
  'riskScore',
  'tamiyoLatencyMs',
  'hookLatencyMs',
  'kasminaApplyMs',
  'kasminaFinalizeMs',
  'valueEstimate',
  'blendingIndex',
  'selectedSeedScore',
  'scheduleStart',
  'scheduleEnd',
  'blueprintRisk',
  'counterfactualContribution',
] as const satisfies readonly FieldReportDeltaField[];

// Compile-time guard: a slot added to FieldReportDelta in the proto must be listed above.
type UnlistedDeltaField = Exclude<FieldReportDeltaField, (typeof DELTA_FIELDS)[number]>;
const _everyDeltaFieldListed: [UnlistedDeltaField] extends [never] ? true : UnlistedDeltaField = true;

/** Why a window closed. */
export const WindowClosure = {
  /** `windowEpochs` epochs observed (or an epoch at/after its last one). */
  COMPLETED: 'completed',
  /** Its seed reached FOSSILIZED. */
  FOSSILIZED: 'fossilized',
  /** Its seed was culled (CULLED, or already past it: EMBARGOED, RESETTING, TERMINATED). */
  CULLED: 'culled',
  /** `abort()`: the run stopped, an operator culled the seed, a rollback, ... */
  ABORTED: 'aborted',
  /** Closed early to keep the open windows under `maxOpenWindows`. */
  EVICTED: 'evicted',
} as const;

/** One of {@link WindowClosure}. */
export type WindowClosure = (typeof WindowClosure)[keyof typeof WindowClosure];

/**
 * An open observation window: plain JSON-safe data (no infinities; "no sample" is `null`),
 * so {@link FieldReportBuilder.toJSON} can persist it and `restore` read it back.
 */
export interface ObservationWindowState {
  readonly commandId: string;
  readonly commandType: CommandType;
  /** Seed the decision targeted; empty for decisions without one (optimizer, pause). */
  readonly seedId: string;
  readonly blueprintId: string;
  /** The risk engine's reason for the decision. */
  readonly reason: RiskReason;
  /** Policy version that made the decision (read at `open`). */
  readonly policyVersion: string;
  /** Epoch of the decision; it is the window's first epoch. */
  readonly startEpoch: number;
  readonly targetEpochs: number;
  /** Wall ms when the window opened. */
  readonly openedAtMs: number;
  readonly epochsObserved: number;
  readonly lastEpoch: number | null;
  readonly lossDeltaSum: number;
  readonly lossDeltaMin: number | null;
  readonly lossDeltaMax: number | null;
  /** Sum and count of positive hook latencies, in ms. */
  readonly hookLatencySumMs: number;
  readonly hookLatencySamples: number;
  readonly firstValidationAccuracy: number | null;
  readonly lastValidationAccuracy: number | null;
  readonly hasCritical: boolean;
  /** Last observed lifecycle stage of the seed (UNKNOWN until seen). */
  readonly seedStage: SeedLifecycleStage;
  /** Last observed counterfactual contribution of the seed, if any. */
  readonly contribution: number | null;
  /** Delta slots known at decision time (policy metadata, latencies, blueprint risk). */
  readonly decisionDelta: FieldReportDeltaInput;
}

/** A window as it closes: what {@link classifyOutcome} reads. */
export interface ClosedWindow extends ObservationWindowState {
  readonly closure: WindowClosure;
  /** Why it was aborted, for ABORTED. */
  readonly abortReason?: string;
}

/** Decision reasons that mark the decision as a reaction to harm (reference §12.2 rule 2). */
const REGRESSION_REASONS: ReadonlySet<RiskReason> = new Set([
  RiskReason.BP_QUARANTINE,
  RiskReason.LOSS_SPIKE,
  RiskReason.ISOLATION_VIOLATION,
  RiskReason.HOOK_BUDGET,
]);

/** Decision reasons of a decision that was never acted on (reference §12.2 rule 1). */
const TIMEOUT_REASONS: ReadonlySet<RiskReason> = new Set([RiskReason.TIMEOUT_INFERENCE, RiskReason.TIMEOUT_URZA]);

/**
 * The outcome of a closed window. First match wins:
 *
 * | # | condition | outcome | source |
 * |---|---|---|---|
 * | 1 | closed by `abort` | ABORTED | brief; the prototype never produced it |
 * | 2 | decision reason is a timeout (inference/Urza) | NEUTRAL | §12.2 rule 1 |
 * | 3 | seed FOSSILIZED | SUCCESS | kept for good after passing every gate |
 * | 4 | any CRITICAL event in the window | REGRESSION | §12.3 |
 * | 5 | decision reason bp_quarantine / loss_spike / isolation_violation / hook_budget | REGRESSION | §12.2 rule 2 |
 * | 6 | Σ loss_delta > 0 | REGRESSION | §12.3 (covers "culled with loss up") |
 * | 7 | seed culled | NEUTRAL | culled without a loss increase |
 * | 8 | a PAUSE command | NEUTRAL | §12.2 rule 3, widened to every pause |
 * | 9 | Σ loss_delta < 0 | SUCCESS | §12.3 |
 * | 10 | otherwise (incl. no epoch observed) | NEUTRAL | |
 *
 * Departure: the prototype's per-decision rule 4 ("otherwise SUCCESS", which counted
 * no-candidate and latency pauses as successes) is replaced by the loss evidence of rules
 * 6–10.
 */
export function classifyOutcome(window: ClosedWindow): FieldReportOutcome {
  if (window.closure === WindowClosure.ABORTED) return FieldReportOutcome.ABORTED;
  if (TIMEOUT_REASONS.has(window.reason)) return FieldReportOutcome.NEUTRAL;
  if (window.closure === WindowClosure.FOSSILIZED) return FieldReportOutcome.SUCCESS;
  if (window.hasCritical) return FieldReportOutcome.REGRESSION;
  if (REGRESSION_REASONS.has(window.reason)) return FieldReportOutcome.REGRESSION;
  if (window.lossDeltaSum > 0) return FieldReportOutcome.REGRESSION;
  if (window.closure === WindowClosure.CULLED) return FieldReportOutcome.NEUTRAL;
  if (window.commandType === CommandType.COMMAND_PAUSE) return FieldReportOutcome.NEUTRAL;
  if (window.lossDeltaSum < 0) return FieldReportOutcome.SUCCESS;
  return FieldReportOutcome.NEUTRAL;
}

/** Options of {@link FieldReportBuilder}. */
export interface FieldReportBuilderOptions {
  /** Run every report belongs to; required, non-empty. */
  readonly trainingRunId: string;
  /** Current policy version, read when a window opens. */
  readonly policyVersion: () => string;
  /** Receives `field_report_synthesised` and `field_report_window_evicted`. */
  readonly telemetry: TelemetrySink;
  /**
   * Epochs a window observes (its decision epoch included).
   * @default 3 (reference §12.4 DESIGN)
   */
  readonly windowEpochs?: number;
  /**
   * Most windows open at once; opening one more closes the oldest early (`evicted`).
   * @default 64
   */
  readonly maxOpenWindows?: number;
  /** Stamps `issued_at` and telemetry. @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link FieldReportBuilderOptions}. */
export const FIELD_REPORT_BUILDER_DEFAULTS = Object.freeze({
  windowEpochs: 3,
  maxOpenWindows: 64,
});

/** {@link FieldReportBuilderOptions} with defaults applied. */
export interface ResolvedFieldReportBuilderOptions {
  readonly trainingRunId: string;
  readonly policyVersion: () => string;
  readonly telemetry: TelemetrySink;
  readonly windowEpochs: number;
  readonly maxOpenWindows: number;
  readonly clock: Clock;
}

function invalidOption(field: string, value: unknown, expected: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `FieldReportBuilderOptions.${field} must be ${expected}, got ${String(value)}`, {
    details: { field, value: String(value) },
  });
}

/** Applies defaults and validates eagerly, naming the bad field (INVALID_ARGUMENT). */
export function resolveFieldReportBuilderOptions(options: FieldReportBuilderOptions): ResolvedFieldReportBuilderOptions {
  const windowEpochs = options.windowEpochs ?? FIELD_REPORT_BUILDER_DEFAULTS.windowEpochs;
  const maxOpenWindows = options.maxOpenWindows ?? FIELD_REPORT_BUILDER_DEFAULTS.maxOpenWindows;
  if (typeof options.trainingRunId !== 'string' || options.trainingRunId.trim().length === 0) {
    throw invalidOption('trainingRunId', options.trainingRunId, 'a non-empty string');
  }
  if (typeof options.policyVersion !== 'function') throw invalidOption('policyVersion', options.policyVersion, 'a function');
  if (!Number.isInteger(windowEpochs) || windowEpochs < 1) throw invalidOption('windowEpochs', windowEpochs, 'an integer ≥ 1');
  if (!Number.isInteger(maxOpenWindows) || maxOpenWindows < 1) {
    throw invalidOption('maxOpenWindows', maxOpenWindows, 'an integer ≥ 1');
  }
  return Object.freeze({
    trainingRunId: options.trainingRunId,
    policyVersion: options.policyVersion,
    telemetry: options.telemetry,
    windowEpochs,
    maxOpenWindows,
    clock: options.clock ?? systemClock,
  });
}

/** What a decision adds to its window at `open`. */
export interface DecisionContext {
  /** Epoch the decision was made in (the window's first epoch). */
  readonly epoch: number;
  /** Seed the decision concerns; '' when none. */
  readonly seedId: string;
  /** Blueprint the decision concerns; '' when none. */
  readonly blueprintId: string;
  readonly reason: RiskReason;
  /**
   * Delta slots known at decision time. Slots not given are taken from the command's
   * DecisionMetadata (param_delta, value_estimate, risk_score, risk_index, blending_index,
   * schedule_start/end, selected_seed_score) when it has one.
   */
  readonly decisionDelta?: FieldReportDeltaInput;
}

/** One epoch summary, fed to every open window. */
export interface EpochObservation {
  readonly epoch: number;
  /** Loss change over the epoch (negative is better); finite. */
  readonly lossDelta: number;
  readonly validationAccuracy: number;
  /** Kasmina hook latency, in ms; ≤ 0 means "no sample". */
  readonly hookLatencyMs: number;
  /** Whether any CRITICAL event happened in the epoch. */
  readonly critical: boolean;
  /** Lifecycle stage of each live seed. */
  readonly seedStages: ReadonlyMap<string, SeedLifecycleStage>;
  /** Counterfactual contribution (accuracy with − without) of each seed measured. */
  readonly contributions: ReadonlyMap<string, number>;
}

/** Counters of a {@link FieldReportBuilder}. */
export interface FieldReportBuilderStats {
  readonly open: number;
  readonly opened: number;
  readonly closed: number;
  readonly evicted: number;
  readonly aborted: number;
}

/** The persisted form of a builder's open windows ({@link FieldReportBuilder.toJSON}). */
export interface FieldReportBuilderSnapshot {
  readonly version: 1;
  readonly trainingRunId: string;
  readonly windows: readonly ObservationWindowState[];
}

type MutableWindow = { -readonly [K in keyof ObservationWindowState]: ObservationWindowState[K] };

const TERMINAL_CULLED_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  SeedLifecycleStage.SEED_STAGE_CULLED,
  SeedLifecycleStage.SEED_STAGE_EMBARGOED,
  SeedLifecycleStage.SEED_STAGE_RESETTING,
  SeedLifecycleStage.SEED_STAGE_TERMINATED,
]);

function invalidReport(message: string, details: Readonly<Record<string, string | number | boolean>>): EsperError {
  return new EsperError(ErrorCode.TAMIYO_FIELD_REPORT_INVALID, message, { details });
}

function checkFinite(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${field} must be a finite number, got ${String(value)}`, {
      details: { field, value: String(value) },
    });
  }
  return value;
}

function checkEpoch(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${field} must be an integer ≥ 0, got ${String(value)}`, {
      details: { field, value: String(value) },
    });
  }
  return value;
}

/** The delta slots a command's DecisionMetadata carries. */
function deltaFromMetadata(command: AdaptationCommand): FieldReportDeltaInput {
  const metadata = command.metadata;
  if (metadata === undefined) return {};
  const out: Partial<Record<FieldReportDeltaField, number>> = {};
  if (metadata.policy !== undefined) {
    out.paramDelta = metadata.policy.paramDelta;
    out.valueEstimate = metadata.policy.valueEstimate;
    out.riskScore = metadata.policy.riskScore;
    out.riskIndex = metadata.policy.riskIndex;
    out.blendingIndex = metadata.policy.blendingIndex;
  }
  if (metadata.blend !== undefined) {
    out.scheduleStart = metadata.blend.scheduleStart;
    out.scheduleEnd = metadata.blend.scheduleEnd;
  }
  if (metadata.selection !== undefined) out.selectedSeedScore = metadata.selection.seedScore;
  return out;
}

function checkDeltaInput(input: FieldReportDeltaInput, field: string): FieldReportDeltaInput {
  const out: Partial<Record<FieldReportDeltaField, number>> = {};
  for (const key of Object.keys(input)) {
    if (!(DELTA_FIELDS as readonly string[]).includes(key)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${field}.${key} is not a FieldReportDelta slot`, {
        details: { field: `${field}.${key}` },
      });
    }
    const value = input[key as FieldReportDeltaField];
    if (value === undefined) continue;
    out[key as FieldReportDeltaField] = checkFinite(`${field}.${key}`, value);
  }
  return out;
}

/**
 * Builds field reports from decisions and the epochs that follow them (see module doc).
 * Not thread-safe by design: Tamiyo calls it from its one decision loop.
 */
export class FieldReportBuilder {
  readonly options: ResolvedFieldReportBuilderOptions;
  /** Open windows by command id, in open order (Map keeps insertion order). */
  readonly #windows = new Map<string, MutableWindow>();
  #opened = 0;
  #closed = 0;
  #evicted = 0;
  #aborted = 0;

  constructor(options: FieldReportBuilderOptions) {
    this.options = resolveFieldReportBuilderOptions(options);
  }

  /**
   * A builder holding the windows of `snapshot` (from {@link FieldReportBuilder.toJSON},
   * possibly parsed back from JSON). More windows than `maxOpenWindows` are accepted; the
   * oldest are evicted by the next `open`.
   *
   * @throws EsperError TAMIYO_FIELD_REPORT_INVALID when the snapshot is malformed or belongs
   *   to another run (`details.field` names the bad field).
   */
  static restore(snapshot: unknown, options: FieldReportBuilderOptions): FieldReportBuilder {
    const builder = new FieldReportBuilder(options);
    for (const window of parseSnapshot(snapshot, builder.options.trainingRunId)) {
      builder.#windows.set(window.commandId, window);
    }
    return builder;
  }

  /** The open windows as plain data, oldest first; `JSON.stringify` it to persist. */
  toJSON(): FieldReportBuilderSnapshot {
    return {
      version: 1,
      trainingRunId: this.options.trainingRunId,
      windows: [...this.#windows.values()].map((w) => ({ ...w, decisionDelta: { ...w.decisionDelta } })),
    };
  }

  /** Open windows, oldest first (copies). */
  windows(): ObservationWindowState[] {
    return this.toJSON().windows.slice();
  }

  /** Counters since construction. */
  stats(): FieldReportBuilderStats {
    return {
      open: this.#windows.size,
      opened: this.#opened,
      closed: this.#closed,
      evicted: this.#evicted,
      aborted: this.#aborted,
    };
  }

  /**
   * Opens the observation window of `command`. If that makes more than `maxOpenWindows`
   * windows, the oldest are closed early (`evicted`, WARNING telemetry) and their reports
   * returned — nothing is lost.
   *
   * @throws EsperError TAMIYO_FIELD_REPORT_INVALID for an empty command id, a command of
   *   another run, or a command whose window is already open; INVALID_ARGUMENT for a bad
   *   epoch or a non-finite delta slot.
   */
  open(command: AdaptationCommand, context: DecisionContext): FieldReport[] {
    const commandId = command.commandId;
    if (commandId.length === 0) {
      throw invalidReport('a field report needs the command id of its decision', { field: 'command_id' });
    }
    if (command.trainingRunId !== this.options.trainingRunId) {
      throw invalidReport(
        `command ${commandId} belongs to run ${JSON.stringify(command.trainingRunId)}, not ${JSON.stringify(this.options.trainingRunId)}`,
        { field: 'training_run_id', commandId, trainingRunId: command.trainingRunId },
      );
    }
    if (this.#windows.has(commandId)) {
      throw invalidReport(`the window of command ${commandId} is already open`, { field: 'command_id', commandId });
    }
    const startEpoch = checkEpoch('context.epoch', context.epoch);
    const decisionDelta = {
      ...checkDeltaInput(deltaFromMetadata(command), 'command.metadata'),
      ...checkDeltaInput(context.decisionDelta ?? {}, 'context.decisionDelta'),
    };
    const closed: FieldReport[] = [];
    while (this.#windows.size >= this.options.maxOpenWindows) {
      const oldest = this.#windows.values().next().value as MutableWindow;
      const report = this.#close(oldest, WindowClosure.EVICTED);
      this.#evicted += 1;
      this.#emit(FieldReportEvent.WINDOW_EVICTED, TelemetryLevel.WARNING, {
        report_id: report.reportId,
        command_id: oldest.commandId,
        max_open_windows: this.options.maxOpenWindows,
      });
      closed.push(report);
    }
    this.#windows.set(commandId, {
      commandId,
      commandType: command.commandType,
      seedId: context.seedId,
      blueprintId: context.blueprintId,
      reason: context.reason,
      policyVersion: this.options.policyVersion(),
      startEpoch,
      targetEpochs: this.options.windowEpochs,
      openedAtMs: this.options.clock.wallMs(),
      epochsObserved: 0,
      lastEpoch: null,
      lossDeltaSum: 0,
      lossDeltaMin: null,
      lossDeltaMax: null,
      hookLatencySumMs: 0,
      hookLatencySamples: 0,
      firstValidationAccuracy: null,
      lastValidationAccuracy: null,
      hasCritical: false,
      seedStage: SeedLifecycleStage.SEED_STAGE_UNKNOWN,
      contribution: null,
      decisionDelta,
    });
    this.#opened += 1;
    return closed;
  }

  /**
   * Feeds one epoch summary to every open window and returns the reports of the windows
   * it closed, oldest window first. A window ignores epochs before its start and epochs it
   * has already seen (so replaying an epoch after a restore counts it once); it closes
   * when its seed reaches FOSSILIZED or a culled stage, when it has observed
   * `windowEpochs` epochs, or when `epoch` is at or past its last epoch.
   *
   * @throws EsperError INVALID_ARGUMENT for a bad epoch or a non-finite number (nothing
   *   is updated then).
   */
  observeEpoch(observation: EpochObservation): FieldReport[] {
    const epoch = checkEpoch('observation.epoch', observation.epoch);
    const lossDelta = checkFinite('observation.lossDelta', observation.lossDelta);
    const accuracy = checkFinite('observation.validationAccuracy', observation.validationAccuracy);
    const hookLatencyMs = checkFinite('observation.hookLatencyMs', observation.hookLatencyMs);
    for (const [seedId, value] of observation.contributions) checkFinite(`observation.contributions[${seedId}]`, value);

    const reports: FieldReport[] = [];
    for (const window of [...this.#windows.values()]) {
      if (epoch < window.startEpoch || (window.lastEpoch !== null && epoch <= window.lastEpoch)) continue;
      window.epochsObserved += 1;
      window.lastEpoch = epoch;
      window.lossDeltaSum += lossDelta;
      window.lossDeltaMin = window.lossDeltaMin === null ? lossDelta : Math.min(window.lossDeltaMin, lossDelta);
      window.lossDeltaMax = window.lossDeltaMax === null ? lossDelta : Math.max(window.lossDeltaMax, lossDelta);
      if (hookLatencyMs > 0) {
        window.hookLatencySumMs += hookLatencyMs;
        window.hookLatencySamples += 1;
      }
      window.firstValidationAccuracy ??= accuracy;
      window.lastValidationAccuracy = accuracy;
      window.hasCritical ||= observation.critical;
      if (window.seedId.length > 0) {
        const stage = observation.seedStages.get(window.seedId);
        if (stage !== undefined) window.seedStage = stage;
        const contribution = observation.contributions.get(window.seedId);
        if (contribution !== undefined) window.contribution = contribution;
      }
      const closure = this.#closureAfterEpoch(window, epoch);
      if (closure !== undefined) reports.push(this.#close(window, closure));
    }
    return reports;
  }

  /**
   * Closes the window of `commandId`, or every open window for `'all'`, as ABORTED (the
   * run stopped, an operator culled the seed, a rollback) and returns their reports. An
   * unknown command id returns none: its window already closed.
   */
  abort(commandId: string | 'all', reason: string): FieldReport[] {
    const targets =
      commandId === 'all' ? [...this.#windows.values()] : [this.#windows.get(commandId)].filter((w): w is MutableWindow => w !== undefined);
    return targets.map((window) => {
      this.#aborted += 1;
      return this.#close(window, WindowClosure.ABORTED, reason);
    });
  }

  #closureAfterEpoch(window: MutableWindow, epoch: number): WindowClosure | undefined {
    if (window.seedStage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED) return WindowClosure.FOSSILIZED;
    if (TERMINAL_CULLED_STAGES.has(window.seedStage)) return WindowClosure.CULLED;
    if (window.epochsObserved >= window.targetEpochs) return WindowClosure.COMPLETED;
    if (epoch >= window.startEpoch + window.targetEpochs - 1) return WindowClosure.COMPLETED;
    return undefined;
  }

  #close(window: MutableWindow, closure: WindowClosure, abortReason?: string): FieldReport {
    this.#windows.delete(window.commandId);
    this.#closed += 1;
    const closedWindow: ClosedWindow = { ...window, closure, ...(abortReason === undefined ? {} : { abortReason }) };
    const report = buildReport(closedWindow, this.options.trainingRunId, this.options.clock.wallMs());
    this.#emit(FieldReportEvent.SYNTHESISED, TelemetryLevel.INFO, {
      report_id: report.reportId,
      command_id: window.commandId,
      closure,
      outcome: FieldReportOutcome[report.outcome],
      epochs_observed: window.epochsObserved,
    });
    return report;
  }

  #emit(description: FieldReportEvent, level: TelemetryLevel, attributes: Record<string, string | number>): void {
    this.options.telemetry.emit(
      buildTelemetryPacket({
        source: FIELD_REPORT_SOURCE,
        trainingRunId: this.options.trainingRunId,
        clock: this.options.clock,
        level,
        events: [{ description, level, attributes }],
        health: {
          status: level === TelemetryLevel.INFO ? HealthStatus.HEALTHY : HealthStatus.DEGRADED,
          summary: description,
        },
      }),
    );
  }
}

/** A new, unique report id for `trainingRunId`. */
export function newFieldReportId(trainingRunId: string): string {
  return `fr-${trainingRunId}-${randomUUID()}`;
}

function notesOf(window: ClosedWindow): string {
  switch (window.closure) {
    case WindowClosure.ABORTED:
      return `aborted:${window.abortReason ?? ''}`;
    case WindowClosure.COMPLETED:
      return 'window_completed';
    case WindowClosure.FOSSILIZED:
      return 'seed_fossilized';
    case WindowClosure.CULLED:
      return 'seed_culled';
    case WindowClosure.EVICTED:
      return 'window_evicted';
  }
}

/**
 * The report of a closed window: decision-time delta slots overlaid with what the window
 * observed (Σ loss_delta, mean positive hook latency, last counterfactual contribution),
 * floats rounded to float32 as the wire carries them, and up to three extra metrics
 * (loss_delta_min/max, validation_accuracy_delta) when observed.
 */
function buildReport(window: ClosedWindow, trainingRunId: string, nowMs: number): FieldReport {
  const slots: Partial<Record<FieldReportDeltaField, number>> = { ...window.decisionDelta };
  slots.lossDelta = window.lossDeltaSum;
  if (window.hookLatencySamples > 0) slots.hookLatencyMs = window.hookLatencySumMs / window.hookLatencySamples;
  if (window.contribution !== null) slots.counterfactualContribution = window.contribution;
  const delta = create(FieldReportDeltaSchema);
  for (const key of DELTA_FIELDS) delta[key] = Math.fround(slots[key] ?? 0);

  const extras: MetricInput[] = [];
  if (window.lossDeltaMin !== null) extras.push({ name: 'loss_delta_min', value: window.lossDeltaMin, unit: 'loss' });
  if (window.lossDeltaMax !== null) extras.push({ name: 'loss_delta_max', value: window.lossDeltaMax, unit: 'loss' });
  if (window.firstValidationAccuracy !== null && window.lastValidationAccuracy !== null) {
    extras.push({
      name: 'validation_accuracy_delta',
      value: window.lastValidationAccuracy - window.firstValidationAccuracy,
      unit: 'ratio',
    });
  }

  return create(FieldReportSchema, {
    version: 1,
    reportId: newFieldReportId(trainingRunId),
    commandId: window.commandId,
    trainingRunId,
    seedId: window.seedId,
    blueprintId: window.blueprintId,
    outcome: classifyOutcome(window),
    observationWindowEpochs: window.epochsObserved,
    issuedAt: timestampFromMs(nowMs),
    tamiyoPolicyVersion: window.policyVersion,
    notes: notesOf(window),
    delta,
    extraMetrics: buildExtraMetrics(extras, 'field_report.extra_metrics').map((point) => {
      point.value = Math.fround(point.value);
      return point;
    }),
  });
}

// ---------------------------------------------------------------------------------------
// Snapshot parsing (restore)

class SnapshotReader {
  constructor(private readonly path: string) {}

  fail(field: string, expected: string, value: unknown): never {
    throw invalidReport(`field-report windows snapshot: ${this.path}${field} must be ${expected}`, {
      field: `${this.path}${field}`,
      value: String(value),
    });
  }

  record(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, 'an object', value);
    return value as Record<string, unknown>;
  }

  string(obj: Record<string, unknown>, field: string, nonEmpty = false): string {
    const value = obj[field];
    if (typeof value !== 'string' || (nonEmpty && value.length === 0)) {
      this.fail(field, nonEmpty ? 'a non-empty string' : 'a string', value);
    }
    return value;
  }

  integer(obj: Record<string, unknown>, field: string, min = 0): number {
    const value = obj[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) this.fail(field, `an integer ≥ ${min}`, value);
    return value;
  }

  finite(obj: Record<string, unknown>, field: string): number {
    const value = obj[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(field, 'a finite number', value);
    return value;
  }

  nullableFinite(obj: Record<string, unknown>, field: string): number | null {
    return obj[field] === null ? null : this.finite(obj, field);
  }

  nullableInteger(obj: Record<string, unknown>, field: string): number | null {
    return obj[field] === null ? null : this.integer(obj, field);
  }

  boolean(obj: Record<string, unknown>, field: string): boolean {
    const value = obj[field];
    if (typeof value !== 'boolean') this.fail(field, 'a boolean', value);
    return value;
  }
}

function parseSnapshot(snapshot: unknown, trainingRunId: string): MutableWindow[] {
  const top: SnapshotReader = new SnapshotReader('');
  const root = top.record(snapshot, 'snapshot');
  if (root['version'] !== 1) top.fail('version', '1', root['version']);
  if (top.string(root, 'trainingRunId') !== trainingRunId) top.fail('trainingRunId', JSON.stringify(trainingRunId), root['trainingRunId']);
  const windows = root['windows'];
  if (!Array.isArray(windows)) top.fail('windows', 'an array', windows);
  const seen = new Set<string>();
  return (windows as unknown[]).map((raw, i) => {
    const r: SnapshotReader = new SnapshotReader(`windows[${i}].`);
    const w = r.record(raw, '');
    const commandId = r.string(w, 'commandId', true);
    if (seen.has(commandId)) r.fail('commandId', 'unique', commandId);
    seen.add(commandId);
    const deltaRaw = r.record(w['decisionDelta'], 'decisionDelta');
    const decisionDelta: Partial<Record<FieldReportDeltaField, number>> = {};
    for (const key of Object.keys(deltaRaw)) {
      if (!(DELTA_FIELDS as readonly string[]).includes(key)) r.fail(`decisionDelta.${key}`, 'a FieldReportDelta slot', key);
      decisionDelta[key as FieldReportDeltaField] = r.finite(deltaRaw, key);
    }
    return {
      commandId,
      commandType: r.integer(w, 'commandType') as CommandType,
      seedId: r.string(w, 'seedId'),
      blueprintId: r.string(w, 'blueprintId'),
      reason: r.integer(w, 'reason') as RiskReason,
      policyVersion: r.string(w, 'policyVersion'),
      startEpoch: r.integer(w, 'startEpoch'),
      targetEpochs: r.integer(w, 'targetEpochs', 1),
      openedAtMs: r.finite(w, 'openedAtMs'),
      epochsObserved: r.integer(w, 'epochsObserved'),
      lastEpoch: r.nullableInteger(w, 'lastEpoch'),
      lossDeltaSum: r.finite(w, 'lossDeltaSum'),
      lossDeltaMin: r.nullableFinite(w, 'lossDeltaMin'),
      lossDeltaMax: r.nullableFinite(w, 'lossDeltaMax'),
      hookLatencySumMs: r.finite(w, 'hookLatencySumMs'),
      hookLatencySamples: r.integer(w, 'hookLatencySamples'),
      firstValidationAccuracy: r.nullableFinite(w, 'firstValidationAccuracy'),
      lastValidationAccuracy: r.nullableFinite(w, 'lastValidationAccuracy'),
      hasCritical: r.boolean(w, 'hasCritical'),
      seedStage: r.integer(w, 'seedStage') as SeedLifecycleStage,
      contribution: r.nullableFinite(w, 'contribution'),
      decisionDelta,
    };
  });
}
