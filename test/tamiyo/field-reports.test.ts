/**
 * FieldReportBuilder: observation windows (close after N epochs, early at fossilize/cull,
 * on abort, on eviction), outcome classification, unique ids, delta filling, and
 * restore from JSON.
 */
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  CommandType,
  FieldReportOutcome,
  FieldReportSchema,
  RiskReason,
  SeedLifecycleStage,
  TelemetryLevel,
} from '../../src/leyline/index.js';
import { FieldReportBuilder, type EpochObservation, type FieldReportBuilderOptions } from '../../src/tamiyo/field-reports.js';
import { FieldReportEvent } from '../../src/tamiyo/names.js';
import { RUN_ID, seedCommand } from './fixtures/field-report-samples.js';
import { errorOf } from './fixtures/errors.js';

function setup(overrides: Partial<FieldReportBuilderOptions> = {}): {
  builder: FieldReportBuilder;
  clock: FakeClock;
  telemetry: MemoryTelemetrySink;
  options: FieldReportBuilderOptions;
} {
  const clock = new FakeClock();
  const telemetry = new MemoryTelemetrySink();
  const options: FieldReportBuilderOptions = { trainingRunId: RUN_ID, policyVersion: () => 'policy-v7', telemetry, clock, ...overrides };
  return { builder: new FieldReportBuilder(options), clock, telemetry, options };
}

function epoch(n: number, overrides: Partial<EpochObservation> = {}): EpochObservation {
  return {
    epoch: n,
    lossDelta: -0.5,
    validationAccuracy: 0.5 + n / 100,
    hookLatencyMs: 2,
    critical: false,
    seedStages: new Map(),
    contributions: new Map(),
    ...overrides,
  };
}

describe('FieldReportBuilder windows', () => {
  it('closes a window after windowEpochs epochs with the observed deltas, a final id and clock issued_at', () => {
    const { builder, clock, telemetry } = setup();
    builder.open(seedCommand('cmd-1'), {
      epoch: 4,
      seedId: 'seed-a',
      blueprintId: 'bp-mlp',
      reason: RiskReason.POLICY,
      decisionDelta: { tamiyoLatencyMs: 3.5, blueprintRisk: 0.125 },
    });
    expect(builder.observeEpoch(epoch(4, { lossDelta: -0.25, hookLatencyMs: 2 }))).toEqual([]);
    expect(builder.observeEpoch(epoch(5, { lossDelta: 0.5, hookLatencyMs: 0, contributions: new Map([['seed-a', 0.03125]]) }))).toEqual([]);
    clock.advance(1_000);
    const [report, ...rest] = builder.observeEpoch(epoch(6, { lossDelta: -0.5, hookLatencyMs: 4, validationAccuracy: 0.625 }));
    expect(rest).toEqual([]);
    expect(report).toBeDefined();
    expect(report!.reportId).toMatch(new RegExp(`^fr-${RUN_ID}-[0-9a-f-]{36}$`));
    expect(report!.commandId).toBe('cmd-1');
    expect(report!.trainingRunId).toBe(RUN_ID);
    expect(report!.seedId).toBe('seed-a');
    expect(report!.blueprintId).toBe('bp-mlp');
    expect(report!.tamiyoPolicyVersion).toBe('policy-v7');
    expect(report!.observationWindowEpochs).toBe(3);
    expect(timestampMs(report!.issuedAt!)).toBe(clock.wallMs());
    expect(report!.outcome).toBe(FieldReportOutcome.SUCCESS); // Σ = -0.25
    expect(report!.notes).toBe('window_completed');
    expect(report!.delta).toMatchObject({
      lossDelta: -0.25,
      hookLatencyMs: 3, // mean of the positive samples 2 and 4
      counterfactualContribution: 0.03125,
      tamiyoLatencyMs: 3.5,
      blueprintRisk: 0.125,
      // from the command's DecisionMetadata
      paramDelta: 128,
      valueEstimate: 0.5,
      riskScore: 0.25,
      riskIndex: 2,
      blendingIndex: 1,
      scheduleStart: 0.25,
      scheduleEnd: 0.75,
      selectedSeedScore: 0.875,
    });
    expect(report!.extraMetrics.map((m) => [m.name, m.value, m.unit])).toEqual([
      ['loss_delta_min', -0.5, 'loss'],
      ['loss_delta_max', 0.5, 'loss'],
      ['validation_accuracy_delta', Math.fround(0.625 - 0.54), 'ratio'],
    ]);
    // The report is a valid contract message and survives the wire unchanged.
    const bytes = encodeMessage(FieldReportSchema, report!);
    expect(decodeMessage(FieldReportSchema, bytes)).toEqual(report);
    expect(builder.stats()).toMatchObject({ open: 0, opened: 1, closed: 1 });
    const events = telemetry.events(FieldReportEvent.SYNTHESISED);
    expect(events).toHaveLength(1);
    expect(events[0]!.attributes).toMatchObject({
      report_id: report!.reportId,
      command_id: 'cmd-1',
      closure: 'completed',
      outcome: 'SUCCESS',
    });
  });

  it('opens one window per command and updates every open window each epoch', () => {
    const { builder } = setup({ windowEpochs: 2 });
    builder.open(seedCommand('c-a', 'seed-a'), { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(builder.observeEpoch(epoch(0))).toEqual([]);
    builder.open(seedCommand('c-b', 'seed-b'), { epoch: 1, seedId: 'seed-b', blueprintId: 'bp', reason: RiskReason.POLICY });
    const first = builder.observeEpoch(epoch(1));
    expect(first.map((r) => r.commandId)).toEqual(['c-a']);
    expect(builder.windows().map((w) => [w.commandId, w.epochsObserved])).toEqual([['c-b', 1]]);
    expect(builder.observeEpoch(epoch(2)).map((r) => r.commandId)).toEqual(['c-b']);
  });

  it('ignores epochs before the decision and epochs already seen, and closes once its last epoch has passed', () => {
    const { builder } = setup({ windowEpochs: 3 });
    builder.open(seedCommand('c'), { epoch: 10, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(builder.observeEpoch(epoch(9, { lossDelta: 5 }))).toEqual([]);
    expect(builder.observeEpoch(epoch(10, { lossDelta: -1 }))).toEqual([]);
    expect(builder.observeEpoch(epoch(10, { lossDelta: 5 }))).toEqual([]); // replayed epoch
    const [report] = builder.observeEpoch(epoch(14, { lossDelta: -1 })); // jumped past epoch 12
    expect(report!.observationWindowEpochs).toBe(2);
    expect(report!.delta!.lossDelta).toBe(-2);
    expect(report!.outcome).toBe(FieldReportOutcome.SUCCESS);
  });

  it('closes early when the seed fossilizes (SUCCESS) even with loss up', () => {
    const { builder } = setup({ windowEpochs: 5 });
    builder.open(seedCommand('c'), { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    const [report] = builder.observeEpoch(
      epoch(0, { lossDelta: 0.5, seedStages: new Map([['seed-a', SeedLifecycleStage.SEED_STAGE_FOSSILIZED]]) }),
    );
    expect(report!.outcome).toBe(FieldReportOutcome.SUCCESS);
    expect(report!.notes).toBe('seed_fossilized');
    expect(report!.observationWindowEpochs).toBe(1);
  });

  it('closes early when the seed is culled: REGRESSION with loss up, NEUTRAL otherwise', () => {
    const { builder } = setup({ windowEpochs: 5 });
    builder.open(seedCommand('up', 'seed-up'), { epoch: 0, seedId: 'seed-up', blueprintId: 'bp', reason: RiskReason.POLICY });
    builder.open(seedCommand('down', 'seed-down'), { epoch: 0, seedId: 'seed-down', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(builder.observeEpoch(epoch(0, { lossDelta: 0.25 }))).toEqual([]);
    const stages = new Map([
      ['seed-up', SeedLifecycleStage.SEED_STAGE_CULLED],
      ['seed-down', SeedLifecycleStage.SEED_STAGE_EMBARGOED], // already past CULLED
    ]);
    // Both windows saw Σ = 0.25 > 0; EMBARGOED (after CULLED) also counts as culled.
    const reports = builder.observeEpoch(epoch(1, { lossDelta: 0, seedStages: stages }));
    expect(reports.map((r) => [r.commandId, FieldReportOutcome[r.outcome], r.notes])).toEqual([
      ['up', 'REGRESSION', 'seed_culled'],
      ['down', 'REGRESSION', 'seed_culled'],
    ]);

    const second = setup({ windowEpochs: 5 }).builder;
    second.open(seedCommand('d2', 'seed-d'), { epoch: 0, seedId: 'seed-d', blueprintId: 'bp', reason: RiskReason.POLICY });
    const [neutral] = second.observeEpoch(
      epoch(0, { lossDelta: -0.25, seedStages: new Map([['seed-d', SeedLifecycleStage.SEED_STAGE_CULLED]]) }),
    );
    expect(neutral!.outcome).toBe(FieldReportOutcome.NEUTRAL);
  });

  it('closes as culled when a seed seen held comes back DORMANT (the cull path passed between two packets)', () => {
    const { builder } = setup({ windowEpochs: 5 });
    builder.open(seedCommand('cull', 'seed-c'), {
      epoch: 0,
      seedId: 'seed-c',
      blueprintId: 'bp',
      reason: RiskReason.UNSPECIFIED,
      seedStage: SeedLifecycleStage.SEED_STAGE_PROBATIONARY,
      contribution: -0.25,
    });
    const [report] = builder.observeEpoch(
      epoch(1, { lossDelta: -0.5, seedStages: new Map([['seed-c', SeedLifecycleStage.SEED_STAGE_DORMANT]]) }),
    );
    expect(report?.notes).toBe('seed_culled');
    expect(report?.outcome).toBe(FieldReportOutcome.NEUTRAL);
    // Kasmina measured it last in the decision's packet; a reset seed has no later measurement.
    expect(report?.delta?.counterfactualContribution).toBe(-0.25);

    // A seed first seen DORMANT was never held by this window: no cull.
    const fresh = setup({ windowEpochs: 2 }).builder;
    fresh.open(seedCommand('g', 'seed-g'), { epoch: 0, seedId: 'seed-g', blueprintId: 'bp', reason: RiskReason.UNSPECIFIED });
    expect(fresh.observeEpoch(epoch(0, { seedStages: new Map([['seed-g', SeedLifecycleStage.SEED_STAGE_DORMANT]]) }))).toEqual([]);
  });

  it('classifies critical events, harm reasons and rising loss as REGRESSION', () => {
    const { builder } = setup({ windowEpochs: 1 });
    builder.open(seedCommand('crit'), { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(builder.observeEpoch(epoch(0, { lossDelta: -1, critical: true }))[0]!.outcome).toBe(FieldReportOutcome.REGRESSION);
    builder.open(seedCommand('spike'), { epoch: 1, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.LOSS_SPIKE });
    expect(builder.observeEpoch(epoch(1, { lossDelta: -1 }))[0]!.outcome).toBe(FieldReportOutcome.REGRESSION);
    builder.open(seedCommand('up'), { epoch: 2, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(builder.observeEpoch(epoch(2, { lossDelta: 0.125 }))[0]!.outcome).toBe(FieldReportOutcome.REGRESSION);
  });

  it('classifies timeouts, pauses and flat loss as NEUTRAL', () => {
    const { builder } = setup({ windowEpochs: 1 });
    builder.open(seedCommand('timeout'), { epoch: 0, seedId: 'seed-a', blueprintId: '', reason: RiskReason.TIMEOUT_INFERENCE });
    expect(builder.observeEpoch(epoch(0, { lossDelta: -1 }))[0]!.outcome).toBe(FieldReportOutcome.NEUTRAL);
    builder.open(seedCommand('pause', '', { commandType: CommandType.COMMAND_PAUSE }), {
      epoch: 1,
      seedId: '',
      blueprintId: '',
      reason: RiskReason.CONSERVATIVE_MODE,
    });
    expect(builder.observeEpoch(epoch(1, { lossDelta: -1 }))[0]!.outcome).toBe(FieldReportOutcome.NEUTRAL);
    builder.open(seedCommand('flat'), { epoch: 2, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(builder.observeEpoch(epoch(2, { lossDelta: 0 }))[0]!.outcome).toBe(FieldReportOutcome.NEUTRAL);
  });

  it('abort closes one window or all of them as ABORTED; an unknown id closes none', () => {
    const { builder } = setup();
    for (const id of ['a', 'b', 'c'])
      builder.open(seedCommand(id), { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    const [one] = builder.abort('b', 'rollback');
    expect(one!.outcome).toBe(FieldReportOutcome.ABORTED);
    expect(one!.notes).toBe('aborted:rollback');
    expect(one!.observationWindowEpochs).toBe(0);
    expect(builder.abort('b', 'again')).toEqual([]);
    const rest = builder.abort('all', 'run_stopped');
    expect(rest.map((r) => [r.commandId, FieldReportOutcome[r.outcome]])).toEqual([
      ['a', 'ABORTED'],
      ['c', 'ABORTED'],
    ]);
    expect(builder.stats()).toMatchObject({ open: 0, aborted: 3 });
  });

  it('caps open windows: the oldest is closed early as evicted, with WARNING telemetry', () => {
    const { builder, telemetry } = setup({ maxOpenWindows: 2, windowEpochs: 3 });
    builder.open(seedCommand('w1'), { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    builder.observeEpoch(epoch(0, { lossDelta: -0.5 }));
    builder.open(seedCommand('w2'), { epoch: 1, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    const evicted = builder.open(seedCommand('w3'), { epoch: 1, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    expect(evicted.map((r) => [r.commandId, r.notes, FieldReportOutcome[r.outcome], r.observationWindowEpochs])).toEqual([
      ['w1', 'window_evicted', 'SUCCESS', 1],
    ]);
    expect(builder.windows().map((w) => w.commandId)).toEqual(['w2', 'w3']);
    const events = telemetry.events(FieldReportEvent.WINDOW_EVICTED);
    expect(events).toHaveLength(1);
    expect(events[0]!.level).toBe(TelemetryLevel.WARNING);
    expect(events[0]!.attributes).toMatchObject({ command_id: 'w1', report_id: evicted[0]!.reportId, max_open_windows: '2' });
    expect(builder.stats().evicted).toBe(1);
  });

  it('reaches every outcome', () => {
    const { builder } = setup({ windowEpochs: 1 });
    const seen = new Set<FieldReportOutcome>();
    const cases: [RiskReason, number][] = [
      [RiskReason.POLICY, -1],
      [RiskReason.POLICY, 1],
      [RiskReason.POLICY, 0],
    ];
    for (const [i, [reason, loss]] of cases.entries()) {
      builder.open(seedCommand(`c${i}`), { epoch: i, seedId: 'seed-a', blueprintId: 'bp', reason });
      for (const r of builder.observeEpoch(epoch(i, { lossDelta: loss }))) seen.add(r.outcome);
    }
    builder.open(seedCommand('abort'), { epoch: 9, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    for (const r of builder.abort('abort', 'operator_cull')) seen.add(r.outcome);
    expect([...seen].sort()).toEqual([
      FieldReportOutcome.SUCCESS,
      FieldReportOutcome.NEUTRAL,
      FieldReportOutcome.REGRESSION,
      FieldReportOutcome.ABORTED,
    ]);
  });

  it('gives 10,000 reports 10,000 distinct ids', () => {
    const { builder } = setup({ telemetry: { emit: () => undefined }, windowEpochs: 1 });
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      builder.open(seedCommand(`c${i}`), { epoch: i, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
      const reports = i % 2 === 0 ? builder.observeEpoch(epoch(i)) : builder.abort(`c${i}`, 'test');
      for (const r of reports) ids.add(r.reportId);
    }
    expect(ids.size).toBe(10_000);
  });
});

describe('FieldReportBuilder persistence', () => {
  it('restores open windows from JSON and finishes them as if never interrupted', () => {
    const a = setup({ windowEpochs: 3 });
    const b = setup({ windowEpochs: 3 });
    for (const { builder } of [a, b]) {
      builder.open(seedCommand('c1'), {
        epoch: 0,
        seedId: 'seed-a',
        blueprintId: 'bp',
        reason: RiskReason.POLICY,
        decisionDelta: { kasminaApplyMs: 1.25 },
      });
      builder.open(seedCommand('c2', 'seed-b'), { epoch: 1, seedId: 'seed-b', blueprintId: 'bp', reason: RiskReason.POLICY });
      builder.observeEpoch(epoch(0, { lossDelta: 0.25 }));
      builder.observeEpoch(epoch(1, { lossDelta: -1, contributions: new Map([['seed-b', 0.5]]) }));
    }
    const json = JSON.stringify(b.builder.toJSON());
    const restored = FieldReportBuilder.restore(JSON.parse(json), b.options);
    expect(restored.windows()).toEqual(b.builder.windows());

    const strip = (r: { reportId: string }): object => ({ ...r, reportId: '' });
    for (const n of [2, 3]) {
      const expected = a.builder.observeEpoch(epoch(n, { lossDelta: 0.125 })).map(strip);
      const actual = restored.observeEpoch(epoch(n, { lossDelta: 0.125 })).map(strip);
      expect(actual).toEqual(expected);
    }
    expect(restored.stats().open).toBe(0);
  });
});

describe('FieldReportBuilder input checks', () => {
  it('rejects a command without id, of another run, or whose window is open', () => {
    const { builder } = setup();
    const ctx = { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY };
    expect(
      isEsperError(
        errorOf(() => builder.open(seedCommand(''), ctx)),
        ErrorCode.TAMIYO_FIELD_REPORT_INVALID,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => builder.open(seedCommand('c', 'seed-a', { runId: 'run-x' }), ctx)),
        ErrorCode.TAMIYO_FIELD_REPORT_INVALID,
      ),
    ).toBe(true);
    builder.open(seedCommand('c'), ctx);
    expect(
      isEsperError(
        errorOf(() => builder.open(seedCommand('c'), ctx)),
        ErrorCode.TAMIYO_FIELD_REPORT_INVALID,
      ),
    ).toBe(true);
    expect(builder.stats().open).toBe(1);
  });

  it('rejects non-finite numbers and bad options with INVALID_ARGUMENT, changing nothing', () => {
    const { builder, options } = setup();
    builder.open(seedCommand('c'), { epoch: 0, seedId: 'seed-a', blueprintId: 'bp', reason: RiskReason.POLICY });
    const before = builder.windows();
    const bad = errorOf(() => builder.observeEpoch(epoch(0, { lossDelta: Number.NaN })));
    expect(isEsperError(bad, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((bad as { details: Record<string, unknown> }).details['field']).toBe('observation.lossDelta');
    expect(builder.windows()).toEqual(before);
    const badDelta = errorOf(() =>
      builder.open(seedCommand('d'), {
        epoch: 0,
        seedId: '',
        blueprintId: '',
        reason: RiskReason.POLICY,
        decisionDelta: { riskScore: Infinity },
      }),
    );
    expect((badDelta as { details: Record<string, unknown> }).details['field']).toBe('context.decisionDelta.riskScore');
    expect(
      isEsperError(
        errorOf(() => new FieldReportBuilder({ ...options, windowEpochs: 0 })),
        ErrorCode.INVALID_ARGUMENT,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => new FieldReportBuilder({ ...options, trainingRunId: '' })),
        ErrorCode.INVALID_ARGUMENT,
      ),
    ).toBe(true);
  });
});
