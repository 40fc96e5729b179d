/**
 * Training checkpoints (reference prototype-tolaria-oona-nissa-weatherlight §2.14): the
 * weights of the host and its hooks, the optimizer state, the trainer's RNG and data
 * cursor, the epoch and step, and the trainer's running statistics — everything a resumed
 * run needs to continue bit-identically.
 *
 * Each checkpoint is one record of a {@link RecordLog} (the write-ahead log of
 * `checkpoints.wal` in the checkpoint directory): appended with a per-record `fdatasync`,
 * framed with a CRC32C by the log, and carrying its own SHA-256 over the payload, so a
 * record that the log's framing accepts but whose contents were damaged is still refused.
 * After each write the log is rewritten to keep the last `keepLast` checkpoints. Resume
 * takes the newest record that decodes and verifies.
 *
 * Record payload (little-endian):
 *
 * | Bytes | Content |
 * |---|---|
 * | 0–3 | magic `"ESPC"` |
 * | 4–7 | u32 format version (1) |
 * | 8–39 | SHA-256 of the body (bytes 40…) |
 * | 40–43 | u32 header length `h` |
 * | 44… | header JSON (UTF-8, {@link CheckpointHeader}), then the weights blob, then the optimizer blob |
 *
 * The blobs are `src/tensor` weights blobs (`saveVariables`, `saveOptimizerState`), each
 * with its own CRC32C. Departures from the prototype: one checksummed log instead of a
 * pickle file per epoch plus a `wal.json` pointer; retention (the prototype never deleted
 * a checkpoint); the RNG, cursor and statistics are saved (the prototype saved only model,
 * optimizer and epoch, so its resumes were not reproducible).
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, EsperError, RecordLog, systemClock, type Clock } from '../core/index.js';
import type { RngState } from '../tensor/index.js';
import type { DataCursorState } from './dataset.js';
import type { OptimizerKind } from './optimizer-manager.js';
import type { TrainerProgress } from './trainer-stats.js';

/** Everything a checkpoint records besides the two tensor blobs. JSON-serialisable. */
export interface CheckpointHeader {
  readonly trainingRunId: string;
  /** `HostDescriptor.host_id` of the trained host. */
  readonly hostId: string;
  /** Optimizer steps taken when the checkpoint was cut. */
  readonly globalStep: number;
  /** The training data cursor (its epoch is the epoch in progress or just finished). */
  readonly cursor: DataCursorState;
  /** The trainer's random stream (handed to the executor). */
  readonly rng: RngState;
  readonly optimizer: {
    readonly kind: OptimizerKind;
    readonly learningRate: number;
    /** Names of the variables the optimizer trains, in its order. */
    readonly variableNames: readonly string[];
  };
  /** Seed sites that had hooks attached; a resume must attach the same ones first. */
  readonly hookSites: readonly string[];
  /** The executor's `exportState()` (how it re-attaches those hooks), when it has one. */
  readonly executor?: unknown;
  /** The trainer's running statistics (loss/gradient EWMAs, epoch accumulators, counters). */
  readonly progress: TrainerProgress;
  /** Wall-clock time the checkpoint was cut, ms since the Unix epoch. */
  readonly createdAtMs: number;
}

/** A decoded checkpoint. */
export interface Checkpoint {
  readonly header: CheckpointHeader;
  /** `saveVariables` blob of the host's and hooks' variables. */
  readonly weights: Uint8Array;
  /** `saveOptimizerState` blob. */
  readonly optimizerState: Uint8Array;
  /** Hex SHA-256 of the record body (identifies the checkpoint). */
  readonly sha256: string;
}

const MAGIC = 0x43505345; // "ESPC" read as little-endian u32
const FORMAT_VERSION = 1;
const DIGEST_BYTES = 32;
const PREFIX_BYTES = 8 + DIGEST_BYTES;

function corrupt(message: string, details: Record<string, string | number | boolean> = {}, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.TOLARIA_CHECKPOINT_CORRUPT, `checkpoint ${message}`, { details, cause });
}

/** Encodes a checkpoint record payload. */
export function encodeCheckpoint(
  header: CheckpointHeader,
  weights: Uint8Array,
  optimizerState: Uint8Array,
): { payload: Uint8Array; sha256: string } {
  const headerBytes = new TextEncoder().encode(
    JSON.stringify({ ...header, weightsBytes: weights.byteLength, optimizerBytes: optimizerState.byteLength }),
  );
  const bodyLength = 4 + headerBytes.byteLength + weights.byteLength + optimizerState.byteLength;
  const payload = new Uint8Array(PREFIX_BYTES + bodyLength);
  const view = new DataView(payload.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(PREFIX_BYTES, headerBytes.byteLength, true);
  let at = PREFIX_BYTES + 4;
  payload.set(headerBytes, at);
  at += headerBytes.byteLength;
  payload.set(weights, at);
  at += weights.byteLength;
  payload.set(optimizerState, at);
  const digest = createHash('sha256').update(payload.subarray(PREFIX_BYTES)).digest();
  payload.set(digest, 8);
  return { payload, sha256: digest.toString('hex') };
}

/**
 * Decodes and verifies a checkpoint record payload.
 * @throws EsperError TOLARIA_CHECKPOINT_CORRUPT on a bad magic, version, digest or layout
 */
export function decodeCheckpoint(payload: Uint8Array): Checkpoint {
  if (payload.byteLength < PREFIX_BYTES + 4) throw corrupt('is truncated', { bytes: payload.byteLength });
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw corrupt('has a bad magic number');
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) throw corrupt(`has unsupported format version ${version}`, { version });
  const body = payload.subarray(PREFIX_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(payload.subarray(8, PREFIX_BYTES))) throw corrupt('SHA-256 does not match its contents');
  const headerLength = view.getUint32(PREFIX_BYTES, true);
  const headerEnd = 4 + headerLength;
  if (headerEnd > body.byteLength) throw corrupt('header is truncated');
  let parsed: CheckpointHeader & { weightsBytes?: unknown; optimizerBytes?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder().decode(body.subarray(4, headerEnd))) as typeof parsed;
  } catch (error) {
    throw corrupt('header is not valid JSON', {}, error);
  }
  const { weightsBytes, optimizerBytes, ...header } = parsed;
  if (
    typeof weightsBytes !== 'number' ||
    typeof optimizerBytes !== 'number' ||
    headerEnd + weightsBytes + optimizerBytes !== body.byteLength
  ) {
    throw corrupt('blob lengths do not match the record');
  }
  checkHeader(header);
  return {
    header,
    weights: body.slice(headerEnd, headerEnd + weightsBytes),
    optimizerState: body.slice(headerEnd + weightsBytes),
    sha256: digest.toString('hex'),
  };
}

function checkHeader(header: CheckpointHeader): void {
  const ok =
    typeof header.trainingRunId === 'string' &&
    typeof header.hostId === 'string' &&
    Number.isSafeInteger(header.globalStep) &&
    typeof header.cursor === 'object' &&
    header.cursor !== null &&
    Array.isArray(header.rng) &&
    typeof header.optimizer === 'object' &&
    header.optimizer !== null &&
    Array.isArray(header.optimizer.variableNames) &&
    Array.isArray(header.hookSites) &&
    typeof header.progress === 'object' &&
    header.progress !== null;
  if (!ok) throw corrupt('header lacks required fields');
}

/** Options of {@link CheckpointStore.open}. */
export interface CheckpointStoreOptions {
  /**
   * Checkpoints kept after each write (older ones are dropped by rewriting the log).
   * @default 3
   */
  readonly keepLast?: number;
  /**
   * Largest checkpoint record, in bytes.
   * @default 256 MiB
   */
  readonly maxRecordBytes?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link CheckpointStoreOptions}. */
export const CHECKPOINT_STORE_DEFAULTS = Object.freeze({
  keepLast: 3,
  maxRecordBytes: 256 * 1024 * 1024,
});

/** File name of the checkpoint log inside the checkpoint directory. */
export const CHECKPOINT_LOG_FILE = 'checkpoints.wal';

/** What {@link CheckpointStore.write} reports. */
export interface CheckpointWriteResult {
  readonly sha256: string;
  readonly bytes: number;
  /** Append (fsync included) plus retention rewrite, in milliseconds. */
  readonly latencyMs: number;
  /** Checkpoints in the log after retention. */
  readonly kept: number;
}

/** What {@link CheckpointStore.latest} found. */
export interface LatestCheckpoint {
  readonly checkpoint: Checkpoint;
  /** Newer records that failed to decode or verify and were passed over. */
  readonly skippedInvalid: number;
}

/** The durable checkpoint log of one checkpoint directory. One writer at a time. */
export class CheckpointStore {
  readonly #log: RecordLog;
  readonly #keepLast: number;
  readonly #clock: Clock;

  private constructor(log: RecordLog, keepLast: number, clock: Clock) {
    this.#log = log;
    this.#keepLast = keepLast;
    this.#clock = clock;
  }

  /**
   * Opens (creating) `<directory>/checkpoints.wal`. A torn last record (a crash mid-write)
   * is cut off by the log's recovery.
   * @throws EsperError RECORD_LOG_CORRUPT / RECORD_LOG_IO_FAILED from the log, INVALID_ARGUMENT
   */
  static async open(directory: string, options: CheckpointStoreOptions = {}): Promise<CheckpointStore> {
    const keepLast = options.keepLast ?? CHECKPOINT_STORE_DEFAULTS.keepLast;
    if (!Number.isInteger(keepLast) || keepLast < 1) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `keepLast must be an integer ≥ 1, got ${keepLast}`, {
        details: { field: 'keepLast' },
      });
    }
    await mkdir(directory, { recursive: true });
    const log = await RecordLog.open(path.join(directory, CHECKPOINT_LOG_FILE), {
      fsync: 'per-record',
      maxRecordBytes: options.maxRecordBytes ?? CHECKPOINT_STORE_DEFAULTS.maxRecordBytes,
    });
    return new CheckpointStore(log, keepLast, options.clock ?? systemClock);
  }

  /** Path of the checkpoint log. */
  get path(): string {
    return this.#log.path;
  }

  /** Appends a checkpoint (durable when this resolves), then drops all but the last `keepLast`. */
  async write(header: CheckpointHeader, weights: Uint8Array, optimizerState: Uint8Array): Promise<CheckpointWriteResult> {
    const started = this.#clock.monotonicMs();
    const { payload, sha256 } = encodeCheckpoint(header, weights, optimizerState);
    await this.#log.append(payload);
    const records = this.#log.stats().records;
    let kept = records;
    if (records > this.#keepLast) {
      let index = 0;
      const firstKept = records - this.#keepLast;
      const result = await this.#log.rewrite(() => index++ >= firstKept);
      kept = result.kept;
    }
    return { sha256, bytes: payload.byteLength, latencyMs: this.#clock.monotonicMs() - started, kept };
  }

  /** The newest checkpoint that verifies, or undefined when there is none. */
  async latest(): Promise<LatestCheckpoint | undefined> {
    const records = await this.#log.readAll();
    let skippedInvalid = 0;
    for (let i = records.length - 1; i >= 0; i -= 1) {
      try {
        return { checkpoint: decodeCheckpoint((records[i] as { payload: Uint8Array }).payload), skippedInvalid };
      } catch {
        skippedInvalid += 1;
      }
    }
    return undefined;
  }

  /** Checkpoints in the log (valid or not). */
  get count(): number {
    return this.#log.stats().records;
  }

  /** Closes the log. Idempotent. */
  close(): Promise<void> {
    return this.#log.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
