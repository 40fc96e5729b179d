import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import {
  COMMAND_PAYLOAD_CASES,
  DependencyGuard,
  DependencyGuardEvent,
  DependencyGuardMetric,
  DependencyViolationError,
  validateCommandDependencies,
} from '../../src/core/dependency-guard.js';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { MemoryTelemetrySink, type TelemetrySink } from '../../src/core/telemetry.js';
import {
  AdaptationCommandSchema,
  CommandCircuitBreakerSchema,
  CommandEmergencySchema,
  CommandOptimizerAdjustmentSchema,
  CommandSeedOperationSchema,
  CommandType,
  HealthStatus,
  MessagePriority,
  RollbackRequestSchema,
  SeedOperation,
  TelemetryLevel,
  type AdaptationCommand,
  type TelemetryPacket,
} from '../../src/leyline/index.js';

const WALL_MS = Date.UTC(2026, 2, 1, 12, 0, 0);

function setup(trainingRunId?: string) {
  const sink = new MemoryTelemetrySink();
  const clock = new FakeClock({ wallMs: WALL_MS });
  const guard = new DependencyGuard({ subsystem: 'kasmina', sink, clock, trainingRunId });
  return { sink, guard };
}

/** Runs `fn` and returns the DependencyViolationError it throws. */
function violation(fn: () => unknown): DependencyViolationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DependencyViolationError) return error;
    throw error;
  }
  throw new Error('expected a DependencyViolationError, nothing was thrown');
}

/** The one packet the sink holds, checked to be a well-formed CRITICAL violation packet. */
function onlyViolationPacket(sink: MemoryTelemetrySink): TelemetryPacket {
  expect(sink.packets).toHaveLength(1);
  const packet = sink.packets[0]!;
  expect(packet.priority).toBe(MessagePriority.CRITICAL);
  expect(packet.level).toBe(TelemetryLevel.CRITICAL);
  expect(packet.sourceSubsystem).toBe('kasmina');
  expect(packet.events).toHaveLength(1);
  expect(packet.events[0]?.description).toBe(DependencyGuardEvent.VIOLATION);
  expect(packet.events[0]?.level).toBe(TelemetryLevel.CRITICAL);
  return packet;
}

describe('DependencyGuard', () => {
  it('returns a present id unchanged and emits nothing', () => {
    const { sink, guard } = setup();

    expect(guard.requireId('run-7', 'training_run_id')).toBe('run-7');
    expect(sink.packets).toHaveLength(0);
    expect(guard.snapshot().violationsTotal).toBe(0);
  });

  it('throws a typed violation for a missing id and emits one CRITICAL packet', () => {
    const { sink, guard } = setup('run-7');

    const error = violation(() => guard.requireId('', 'training_run_id', { command_id: 'cmd-1' }));

    expect(isEsperError(error, ErrorCode.DEPENDENCY_VIOLATION)).toBe(true);
    expect(error.subsystem).toBe('kasmina');
    expect(error.dependencyType).toBe('training_run_id');
    expect(error.identifier).toBeUndefined();
    expect(error.reason).toBe('missing training_run_id');
    expect(error.details).toEqual({ command_id: 'cmd-1' });
    expect(error.message).toContain('missing training_run_id');

    const packet = onlyViolationPacket(sink);
    expect(packet.trainingRunId).toBe('run-7');
    expect(timestampMs(packet.timestamp!)).toBe(WALL_MS);
    expect(packet.systemHealth?.status).toBe(HealthStatus.DEGRADED);
    expect(packet.events[0]?.attributes).toEqual({
      subsystem: 'kasmina',
      artifact_type: 'training_run_id',
      artifact_id: '',
      reason: 'missing training_run_id',
      command_id: 'cmd-1',
    });
    expect(packet.metrics).toHaveLength(1);
    expect(packet.metrics[0]).toMatchObject({
      name: DependencyGuardMetric.VIOLATIONS_TOTAL,
      value: 1,
      unit: 'count',
      attributes: { subsystem: 'kasmina', artifact_type: 'training_run_id' },
    });
  });

  it('treats undefined, null and whitespace-only ids as violations', () => {
    const { sink, guard } = setup();

    expect(violation(() => guard.requireId(undefined, 'seed_id')).reason).toBe('missing seed_id');
    expect(violation(() => guard.requireId(null, 'seed_id')).reason).toBe('missing seed_id');
    expect(violation(() => guard.requireId('  ', 'seed_id')).reason).toBe('blank seed_id');
    expect(sink.packets).toHaveLength(3);
  });

  it('returns a present value from requirePresent and rejects null and undefined', () => {
    const { sink, guard } = setup();
    const kernel = { id: 'k-1' };

    expect(guard.requirePresent(kernel, { dependencyType: 'kernel', identifier: 'k-1' })).toBe(kernel);
    expect(guard.requirePresent(0, { dependencyType: 'count' })).toBe(0);
    const error = violation(() =>
      guard.requirePresent(null, {
        dependencyType: 'kernel',
        identifier: 'k-1',
        reason: 'kernel k-1 is not in the cache',
      }),
    );

    expect(error.identifier).toBe('k-1');
    expect(error.reason).toBe('kernel k-1 is not in the cache');
    expect(onlyViolationPacket(sink).events[0]?.attributes).toMatchObject({
      artifact_type: 'kernel',
      artifact_id: 'k-1',
      reason: 'kernel k-1 is not in the cache',
    });
  });

  it('derives a reason when requirePresent is given none', () => {
    const { guard } = setup();

    expect(violation(() => guard.requirePresent(undefined, { dependencyType: 'blueprint', identifier: 'bp-1' })).reason).toBe(
      'missing blueprint bp-1',
    );
  });

  it('returns a registry entry and reports a missing one as "missing {type} {id}"', () => {
    const { sink, guard } = setup();
    const registry = new Map([['bp-1', { name: 'conv' }]]);
    const lookup = (id: string) => registry.get(id);

    expect(guard.requireEntry('bp-1', lookup, 'blueprint')).toEqual({ name: 'conv' });
    const error = violation(() => guard.requireEntry('bp-2', lookup, 'blueprint'));

    expect(error.reason).toBe('missing blueprint bp-2');
    expect(error.identifier).toBe('bp-2');
    expect(onlyViolationPacket(sink).events[0]?.attributes).toMatchObject({
      artifact_type: 'blueprint',
      artifact_id: 'bp-2',
    });
  });

  it('refuses a blank registry identifier without calling the lookup', () => {
    const { guard } = setup();
    let calls = 0;

    const error = violation(() =>
      guard.requireEntry(
        '',
        () => {
          calls += 1;
          return 'x';
        },
        'blueprint',
      ),
    );

    expect(error.reason).toBe('missing blueprint');
    expect(calls).toBe(0);
  });

  it('lets a failing lookup propagate unchanged, without reporting a violation', () => {
    const { sink, guard } = setup();
    const failure = new Error('urza unreachable');

    expect(() =>
      guard.requireEntry(
        'bp-1',
        () => {
          throw failure;
        },
        'blueprint',
      ),
    ).toThrow(failure);
    expect(sink.packets).toHaveLength(0);
  });

  it('allows the primary path and refuses a fallback', () => {
    const { sink, guard } = setup();

    guard.forbidFallback(false, { dependencyType: 'kernel', identifier: 'bp-1' });
    expect(sink.packets).toHaveLength(0);

    const error = violation(() => guard.forbidFallback(true, { dependencyType: 'kernel', identifier: 'bp-1' }));
    expect(error.reason).toBe('fallback kernel for bp-1 is not allowed');
    expect(onlyViolationPacket(sink).events[0]?.attributes).toMatchObject({
      artifact_type: 'kernel',
      artifact_id: 'bp-1',
    });
  });

  it('reports an unmet configuration condition under dependency type "config"', () => {
    const { sink, guard } = setup();

    guard.requireConfig(true, { key: 'ESPER_REDIS_URL', reason: 'unused' });
    const error = violation(() => guard.requireConfig(false, { key: 'ESPER_REDIS_URL', reason: 'ESPER_REDIS_URL is not set' }));

    expect(error.dependencyType).toBe('config');
    expect(error.identifier).toBe('ESPER_REDIS_URL');
    expect(onlyViolationPacket(sink).events[0]?.attributes).toMatchObject({
      artifact_type: 'config',
      artifact_id: 'ESPER_REDIS_URL',
      reason: 'ESPER_REDIS_URL is not set',
    });
  });

  it('keeps the four named attributes when a detail uses the same key', () => {
    const { sink, guard } = setup();

    violation(() => guard.requireId('', 'seed_id', { subsystem: 'spoofed', note: 'kept' }));

    expect(onlyViolationPacket(sink).events[0]?.attributes).toMatchObject({
      subsystem: 'kasmina',
      note: 'kept',
    });
  });

  it('counts violations per dependency type, and the counter metric is cumulative per type', () => {
    const { sink, guard } = setup();

    violation(() => guard.requireId('', 'seed_id'));
    violation(() => guard.requireId('', 'blueprint_id'));
    violation(() => guard.requireId('', 'seed_id'));

    expect(guard.snapshot()).toEqual({
      subsystem: 'kasmina',
      violationsTotal: 3,
      byDependencyType: [
        { dependencyType: 'seed_id', count: 2 },
        { dependencyType: 'blueprint_id', count: 1 },
      ],
      telemetryFailures: 0,
    });
    expect(sink.packets.map((p) => p.metrics[0]?.value)).toEqual([1, 1, 2]);
  });

  it('still throws the violation when the sink throws, and counts the telemetry failure', () => {
    const sink: TelemetrySink = {
      emit: () => {
        throw new Error('sink broken');
      },
    };
    const guard = new DependencyGuard({ subsystem: 'tolaria', sink });

    const error = violation(() => guard.requireId('', 'training_run_id'));

    expect(error.subsystem).toBe('tolaria');
    expect(guard.snapshot()).toMatchObject({ violationsTotal: 1, telemetryFailures: 1 });
  });

  it('refuses to be built without a subsystem or a sink', () => {
    const sink = new MemoryTelemetrySink();

    expect(() => new DependencyGuard({ subsystem: ' ', sink })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => new DependencyGuard({ subsystem: 'kasmina', sink: undefined as unknown as TelemetrySink })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});

describe('validateCommandDependencies', () => {
  const base = { commandId: 'cmd-1', trainingRunId: 'run-1' };
  const germinate = create(CommandSeedOperationSchema, {
    operation: SeedOperation.SEED_OP_GERMINATE,
    blueprintId: 'bp-conv',
    siteId: 'site-1',
  });

  const validCommands: [string, AdaptationCommand][] = [
    [
      'a germinate seed command',
      create(AdaptationCommandSchema, {
        ...base,
        commandType: CommandType.COMMAND_SEED,
        targetSeedId: 'seed-1',
        payload: { case: 'seedOperation', value: germinate },
      }),
    ],
    [
      'a cull seed command without a blueprint',
      create(AdaptationCommandSchema, {
        ...base,
        commandType: CommandType.COMMAND_SEED,
        targetSeedId: 'seed-1',
        payload: {
          case: 'seedOperation',
          value: create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_CULL }),
        },
      }),
    ],
    [
      'an optimizer command',
      create(AdaptationCommandSchema, {
        ...base,
        commandType: CommandType.COMMAND_OPTIMIZER,
        payload: {
          case: 'optimizerAdjustment',
          value: create(CommandOptimizerAdjustmentSchema, { learningRate: 0.01 }),
        },
      }),
    ],
    [
      'a rollback command',
      create(AdaptationCommandSchema, {
        ...base,
        commandType: CommandType.COMMAND_ROLLBACK,
        payload: { case: 'rollback', value: create(RollbackRequestSchema, { reason: 'loss spike' }) },
      }),
    ],
    [
      'a circuit breaker command',
      create(AdaptationCommandSchema, {
        ...base,
        commandType: CommandType.COMMAND_CIRCUIT_BREAKER,
        payload: { case: 'circuitBreaker', value: create(CommandCircuitBreakerSchema, {}) },
      }),
    ],
    [
      'an emergency command',
      create(AdaptationCommandSchema, {
        ...base,
        commandType: CommandType.COMMAND_EMERGENCY,
        payload: { case: 'emergency', value: create(CommandEmergencySchema, { reason: 'halt' }) },
      }),
    ],
    ['a pause command', create(AdaptationCommandSchema, { ...base, commandType: CommandType.COMMAND_PAUSE })],
    ['a structural pruning command', create(AdaptationCommandSchema, { ...base, commandType: CommandType.COMMAND_STRUCTURAL_PRUNING })],
  ];

  it.each(validCommands)('accepts %s without telemetry', (_name, command) => {
    const { sink, guard } = setup();

    validateCommandDependencies(guard, command);

    expect(sink.packets).toHaveLength(0);
  });

  it('covers every known command type in its payload table', () => {
    const types = Object.values(CommandType).filter((v): v is CommandType => typeof v === 'number' && v !== CommandType.COMMAND_UNKNOWN);
    expect(Object.keys(COMMAND_PAYLOAD_CASES).map(Number).sort()).toEqual(types.sort());
  });

  const seed = (fields: MessageInitShape<typeof AdaptationCommandSchema>) =>
    create(AdaptationCommandSchema, {
      ...base,
      commandType: CommandType.COMMAND_SEED,
      targetSeedId: 'seed-1',
      payload: { case: 'seedOperation', value: germinate },
      ...fields,
    });

  const violations: [string, AdaptationCommand, string, string][] = [
    ['a missing command_id', seed({ commandId: '' }), 'command_id', 'missing command_id'],
    ['a missing training_run_id', seed({ trainingRunId: '' }), 'training_run_id', 'missing training_run_id'],
    ['a blank training_run_id', seed({ trainingRunId: ' ' }), 'training_run_id', 'blank training_run_id'],
    [
      'an UNKNOWN command type',
      seed({ commandType: CommandType.COMMAND_UNKNOWN, payload: { case: undefined } }),
      'command_type',
      'command cmd-1 has COMMAND_UNKNOWN command_type',
    ],
    ['an undeclared command type', seed({ commandType: 99 as CommandType }), 'command_type', 'command cmd-1 has unknown (99) command_type'],
    ['a seed command without target_seed_id', seed({ targetSeedId: '' }), 'seed_id', 'missing seed_id'],
    [
      'a seed command without payload',
      seed({ payload: { case: undefined } }),
      'payload',
      'COMMAND_SEED requires payload seed_operation, got none',
    ],
    [
      'an optimizer command carrying a seed operation',
      seed({ commandType: CommandType.COMMAND_OPTIMIZER }),
      'payload',
      'COMMAND_OPTIMIZER requires payload optimizer_adjustment, got seed_operation',
    ],
    [
      'a pause command carrying a payload',
      seed({ commandType: CommandType.COMMAND_PAUSE }),
      'payload',
      'COMMAND_PAUSE requires no payload, got seed_operation',
    ],
    [
      'a seed operation of SEED_OP_UNKNOWN',
      seed({
        payload: { case: 'seedOperation', value: create(CommandSeedOperationSchema, {}) },
      }),
      'payload',
      'COMMAND_SEED has seed_operation.operation SEED_OP_UNKNOWN',
    ],
    [
      'a germinate without blueprint_id',
      seed({
        payload: {
          case: 'seedOperation',
          value: create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_GERMINATE }),
        },
      }),
      'blueprint_id',
      'missing blueprint_id',
    ],
    [
      'a germinate without site_id',
      seed({
        payload: {
          case: 'seedOperation',
          value: create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'bp-conv' }),
        },
      }),
      'site_id',
      'missing site_id',
    ],
  ];

  it.each(violations)('rejects %s with one CRITICAL violation', (_name, command, dependencyType, reason) => {
    const { sink, guard } = setup();

    const error = violation(() => validateCommandDependencies(guard, command));

    expect(error.dependencyType).toBe(dependencyType);
    expect(error.reason).toBe(reason);
    expect(onlyViolationPacket(sink).events[0]?.attributes).toMatchObject({
      subsystem: 'kasmina',
      artifact_type: dependencyType,
      reason,
    });
  });

  it('names the command and seed in the details of a germinate violation', () => {
    const { guard } = setup();
    const command = seed({
      payload: {
        case: 'seedOperation',
        value: create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_GERMINATE }),
      },
    });

    const error = violation(() => validateCommandDependencies(guard, command));

    expect(error.details).toEqual({ command_id: 'cmd-1', seed_id: 'seed-1' });
  });
});
