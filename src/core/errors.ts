/**
 * The one error base of Esper. Every failure that crosses a module boundary is an
 * {@link EsperError} with a stable `code`; callers branch on the code (see
 * {@link isEsperError}), never on message text.
 */

/** Stable error codes, grouped by subsystem. Add codes here, never inline strings. */
export const ErrorCode = {
  // core
  INVALID_ARGUMENT: 'ESPER_CORE_INVALID_ARGUMENT',
  INVALID_STATE: 'ESPER_CORE_INVALID_STATE',
  SETTINGS_INVALID: 'ESPER_CORE_SETTINGS_INVALID',
  FLAG_INVALID: 'ESPER_CORE_FLAG_INVALID',
  DECODE_FAILED: 'ESPER_CORE_DECODE_FAILED',
  MESSAGE_TOO_LARGE: 'ESPER_CORE_MESSAGE_TOO_LARGE',
  CONTRACT_BOUND_EXCEEDED: 'ESPER_CORE_CONTRACT_BOUND_EXCEEDED',
  CONTRACT_FIELD_MISSING: 'ESPER_CORE_CONTRACT_FIELD_MISSING',
  DEPENDENCY_VIOLATION: 'ESPER_CORE_DEPENDENCY_VIOLATION',
  BREAKER_OPEN: 'ESPER_CORE_BREAKER_OPEN',
  // async worker
  WORKER_QUEUE_FULL: 'ESPER_CORE_WORKER_QUEUE_FULL',
  WORKER_TIMEOUT: 'ESPER_CORE_WORKER_TIMEOUT',
  WORKER_CANCELLED: 'ESPER_CORE_WORKER_CANCELLED',
  WORKER_CLOSED: 'ESPER_CORE_WORKER_CLOSED',
  // record log
  RECORD_LOG_CORRUPT: 'ESPER_CORE_RECORD_LOG_CORRUPT',
  RECORD_LOG_CLOSED: 'ESPER_CORE_RECORD_LOG_CLOSED',
  RECORD_TOO_LARGE: 'ESPER_CORE_RECORD_TOO_LARGE',
  RECORD_LOG_IO_FAILED: 'ESPER_CORE_RECORD_LOG_IO_FAILED',
  FRAME_TRUNCATED: 'ESPER_CORE_FRAME_TRUNCATED',
  FRAME_CHECKSUM_MISMATCH: 'ESPER_CORE_FRAME_CHECKSUM_MISMATCH',
  // oona
  OONA_PUBLISH_TIMEOUT: 'ESPER_OONA_PUBLISH_TIMEOUT',
  OONA_REQUEST_TIMEOUT: 'ESPER_OONA_REQUEST_TIMEOUT',
  OONA_CLOSED: 'ESPER_OONA_CLOSED',
  OONA_STORE_UNAVAILABLE: 'ESPER_OONA_STORE_UNAVAILABLE',
  OONA_INVALID_MESSAGE: 'ESPER_OONA_INVALID_MESSAGE',
  OONA_NO_GROUP: 'ESPER_OONA_NO_GROUP',
  OONA_STORE_FAILED: 'ESPER_OONA_STORE_FAILED',
  // security
  KEY_RING_INVALID: 'ESPER_SECURITY_KEY_RING_INVALID',
  UNKNOWN_KEY: 'ESPER_SECURITY_UNKNOWN_KEY',
  COMMAND_REJECTED: 'ESPER_SECURITY_COMMAND_REJECTED',
  /** A verified command its receiver does not own or cannot apply (details.reason says why). */
  COMMAND_NOT_APPLIED: 'ESPER_CORE_COMMAND_NOT_APPLIED',
  KEY_FILE_INVALID: 'ESPER_SECURITY_KEY_FILE_INVALID',
  NONCE_STORE_CORRUPT: 'ESPER_SECURITY_NONCE_STORE_CORRUPT',
  NONCE_STORE_FAILED: 'ESPER_SECURITY_NONCE_STORE_FAILED',
  // tensor
  TENSOR_BACKEND_INIT_FAILED: 'ESPER_TENSOR_BACKEND_INIT_FAILED',
  TENSOR_KERNEL_UNSUPPORTED: 'ESPER_TENSOR_KERNEL_UNSUPPORTED',
  TENSOR_WEIGHTS_INVALID: 'ESPER_TENSOR_WEIGHTS_INVALID',
  TENSOR_OPTIMIZER_STATE_MISMATCH: 'ESPER_TENSOR_OPTIMIZER_STATE_MISMATCH',
  // tolaria: hosts and datasets
  TOLARIA_SITE_SHAPE_MISMATCH: 'ESPER_TOLARIA_SITE_SHAPE_MISMATCH',
  TOLARIA_DATASET_NOT_FOUND: 'ESPER_TOLARIA_DATASET_NOT_FOUND',
  TOLARIA_DATASET_CORRUPT: 'ESPER_TOLARIA_DATASET_CORRUPT',
  // tolaria: trainer
  TOLARIA_CHECKPOINT_CORRUPT: 'ESPER_TOLARIA_CHECKPOINT_CORRUPT',
  TOLARIA_CHECKPOINT_MISMATCH: 'ESPER_TOLARIA_CHECKPOINT_MISMATCH',
  TOLARIA_CHECKPOINT_NOT_FOUND: 'ESPER_TOLARIA_CHECKPOINT_NOT_FOUND',
  TOLARIA_OPTIMIZER_REBUILD_FAILED: 'ESPER_TOLARIA_OPTIMIZER_REBUILD_FAILED',
  // kasmina
  KASMINA_ILLEGAL_TRANSITION: 'ESPER_KASMINA_ILLEGAL_TRANSITION',
  KASMINA_GATE_FAILED: 'ESPER_KASMINA_GATE_FAILED',
  KASMINA_SEED_NOT_FOUND: 'ESPER_KASMINA_SEED_NOT_FOUND',
  KASMINA_SITE_UNAVAILABLE: 'ESPER_KASMINA_SITE_UNAVAILABLE',
  KASMINA_GRAFT_SHAPE_MISMATCH: 'ESPER_KASMINA_GRAFT_SHAPE_MISMATCH',
  KASMINA_BLEND_CONFIG_INVALID: 'ESPER_KASMINA_BLEND_CONFIG_INVALID',
  KASMINA_REGISTRY_CONFLICT: 'ESPER_KASMINA_REGISTRY_CONFLICT',
  KASMINA_ISOLATION_VIOLATION: 'ESPER_KASMINA_ISOLATION_VIOLATION',
  KASMINA_PREFETCH_TIMEOUT: 'ESPER_KASMINA_PREFETCH_TIMEOUT',
  KASMINA_PREFETCH_CANCELLED: 'ESPER_KASMINA_PREFETCH_CANCELLED',
  KASMINA_PREFETCH_FAILED: 'ESPER_KASMINA_PREFETCH_FAILED',
  KASMINA_STATE_INVALID: 'ESPER_KASMINA_STATE_INVALID',
  // tamiyo
  TAMIYO_GRAPH_INVALID: 'ESPER_TAMIYO_GRAPH_INVALID',
  TAMIYO_POLICY_INVALID: 'ESPER_TAMIYO_POLICY_INVALID',
  TAMIYO_POLICY_UPDATE_REJECTED: 'ESPER_TAMIYO_POLICY_UPDATE_REJECTED',
  TAMIYO_FIELD_REPORT_INVALID: 'ESPER_TAMIYO_FIELD_REPORT_INVALID',
  TAMIYO_PUBLISH_FAILED: 'ESPER_TAMIYO_PUBLISH_FAILED',
  // simic
  /** A replay-buffer record or an imported WAL record is not a valid FieldReport (details.path, details.offset). */
  SIMIC_REPLAY_INVALID: 'ESPER_SIMIC_REPLAY_INVALID',
  /** An episode's decision log is missing, truncated or not a list of decisions (details.path). */
  SIMIC_EPISODE_INVALID: 'ESPER_SIMIC_EPISODE_INVALID',
  // karn
  KARN_BLUEPRINT_NOT_FOUND: 'ESPER_KARN_BLUEPRINT_NOT_FOUND',
  KARN_PARAMETER_INVALID: 'ESPER_KARN_PARAMETER_INVALID',
  KARN_NO_CANDIDATES: 'ESPER_KARN_NO_CANDIDATES',
  KARN_SITE_UNSUPPORTED: 'ESPER_KARN_SITE_UNSUPPORTED',
  // urza
  URZA_INTEGRITY_FAILURE: 'ESPER_URZA_INTEGRITY_FAILURE',
  URZA_NOT_FOUND: 'ESPER_URZA_NOT_FOUND',
  URZA_STORAGE_INVALID: 'ESPER_URZA_STORAGE_INVALID',
  // tezzeret
  TEZZERET_ARTIFACT_INVALID: 'ESPER_TEZZERET_ARTIFACT_INVALID',
  TEZZERET_COMPILE_TIMEOUT: 'ESPER_TEZZERET_COMPILE_TIMEOUT',
  TEZZERET_FORGE_WAL_INVALID: 'ESPER_TEZZERET_FORGE_WAL_INVALID',
  // urabrask
  URABRASK_CERTIFY_FAILED: 'ESPER_URABRASK_CERTIFY_FAILED',
  // nissa
  /**
   * Nissa's event store cannot be used: not SQLite, corrupt, another program's or another
   * schema version's file, missing (read-only open) or unreadable (details.path, details.reason).
   */
  NISSA_EVENT_STORE_INVALID: 'ESPER_NISSA_EVENT_STORE_INVALID',
  /** A TensorBoard event file could not be opened or written (details.file names it). */
  NISSA_TENSORBOARD_WRITE_FAILED: 'ESPER_NISSA_TENSORBOARD_WRITE_FAILED',
  /** A TensorBoard event file has a bad length, CRC or Event (details.file, details.offset). */
  NISSA_TENSORBOARD_CORRUPT: 'ESPER_NISSA_TENSORBOARD_CORRUPT',
  /** A file report.html inlines (uPlot's script or style) was not found (details.asset). */
  NISSA_REPORT_ASSET_MISSING: 'ESPER_NISSA_REPORT_ASSET_MISSING',
  // weatherlight
  /**
   * One or more mandatory dependencies failed the preflight (details.failed lists the
   * checks, comma-separated); nothing was started.
   */
  WEATHERLIGHT_PREFLIGHT_FAILED: 'ESPER_WEATHERLIGHT_PREFLIGHT_FAILED',
  /** A supervised service crashed more often than its restart budget allows (details.service). */
  WEATHERLIGHT_SERVICE_BUDGET_EXHAUSTED: 'ESPER_WEATHERLIGHT_SERVICE_BUDGET_EXHAUSTED',
  // study
  /** A registered task the harness cannot run yet (details.missing says what is missing). */
  STUDY_TASK_UNSUPPORTED: 'ESPER_STUDY_TASK_UNSUPPORTED',
  /** A study directory holds another study (task, version or arms differ). */
  STUDY_DIRECTORY_MISMATCH: 'ESPER_STUDY_DIRECTORY_MISMATCH',
  /** A study file (study.json, a run result) does not parse or fit its schema. */
  STUDY_FILE_CORRUPT: 'ESPER_STUDY_FILE_CORRUPT',
  /** One run of a study failed (after its retry); details.reason says why. */
  STUDY_RUN_FAILED: 'ESPER_STUDY_RUN_FAILED',
} as const;

/** Union of every {@link ErrorCode} value. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const BRAND = Symbol.for('esper.error');

/** Options of {@link EsperError}. */
export interface EsperErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Structured, non-secret context for logs and telemetry. */
  details?: Readonly<Record<string, string | number | boolean>>;
}

/** Base class of every typed Esper error. */
export class EsperError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options: EsperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/**
 * Brand check that works across module copies (no `instanceof` pitfalls). With `code`,
 * also checks the error's code.
 */
export function isEsperError(error: unknown, code?: ErrorCode): error is EsperError {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as Record<symbol, unknown>)[BRAND] !== true) return false;
  return code === undefined || (error as EsperError).code === code;
}
