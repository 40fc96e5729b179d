/** The trainer's telemetry packets (`trainer-telemetry.ts`). */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { FakeClock, MemoryTelemetrySink } from '../../src/core/index.js';
import { HealthStatus, SeedLifecycleStage, SeedStateSchema, TelemetryLevel } from '../../src/leyline/index.js';
import { TolariaMetric } from '../../src/tolaria/names.js';
import { EpochAccumulator } from '../../src/tolaria/trainer-stats.js';
import { epochMetrics, healthOf, metricOf, TrainerTelemetry } from '../../src/tolaria/trainer-telemetry.js';

function telemetry(): { sink: MemoryTelemetrySink; telemetry: TrainerTelemetry } {
  const sink = new MemoryTelemetrySink();
  const stepMetrics = () => [metricOf(TolariaMetric.STEPS_TOTAL, 7)];
  return { sink, telemetry: new TrainerTelemetry({ sink, trainingRunId: 'run-t', clock: new FakeClock(), stepMetrics }) };
}

describe('TrainerTelemetry', () => {
  it('sends a step packet only when events wait, with the step counters and the health of its events', () => {
    const { sink, telemetry: t } = telemetry();
    t.flush();
    expect(sink.packets).toHaveLength(0);
    t.event('tolaria.opt.rebuilt', TelemetryLevel.INFO, { step: 7 });
    t.event('tolaria.non_finite_loss', TelemetryLevel.ERROR, { step: 7 });
    t.flush();
    t.flush();
    expect(sink.packets).toHaveLength(1);
    const [packet] = sink.packets;
    expect(packet?.trainingRunId).toBe('run-t');
    expect(packet?.metrics.map((m) => [m.name, m.value])).toEqual([['tolaria.steps.total', 7]]);
    expect(packet?.events.map((e) => e.description)).toEqual(['tolaria.opt.rebuilt', 'tolaria.non_finite_loss']);
    expect(packet?.systemHealth).toMatchObject({ status: HealthStatus.UNHEALTHY, summary: 'tolaria.non_finite_loss' });
  });

  it('marks an epoch packet CRITICAL when halted, DEGRADED with a failed epoch’s reason, else by its events', () => {
    const { sink, telemetry: t } = telemetry();
    t.emitEpoch(0, [], { failureReason: '', halted: false });
    t.event('tolaria.emergency.halt', TelemetryLevel.CRITICAL, {});
    t.emitEpoch(1, [], { failureReason: 'non_finite_loss', halted: true });
    t.emitEpoch(2, [], { failureReason: 'hook_budget', halted: false });
    expect(sink.packets.map((p) => [p.systemHealth?.status, p.systemHealth?.summary, p.systemHealth?.indicators['epoch']])).toEqual([
      [HealthStatus.HEALTHY, 'stable', '0'],
      [HealthStatus.CRITICAL, 'halted', '1'],
      [HealthStatus.DEGRADED, 'hook_budget', '2'],
    ]);
    expect(sink.packets[1]?.events.map((e) => e.description)).toEqual(['tolaria.emergency.halt']);
  });

  it('judges health by the worst event, summarised by the first at WARNING or above', () => {
    expect(healthOf([{ description: 'a', level: TelemetryLevel.INFO }])).toEqual({ status: HealthStatus.HEALTHY, summary: 'stable' });
    expect(
      healthOf([
        { description: 'w', level: TelemetryLevel.WARNING },
        { description: 'c', level: TelemetryLevel.CRITICAL },
      ]),
    ).toEqual({ status: HealthStatus.CRITICAL, summary: 'w' });
  });
});

describe('epochMetrics', () => {
  it('reports the epoch with every part’s metrics and per-seed attribution with stage and mask fraction', () => {
    const acc = new EpochAccumulator();
    acc.addStep({ loss: 0.5, batchSize: 10, correct: 8, gradNorm: 2, trainMs: 20 });
    acc.addSeed('hidden1', 0.4, 0.2, 30);
    acc.addSeed('hidden1', 0.6, 0.4, 30);
    const seed = create(SeedStateSchema, { seedId: 'seed-1', siteId: 'hidden1', stage: SeedLifecycleStage.SEED_STAGE_BLENDING });
    const metrics = epochMetrics({
      report: {
        epoch: 0,
        globalStep: 1,
        trainLoss: 0.5,
        trainAccuracy: 0.8,
        validationLoss: 0.6,
        validationAccuracy: 0.7,
        durationMs: 30,
        failureReason: '',
      },
      accumulator: acc,
      validationMs: 4,
      seedStates: [seed],
      breakerState: 1,
      conservative: true,
      counters: {
        epochsTotal: 1,
        epochsFailed: 0,
        failedEpochStreak: 0,
        nonFiniteLossTotal: 0,
        lastValidationLoss: 0.6,
        lastValidationAccuracy: 0.7,
      },
      globalStep: 1,
      lrScheduleEnabled: true,
      learningRate: 0.01,
      optimizer: {
        rebuildsTotal: 1,
        rebuildFailuresTotal: 0,
        rebuildSkippedTotal: 0,
        lastRebuildLatencyMs: 2,
        pendingVariables: 0,
      } as never,
      control: [metricOf(TolariaMetric.TIMEOUT_TAMIYO_TOTAL, 3)],
      cpuUtilPercent: undefined,
      recovery: [metricOf(TolariaMetric.CHECKPOINT_WRITES_TOTAL, 1)],
      emergency: [],
      totalParams: 120,
    });
    const value = (name: string) => metrics.find((m) => m.name === name);
    expect(value(TolariaMetric.TRAINING_SAMPLES_PER_S.name)?.value).toBe(500);
    expect(value(TolariaMetric.MODE_CONSERVATIVE.name)?.value).toBe(1);
    expect(value(TolariaMetric.TIMEOUT_TAMIYO_TOTAL.name)?.value).toBe(3);
    expect(value(TolariaMetric.CHECKPOINT_WRITES_TOTAL.name)?.value).toBe(1);
    expect(value(TolariaMetric.CPU_UTIL_PERCENT.name)).toBeUndefined();
    expect(value(TolariaMetric.SEED_GRAD_NORM.name)).toMatchObject({
      value: 0.5,
      attributes: { site_id: 'hidden1', seed_id: 'seed-1', stage: SeedLifecycleStage.SEED_STAGE_BLENDING },
    });
    expect(value(TolariaMetric.SEED_GRAD_SHARE.name)?.value).toBeCloseTo(0.3, 12);
    expect(value(TolariaMetric.SEED_MASK_FRACTION.name)?.value).toBe(0.25);
    expect(metrics.every((m) => m.unit.length > 0)).toBe(true);
  });
});
