/**
 * Field reports: every Tamiyo decision becomes one FieldReport from which Simic learns
 * (reference prototype-tamiyo-simic §12.2–§12.4; spec 01: typed `FieldReportDelta`,
 * `extra_metrics` ≤ 8). A decision opens one observation window keyed by its command id;
 * each epoch summary updates every open window; a window closes after `windowEpochs`
 * epochs, early when its seed fossilizes or is culled, or through `abort`. Departures
 * from the prototype: docs/architecture.md (Tamiyo).
 */
import { buildTelemetryPacket, ErrorCode, EsperError, optionChecks, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import {
  FieldReportOutcome,
  HealthStatus,
  SeedLifecycleStage,
  TelemetryLevel,
  type AdaptationCommand,
  type DecisionContext as PolicyDecisionContext,
  type FieldReport,
  type RiskReason,
} from '../leyline/index.js';
import { parseWindowsSnapshot, type FieldReportBuilderSnapshot } from './field-report-snapshot.js';
import {
  buildReport,
  DELTA_FIELDS,
  wasCulled,
  WindowClosure,
  type ClosedWindow,
  type FieldReportDeltaField,
  type FieldReportDeltaInput,
  type ObservationWindowState,
} from './field-report-window.js';
import { FieldReportEvent, TAMIYO_TELEMETRY_SOURCE } from './names.js';

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

/** Applies defaults and validates eagerly, naming the bad field (INVALID_ARGUMENT). */
export function resolveFieldReportBuilderOptions(options: FieldReportBuilderOptions): ResolvedFieldReportBuilderOptions {
  const check = optionChecks('FieldReportBuilderOptions');
  if (typeof options.trainingRunId !== 'string' || options.trainingRunId.trim().length === 0) {
    check.fail('trainingRunId', 'a non-blank string', options.trainingRunId);
  }
  check.func('policyVersion', options.policyVersion);
  const windowEpochs = check.integer('windowEpochs', options.windowEpochs ?? FIELD_REPORT_BUILDER_DEFAULTS.windowEpochs, { min: 1 });
  const maxOpenWindows = check.integer('maxOpenWindows', options.maxOpenWindows ?? FIELD_REPORT_BUILDER_DEFAULTS.maxOpenWindows, {
    min: 1,
  });
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
  /** Stage of the seed in the decision's packet, when it is there. @default UNKNOWN */
  readonly seedStage?: SeedLifecycleStage;
  /**
   * Kasmina's latest counterfactual contribution of the seed in the decision's packet
   * (`SeedMetrics.counterfactual_contribution`, a fraction), when measured.
   */
  readonly contribution?: number;
  /**
   * Delta slots known at decision time. Slots not given are taken from the command's
   * DecisionMetadata (param_delta, value_estimate, risk_score, risk_index, blending_index,
   * schedule_start/end, selected_seed_score) when it has one.
   */
  readonly decisionDelta?: FieldReportDeltaInput;
  /**
   * What a sampling policy saw and chose (Leyline `DecisionContext`), carried by the report
   * as `decision_context`. Kept beside the window, not in its JSON snapshot: a window
   * restored from a snapshot reports without it. @default none
   */
  readonly policyContext?: PolicyDecisionContext;
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
  /** Lifecycle stage of every seed in the epoch's packet (a seed Kasmina has reset is not there). */
  readonly seedStages: ReadonlyMap<string, SeedLifecycleStage>;
  /** Kasmina's latest counterfactual contribution (a fraction) of each measured seed. */
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

type MutableWindow = { -readonly [K in keyof ObservationWindowState]: ObservationWindowState[K] };

function invalidReport(message: string, details: Readonly<Record<string, string | number | boolean>>): EsperError {
  return new EsperError(ErrorCode.TAMIYO_FIELD_REPORT_INVALID, message, { details });
}

/** Checks of the numbers given to the builder's methods (INVALID_ARGUMENT naming the field). */
const inputCheck = optionChecks('FieldReportBuilder');

function checkFinite(field: string, value: unknown): number {
  return inputCheck.number(field, value);
}

function checkEpoch(field: string, value: unknown): number {
  return inputCheck.integer(field, value, { min: 0 });
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
  /** Decision contexts of open windows, by command id. */
  readonly #policyContexts = new Map<string, PolicyDecisionContext>();
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
   * @param source Where the snapshot was read from (a file path), named in errors.
   * @throws EsperError TAMIYO_FIELD_REPORT_INVALID when the snapshot is malformed or belongs
   *   to another run (`details.path` is `source`, `details.field` the bad field).
   */
  static restore(snapshot: unknown, options: FieldReportBuilderOptions, source = 'snapshot'): FieldReportBuilder {
    const builder = new FieldReportBuilder(options);
    for (const window of parseWindowsSnapshot(snapshot, builder.options.trainingRunId, source)) {
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
      seedStage: context.seedStage ?? SeedLifecycleStage.SEED_STAGE_UNKNOWN,
      contribution: context.contribution === undefined ? null : checkFinite('context.contribution', context.contribution),
      decisionDelta,
    });
    if (context.policyContext !== undefined) this.#policyContexts.set(commandId, context.policyContext);
    this.#opened += 1;
    return closed;
  }

  /**
   * Feeds one epoch summary to every open window and returns the reports of the windows
   * it closed, oldest window first. A window ignores epochs before its start and epochs it
   * has already seen (so replaying an epoch after a restore counts it once); it closes
   * when its seed reaches FOSSILIZED or is culled ({@link wasCulled}), when it has observed
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
      let culled = false;
      if (window.seedId.length > 0) {
        const stage = observation.seedStages.get(window.seedId);
        culled = wasCulled(window.seedStage, stage);
        if (stage !== undefined) window.seedStage = stage;
        const contribution = observation.contributions.get(window.seedId);
        if (contribution !== undefined) window.contribution = contribution;
      }
      const closure = this.#closureAfterEpoch(window, epoch, culled);
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

  #closureAfterEpoch(window: MutableWindow, epoch: number, culled: boolean): WindowClosure | undefined {
    if (window.seedStage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED) return WindowClosure.FOSSILIZED;
    if (culled) return WindowClosure.CULLED;
    if (window.epochsObserved >= window.targetEpochs) return WindowClosure.COMPLETED;
    if (epoch >= window.startEpoch + window.targetEpochs - 1) return WindowClosure.COMPLETED;
    return undefined;
  }

  #close(window: MutableWindow, closure: WindowClosure, abortReason?: string): FieldReport {
    this.#windows.delete(window.commandId);
    const policyContext = this.#policyContexts.get(window.commandId);
    this.#policyContexts.delete(window.commandId);
    this.#closed += 1;
    const closedWindow: ClosedWindow = { ...window, closure, ...(abortReason === undefined ? {} : { abortReason }) };
    const report = buildReport(closedWindow, this.options.trainingRunId, this.options.clock.wallMs());
    if (policyContext !== undefined) report.decisionContext = policyContext;
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
        source: TAMIYO_TELEMETRY_SOURCE,
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
