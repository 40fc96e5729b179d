/** Packets and field reports for the event store tests. */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  FieldReportDeltaSchema,
  FieldReportOutcome,
  FieldReportSchema,
  MessagePriority,
  TelemetryEventSchema,
  TelemetryLevel,
  TelemetryPacketSchema,
  type FieldReport,
  type TelemetryPacket,
} from '../../src/leyline/index.js';

/** One event of {@link packet}. */
export interface EventInput {
  readonly eventId?: string;
  readonly description: string;
  readonly level?: TelemetryLevel;
  readonly attributes?: Record<string, string>;
}

/** A telemetry packet at `timeMs` carrying `events`. */
export function packet(options: {
  readonly packetId: string;
  readonly timeMs: number;
  readonly source?: string;
  readonly run?: string;
  readonly priority?: MessagePriority;
  readonly events: readonly EventInput[];
}): TelemetryPacket {
  return create(TelemetryPacketSchema, {
    packetId: options.packetId,
    timestamp: timestampFromMs(options.timeMs),
    sourceSubsystem: options.source ?? 'tamiyo',
    level: TelemetryLevel.INFO,
    priority: options.priority ?? MessagePriority.NORMAL,
    trainingRunId: options.run ?? 'run-1',
    events: options.events.map((e) =>
      create(TelemetryEventSchema, {
        eventId: e.eventId ?? '',
        description: e.description,
        level: e.level ?? TelemetryLevel.INFO,
        attributes: e.attributes ?? {},
      }),
    ),
  });
}

/** A field report issued at `timeMs`. */
export function fieldReport(options: {
  readonly reportId: string;
  readonly timeMs: number;
  readonly run?: string;
  readonly seed?: string;
  readonly blueprint?: string;
  readonly outcome?: FieldReportOutcome;
  readonly lossDelta?: number;
  readonly counterfactual?: number;
}): FieldReport {
  return create(FieldReportSchema, {
    version: 1,
    reportId: options.reportId,
    commandId: `cmd-${options.reportId}`,
    trainingRunId: options.run ?? 'run-1',
    seedId: options.seed ?? 'seed-1',
    blueprintId: options.blueprint ?? 'BP001',
    outcome: options.outcome ?? FieldReportOutcome.SUCCESS,
    observationWindowEpochs: 3,
    issuedAt: timestampFromMs(options.timeMs),
    tamiyoPolicyVersion: 'policy-7',
    notes: 'grew well',
    followUpActions: [{ actionType: 'watch', rationale: 'new seed' }],
    delta: create(FieldReportDeltaSchema, {
      lossDelta: options.lossDelta ?? -0.25,
      riskScore: 0.5,
      ...(options.counterfactual === undefined ? {} : { counterfactualContribution: options.counterfactual }),
    }),
  });
}
