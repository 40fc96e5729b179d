/**
 * Training checkpoints: each is one record of the `checkpoints.wal` {@link RecordLog} of a
 * checkpoint directory, carrying its own SHA-256 and a header read back through a zod
 * schema. The record layout is in `docs/architecture.md` § Tolaria.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  closeOnce,
  ErrorCode,
  EsperError,
  isEsperError,
  optionChecks,
  parsePersistedJson,
  PersistedStateError,
  RecordLog,
  systemClock,
  type Clock,
  type TornTailReason,
} from '../core/index.js';
import type { RngState } from '../tensor/index.js';
import type { DataCursorState } from './dataset.js';
import { OptimizerKind } from './optimizer-manager.js';
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

/** Where a checkpoint record was read from, for error messages. */
export interface CheckpointSource {
  readonly file: string;
  /** Byte offset of the record's frame in the file. */
  readonly offset: number;
}

/** Why a checkpoint record was not used. */
export const CheckpointDiscardReason = {
  /** The file ended inside the record (a crash mid-write, or a truncated copy). */
  TRUNCATED: 'truncated',
  /** The record log's CRC-32C of the frame failed: its bytes changed on disk. */
  CRC: 'crc',
  /** The frame was intact but the checkpoint's SHA-256 does not match its contents. */
  SHA256: 'sha256',
  /** The contents verify but do not parse: bad magic, version, layout or header. */
  MALFORMED: 'malformed',
} as const;

/** Union of {@link CheckpointDiscardReason} values. */
export type CheckpointDiscardReason = (typeof CheckpointDiscardReason)[keyof typeof CheckpointDiscardReason];

function corrupt(
  source: CheckpointSource | undefined,
  reason: CheckpointDiscardReason,
  message: string,
  details: Record<string, string | number | boolean> = {},
  cause?: unknown,
): EsperError {
  const where = source === undefined ? 'checkpoint' : `checkpoint record at offset ${source.offset} of ${source.file}`;
  return new EsperError(ErrorCode.TOLARIA_CHECKPOINT_CORRUPT, `${where}: ${message}`, {
    details: { ...(source === undefined ? {} : { file: source.file, offset: source.offset }), reason, problem: message, ...details },
    cause,
  });
}

const count = z.number().int().nonnegative();
const uint32 = z.number().int().min(0).max(0xffff_ffff);
const ewma = z.strictObject({ mean: z.number(), variance: z.number().nonnegative(), count });

/** The header of a checkpoint record as it is stored (with the two blob lengths). */
const StoredHeaderSchema = z.strictObject({
  trainingRunId: z.string().min(1),
  hostId: z.string().min(1),
  globalStep: count,
  cursor: z.strictObject({ seed: count, epoch: count, position: count }),
  rng: z.tuple([uint32, uint32, uint32, uint32]),
  optimizer: z.strictObject({
    kind: z.enum(Object.values(OptimizerKind) as [OptimizerKind, ...OptimizerKind[]]),
    learningRate: z.number().positive(),
    variableNames: z.array(z.string().min(1)),
  }),
  hookSites: z.array(z.string().min(1)),
  executor: z.unknown().optional(),
  progress: z.strictObject({
    loss: ewma,
    gradNorm: ewma,
    lastLoss: z.number().nullable(),
    divergence: z.strictObject({ window: z.array(z.number()), panics: count }),
    epoch: z.strictObject({
      lossSum: z.number(),
      samples: count,
      correct: z.number().nonnegative(),
      gradNormSum: z.number(),
      steps: count,
      hookMsSum: z.number(),
      maxHookMs: z.number(),
      lastHookMs: z.number(),
      trainMsSum: z.number(),
      failureReason: z.string(),
    }),
    counters: z.strictObject({
      epochsTotal: count,
      epochsFailed: count,
      failedEpochStreak: count,
      nonFiniteLossTotal: count,
      lastValidationLoss: z.number(),
      lastValidationAccuracy: z.number(),
    }),
    lrScale: z.number().positive(),
  }),
  createdAtMs: z.number(),
  weightsBytes: count,
  optimizerBytes: count,
});

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

/** What a discarded record's header claims to be, read without verification. */
const ClaimedHeaderSchema = z.object({ globalStep: count });

/** The step a payload's header claims, unverified; undefined when it cannot be read. */
function claimedStepOf(payload: Uint8Array): number | undefined {
  if (payload.byteLength < PREFIX_BYTES + 4) return undefined;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const end = PREFIX_BYTES + 4 + view.getUint32(PREFIX_BYTES, true);
  if (end > payload.byteLength) return undefined;
  try {
    const source = { code: ErrorCode.TOLARIA_CHECKPOINT_CORRUPT, what: 'checkpoint header' };
    return parsePersistedJson(ClaimedHeaderSchema, payload.subarray(PREFIX_BYTES + 4, end), source).globalStep;
  } catch {
    return undefined;
  }
}

/**
 * Decodes and verifies a checkpoint record payload; `source` names it in errors.
 * @throws EsperError TOLARIA_CHECKPOINT_CORRUPT (`details.reason` `sha256` or `malformed`)
 *   on a bad magic, version, digest, layout or header, naming the file and what is wrong
 */
export function decodeCheckpoint(payload: Uint8Array, source?: CheckpointSource): Checkpoint {
  const malformed = (message: string, details?: Record<string, string | number>, cause?: unknown): EsperError =>
    corrupt(source, CheckpointDiscardReason.MALFORMED, message, details, cause);
  if (payload.byteLength < PREFIX_BYTES + 4) throw malformed('is truncated', { bytes: payload.byteLength });
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw malformed('has a bad magic number');
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) throw malformed(`has unsupported format version ${version}`, { version });
  const body = payload.subarray(PREFIX_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(payload.subarray(8, PREFIX_BYTES))) {
    throw corrupt(source, CheckpointDiscardReason.SHA256, 'SHA-256 does not match its contents');
  }
  const headerEnd = 4 + view.getUint32(PREFIX_BYTES, true);
  if (headerEnd > body.byteLength) throw malformed('header is truncated');
  let stored: z.output<typeof StoredHeaderSchema>;
  try {
    stored = parsePersistedJson(StoredHeaderSchema, body.subarray(4, headerEnd), {
      code: ErrorCode.TOLARIA_CHECKPOINT_CORRUPT,
      what: 'header',
    });
  } catch (error) {
    if (!(error instanceof PersistedStateError)) throw error;
    // `details.field` is the first bad path (`$.globalStep`; `$` for the JSON as a whole).
    throw malformed(error.message, { field: error.issues[0]?.path ?? '$' }, error);
  }
  const { weightsBytes, optimizerBytes, ...header } = stored;
  if (headerEnd + weightsBytes + optimizerBytes !== body.byteLength) throw malformed('blob lengths do not match the record');
  const checked: CheckpointHeader = header;
  return {
    header: checked,
    weights: body.slice(headerEnd, headerEnd + weightsBytes),
    optimizerState: body.slice(headerEnd + weightsBytes),
    sha256: digest.toString('hex'),
  };
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

/** A checkpoint record that was not used, and why. */
export interface DiscardedCheckpoint {
  /** The checkpoint log. */
  readonly file: string;
  /** 1-based position of the record in the log. */
  readonly record: number;
  /** Byte offset of its frame in the file (as it was when the log was opened). */
  readonly offset: number;
  readonly bytes: number;
  readonly reason: CheckpointDiscardReason;
  /** What exactly was wrong. */
  readonly detail: string;
  /** The global step its header claims, when the header can still be read (not trusted). */
  readonly claimedStep?: number;
}

/** What {@link CheckpointStore.latest} found. */
export interface LatestCheckpoint {
  readonly checkpoint: Checkpoint;
  /**
   * Newer records that were passed over, and the damaged tail cut off when the log was
   * opened (until the next write), in file order. The caller tells the operator.
   */
  readonly discarded: readonly DiscardedCheckpoint[];
}

const TORN_TAIL_REASONS: Record<TornTailReason, { reason: CheckpointDiscardReason; detail: string }> = {
  'header-incomplete': { reason: CheckpointDiscardReason.TRUNCATED, detail: 'the file ends inside the record header' },
  'payload-incomplete': { reason: CheckpointDiscardReason.TRUNCATED, detail: 'the file ends inside the record' },
  'header-checksum': { reason: CheckpointDiscardReason.CRC, detail: 'the CRC-32C of the record header does not match' },
  'payload-checksum': { reason: CheckpointDiscardReason.CRC, detail: 'the CRC-32C of the record does not match' },
};

/** One line for an operator: which record, where, and why it was not used. */
export function describeDiscarded(d: DiscardedCheckpoint): string {
  const step = d.claimedStep === undefined ? '' : `, claims step ${d.claimedStep}`;
  return `checkpoint record ${d.record} at offset ${d.offset} of ${d.file} (${d.bytes} bytes${step}): ${d.reason} — ${d.detail}`;
}

/** The durable checkpoint log of one checkpoint directory. One writer at a time. */
export class CheckpointStore {
  readonly #log: RecordLog;
  readonly #close = closeOnce(() => this.#log.close());
  readonly #keepLast: number;
  readonly #clock: Clock;
  /** The damaged tail the log cut off at open; forgotten at the first write. */
  #tornTail: DiscardedCheckpoint | undefined;

  private constructor(log: RecordLog, keepLast: number, clock: Clock) {
    this.#log = log;
    this.#keepLast = keepLast;
    this.#clock = clock;
    const recovery = log.recovery;
    if (recovery.truncatedTailBytes > 0 && recovery.tornTailReason !== undefined) {
      this.#tornTail = {
        file: log.path,
        record: recovery.records + 1,
        offset: recovery.tornTailOffset ?? recovery.bytes,
        bytes: recovery.truncatedTailBytes,
        ...TORN_TAIL_REASONS[recovery.tornTailReason],
      };
    }
  }

  /**
   * Opens (creating) `<directory>/checkpoints.wal`. A damaged or torn last record is cut
   * off by the log's recovery and reported by {@link latest}.
   * @throws EsperError RECORD_LOG_CORRUPT / RECORD_LOG_IO_FAILED from the log, INVALID_ARGUMENT
   */
  static async open(directory: string, options: CheckpointStoreOptions = {}): Promise<CheckpointStore> {
    const keepLast = optionChecks('CheckpointStoreOptions').integer('keepLast', options.keepLast ?? CHECKPOINT_STORE_DEFAULTS.keepLast, {
      min: 1,
    });
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
    this.#tornTail = undefined;
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

  /**
   * The newest checkpoint that verifies, with what was passed over to reach it; undefined
   * when the log holds nothing at all.
   * @throws EsperError TOLARIA_CHECKPOINT_CORRUPT naming the file when it held records
   *   and none of them verifies
   */
  async latest(): Promise<LatestCheckpoint | undefined> {
    const records = await this.#log.readAll();
    const discarded: DiscardedCheckpoint[] = this.#tornTail === undefined ? [] : [this.#tornTail];
    for (let i = records.length - 1; i >= 0; i -= 1) {
      const record = records[i] as { offset: number; payload: Uint8Array };
      try {
        return { checkpoint: decodeCheckpoint(record.payload, { file: this.path, offset: record.offset }), discarded };
      } catch (error) {
        if (!isEsperError(error, ErrorCode.TOLARIA_CHECKPOINT_CORRUPT)) throw error;
        const claimedStep = claimedStepOf(record.payload);
        discarded.unshift({
          file: this.path,
          record: i + 1,
          offset: record.offset,
          bytes: record.payload.byteLength,
          reason: error.details?.['reason'] as CheckpointDiscardReason,
          detail: String(error.details?.['problem']),
          ...(claimedStep === undefined ? {} : { claimedStep }),
        });
      }
    }
    if (discarded.length === 0) return undefined;
    throw new EsperError(
      ErrorCode.TOLARIA_CHECKPOINT_CORRUPT,
      `no valid checkpoint in ${this.path}: ${discarded.map((d) => `record ${d.record} (${d.reason})`).join(', ')} discarded`,
      { details: { file: this.path, discarded: discarded.length } },
    );
  }

  /** Checkpoints in the log (valid or not). */
  get count(): number {
    return this.#log.stats().records;
  }

  /** Closes the log. Idempotent (returns the first call's promise). */
  close(): Promise<void> {
    return this.#close();
  }

  /** Same as {@link CheckpointStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }
}
