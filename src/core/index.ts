/**
 * Core: the shared foundations every subsystem stands on. Other subsystems import only
 * from this file.
 */
export { ErrorCode, EsperError, isEsperError, type EsperErrorOptions } from './errors.js';
export { FakeClock, systemClock, type Clock } from './clock.js';
export {
  CRITICAL_EVENTS,
  ESCALATING_WARNING_EVENTS,
  effectiveEventLevel,
  maxPriority,
  priorityForEvent,
} from './priority.js';
export {
  buildMetric,
  buildTelemetryPacket,
  MemoryTelemetrySink,
  toAttributeMap,
  type AttributeValue,
  type Attributes,
  type EventInput,
  type HealthInput,
  type MetricInput,
  type TelemetryPacketInput,
  type TelemetrySink,
} from './telemetry.js';
