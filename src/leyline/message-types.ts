/**
 * The one mapping between {@link BusMessageType} and the schema of the payload a
 * BusEnvelope carries.
 */
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { BusMessageType } from './gen/esper/leyline/v1/enums_pb.js';
import { RunAnnouncementSchema, SystemStatePacketSchema } from './gen/esper/leyline/v1/state_pb.js';
import { AdaptationCommandSchema, CommandAckSchema, ControlDecisionSchema } from './gen/esper/leyline/v1/command_pb.js';
import { FieldReportSchema } from './gen/esper/leyline/v1/field_report_pb.js';
import { TelemetryPacketSchema } from './gen/esper/leyline/v1/telemetry_pb.js';
import { PolicyUpdateSchema } from './gen/esper/leyline/v1/policy_pb.js';
import {
  KernelArtifactErrorSchema,
  KernelArtifactReadySchema,
  KernelCatalogUpdateSchema,
  KernelPrefetchRequestSchema,
} from './gen/esper/leyline/v1/kernel_pb.js';
import { EmergencySignalSchema } from './gen/esper/leyline/v1/emergency_pb.js';
import { BenchmarkReportSchema, BSDSFailedSchema, BSDSIssuedSchema } from './gen/esper/leyline/v1/blueprint_pb.js';
import { assertNever } from './exhaustive.js';

/** Payload schema per bus message type. */
export const BUS_MESSAGE_SCHEMAS = {
  [BusMessageType.SYSTEM_STATE]: SystemStatePacketSchema,
  [BusMessageType.ADAPTATION_COMMAND]: AdaptationCommandSchema,
  [BusMessageType.FIELD_REPORT]: FieldReportSchema,
  [BusMessageType.TELEMETRY]: TelemetryPacketSchema,
  [BusMessageType.POLICY_UPDATE]: PolicyUpdateSchema,
  [BusMessageType.KERNEL_PREFETCH_REQUEST]: KernelPrefetchRequestSchema,
  [BusMessageType.KERNEL_PREFETCH_READY]: KernelArtifactReadySchema,
  [BusMessageType.KERNEL_PREFETCH_ERROR]: KernelArtifactErrorSchema,
  [BusMessageType.KERNEL_CATALOG_UPDATE]: KernelCatalogUpdateSchema,
  [BusMessageType.EMERGENCY_SIGNAL]: EmergencySignalSchema,
  [BusMessageType.COMMAND_ACK]: CommandAckSchema,
  [BusMessageType.CONTROL_DECISION]: ControlDecisionSchema,
  [BusMessageType.RUN_ANNOUNCEMENT]: RunAnnouncementSchema,
  [BusMessageType.BSDS_ISSUED]: BSDSIssuedSchema,
  [BusMessageType.BSDS_FAILED]: BSDSFailedSchema,
  [BusMessageType.BENCHMARK_REPORT]: BenchmarkReportSchema,
} as const;

type Schemas = typeof BUS_MESSAGE_SCHEMAS;

/** Any message that can travel in a BusEnvelope. */
export type BusMessage = MessageShape<Schemas[keyof Schemas]>;

/** The payload schema of `type`, or `undefined` for UNSPECIFIED / unknown numbers. */
export function schemaForBusMessageType(type: BusMessageType): DescMessage | undefined {
  if (type === BusMessageType.UNSPECIFIED) return undefined;
  return (BUS_MESSAGE_SCHEMAS as Record<number, DescMessage>)[type];
}

/** The bus message type of a message, from its `$typeName`. */
export function busMessageTypeOf(message: BusMessage): BusMessageType {
  const typeName = message.$typeName;
  switch (typeName) {
    case 'esper.leyline.v1.SystemStatePacket':
      return BusMessageType.SYSTEM_STATE;
    case 'esper.leyline.v1.AdaptationCommand':
      return BusMessageType.ADAPTATION_COMMAND;
    case 'esper.leyline.v1.FieldReport':
      return BusMessageType.FIELD_REPORT;
    case 'esper.leyline.v1.TelemetryPacket':
      return BusMessageType.TELEMETRY;
    case 'esper.leyline.v1.PolicyUpdate':
      return BusMessageType.POLICY_UPDATE;
    case 'esper.leyline.v1.KernelPrefetchRequest':
      return BusMessageType.KERNEL_PREFETCH_REQUEST;
    case 'esper.leyline.v1.KernelArtifactReady':
      return BusMessageType.KERNEL_PREFETCH_READY;
    case 'esper.leyline.v1.KernelArtifactError':
      return BusMessageType.KERNEL_PREFETCH_ERROR;
    case 'esper.leyline.v1.KernelCatalogUpdate':
      return BusMessageType.KERNEL_CATALOG_UPDATE;
    case 'esper.leyline.v1.EmergencySignal':
      return BusMessageType.EMERGENCY_SIGNAL;
    case 'esper.leyline.v1.CommandAck':
      return BusMessageType.COMMAND_ACK;
    case 'esper.leyline.v1.ControlDecision':
      return BusMessageType.CONTROL_DECISION;
    case 'esper.leyline.v1.RunAnnouncement':
      return BusMessageType.RUN_ANNOUNCEMENT;
    case 'esper.leyline.v1.BSDSIssued':
      return BusMessageType.BSDS_ISSUED;
    case 'esper.leyline.v1.BSDSFailed':
      return BusMessageType.BSDS_FAILED;
    case 'esper.leyline.v1.BenchmarkReport':
      return BusMessageType.BENCHMARK_REPORT;
    default:
      return assertNever(typeName, 'bus message type');
  }
}
