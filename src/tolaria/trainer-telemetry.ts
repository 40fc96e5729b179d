/**
 * The trainer's telemetry: events raised by any part of the trainer wait here until the
 * next packet — a step packet when a step raised events, and one packet per epoch with the
 * epoch's metrics. Names and units come from `names.ts`.
 */
import { buildTelemetryPacket, type Clock, type EventInput, type MetricInput, type TelemetrySink } from '../core/index.js';
import { HealthStatus, TelemetryLevel, type SeedState } from '../leyline/index.js';
import { TOLARIA_SOURCE, TolariaMetric, type MetricName } from './names.js';
import type { OptimizerManagerStats } from './optimizer-manager.js';
import type { EpochReport } from './trainer-options.js';
import type { EpochAccumulator, RunCounters } from './trainer-stats.js';

/** Attribute values of a trainer event. */
export type EventAttributes = Record<string, string | number | boolean>;

/** Where the parts of the trainer raise events. */
export interface TrainerEvents {
  /** Queues an event for the next packet. */
  event(description: string, level: TelemetryLevel, attributes: EventAttributes): void;
}

/** A metric point with the name and unit of `metric`. */
export function metricOf(metric: MetricName, value: number, attributes?: Record<string, string | number>): MetricInput {
  return attributes === undefined
    ? { name: metric.name, unit: metric.unit, value }
    : { name: metric.name, unit: metric.unit, value, attributes };
}

/** HEALTHY, or DEGRADED/UNHEALTHY/CRITICAL after the first event at WARNING/ERROR/CRITICAL. */
export function healthOf(events: readonly EventInput[]): { status: HealthStatus; summary: string } {
  const worst = events.reduce((max, e) => Math.max(max, e.level ?? TelemetryLevel.INFO), TelemetryLevel.INFO);
  const first = events.find((e) => (e.level ?? TelemetryLevel.INFO) >= TelemetryLevel.WARNING);
  if (first === undefined) return { status: HealthStatus.HEALTHY, summary: 'stable' };
  const status =
    worst >= TelemetryLevel.CRITICAL
      ? HealthStatus.CRITICAL
      : worst >= TelemetryLevel.ERROR
        ? HealthStatus.UNHEALTHY
        : HealthStatus.DEGRADED;
  return { status, summary: first.description };
}

/** Collects events and sends the trainer's packets. */
export class TrainerTelemetry implements TrainerEvents {
  readonly #sink: TelemetrySink;
  readonly #trainingRunId: string;
  readonly #clock: Clock;
  readonly #stepMetrics: () => MetricInput[];
  #events: EventInput[] = [];

  /** @param stepMetrics the counters every step packet carries */
  constructor(options: {
    readonly sink: TelemetrySink;
    readonly trainingRunId: string;
    readonly clock: Clock;
    readonly stepMetrics: () => MetricInput[];
  }) {
    this.#sink = options.sink;
    this.#trainingRunId = options.trainingRunId;
    this.#clock = options.clock;
    this.#stepMetrics = options.stepMetrics;
  }

  /** Queues an event for the next packet. */
  event(description: string, level: TelemetryLevel, attributes: EventAttributes): void {
    this.#events.push({ description, level, attributes });
  }

  /** Sends the events raised since the last packet, with the step counters, as one packet. */
  flush(): void {
    if (this.#events.length === 0) return;
    const events = this.#take();
    this.#emit(this.#stepMetrics(), events, healthOf(events));
  }

  /**
   * The epoch packet, with every event still pending: CRITICAL `halted` after an L4,
   * DEGRADED with the reason when the epoch failed, else the events' health.
   */
  emitEpoch(epoch: number, metrics: MetricInput[], verdict: { readonly failureReason: string; readonly halted: boolean }): void {
    const events = this.#take();
    const health = verdict.halted
      ? { status: HealthStatus.CRITICAL, summary: 'halted' }
      : verdict.failureReason !== ''
        ? { status: HealthStatus.DEGRADED, summary: verdict.failureReason }
        : healthOf(events);
    this.#emit(metrics, events, { ...health, indicators: { epoch } });
  }

  #take(): EventInput[] {
    const events = this.#events;
    this.#events = [];
    return events;
  }

  #emit(
    metrics: MetricInput[],
    events: EventInput[],
    health: { status: HealthStatus; summary: string; indicators?: Record<string, number> },
  ): void {
    this.#sink.emit(
      buildTelemetryPacket({ source: TOLARIA_SOURCE, trainingRunId: this.#trainingRunId, metrics, events, health, clock: this.#clock }),
    );
  }
}

/** What the epoch packet reports, gathered from the parts of the trainer. */
export interface EpochMetricsInput {
  readonly report: EpochReport;
  readonly accumulator: EpochAccumulator;
  readonly validationMs: number;
  readonly seedStates: readonly SeedState[];
  readonly breakerState: number;
  readonly conservative: boolean;
  readonly counters: RunCounters;
  readonly globalStep: number;
  readonly lrScheduleEnabled: boolean;
  readonly learningRate: number;
  readonly optimizer: Pick<
    OptimizerManagerStats,
    'rebuildsTotal' | 'rebuildFailuresTotal' | 'rebuildSkippedTotal' | 'lastRebuildLatencyMs'
  >;
  /** The control calls' deadline-miss metrics. */
  readonly control: readonly MetricInput[];
  readonly cpuUtilPercent: number | undefined;
  /** Rollback and checkpoint metrics, when configured. */
  readonly recovery: readonly MetricInput[];
  /** Emergency metrics, when the protocol is on. */
  readonly emergency: readonly MetricInput[];
  /** Trainable parameters of the host and its hooks. */
  readonly totalParams: number;
}

/** The metrics of an epoch packet, in the order of reference §2.7 where it has them. */
export function epochMetrics(input: EpochMetricsInput): MetricInput[] {
  const { report, accumulator: acc, counters } = input;
  const state = acc.state;
  const opt = input.optimizer;
  const seedStages = new Map(input.seedStates.map((s) => [s.siteId, s]));
  const metrics: MetricInput[] = [
    metricOf(TolariaMetric.TRAINING_LOSS, report.trainLoss),
    metricOf(TolariaMetric.TRAINING_ACCURACY, report.trainAccuracy),
    metricOf(TolariaMetric.TRAINING_LATENCY_MS, state.trainMsSum),
    metricOf(TolariaMetric.TRAINING_SAMPLES_PER_S, state.trainMsSum > 0 ? (state.samples * 1000) / state.trainMsSum : 0),
    metricOf(TolariaMetric.TRAINING_STEP_LATENCY_MS, acc.medianStepMs),
    metricOf(TolariaMetric.VALIDATION_LOSS, report.validationLoss),
    metricOf(TolariaMetric.VALIDATION_ACCURACY, report.validationAccuracy),
    metricOf(TolariaMetric.VALIDATION_LATENCY_MS, input.validationMs),
    metricOf(TolariaMetric.SEEDS_ACTIVE, input.seedStates.length),
    ...(state.lastHookMs > 0 ? [metricOf(TolariaMetric.EPOCH_HOOK_LATENCY_MS, state.lastHookMs)] : []),
    metricOf(TolariaMetric.HOOK_LATENCY_MS, state.maxHookMs),
    metricOf(TolariaMetric.BREAKER_STATE, input.breakerState),
    metricOf(TolariaMetric.MODE_CONSERVATIVE, input.conservative ? 1 : 0),
    metricOf(TolariaMetric.EPOCHS_TOTAL, counters.epochsTotal),
    metricOf(TolariaMetric.EPOCHS_FAILED, counters.epochsFailed),
    metricOf(TolariaMetric.STEPS_TOTAL, input.globalStep),
    metricOf(TolariaMetric.LR_CONTROLLER_ENABLED, input.lrScheduleEnabled ? 1 : 0),
    metricOf(TolariaMetric.LR_CONTROLLER_CURRENT_LR, input.learningRate),
    metricOf(TolariaMetric.OPT_REBUILDS_TOTAL, opt.rebuildsTotal),
    metricOf(TolariaMetric.OPT_REBUILD_FAILURES_TOTAL, opt.rebuildFailuresTotal),
    metricOf(TolariaMetric.OPT_REBUILD_SKIPPED_TOTAL, opt.rebuildSkippedTotal),
    metricOf(TolariaMetric.OPT_REBUILD_LATENCY_MS, opt.lastRebuildLatencyMs),
    ...input.control,
    metricOf(TolariaMetric.NON_FINITE_LOSS_TOTAL, counters.nonFiniteLossTotal),
    ...(input.cpuUtilPercent === undefined ? [] : [metricOf(TolariaMetric.CPU_UTIL_PERCENT, input.cpuUtilPercent)]),
    ...input.recovery,
    ...input.emergency,
  ];
  for (const seed of [...acc.seeds.values()].sort((a, b) => a.siteId.localeCompare(b.siteId))) {
    const stage = seedStages.get(seed.siteId);
    const attributes = {
      site_id: seed.siteId,
      seed_id: stage?.seedId ?? seed.siteId,
      ...(stage === undefined ? {} : { stage: stage.stage }),
    };
    metrics.push(
      metricOf(TolariaMetric.SEED_GRAD_NORM, seed.uses === 0 ? 0 : seed.normSum / seed.uses, attributes),
      metricOf(TolariaMetric.SEED_GRAD_SHARE, seed.uses === 0 ? 0 : seed.shareSum / seed.uses, attributes),
      metricOf(TolariaMetric.SEED_PARAMS, seed.params, attributes),
      metricOf(TolariaMetric.SEED_MASK_FRACTION, input.totalParams > 0 ? seed.params / input.totalParams : 0, attributes),
    );
  }
  return metrics;
}
