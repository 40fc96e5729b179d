import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type EsperError } from '../../src/core/errors.js';
import type { MetricInput } from '../../src/core/telemetry.js';
import {
  buildExtraMetrics,
  buildTrainingMetrics,
  MAX_EXTRA_METRICS,
  readTrainingMetrics,
  validateExtraMetrics,
  type TrainingMetricsInput,
} from '../../src/core/training-metrics.js';
import {
  MetricPointSchema,
  OptimizerFamily,
  SystemStatePacketSchema,
  TrainingMetricsSchema,
  type TrainingMetrics,
} from '../../src/leyline/index.js';

function typedError(fn: () => unknown): EsperError {
  try {
    fn();
  } catch (error) {
    if (isEsperError(error)) return error;
    throw error;
  }
  throw new Error('expected a typed error, nothing was thrown');
}

function packetWith(metrics: TrainingMetrics | undefined) {
  return create(SystemStatePacketSchema, { packetId: 'pkt-1', trainingRunId: 'run-1', metrics });
}

function extras(count: number): MetricInput[] {
  return Array.from({ length: count }, (_, i) => ({ name: `extra_${i}`, value: i, unit: 'count' }));
}

const INPUT: TrainingMetricsInput = {
  optimizerLr: 0.001,
  optimizerMomentum: 0.9,
  lossDelta: -0.05,
  lossEwma: 1.25,
  stepLatencyMs: 12.5,
  gpuUtilPercent: 85,
  cpuUtilPercent: 340,
  samplesPerS: 1024,
  hookLatencyMs: 0.75,
  optimizerFamily: OptimizerFamily.ADAMW,
  epochsTotal: 40,
  epochsPlanned: 60,
  gradientNorm: 3.5,
  extraMetrics: [
    { name: 'tolaria.graph.replay_ms', value: 1.5, unit: 'ms' },
    { name: 'tolaria.rollback.fast_hits_total', value: 3, unit: 'count', attributes: { tier: 'fast' } },
  ],
};

describe('buildTrainingMetrics', () => {
  it('builds the typed fields, zeroes the omitted ones and survives a round trip', () => {
    const metrics = buildTrainingMetrics(INPUT);

    expect(metrics.optimizerFamily).toBe(OptimizerFamily.ADAMW);
    expect(metrics.epochsTotal).toBe(40);
    expect(metrics.epochsPlanned).toBe(60);
    expect(metrics.stepLatencyMs).toBe(12.5);
    expect(metrics.optimizerLr).toBe(Math.fround(0.001));
    expect(metrics.gradVar).toBe(0);
    const decoded = fromBinary(TrainingMetricsSchema, toBinary(TrainingMetricsSchema, metrics));
    expect(equals(TrainingMetricsSchema, decoded, metrics)).toBe(true);
  });

  it('keeps extra metrics in the producer order, with units and attributes', () => {
    const metrics = buildTrainingMetrics(INPUT);

    expect(metrics.extraMetrics.map((m) => [m.name, m.value, m.unit])).toEqual([
      ['tolaria.graph.replay_ms', 1.5, 'ms'],
      ['tolaria.rollback.fast_hits_total', 3, 'count'],
    ]);
    expect(metrics.extraMetrics[1]?.attributes).toEqual({ tier: 'fast' });
  });

  it(`accepts exactly ${MAX_EXTRA_METRICS} extra metrics`, () => {
    expect(buildTrainingMetrics({ extraMetrics: extras(MAX_EXTRA_METRICS) }).extraMetrics).toHaveLength(8);
  });

  it('rejects a ninth extra metric with CONTRACT_BOUND_EXCEEDED', () => {
    const error = typedError(() => buildTrainingMetrics({ extraMetrics: extras(9) }));

    expect(error.code).toBe(ErrorCode.CONTRACT_BOUND_EXCEEDED);
    expect(error.details).toMatchObject({ field: 'metrics.extra_metrics', entries: 9, max: 8 });
  });

  const invalidCases: [string, TrainingMetricsInput, string][] = [
    ['a NaN hook latency', { hookLatencyMs: Number.NaN }, 'metrics.hook_latency_ms'],
    ['an infinite loss_ewma', { lossEwma: Infinity }, 'metrics.loss_ewma'],
    ['a negative step latency', { stepLatencyMs: -1 }, 'metrics.step_latency_ms'],
    ['a negative throughput', { samplesPerS: -5 }, 'metrics.samples_per_s'],
    ['GPU utilisation above 100 %', { gpuUtilPercent: 101 }, 'metrics.gpu_util_percent'],
    ['a value beyond the float32 range', { gradVar: 1e39 }, 'metrics.grad_var'],
    ['a fractional epochs_total', { epochsTotal: 2.5 }, 'metrics.epochs_total'],
    ['a negative epochs_planned', { epochsPlanned: -1 }, 'metrics.epochs_planned'],
    ['an undeclared optimizer family', { optimizerFamily: 77 as OptimizerFamily }, 'metrics.optimizer_family'],
    ['an extra metric without a name', { extraMetrics: [{ name: '', value: 1, unit: 'ms' }] }, 'metrics.extra_metrics[0].name'],
    ['an extra metric without a unit', { extraMetrics: [{ name: 'x', value: 1, unit: ' ' }] }, 'metrics.extra_metrics[0].unit'],
    ['a NaN extra metric', { extraMetrics: [{ name: 'x', value: Number.NaN, unit: 'ms' }] }, 'metrics.extra_metrics[0].value'],
    [
      'duplicate extra metric names',
      {
        extraMetrics: [
          { name: 'x', value: 1, unit: 'ms' },
          { name: 'x', value: 2, unit: 'ms' },
        ],
      },
      'metrics.extra_metrics[1].name',
    ],
    [
      'an extra metric that repeats a typed field',
      { extraMetrics: [{ name: 'hook_latency_ms', value: 1, unit: 'ms' }] },
      'metrics.extra_metrics[0].name',
    ],
  ];

  it.each(invalidCases)('rejects %s with INVALID_ARGUMENT naming the field', (_name, input, field) => {
    const error = typedError(() => buildTrainingMetrics(input));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe(field);
  });
});

describe('readTrainingMetrics', () => {
  it('returns the validated metrics the producer built, after the wire', () => {
    const packet = fromBinary(SystemStatePacketSchema, toBinary(SystemStatePacketSchema, packetWith(buildTrainingMetrics(INPUT))));
    const view = readTrainingMetrics(packet);

    expect(view.stepLatencyMs).toBe(12.5);
    expect(view.cpuUtilPercent).toBe(340);
    expect(view.optimizerFamily).toBe(OptimizerFamily.ADAMW);
    expect(view.epochsTotal).toBe(40);
    expect(view.inputWaitMs).toBe(0);
    expect(view.extraMetrics).toMatchObject([
      { name: 'tolaria.graph.replay_ms', value: 1.5, unit: 'ms', attributes: {} },
      {
        name: 'tolaria.rollback.fast_hits_total',
        value: 3,
        unit: 'count',
        attributes: { tier: 'fast' },
      },
    ]);
  });

  it('rejects a packet without metrics with CONTRACT_FIELD_MISSING', () => {
    const error = typedError(() => readTrainingMetrics(packetWith(undefined)));

    expect(error.code).toBe(ErrorCode.CONTRACT_FIELD_MISSING);
    expect(error.details).toMatchObject({ field: 'metrics', packetId: 'pkt-1' });
  });

  it('rejects a received list of more than 8 extra metrics with CONTRACT_BOUND_EXCEEDED', () => {
    const metrics = create(TrainingMetricsSchema, {
      extraMetrics: extras(9).map(({ name, value, unit }) => create(MetricPointSchema, { name, value, unit })),
    });
    const error = typedError(() => readTrainingMetrics(packetWith(metrics)));

    expect(error.code).toBe(ErrorCode.CONTRACT_BOUND_EXCEEDED);
    expect(error.details['field']).toBe('metrics.extra_metrics');
  });

  it('rejects a received extra metric without a unit with CONTRACT_FIELD_MISSING', () => {
    const metrics = create(TrainingMetricsSchema, {
      extraMetrics: [create(MetricPointSchema, { name: 'x', value: 1 })],
    });
    const error = typedError(() => readTrainingMetrics(packetWith(metrics)));

    expect(error.code).toBe(ErrorCode.CONTRACT_FIELD_MISSING);
    expect(error.details['field']).toBe('metrics.extra_metrics[0].unit');
  });

  it('rejects a received non-finite typed field', () => {
    const metrics = create(TrainingMetricsSchema, { tamiyoLatencyMs: Number.NaN });
    const error = typedError(() => readTrainingMetrics(packetWith(metrics)));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe('metrics.tamiyo_latency_ms');
  });
});

describe('extra metrics of a FieldReport', () => {
  it('builds a bounded list in order', () => {
    const points = buildExtraMetrics(extras(8), 'field_report.extra_metrics');

    expect(points.map((p) => p.name)).toEqual(extras(8).map((m) => m.name));
    expect(() => validateExtraMetrics(points, 'field_report.extra_metrics')).not.toThrow();
  });

  it('lets a FieldReport use names that are typed TrainingMetrics fields', () => {
    expect(() => buildExtraMetrics([{ name: 'loss_delta', value: -0.05, unit: 'loss' }], 'field_report.extra_metrics')).not.toThrow();
  });

  it('refuses to build a ninth entry', () => {
    const error = typedError(() => buildExtraMetrics(extras(9), 'field_report.extra_metrics'));

    expect(error.code).toBe(ErrorCode.CONTRACT_BOUND_EXCEEDED);
    expect(error.details['field']).toBe('field_report.extra_metrics');
  });

  it('rejects a received list of 9 entries', () => {
    const points = extras(9).map(({ name, value, unit }) => create(MetricPointSchema, { name, value, unit }));
    const error = typedError(() => validateExtraMetrics(points, 'field_report.extra_metrics'));

    expect(error.code).toBe(ErrorCode.CONTRACT_BOUND_EXCEEDED);
    expect(error.details).toMatchObject({ entries: 9, max: 8 });
  });

  it('rejects a received entry without a name with CONTRACT_FIELD_MISSING', () => {
    const points = [create(MetricPointSchema, { name: '', value: 1, unit: 'ms' })];
    const error = typedError(() => validateExtraMetrics(points, 'field_report.extra_metrics'));

    expect(error.code).toBe(ErrorCode.CONTRACT_FIELD_MISSING);
    expect(error.details['field']).toBe('field_report.extra_metrics[0].name');
  });

  it('rejects received duplicate names', () => {
    const points = [
      create(MetricPointSchema, { name: 'a', value: 1, unit: 'ms' }),
      create(MetricPointSchema, { name: 'a', value: 2, unit: 'ms' }),
    ];
    const error = typedError(() => validateExtraMetrics(points, 'field_report.extra_metrics'));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe('field_report.extra_metrics[1].name');
  });
});
