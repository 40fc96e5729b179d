/**
 * The one telemetry builder. Every subsystem builds its packets here, so packet ids,
 * timestamps, units and — above all — `priority` (the max over events by the spec 01
 * table in `priority.ts`) are set the same way everywhere.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  HealthStatus,
  MessagePriority,
  MetricPointSchema,
  SystemHealthSchema,
  TelemetryEventSchema,
  TelemetryLevel,
  TelemetryPacketSchema,
  type MetricPoint,
  type TelemetryEvent,
  type TelemetryPacket,
} from '../leyline/index.js';
import { systemClock, type Clock } from './clock.js';
import { compareUtf8 } from './contract-checks.js';
import { ErrorCode, EsperError } from './errors.js';
import { optionChecks } from './options.js';
import { effectiveEventLevel, maxPriority, priorityForEvent } from './priority.js';

/** Attribute values accepted by the builder; stored as strings. */
export type AttributeValue = string | number | boolean | bigint;

/** Free-form attributes (human context and labels only). */
export type Attributes = Readonly<Record<string, AttributeValue>>;

/** A metric to put in a packet. */
export interface MetricInput {
  readonly name: string;
  readonly value: number;
  /** Unit of `value` ("ms", "count", "ratio", "bytes", ...). Required and non-empty. */
  readonly unit: string;
  readonly attributes?: Attributes;
}

/** An event to put in a packet. */
export interface EventInput {
  readonly description: string;
  /** @default TelemetryLevel.INFO */
  readonly level?: TelemetryLevel;
  readonly attributes?: Attributes;
  /** @default `${packetId}:evt-${n}` with n counting from 1 in list order */
  readonly eventId?: string;
}

/** Health section of a packet. */
export interface HealthInput {
  readonly status: HealthStatus;
  readonly summary?: string;
  /** Human-readable indicators only; never routing. */
  readonly indicators?: Attributes;
}

/** Inputs of {@link buildTelemetryPacket}. */
export interface TelemetryPacketInput {
  /** Producing subsystem ("tolaria", "kasmina", ...). Required. */
  readonly source: string;
  readonly trainingRunId?: string;
  readonly metrics?: readonly MetricInput[];
  readonly events?: readonly EventInput[];
  /** @default `{ status: HEALTHY }` */
  readonly health?: HealthInput;
  /**
   * Packet level floor; the packet's level is the max of this and its events' levels.
   * @default TelemetryLevel.INFO
   */
  readonly level?: TelemetryLevel;
  /**
   * Priority floor. Metric-only packets that may be shed first pass LOW.
   * @default MessagePriority.NORMAL
   */
  readonly basePriority?: MessagePriority;
  /** @default a random UUID */
  readonly packetId?: string;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Where telemetry goes. Implementations must not throw; they queue or count drops. */
export interface TelemetrySink {
  emit(packet: TelemetryPacket): void;
}

/**
 * Converts attributes to a string map with keys in code-point order, so the encoding
 * matches other languages' deterministic serialisation. (Integer-like keys such as "10"
 * are still listed first by JavaScript objects; that is why signed messages hold no maps.)
 */
export function toAttributeMap(attributes: Attributes | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (attributes === undefined) return out;
  for (const key of Object.keys(attributes).sort(compareUtf8)) {
    out[key] = String(attributes[key]);
  }
  return out;
}

/** Builds one MetricPoint; rejects an empty name or unit. */
export function buildMetric(input: MetricInput): MetricPoint {
  if (input.name.length === 0) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'metric name must not be empty');
  }
  if (input.unit.length === 0) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `metric ${input.name} has no unit`, {
      details: { metric: input.name },
    });
  }
  return create(MetricPointSchema, {
    name: input.name,
    value: input.value,
    unit: input.unit,
    attributes: toAttributeMap(input.attributes),
  });
}

/**
 * Builds a TelemetryPacket. `priority` = max(basePriority, max over events of the spec 01
 * table); `level` = max(level, max over events' effective levels).
 */
export function buildTelemetryPacket(input: TelemetryPacketInput): TelemetryPacket {
  if (input.source.length === 0) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'telemetry source must not be empty');
  }
  const clock = input.clock ?? systemClock;
  const packetId = input.packetId ?? randomUUID();
  let level = input.level ?? TelemetryLevel.INFO;
  let priority = input.basePriority ?? MessagePriority.NORMAL;

  const events: TelemetryEvent[] = (input.events ?? []).map((event, index) => {
    if (event.description.length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'event description must not be empty');
    }
    const eventLevel = effectiveEventLevel(event.level ?? TelemetryLevel.INFO, event.description);
    level = eventLevel > level ? eventLevel : level;
    priority = maxPriority(priority, priorityForEvent(eventLevel, event.description));
    return create(TelemetryEventSchema, {
      eventId: event.eventId ?? `${packetId}:evt-${index + 1}`,
      description: event.description,
      level: eventLevel,
      attributes: toAttributeMap(event.attributes),
    });
  });

  const health = input.health ?? { status: HealthStatus.HEALTHY };
  return create(TelemetryPacketSchema, {
    packetId,
    timestamp: timestampFromMs(clock.wallMs()),
    sourceSubsystem: input.source,
    level,
    metrics: (input.metrics ?? []).map(buildMetric),
    events,
    systemHealth: create(SystemHealthSchema, {
      status: health.status,
      summary: health.summary ?? '',
      indicators: toAttributeMap(health.indicators),
    }),
    priority,
    trainingRunId: input.trainingRunId ?? '',
  });
}

/**
 * A sink that keeps packets in memory, bounded, counting what it drops. Used by the
 * embedded process and by tests that assert emitted telemetry.
 */
export class MemoryTelemetrySink implements TelemetrySink {
  readonly #capacity: number;
  readonly #packets: TelemetryPacket[] = [];
  #dropped = 0;

  /** @param capacity maximum packets kept; the oldest is dropped past it. @default 10_000 */
  constructor(capacity = 10_000) {
    this.#capacity = optionChecks('MemoryTelemetrySink').integer('capacity', capacity, { min: 1 });
  }

  emit(packet: TelemetryPacket): void {
    if (this.#packets.length >= this.#capacity) {
      this.#packets.shift();
      this.#dropped += 1;
    }
    this.#packets.push(packet);
  }

  /** Packets kept so far, oldest first. */
  get packets(): readonly TelemetryPacket[] {
    return this.#packets;
  }

  /** Packets dropped because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** All events of all kept packets with the given description. */
  events(description: string): TelemetryEvent[] {
    return this.#packets.flatMap((p) => p.events.filter((e) => e.description === description));
  }

  /** Forgets every kept packet. */
  clear(): void {
    this.#packets.length = 0;
  }
}
