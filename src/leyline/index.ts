/**
 * Leyline v1: the generated contracts and the helpers that sit beside them.
 * Other subsystems import contracts only from here.
 */
export * from './gen/esper/leyline/v1/blueprint_pb.js';
export * from './gen/esper/leyline/v1/bus_pb.js';
export * from './gen/esper/leyline/v1/command_pb.js';
export * from './gen/esper/leyline/v1/emergency_pb.js';
export * from './gen/esper/leyline/v1/enums_pb.js';
export * from './gen/esper/leyline/v1/field_report_pb.js';
export * from './gen/esper/leyline/v1/kernel_pb.js';
export * from './gen/esper/leyline/v1/limits_pb.js';
export * from './gen/esper/leyline/v1/policy_pb.js';
export * from './gen/esper/leyline/v1/security_pb.js';
export * from './gen/esper/leyline/v1/state_pb.js';
export * from './gen/esper/leyline/v1/telemetry_pb.js';
export {
  canonicalBytes,
  encodingWithSignature,
  signedBytesIfCanonical,
  type SignedBytesResult,
  type SignedMessage,
  type SignedMessageSchema,
} from './canonical.js';
export { BUS_MESSAGE_SCHEMAS, schemaForBusMessageType, busMessageTypeOf, type BusMessage } from './message-types.js';
export { assertNever } from './exhaustive.js';
export { decodeBinary, encodeBinary, hasWireCodec, type DecodedBinary } from './wire-codec.js';
export { blendModesAt, convWidenMaps, isWidenSite, siteOutputShape, windowedLength, type ConvWidenMaps } from './site-shape.js';
