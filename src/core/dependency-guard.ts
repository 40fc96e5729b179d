/**
 * Strict dependency checks (spec 00 §2 "Strict dependencies"): a missing id, registry entry
 * or unallowed fallback emits one CRITICAL `dependency_guard.violation` packet and throws a
 * {@link DependencyViolationError}; the caller decides what the failure means for it.
 */
import {
  AdaptationCommandSchema,
  CommandType,
  CommandTypeSchema,
  HealthStatus,
  SeedOperation,
  SeedOperationSchema,
  TelemetryLevel,
  type AdaptationCommand,
} from '../leyline/index.js';
import { systemClock, type Clock } from './clock.js';
import { ErrorCode, EsperError } from './errors.js';
import { optionChecks } from './options.js';
import { buildTelemetryPacket, type TelemetrySink } from './telemetry.js';

/** Event emitted on every violation. CRITICAL whatever its level (spec 01 priority table). */
export const DependencyGuardEvent = {
  VIOLATION: 'dependency_guard.violation',
} as const;

/** Metrics emitted on every violation. */
export const DependencyGuardMetric = {
  /**
   * Violations so far, one series per `subsystem` + `artifact_type` attribute pair.
   * Counter, unit `count`; the value is the series' cumulative count.
   */
  VIOLATIONS_TOTAL: 'dependency_guard.violations_total',
} as const;

/** String context of a violation, for logs and telemetry attributes. Never secrets. */
export type ViolationDetails = Readonly<Record<string, string>>;

/** Everything that describes one violation. */
export interface DependencyViolationInit {
  /** Subsystem whose guard tripped ("kasmina", ...). */
  readonly subsystem: string;
  /** Kind of dependency: "training_run_id", "seed_id", "blueprint", "kernel", "config", ... */
  readonly dependencyType: string;
  /** Id of the missing or refused artifact, when there is one. */
  readonly identifier?: string | undefined;
  /** Actionable, human-readable reason. */
  readonly reason: string;
  /** @default {} */
  readonly details?: ViolationDetails | undefined;
  readonly cause?: unknown;
}

/** A required dependency was missing, a fallback was used, or configuration was invalid. */
export class DependencyViolationError extends EsperError {
  /** Subsystem whose guard tripped. */
  readonly subsystem: string;
  /** Kind of dependency (telemetry `artifact_type`). */
  readonly dependencyType: string;
  /** Id of the artifact (telemetry `artifact_id`), if any. */
  readonly identifier: string | undefined;
  /** Actionable reason (telemetry `reason`). */
  readonly reason: string;
  /** Caller-supplied context (the prototype's `.context`). */
  declare readonly details: ViolationDetails;

  constructor(init: DependencyViolationInit) {
    super(ErrorCode.DEPENDENCY_VIOLATION, `${init.subsystem}: ${init.reason}`, {
      details: Object.freeze({ ...init.details }),
      cause: init.cause,
    });
    this.subsystem = init.subsystem;
    this.dependencyType = init.dependencyType;
    this.identifier = init.identifier;
    this.reason = init.reason;
  }
}

/** What a failed check was about. */
export interface ViolationContext {
  /** Kind of dependency (telemetry `artifact_type`). */
  readonly dependencyType: string;
  /** Id of the artifact (telemetry `artifact_id`). */
  readonly identifier?: string | undefined;
  /** @default a reason derived from `dependencyType` and `identifier` */
  readonly reason?: string | undefined;
  /** @default {} */
  readonly details?: ViolationDetails | undefined;
}

/** Options of {@link DependencyGuard}. */
export interface DependencyGuardOptions {
  /** Subsystem the guard reports for; non-blank. */
  readonly subsystem: string;
  /** Where violation packets go. Required: a violation nobody sees is a silent fallback. */
  readonly sink: TelemetrySink;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Run stamped on violation packets. @default '' (process-wide) */
  readonly trainingRunId?: string;
}

/** Counts of one guard's violations. */
export interface DependencyGuardSnapshot {
  readonly subsystem: string;
  readonly violationsTotal: number;
  /** Per dependency type, in order of first violation. */
  readonly byDependencyType: readonly { readonly dependencyType: string; readonly count: number }[];
  /** Violation packets the sink threw on (the sink contract forbids it; counted, not fatal). */
  readonly telemetryFailures: number;
}

/**
 * Fail-fast dependency checks for one subsystem. Every failed check emits exactly one
 * CRITICAL telemetry packet (event `dependency_guard.violation` with attributes
 * `subsystem`, `artifact_type`, `artifact_id`, `reason`, plus the caller's details; metric
 * `dependency_guard.violations_total`) and throws {@link DependencyViolationError}.
 */
export class DependencyGuard {
  /** Subsystem the guard reports for (packet `source_subsystem`, attribute `subsystem`). */
  readonly subsystem: string;
  readonly #sink: TelemetrySink;
  readonly #clock: Clock;
  readonly #trainingRunId: string;
  readonly #countsByType = new Map<string, number>();
  #violationsTotal = 0;
  #telemetryFailures = 0;

  constructor(options: DependencyGuardOptions) {
    const check = optionChecks('DependencyGuard');
    if (typeof options.subsystem !== 'string' || options.subsystem.trim().length === 0) {
      check.fail('subsystem', 'a non-blank string', options.subsystem);
    }
    if (typeof options.sink?.emit !== 'function') check.fail('sink', 'a TelemetrySink', options.sink);
    this.subsystem = options.subsystem;
    this.#sink = options.sink;
    this.#clock = options.clock ?? systemClock;
    this.#trainingRunId = options.trainingRunId ?? '';
  }

  /**
   * Requires a non-blank id and returns it unchanged (not trimmed: an id is never
   * rewritten on the way through).
   */
  requireId(value: string | null | undefined, dependencyType: string, details?: ViolationDetails): string {
    if (value === undefined || value === null || value.length === 0) {
      this.fail({ dependencyType, reason: `missing ${dependencyType}`, details });
    }
    if (value.trim().length === 0) {
      this.fail({ dependencyType, reason: `blank ${dependencyType}`, details });
    }
    return value;
  }

  /** Requires `value` to be neither `undefined` nor `null`, and returns it. */
  requirePresent<T>(value: T, context: ViolationContext): NonNullable<T> {
    if (value === undefined || value === null) this.fail(context);
    return value;
  }

  /**
   * Looks `identifier` up and returns the entry; a missing entry (`undefined`/`null`) is a
   * violation "missing {dependencyType} {identifier}". The identifier must be non-blank.
   * Errors thrown by `lookup` propagate unchanged: a failing registry is not a missing
   * entry, and may be transient.
   */
  requireEntry<T>(
    identifier: string,
    lookup: (identifier: string) => T | null | undefined,
    dependencyType: string,
    details?: ViolationDetails,
  ): NonNullable<T> {
    this.requireId(identifier, dependencyType, details);
    const entry = lookup(identifier);
    if (entry === undefined || entry === null) {
      this.fail({
        dependencyType,
        identifier,
        reason: `missing ${dependencyType} ${identifier}`,
        details,
      });
    }
    return entry;
  }

  /** Refuses the use of a fallback (identity kernel, placeholder, synthetic command). */
  forbidFallback(usedFallback: boolean, context: ViolationContext): void {
    if (!usedFallback) return;
    const subject = context.identifier === undefined ? '' : ` for ${context.identifier}`;
    this.fail({
      ...context,
      reason: context.reason ?? `fallback ${context.dependencyType}${subject} is not allowed`,
    });
  }

  /** Requires a configuration condition; dependency type `config`, identifier `key`. */
  requireConfig(condition: boolean, config: { readonly key: string; readonly reason: string; readonly details?: ViolationDetails }): void {
    if (condition) return;
    this.fail({
      dependencyType: 'config',
      identifier: config.key,
      reason: config.reason,
      details: config.details,
    });
  }

  /** Reports a violation found by the caller's own check, and throws it. */
  fail(context: ViolationContext): never {
    const subject = context.identifier === undefined ? '' : ` ${context.identifier}`;
    const error = new DependencyViolationError({
      subsystem: this.subsystem,
      dependencyType: context.dependencyType,
      identifier: context.identifier,
      reason: context.reason ?? `missing ${context.dependencyType}${subject}`,
      details: context.details,
    });
    this.#report(error);
    throw error;
  }

  /** Violation counts so far. */
  snapshot(): DependencyGuardSnapshot {
    return {
      subsystem: this.subsystem,
      violationsTotal: this.#violationsTotal,
      byDependencyType: [...this.#countsByType].map(([dependencyType, count]) => ({
        dependencyType,
        count,
      })),
      telemetryFailures: this.#telemetryFailures,
    };
  }

  #report(error: DependencyViolationError): void {
    const count = (this.#countsByType.get(error.dependencyType) ?? 0) + 1;
    this.#countsByType.set(error.dependencyType, count);
    this.#violationsTotal += 1;
    try {
      const packet = buildTelemetryPacket({
        source: this.subsystem,
        trainingRunId: this.#trainingRunId,
        clock: this.#clock,
        level: TelemetryLevel.CRITICAL,
        events: [
          {
            description: DependencyGuardEvent.VIOLATION,
            level: TelemetryLevel.CRITICAL,
            // The four named attributes win over a caller detail of the same key.
            attributes: {
              ...error.details,
              subsystem: error.subsystem,
              artifact_type: error.dependencyType,
              artifact_id: error.identifier ?? '',
              reason: error.reason,
            },
          },
        ],
        metrics: [
          {
            name: DependencyGuardMetric.VIOLATIONS_TOTAL,
            value: count,
            unit: 'count',
            attributes: { subsystem: error.subsystem, artifact_type: error.dependencyType },
          },
        ],
        health: { status: HealthStatus.DEGRADED, summary: error.reason },
      });
      this.#sink.emit(packet);
    } catch {
      // The violation itself must still be thrown; a broken sink is counted instead.
      this.#telemetryFailures += 1;
    }
  }
}

/** Payload case of an AdaptationCommand (`undefined` = no payload). */
export type CommandPayloadCase = AdaptationCommand['payload']['case'];

/**
 * The payload each command type must carry; `undefined` means none. COMMAND_UNKNOWN is
 * absent: a command of unknown type is itself a violation.
 *
 * | command_type | payload |
 * |---|---|
 * | COMMAND_SEED | seed_operation |
 * | COMMAND_ROLLBACK | rollback |
 * | COMMAND_OPTIMIZER | optimizer_adjustment |
 * | COMMAND_CIRCUIT_BREAKER | circuit_breaker |
 * | COMMAND_PAUSE | none |
 * | COMMAND_EMERGENCY | emergency |
 * | COMMAND_STRUCTURAL_PRUNING | none (the contract defines no pruning payload) |
 */
export const COMMAND_PAYLOAD_CASES = {
  [CommandType.COMMAND_SEED]: 'seedOperation',
  [CommandType.COMMAND_ROLLBACK]: 'rollback',
  [CommandType.COMMAND_OPTIMIZER]: 'optimizerAdjustment',
  [CommandType.COMMAND_CIRCUIT_BREAKER]: 'circuitBreaker',
  [CommandType.COMMAND_PAUSE]: undefined,
  [CommandType.COMMAND_EMERGENCY]: 'emergency',
  [CommandType.COMMAND_STRUCTURAL_PRUNING]: undefined,
} as const satisfies Readonly<Record<Exclude<CommandType, CommandType.COMMAND_UNKNOWN>, CommandPayloadCase>>;

/**
 * Checks a command's required ids and payload before it is published or applied, through
 * `guard` (first failure wins, one violation each):
 *
 * 1. `command_id` non-blank (dependency type `command_id`);
 * 2. `training_run_id` non-blank (`training_run_id`);
 * 3. `command_type` declared and not COMMAND_UNKNOWN (`command_type`);
 * 4. COMMAND_SEED: `target_seed_id` non-blank (`seed_id`);
 * 5. payload case matches {@link COMMAND_PAYLOAD_CASES} (`payload`);
 * 6. COMMAND_SEED: `seed_operation.operation` not SEED_OP_UNKNOWN (`payload`), and for
 *    SEED_OP_GERMINATE a non-blank `seed_operation.blueprint_id` (`blueprint_id`);
 * 7. with `expect.trainingRunId`: the command is for that run (`training_run_id`).
 *
 * @throws DependencyViolationError on the first failed check.
 */
export function validateCommandDependencies(
  guard: DependencyGuard,
  command: AdaptationCommand,
  expect: { readonly trainingRunId?: string } = {},
): void {
  const commandId = guard.requireId(command.commandId, 'command_id');
  const details = { command_id: commandId };
  guard.requireId(command.trainingRunId, 'training_run_id', details);
  if (expect.trainingRunId !== undefined && command.trainingRunId !== expect.trainingRunId) {
    guard.fail({
      dependencyType: 'training_run_id',
      identifier: command.trainingRunId,
      reason: `command ${commandId} is for run ${command.trainingRunId}, not ${expect.trainingRunId}`,
      details,
    });
  }

  const type = command.commandType;
  if (type === CommandType.COMMAND_UNKNOWN || !Object.hasOwn(COMMAND_PAYLOAD_CASES, type)) {
    guard.fail({
      dependencyType: 'command_type',
      identifier: commandId,
      reason: `command ${commandId} has ${enumName(CommandTypeSchema.values, type)} command_type`,
      details,
    });
  }
  const typeName = enumName(CommandTypeSchema.values, type);
  const seedId = type === CommandType.COMMAND_SEED ? guard.requireId(command.targetSeedId, 'seed_id', details) : undefined;

  const expected = COMMAND_PAYLOAD_CASES[type as keyof typeof COMMAND_PAYLOAD_CASES];
  const actual = command.payload.case;
  if (actual !== expected) {
    const want = expected === undefined ? 'no payload' : `payload ${payloadName(expected)}`;
    const got = actual === undefined ? 'none' : payloadName(actual);
    guard.fail({
      dependencyType: 'payload',
      identifier: commandId,
      reason: `${typeName} requires ${want}, got ${got}`,
      details,
    });
  }

  if (command.payload.case === 'seedOperation') {
    const operation = command.payload.value;
    const seedDetails = { ...details, seed_id: seedId ?? '' };
    if (operation.operation === SeedOperation.SEED_OP_UNKNOWN) {
      guard.fail({
        dependencyType: 'payload',
        identifier: commandId,
        reason: `${typeName} has seed_operation.operation ${enumName(SeedOperationSchema.values, operation.operation)}`,
        details: seedDetails,
      });
    }
    if (operation.operation === SeedOperation.SEED_OP_GERMINATE) {
      guard.requireId(operation.blueprintId, 'blueprint_id', seedDetails);
      guard.requireId(operation.siteId, 'site_id', seedDetails);
    }
  }
}

function enumName(values: readonly { number: number; name: string }[], value: number): string {
  return values.find((v) => v.number === value)?.name ?? `unknown (${value})`;
}

function payloadName(payloadCase: NonNullable<CommandPayloadCase>): string {
  return AdaptationCommandSchema.field[payloadCase].name;
}
