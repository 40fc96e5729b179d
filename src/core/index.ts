/**
 * Core: the shared foundations every subsystem stands on. Other subsystems import only
 * from this file; it lists what they use and the shared helpers (docs/architecture.md, Core).
 */
export { ErrorCode, EsperError, isEsperError } from './errors.js';
export { FakeClock, systemClock, type Clock } from './clock.js';
export { CRITICAL_EVENTS, priorityForEvent } from './priority.js';
export {
  buildTelemetryPacket,
  MemoryTelemetrySink,
  toAttributeMap,
  type Attributes,
  type EventInput,
  type MetricInput,
  type TelemetrySink,
} from './telemetry.js';
export { CONTRACT_LIMITS } from './limits.js';
export { decodeMessage, encodeMessage } from './codec.js';
export {
  buildDecisionMetadata,
  readDecisionMetadata,
  type BlendConfigInput,
  type CoverageSummaryInput,
  type DecisionMetadataInput,
} from './decisions.js';
export { buildExtraMetrics, buildTrainingMetrics, validateExtraMetrics, type TrainingMetricsInput } from './training-metrics.js';
export { DependencyGuard, DependencyGuardEvent, DependencyViolationError, validateCommandDependencies } from './dependency-guard.js';
export {
  CIRCUIT_BREAKER_DEFAULTS,
  CircuitBreaker,
  type CircuitBreakerSnapshot,
  type CircuitBreakerStateChange,
} from './circuit-breaker.js';
export { loadSettings } from './settings.js';
export type { EsperSettings } from './settings-schema.js';
export { formatSettingsIssue, SettingsError } from './settings-error.js';
export { listSettings } from './settings-keys.js';
export { listSettingsRules } from './settings-rules.js';
export { redactUrl } from './settings-setting.js';
export { redactSettings } from './settings-redact.js';
export { readConfigFile } from './settings-file.js';
export { crc32c } from './crc32c.js';
export { encodeFrame, FrameReader, type FrameReadResult, type TornTailReason } from './frame.js';
export { RecordLog, type RecordLogRecovery } from './record-log.js';
export { RecordLogFsync, type RecordLogOptions } from './record-log-options.js';
export { AsyncWorker, rejectionOutcome } from './async-worker.js';
export type { AsyncTaskHandle } from './async-worker-types.js';

// Helpers for what every subsystem writes (docs/architecture.md, Core, "Shared helpers").
export { invalidOption, MAX_TIMER_MS, optionChecks, type NumericRange, type OptionChecks } from './options.js';
export { quantile, quantileOfSorted, SampleWindow } from './quantile.js';
export { closeOnce, runCleanup, type CleanupStep } from './close.js';
export { ServiceState, type StateGuardOptions } from './service-state.js';
export { describeError, errorLabel, errorMessage, reasonOf } from './failure.js';
export { parsePersisted, parsePersistedJson, PersistedStateError, type PersistedIssue, type PersistedSource } from './persisted.js';
export { parseNumericFlag, type NumericFlagOptions } from './numeric-text.js';
