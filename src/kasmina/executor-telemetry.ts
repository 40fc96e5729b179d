/**
 * What the executor tells the outside world: one packet per seed per step and one global
 * packet (names in seed-events.ts, meanings in docs/observability-runbook.md), and the
 * `SeedState`s of Tolaria's state packets.
 */
import { create } from '@bufbuild/protobuf';
import { buildTelemetryPacket, type Clock, type EventInput, type MetricInput, type TelemetrySink } from '../core/index.js';
import { HealthStatus, SeedLifecycleStage, SeedMetricsSchema, SeedStateSchema, type SeedState } from '../leyline/index.js';
import { ACTIVE_STAGES, MEASURED_STAGES, type ExecutorState } from './executor-state.js';
import { stageName } from './lifecycle.js';
import { SeedEvent, SeedMetric } from './seed-events.js';
import type { Seed } from './seed.js';

/** Source name of Kasmina's telemetry. */
export const KASMINA_SOURCE = 'kasmina';

/** Options of {@link ExecutorTelemetry}. */
export interface ExecutorTelemetryOptions {
  readonly sink: TelemetrySink;
  readonly trainingRunId: string;
  readonly clock: Clock;
}

/** What the global packet reports beside the executor state. */
export interface GlobalReadings {
  /** Isolation violations of live seeds. */
  readonly isolationViolations: number;
  readonly registryEntries: number;
  /** Breaker, verifier, fetcher and prefetch metrics. */
  readonly metrics: readonly MetricInput[];
}

/** Builds and emits the executor's packets. */
export class ExecutorTelemetry {
  readonly #sink: TelemetrySink;
  readonly #trainingRunId: string;
  readonly #clock: Clock;
  #global: EventInput[] = [];
  #packetsEmitted = 0;

  constructor(options: ExecutorTelemetryOptions) {
    this.#sink = options.sink;
    this.#trainingRunId = options.trainingRunId;
    this.#clock = options.clock;
  }

  /** Packets emitted so far. */
  get packetsEmitted(): number {
    return this.#packetsEmitted;
  }

  /** Queues an event that belongs to no seed for the next global packet. */
  global(event: EventInput): void {
    this.#global.push(event);
  }

  /**
   * Emits this step's packets: one per live seed (then the seeds marked to retire are
   * retired) and the global one.
   */
  emitStep(state: ExecutorState, readings: GlobalReadings): void {
    for (const seed of state.live()) {
      const events: EventInput[] = [
        ...seed.events.splice(0),
        {
          description: SeedEvent.SEED_STAGE,
          attributes: { seed_id: seed.seedId, stage: stageName(seed.lifecycle.stage), alpha: seed.blend.alpha.toFixed(4) },
        },
      ];
      const health =
        seed.isolation.violations > 0 ? HealthStatus.UNHEALTHY : seed.progress.paused ? HealthStatus.DEGRADED : HealthStatus.HEALTHY;
      this.#emit(`kasmina-seed-${seed.seedId}-${state.step}`, events, seedMetrics(seed), {
        status: health,
        summary: stageName(seed.lifecycle.stage),
        indicators: { seed_id: seed.seedId, step_index: String(state.step) },
      });
      if (seed.fate.retire) state.retire(seed);
    }
    const events = this.#global;
    this.#global = [];
    this.#emit(`kasmina-global-${state.step}`, events, globalMetrics(state, readings), {
      status: readings.isolationViolations > 0 ? HealthStatus.DEGRADED : HealthStatus.HEALTHY,
      summary: `${state.seeds.size} seeds`,
      indicators: { seeds: String(state.seeds.size), step_index: String(state.step) },
    });
  }

  #emit(
    packetId: string,
    events: EventInput[],
    metrics: MetricInput[],
    health: { status: HealthStatus; summary: string; indicators: Record<string, string> },
  ): void {
    this.#sink.emit(
      buildTelemetryPacket({
        source: KASMINA_SOURCE,
        trainingRunId: this.#trainingRunId,
        packetId,
        clock: this.#clock,
        events,
        metrics,
        health,
      }),
    );
    this.#packetsEmitted += 1;
  }
}

/** Lifecycle settings the seed states report. */
export interface SeedStateSettings {
  readonly blendingSteps: number;
  readonly alphaTemperature: number;
}

/** The `SeedState` of `seed` for Tolaria's state packets. */
export function seedStateOf(seed: Seed, epoch: number, layerDepth: number, settings: SeedStateSettings): SeedState {
  return create(SeedStateSchema, {
    seedId: seed.seedId,
    siteId: seed.siteId,
    blueprintId: seed.blueprintId,
    stage: seed.lifecycle.stage,
    gradientNorm: Number.isFinite(seed.gradients.last) ? seed.gradients.last : 0,
    ageEpochs: Math.max(0, epoch - seed.germinatedEpoch),
    layerDepth,
    metrics: create(SeedMetricsSchema, {
      alpha: seed.blend.alpha,
      alphaSteps: seed.blend.steps,
      alphaTotalSteps: settings.blendingSteps,
      alphaTemperature: settings.alphaTemperature,
      blendAllowed: MEASURED_STAGES.has(seed.lifecycle.stage),
      isolationViolations: seed.isolation.violations,
      kernelLatencyMs: seed.kernel.latencyMs,
      parameterCount: BigInt(seed.kernel.slot?.parameterCount ?? 0),
      ...(seed.contribution.value === undefined ? {} : { counterfactualContribution: seed.contribution.value }),
    }),
  });
}

function seedMetrics(seed: Seed): MetricInput[] {
  const attributes = { seed_id: seed.seedId };
  const m = (name: string, value: number, unit: string): MetricInput => ({ name, value, unit, attributes });
  return [
    m(SeedMetric.SEED_STAGE, seed.lifecycle.stage, 'state'),
    m(SeedMetric.SEED_ALPHA, seed.blend.alpha, 'ratio'),
    m(SeedMetric.SEED_ALPHA_STEPS, seed.blend.steps, 'count'),
    m(SeedMetric.SEED_KERNEL_ATTACHED, seed.kernel.slot === undefined ? 0 : 1, 'flag'),
    m(SeedMetric.SEED_KERNEL_LATENCY_MS, seed.kernel.latencyMs, 'ms'),
    m(SeedMetric.SEED_ISOLATION_VIOLATIONS, seed.isolation.violations, 'count'),
    m(SeedMetric.SEED_ISOLATION_LEAK, seed.isolation.lastLeak, 'ratio'),
    m(SeedMetric.SEED_GRADIENT_NORM, Number.isFinite(seed.gradients.last) ? seed.gradients.last : -1, 'grad'),
    m(SeedMetric.SEED_PARAMETERS, seed.kernel.slot?.parameterCount ?? 0, 'count'),
    m(SeedMetric.SEED_STEPS_IN_STAGE, seed.progress.activeSteps, 'count'),
    ...(seed.contribution.value === undefined ? [] : [m(SeedMetric.SEED_CONTRIBUTION, seed.contribution.value, 'ratio')]),
  ];
}

function globalMetrics(state: ExecutorState, readings: GlobalReadings): MetricInput[] {
  const seeds = state.live();
  const active = seeds.filter((s) => ACTIVE_STAGES.has(s.lifecycle.stage)).length;
  const fossils = seeds.filter((s) => s.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED).length;
  const c = state.counters;
  return [
    { name: SeedMetric.SEEDS_ACTIVE, value: active, unit: 'count' },
    { name: SeedMetric.SEEDS_FOSSILIZED, value: fossils, unit: 'count' },
    { name: SeedMetric.SEEDS_CULLED_TOTAL, value: c.seedsCulled, unit: 'count' },
    { name: SeedMetric.ISOLATION_VIOLATIONS, value: readings.isolationViolations, unit: 'count' },
    { name: SeedMetric.ISOLATION_CHECKS, value: c.isolationChecks, unit: 'count' },
    { name: SeedMetric.GATE_FAILURES_TOTAL, value: c.gateFailures, unit: 'count' },
    { name: SeedMetric.ILLEGAL_TRANSITIONS_TOTAL, value: c.illegalTransitions, unit: 'count' },
    { name: SeedMetric.COMMANDS_APPLIED_TOTAL, value: c.commandsApplied, unit: 'count' },
    { name: SeedMetric.REGISTRY_ENTRIES, value: readings.registryEntries, unit: 'count' },
    ...readings.metrics,
  ];
}
