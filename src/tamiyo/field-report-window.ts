/**
 * One observation window of a decision and the field report it becomes when it closes:
 * the window's persisted shape, the outcome classification and the report synthesis.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { buildExtraMetrics, type MetricInput } from '../core/index.js';
import {
  CommandType,
  FieldReportDeltaSchema,
  FieldReportOutcome,
  FieldReportSchema,
  RiskReason,
  SeedLifecycleStage,
  type FieldReport,
  type FieldReportDelta,
} from '../leyline/index.js';
import { HELD_STAGES } from './stages.js';

/** The numeric slots of {@link FieldReportDelta}. */
export type FieldReportDeltaField = Exclude<keyof FieldReportDelta, '$typeName' | '$unknown'>;

/** Any subset of the delta's slots; an omitted slot is 0. */
export type FieldReportDeltaInput = Partial<Readonly<Record<FieldReportDeltaField, number>>>;

/** Every delta slot, in field-number order. */
export const DELTA_FIELDS = [
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
  /** Its seed was culled (CULLED or past it, or gone / DORMANT again after being held). */
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
 * so a builder's snapshot can persist it and `restore` read it back.
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
  /**
   * Kasmina's latest counterfactual contribution of the seed (`SeedMetrics.counterfactual_contribution`:
   * validation accuracy with the seed minus with its alpha forced to 0, a fraction), if measured.
   */
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

/** Stages a seed is culled into (CULLED and the stages after it). */
const CULLED_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  SeedLifecycleStage.SEED_STAGE_CULLED,
  SeedLifecycleStage.SEED_STAGE_EMBARGOED,
  SeedLifecycleStage.SEED_STAGE_RESETTING,
  SeedLifecycleStage.SEED_STAGE_TERMINATED,
]);

/**
 * Whether a seed seen at `previous` and now at `current` (undefined: no longer in the
 * packet) has been culled: a culled stage, or — after being held — DORMANT again or gone.
 * Kasmina drops a reset seed from its export, so a cull whose whole path (culled, embargo,
 * reset) passes between two epoch packets shows only as the seed's absence.
 */
export function wasCulled(previous: SeedLifecycleStage, current: SeedLifecycleStage | undefined): boolean {
  if (current !== undefined && CULLED_STAGES.has(current)) return true;
  return (current === undefined || current === SeedLifecycleStage.SEED_STAGE_DORMANT) && HELD_STAGES.has(previous);
}

/** Decision reasons that mark the decision as a reaction to harm (reference §12.2 rule 2). */
const REGRESSION_REASONS: ReadonlySet<RiskReason> = new Set([
  RiskReason.BP_QUARANTINE,
  RiskReason.LOSS_SPIKE,
  RiskReason.ISOLATION_VIOLATION,
  RiskReason.HOOK_BUDGET,
]);

/**
 * The outcome of a closed window. First match wins:
 *
 * | # | condition | outcome | source |
 * |---|---|---|---|
 * | 1 | closed by `abort` | ABORTED | brief; the prototype never produced it |
 * | 2 | decision reason is an inference timeout | NEUTRAL | §12.2 rule 1 |
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
  if (window.reason === RiskReason.TIMEOUT_INFERENCE) return FieldReportOutcome.NEUTRAL;
  if (window.closure === WindowClosure.FOSSILIZED) return FieldReportOutcome.SUCCESS;
  if (window.hasCritical) return FieldReportOutcome.REGRESSION;
  if (REGRESSION_REASONS.has(window.reason)) return FieldReportOutcome.REGRESSION;
  if (window.lossDeltaSum > 0) return FieldReportOutcome.REGRESSION;
  if (window.closure === WindowClosure.CULLED) return FieldReportOutcome.NEUTRAL;
  if (window.commandType === CommandType.COMMAND_PAUSE) return FieldReportOutcome.NEUTRAL;
  if (window.lossDeltaSum < 0) return FieldReportOutcome.SUCCESS;
  return FieldReportOutcome.NEUTRAL;
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
 * observed (Σ loss_delta, mean positive hook latency, the seed's latest counterfactual
 * contribution), floats rounded to float32 as the wire carries them, and up to three
 * extra metrics (loss_delta_min/max, validation_accuracy_delta) when observed.
 */
export function buildReport(window: ClosedWindow, trainingRunId: string, nowMs: number): FieldReport {
  const slots: Partial<Record<FieldReportDeltaField, number>> = { ...window.decisionDelta };
  slots.lossDelta = window.lossDeltaSum;
  if (window.hookLatencySamples > 0) slots.hookLatencyMs = window.hookLatencySumMs / window.hookLatencySamples;
  if (window.contribution !== null) slots.counterfactualContribution = window.contribution;
  const delta = create(FieldReportDeltaSchema);
  for (const key of DELTA_FIELDS) {
    const value = slots[key];
    if (key === 'counterfactualContribution') {
      if (value !== undefined) delta.counterfactualContribution = Math.fround(value);
    } else {
      delta[key] = Math.fround(value ?? 0);
    }
  }

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
