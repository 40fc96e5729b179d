import { describe, expect, it } from 'vitest';
import { isEsperError } from '../../src/core/index.js';
import { CurveName, RunBoard } from '../../src/nissa/index.js';
import { BoundedCurve } from '../../src/nissa/view/bounded-curve.js';
import {
  ack,
  announcement,
  CommandAckStatus,
  fieldReport,
  FieldReportOutcome,
  germinate,
  RiskReason,
  RunPhase,
  SeedLifecycleStage,
  statePacket,
  syntheticRun,
  telemetry,
  TelemetryLevel,
  type Delivery,
} from './view-fixtures.js';

function feed(board: RunBoard, deliveries: readonly Delivery[], atMs = 1_000): void {
  deliveries.forEach((d, i) => board.ingest(d.type, d.message, atMs + i));
}

describe('BoundedCurve', () => {
  it('halves itself when full, keeping the first and latest points and evenly spread steps', () => {
    const curve = new BoundedCurve(100);
    for (let step = 1; step <= 1_000; step += 1) curve.push(step, step * 2, step);
    const points = curve.points();
    expect(points.length).toBeLessThanOrEqual(100);
    expect(points.length).toBeGreaterThanOrEqual(50);
    expect(points[0]).toEqual([1, 2]);
    expect(points.at(-1)?.[0]).toBeGreaterThan(990);
    const gaps = points.slice(1).map((p, i) => p[0] - (points[i]?.[0] ?? 0));
    expect(Math.max(...gaps) / Math.min(...gaps)).toBeLessThanOrEqual(4);
    expect(curve.decimated).toBe(1_000 - points.length);
  });

  it('sends only new points after a cursor, and the whole curve after a decimation', () => {
    const curve = new BoundedCurve(8);
    for (let step = 1; step <= 5; step += 1) curve.push(step, step, step);
    expect(curve.deltaSince(3)).toEqual({
      reset: false,
      points: [
        [4, 4],
        [5, 5],
      ],
    });
    expect(curve.deltaSince(5)).toBeUndefined();
    for (let step = 6; step <= 9; step += 1) curve.push(step, step, step);
    expect(curve.deltaSince(5)?.reset).toBe(true);
  });

  it('ignores redelivered earlier steps and replaces an equal step', () => {
    const curve = new BoundedCurve(8);
    curve.push(10, 1, 1);
    expect(curve.push(9, 5, 2)).toBe(false);
    expect(curve.push(10, 2, 3)).toBe(true);
    expect(curve.points()).toEqual([[10, 2]]);
    expect(curve.deltaSince(1)?.reset).toBe(true);
  });
});

describe('RunBoard', () => {
  it('builds a run from its messages: curves, host and seed, swimlane, command and ack', () => {
    const board = new RunBoard();
    feed(board, syntheticRun('run-a', 8, 10));
    const runs = board.runs();
    expect(runs.map((r) => r.runId)).toEqual(['run-a']);
    const summary = runs[0];
    expect(summary).toMatchObject({
      phase: 'ended',
      endReason: 'run_completed',
      hostId: 'mlp-2x64',
      hostFamily: 'mlp',
      runSeed: '42',
      epoch: 7,
      epochsPlanned: 10,
      globalStep: 80,
      commandsIssued: 1,
      commandsApplied: 1,
      commandsRefused: 0,
      seedsTotal: 1,
      seedsFossilized: 1,
    });
    const run = board.run('run-a');
    expect(run?.full).toBe(true);
    const accuracy = run?.curves[CurveName.VALIDATION_ACCURACY]?.points ?? [];
    expect(accuracy).toHaveLength(8);
    expect(accuracy.map((p) => p[1])).toEqual([...accuracy.map((p) => p[1])].sort((a, b) => a - b));
    expect(run?.curves[CurveName.STEP_LOSS]?.points).toHaveLength(80);
    const lane = run?.seeds[0];
    expect(lane?.intervals.map((i) => i.stage)).toEqual(['GERMINATED', 'TRAINING', 'BLENDING', 'SHADOWING', 'PROBATIONARY', 'FOSSILIZED']);
    // Each stage lasts one epoch of 10 steps (21..30), and ends where the next starts.
    expect(lane?.intervals[1]).toEqual({ stage: 'TRAINING', fromStep: 21, toStep: 31 });
    expect(lane?.contribution).toBeCloseTo(0.06);
    expect(lane?.siteId).toBe('block1');
    expect(run?.commands[0]).toMatchObject({
      commandType: 'SEED',
      operation: 'GERMINATE',
      seedId: 'seed-1',
      siteId: 'block1',
      riskReason: 'POLICY',
      status: 'APPLIED',
    });
  });

  it('answers undefined for a run it never saw, and ignores messages without a run id', () => {
    const board = new RunBoard();
    expect(board.run('nope')).toBeUndefined();
    expect(board.runDelta('nope', 0)).toBeUndefined();
    feed(board, [statePacket('', { step: 1, epoch: 0 })]);
    expect(board.runs()).toEqual([]);
    expect(board.stats().unroutedMessages).toBe(1);
  });

  it('creates a run on its first message of any kind (no announcement needed)', () => {
    const board = new RunBoard();
    feed(board, [ack('run-x', 'c1', CommandAckStatus.REJECTED, 5, 'nonce replayed')]);
    const run = board.run('run-x');
    expect(run?.commands[0]).toMatchObject({ commandId: 'c1', commandType: 'UNKNOWN', status: 'REJECTED', reason: 'nonce replayed' });
    expect(run?.summary?.commandsRefused).toBe(1);
    // The command arriving after its ack keeps the ack's status.
    feed(board, [germinate('run-x', 'c1', 'seed-9', RiskReason.LOSS_SPIKE)]);
    expect(board.run('run-x')?.commands[0]).toMatchObject({ commandType: 'SEED', status: 'REJECTED', riskReason: 'LOSS_SPIKE' });
  });

  it('keeps at most maxRuns runs, evicting ended runs first, and ignores late messages for evicted runs', () => {
    const board = new RunBoard({ maxRuns: 3 });
    feed(board, [statePacket('old-running', { step: 1, epoch: 0 })], 1_000);
    feed(board, [announcement('ended', RunPhase.ENDED, 5, 'run_completed')], 2_000);
    feed(board, [statePacket('r3', { step: 1, epoch: 0 })], 3_000);
    feed(board, [statePacket('r4', { step: 1, epoch: 0 })], 4_000);
    expect(board.runs().map((r) => r.runId)).toEqual(['r4', 'r3', 'old-running']);
    const cursor = board.seq;
    feed(board, [statePacket('r5', { step: 1, epoch: 0 })], 5_000);
    expect(board.runs().map((r) => r.runId)).toEqual(['r5', 'r4', 'r3']);
    feed(board, [statePacket('ended', { step: 6, epoch: 0 })], 6_000);
    expect(board.run('ended')).toBeUndefined();
    expect(board.stats()).toMatchObject({ runs: 3, runsEvicted: 2, lateMessagesIgnored: 1 });
    const fleet = board.fleetDelta(cursor);
    expect(fleet.full).toBe(false);
    expect(fleet.removed).toEqual(['old-running']);
    expect(fleet.runs.map((r) => r.runId)).toEqual(['r5']);
  });

  it('bounds the points per curve by downsampling, and counts what it dropped', () => {
    const board = new RunBoard({ maxPointsPerCurve: 50 });
    const deliveries: Delivery[] = [];
    for (let step = 1; step <= 2_000; step += 1) deliveries.push(statePacket('long', { step, epoch: 0, trainingLoss: 1 / step }));
    feed(board, deliveries);
    const points = board.run('long')?.curves[CurveName.STEP_LOSS]?.points ?? [];
    expect(points.length).toBeLessThanOrEqual(50);
    expect(points[0]?.[0]).toBe(1);
    expect(points.at(-1)?.[0]).toBeGreaterThan(1_900);
    expect(board.stats().pointsDecimated).toBe(2_000 - points.length);
  });

  it('bounds seeds per run (ended first), intervals per seed, commands and events', () => {
    const board = new RunBoard({ maxSeedsPerRun: 2, maxIntervalsPerSeed: 3, maxCommandsPerRun: 2, maxEventsPerRun: 3 });
    const stages = [
      SeedLifecycleStage.SEED_STAGE_GERMINATED,
      SeedLifecycleStage.SEED_STAGE_TRAINING,
      SeedLifecycleStage.SEED_STAGE_BLENDING,
      SeedLifecycleStage.SEED_STAGE_SHADOWING,
      SeedLifecycleStage.SEED_STAGE_CULLED,
    ];
    feed(
      board,
      stages.map((stage, i) => statePacket('b', { step: i + 1, epoch: 0, seeds: [{ seedId: 's1', stage }] })),
    );
    feed(board, [statePacket('b', { step: 6, epoch: 0, seeds: [{ seedId: 's2', stage: SeedLifecycleStage.SEED_STAGE_TRAINING }] })]);
    feed(board, [statePacket('b', { step: 7, epoch: 0, seeds: [{ seedId: 's3', stage: SeedLifecycleStage.SEED_STAGE_TRAINING }] })]);
    const run = board.run('b');
    expect(run?.seeds.map((s) => s.seedId).sort()).toEqual(['s2', 's3']);
    feed(
      board,
      ['c1', 'c2', 'c3'].map((id) => germinate('b', id, 's2')),
    );
    feed(
      board,
      [1, 2, 3, 4, 5].map((i) =>
        telemetry('b', 'tamiyo', [{ description: 'loss_spike', level: TelemetryLevel.WARNING, attributes: { n: String(i) } }]),
      ),
    );
    const after = board.run('b');
    expect(after?.commands.map((c) => c.commandId)).toEqual(['c2', 'c3']);
    expect(after?.events.map((e) => e.attributes.n)).toEqual(['3', '4', '5']);
    expect(board.stats()).toMatchObject({ seedsEvicted: 1, intervalsDropped: 2, commandsDropped: 1, eventsDropped: 2 });
  });

  it('records stage intervals, moving a boundary back to the exact step Kasmina reports', () => {
    const board = new RunBoard();
    feed(board, [
      statePacket('k', { step: 10, epoch: 0, seeds: [{ seedId: 's', stage: SeedLifecycleStage.SEED_STAGE_TRAINING }] }),
      statePacket('k', { step: 20, epoch: 0, seeds: [{ seedId: 's', stage: SeedLifecycleStage.SEED_STAGE_TRAINING }] }),
      statePacket('k', { step: 30, epoch: 0, seeds: [{ seedId: 's', stage: SeedLifecycleStage.SEED_STAGE_BLENDING, alpha: 0.2 }] }),
      telemetry('k', 'kasmina', [
        {
          description: 'stage_transition',
          attributes: { seed_id: 's', from: 'SEED_STAGE_TRAINING', to: 'SEED_STAGE_BLENDING', step: '24' },
        },
      ]),
      telemetry('k', 'kasmina', [{ description: 'contribution_measured', attributes: { seed_id: 's', contribution: '0.0300' } }]),
      telemetry('k', 'kasmina', [
        { description: 'seed_culled', level: TelemetryLevel.WARNING, attributes: { seed_id: 's', reason: 'gate_g2' } },
      ]),
    ]);
    const lane = board.run('k')?.seeds[0];
    expect(lane?.intervals).toEqual([
      { stage: 'TRAINING', fromStep: 10, toStep: 24 },
      { stage: 'BLENDING', fromStep: 24, toStep: 30 },
    ]);
    expect(lane?.alpha).toBeCloseTo(0.2);
    expect(lane?.contribution).toBeCloseTo(0.03);
    expect(lane?.fate).toEqual({ fate: 'CULLED', atStep: 30, reason: 'gate_g2' });
    expect(board.run('k')?.events.map((e) => e.description)).toEqual(['seed_culled']);
  });

  it('attaches field report outcomes to commands and shows Tamiyo risk events', () => {
    const board = new RunBoard();
    feed(board, [
      germinate('f', 'c1', 's1'),
      ack('f', 'c1', CommandAckStatus.APPLIED, 3),
      fieldReport('f', 'c1', 's1', FieldReportOutcome.REGRESSION),
      telemetry('f', 'tamiyo', [
        { description: 'decision_downgraded', attributes: { from: 'GERMINATE', to: 'WAIT', reason: 'LOSS_SPIKE' } },
      ]),
    ]);
    const run = board.run('f');
    expect(run?.commands[0]).toMatchObject({ status: 'APPLIED', outcome: 'REGRESSION', ackStep: 3 });
    expect(run?.events.map((e) => [e.source, e.level, e.description])).toEqual([
      ['tamiyo', 'WARNING', 'field_report'],
      ['tamiyo', 'INFO', 'decision_downgraded'],
    ]);
  });

  it('gives deltas since a cursor: only new points, changed seeds and new events', () => {
    const board = new RunBoard();
    const deliveries = syntheticRun('d', 4, 5);
    feed(board, deliveries.slice(0, 20));
    const cursor = board.seq;
    expect(board.runDelta('d', cursor)).toMatchObject({ full: false, seeds: [], commands: [], events: [], curves: {} });
    feed(board, deliveries.slice(20));
    const delta = board.runDelta('d', cursor);
    expect(delta?.full).toBe(false);
    expect(delta?.summary?.phase).toBe('ended');
    const accuracy = delta?.curves[CurveName.VALIDATION_ACCURACY];
    expect(accuracy?.reset).toBe(false);
    expect(accuracy?.points.length).toBeGreaterThan(0);
    expect(accuracy?.points.length).toBeLessThan(4);
    expect(delta?.seeds.map((s) => s.seedId)).toEqual(['seed-1']);
  });

  it('tracks alerts firing and resolving, and Weatherlight mode from calls and from its telemetry', () => {
    const board = new RunBoard();
    const changes: (string | undefined)[] = [];
    const unsubscribe = board.subscribe((c) => changes.push(c.runId));
    board.alert({ name: 'coverage_low', severity: 'warning', message: 'coverage 0.4 < 0.6', firedAtMs: 1 });
    board.alert({ name: 'bsds_critical', severity: 'critical', message: 'hazard', firedAtMs: 2, trainingRunId: 'r' });
    expect(board.alerts().map((a) => a.name)).toEqual(['bsds_critical', 'coverage_low']);
    board.alert({ name: 'coverage_low', severity: 'warning', message: 'coverage 0.4 < 0.6', firedAtMs: 1, resolvedAtMs: 3 });
    expect(board.alerts().map((a) => [a.name, a.resolvedAtMs])).toEqual([
      ['bsds_critical', undefined],
      ['coverage_low', 3],
    ]);
    expect(board.currentMode().mode).toBe('unknown');
    board.mode('operational', 10);
    feed(board, [telemetry('', 'weatherlight', [], { system_mode: 'degraded' })], 20);
    expect(board.currentMode()).toEqual({ mode: 'degraded', sinceMs: 20 });
    expect(board.runs()).toEqual([]);
    unsubscribe();
    board.mode('operational');
    expect(changes).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('rejects an invalid bound, naming the field', () => {
    let caught: unknown;
    try {
      new RunBoard({ maxRuns: 0 });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, 'ESPER_CORE_INVALID_ARGUMENT')).toBe(true);
    expect(String(caught)).toContain('maxRuns');
  });
});
