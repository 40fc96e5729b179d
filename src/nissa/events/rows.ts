/**
 * What the event store holds, as typed rows, and how a `TelemetryPacket` or `FieldReport`
 * becomes SQL parameters and a stored row becomes a typed one again.
 */
import { timestampMs } from '@bufbuild/protobuf/wkt';
import {
  FieldReportDeltaSchema,
  type FieldReport,
  type FieldReportOutcome,
  type MessagePriority,
  type TelemetryLevel,
  type TelemetryPacket,
} from '../../leyline/index.js';

/** The attribute that names a seed; its value fills {@link StoredTelemetryEvent.seedId}. */
export const SEED_ID_ATTRIBUTE = 'seed_id';

/** One stored `TelemetryEvent`, with what its packet said about it. */
export interface StoredTelemetryEvent {
  /** Insertion order in this store (ties in time are broken by it). */
  readonly seq: number;
  /** The event's id; unique in the store (`<packet id>:evt-<n>` when the producer left it empty). */
  readonly eventId: string;
  readonly packetId: string;
  /** When Nissa stored it, ms since the epoch (retention counts from here). */
  readonly receivedAtMs: number;
  /** The packet's timestamp, ms since the epoch (queries and order use this time). */
  readonly timeMs: number;
  /** The packet's run, `''` for process-wide packets. */
  readonly trainingRunId: string;
  /** The packet's source subsystem. */
  readonly source: string;
  /** The event's level. */
  readonly level: TelemetryLevel;
  /** The packet's priority, as its producer set it (never recomputed). */
  readonly priority: MessagePriority;
  /** The event name (`command_rejected`, `tamiyo.bsds.hazard`). */
  readonly description: string;
  /** The `seed_id` attribute, when the event names a seed. */
  readonly seedId: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
}

/** One stored `FieldReport`. */
export interface StoredFieldReport {
  /** Insertion order in this store. */
  readonly seq: number;
  /** The report's id; unique in the store. */
  readonly reportId: string;
  readonly commandId: string;
  /** When Nissa stored it, ms since the epoch. */
  readonly receivedAtMs: number;
  /** The report's `issued_at`, ms since the epoch (queries and order use this time). */
  readonly timeMs: number;
  readonly trainingRunId: string;
  readonly seedId: string;
  readonly blueprintId: string;
  readonly outcome: FieldReportOutcome;
  readonly observationWindowEpochs: number;
  readonly policyVersion: string;
  readonly notes: string;
  /** `FieldReportDelta` by field name (`lossDelta`, …); an unset optional slot is absent. */
  readonly delta: Readonly<Record<string, number>>;
  readonly followUpActions: readonly { readonly actionType: string; readonly rationale: string }[];
  readonly extraMetrics: readonly { readonly name: string; readonly value: number; readonly unit: string }[];
}

/** The SQL parameters of one telemetry event row. */
export interface TelemetryEventParams {
  readonly event_id: string;
  readonly packet_id: string;
  readonly received_at_ms: number;
  readonly time_ms: number;
  readonly training_run_id: string;
  readonly source: string;
  readonly level: number;
  readonly priority: number;
  readonly description: string;
  readonly seed_id: string | null;
  readonly attributes_json: string;
}

/** The SQL parameters of one field report row. */
export interface FieldReportParams {
  readonly report_id: string;
  readonly command_id: string;
  readonly received_at_ms: number;
  readonly time_ms: number;
  readonly training_run_id: string;
  readonly seed_id: string;
  readonly blueprint_id: string;
  readonly outcome: number;
  readonly observation_window_epochs: number;
  readonly policy_version: string;
  readonly notes: string;
  readonly delta_json: string;
  readonly extra_json: string;
}

/** A stored telemetry event row as SQLite returns it. */
export type TelemetryEventRecord = TelemetryEventParams & { readonly seq: number };
/** A stored field report row as SQLite returns it. */
export type FieldReportRecord = FieldReportParams & { readonly seq: number };

let anonymousPackets = 0;

/**
 * The rows of a packet's events. An event without an id gets `<packet id>:evt-<n>` (the
 * producers' own rule, so a redelivered packet maps onto the same rows); a packet without an
 * id either gets a process-unique one, which cannot be deduplicated.
 */
export function telemetryEventParams(packet: TelemetryPacket, receivedAtMs: number): TelemetryEventParams[] {
  const packetId = packet.packetId === '' ? `anonymous-${process.pid}-${receivedAtMs}-${(anonymousPackets += 1)}` : packet.packetId;
  const timeMs = packet.timestamp === undefined ? receivedAtMs : timestampMs(packet.timestamp);
  return packet.events.map((event, index) => {
    const seedId = event.attributes[SEED_ID_ATTRIBUTE];
    return {
      event_id: event.eventId === '' ? `${packetId}:evt-${index + 1}` : event.eventId,
      packet_id: packetId,
      received_at_ms: receivedAtMs,
      time_ms: timeMs,
      training_run_id: packet.trainingRunId,
      source: packet.sourceSubsystem,
      level: event.level,
      priority: packet.priority,
      description: event.description,
      seed_id: seedId === undefined || seedId === '' ? null : seedId,
      attributes_json: JSON.stringify(event.attributes),
    };
  });
}

/** The row of a field report. */
export function fieldReportParams(report: FieldReport, receivedAtMs: number): FieldReportParams {
  const delta: Record<string, number> = {};
  if (report.delta !== undefined) {
    for (const field of FieldReportDeltaSchema.fields) {
      const value = (report.delta as unknown as Record<string, unknown>)[field.localName];
      if (typeof value === 'number') delta[field.localName] = value;
    }
  }
  return {
    report_id: report.reportId,
    command_id: report.commandId,
    received_at_ms: receivedAtMs,
    time_ms: report.issuedAt === undefined ? receivedAtMs : timestampMs(report.issuedAt),
    training_run_id: report.trainingRunId,
    seed_id: report.seedId,
    blueprint_id: report.blueprintId,
    outcome: report.outcome,
    observation_window_epochs: report.observationWindowEpochs,
    policy_version: report.tamiyoPolicyVersion,
    notes: report.notes,
    delta_json: JSON.stringify(delta),
    extra_json: JSON.stringify({
      followUpActions: report.followUpActions.map((a) => ({ actionType: a.actionType, rationale: a.rationale })),
      extraMetrics: report.extraMetrics.map((m) => ({ name: m.name, value: m.value, unit: m.unit })),
    }),
  };
}

/** The typed form of a stored telemetry event row. */
export function toStoredTelemetryEvent(row: TelemetryEventRecord): StoredTelemetryEvent {
  return {
    seq: row.seq,
    eventId: row.event_id,
    packetId: row.packet_id,
    receivedAtMs: row.received_at_ms,
    timeMs: row.time_ms,
    trainingRunId: row.training_run_id,
    source: row.source,
    level: row.level as TelemetryLevel,
    priority: row.priority as MessagePriority,
    description: row.description,
    seedId: row.seed_id ?? undefined,
    attributes: JSON.parse(row.attributes_json) as Record<string, string>,
  };
}

/** The typed form of a stored field report row. */
export function toStoredFieldReport(row: FieldReportRecord): StoredFieldReport {
  const extra = JSON.parse(row.extra_json) as Pick<StoredFieldReport, 'followUpActions' | 'extraMetrics'>;
  return {
    seq: row.seq,
    reportId: row.report_id,
    commandId: row.command_id,
    receivedAtMs: row.received_at_ms,
    timeMs: row.time_ms,
    trainingRunId: row.training_run_id,
    seedId: row.seed_id,
    blueprintId: row.blueprint_id,
    outcome: row.outcome as FieldReportOutcome,
    observationWindowEpochs: row.observation_window_epochs,
    policyVersion: row.policy_version,
    notes: row.notes,
    delta: JSON.parse(row.delta_json) as Record<string, number>,
    followUpActions: extra.followUpActions,
    extraMetrics: extra.extraMetrics,
  };
}
