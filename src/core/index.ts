/**
 * Core: the shared foundations every subsystem stands on. Other subsystems import only
 * from this file.
 */
export { ErrorCode, EsperError, isEsperError, type EsperErrorOptions } from './errors.js';
export { FakeClock, systemClock, type Clock } from './clock.js';
export { CRITICAL_EVENTS, ESCALATING_WARNING_EVENTS, effectiveEventLevel, maxPriority, priorityForEvent } from './priority.js';
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
export { CONTRACT_LIMITS } from './limits.js';
export { decodeMessage, encodeMessage, type DecodeOptions } from './codec.js';
export {
  attachDecisionMetadata,
  buildDecisionMetadata,
  MAX_ALPHA_VEC_ENTRIES,
  MAX_POLICY_LOGITS_ENTRIES,
  readDecisionMetadata,
  type BlendConfigInput,
  type CoverageGroupInput,
  type CoverageSummaryInput,
  type DecisionMetadataInput,
  type PolicyMetadataInput,
  type RiskMetadataInput,
  type SelectionContextInput,
} from './decisions.js';
export {
  buildExtraMetrics,
  buildTrainingMetrics,
  MAX_EXTRA_METRICS,
  readTrainingMetrics,
  validateExtraMetrics,
  type TrainingMetricsInput,
} from './training-metrics.js';
export {
  COMMAND_PAYLOAD_CASES,
  DependencyGuard,
  DependencyGuardEvent,
  DependencyGuardMetric,
  DependencyViolationError,
  validateCommandDependencies,
  type CommandPayloadCase,
  type DependencyGuardOptions,
  type DependencyGuardSnapshot,
  type DependencyViolationInit,
  type ViolationContext,
  type ViolationDetails,
} from './dependency-guard.js';
export {
  BreakerTransitionReason,
  CIRCUIT_BREAKER_DEFAULTS,
  CircuitBreaker,
  resolveCircuitBreakerOptions,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type CircuitBreakerStateChange,
  type ResolvedCircuitBreakerOptions,
} from './circuit-breaker.js';
export {
  formatSettingsIssue,
  listSettings,
  loadSettings,
  redactSettings,
  redactUrl,
  REDACTED,
  SETTINGS_META_ENV,
  SettingsError,
  type EsperSettings,
  type LoadSettingsOptions,
  type SettingInfo,
  type SettingsIssue,
  type SettingsOverrides,
  type SettingsSource,
} from './settings.js';
export { crc32c } from './crc32c.js';
export {
  DEFAULT_MAX_FRAME_PAYLOAD_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_MAX_PAYLOAD_BYTES_LIMIT,
  FrameReader,
  decodeFrame,
  encodeFrame,
  findValidFrame,
  frameBytes,
  probeFrame,
  resolveMaxPayloadBytes,
  type FrameDefect,
  type FrameOptions,
  type FrameProbe,
  type FrameReadResult,
  type FrameReaderOptions,
  type TornTailReason,
} from './frame.js';
export {
  RECORD_LOG_DEFAULTS,
  RecordLog,
  RecordLogFsync,
  resolveRecordLogOptions,
  rewriteTempPath,
  type AppendResult,
  type LogRecord,
  type RecordLogOptions,
  type RecordLogRecovery,
  type RecordLogState,
  type RecordLogStats,
  type ResolvedRecordLogOptions,
  type RewriteDecision,
  type RewriteResult,
} from './record-log.js';
export {
  ASYNC_WORKER_DEFAULTS,
  ASYNC_WORKER_LATENCY_WINDOW_SAMPLES,
  AsyncWorker,
  resolveAsyncWorkerOptions,
  type AsyncTask,
  type AsyncTaskCancelSource,
  type AsyncTaskHandle,
  type AsyncTaskOptions,
  type AsyncTaskOutcome,
  type AsyncTaskState,
  type AsyncWorkerCloseOptions,
  type AsyncWorkerCloseSummary,
  type AsyncWorkerEvent,
  type AsyncWorkerOptions,
  type AsyncWorkerState,
  type AsyncWorkerStats,
  type ResolvedAsyncWorkerOptions,
} from './async-worker.js';
