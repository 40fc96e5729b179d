/**
 * TensorBoard scalar event files, written without TensorFlow: `openScalarWriter(dir)`
 * creates `events.out.tfevents.<unix seconds>.<hostname>` in `dir`, starts it with the
 * `brain.Event:2` version event, and appends one TFRecord-framed Event per scalar.
 * `tensorboard --logdir <a parent of dir>` shows them, each directory as one run.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { describeError, ErrorCode, EsperError } from '../../core/index.js';
import { decodeEvent, encodeEvent, EVENT_FILE_VERSION, type TfEvent } from './event-proto.js';
import { frameRecord, readRecords } from './tfrecord.js';

/** Options of {@link openScalarWriter}. */
export interface ScalarWriterOptions {
  /**
   * The clock of the file name and of scalars written without a wall time (ms since the epoch).
   * @default Date.now
   */
  readonly nowMs?: () => number;
  /**
   * The host named in the file name.
   * @default os.hostname()
   */
  readonly hostname?: string;
  /**
   * Framed bytes held before `scalar()` starts writing them without waiting for `flush()`.
   * @default 65536
   */
  readonly maxPendingBytes?: number;
}

/** An open event file; append-only. */
export interface ScalarWriter {
  /** The event file's path. */
  readonly file: string;
  /**
   * Appends one scalar at `step` (a non-negative integer); `wallTimeMs` defaults to now.
   * @throws EsperError `INVALID_ARGUMENT` for an empty tag or a bad step; `INVALID_STATE` after close
   */
  scalar(tag: string, step: number, value: number, wallTimeMs?: number): void;
  /**
   * Writes what is pending to the file.
   * @throws EsperError `NISSA_TENSORBOARD_WRITE_FAILED` naming the file (also for an earlier background write)
   */
  flush(): Promise<void>;
  /** Flushes and closes the file; idempotent (returns the first call's promise). */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates `dir` if needed and a new event file in it.
 * @throws EsperError `NISSA_TENSORBOARD_WRITE_FAILED` naming the file it could not create
 */
export async function openScalarWriter(dir: string, options: ScalarWriterOptions = {}): Promise<ScalarWriter> {
  const nowMs = options.nowMs ?? Date.now;
  const host = options.hostname ?? hostname();
  const base = `events.out.tfevents.${Math.floor(nowMs() / 1000)}.${host}`;
  let file = path.join(dir, base);
  try {
    await mkdir(dir, { recursive: true });
    let handle: FileHandle | undefined;
    // Two writers opened in one directory within a second get distinct files.
    for (let n = 1; handle === undefined; n++) {
      try {
        handle = await open(file, 'wx');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 100) throw error;
        file = path.join(dir, `${base}.${n}`);
      }
    }
    const writer = new EventFileWriter(file, handle, nowMs, options.maxPendingBytes ?? 65_536);
    writer.append({ wallTimeS: nowMs() / 1000, step: 0, fileVersion: EVENT_FILE_VERSION });
    await writer.flush();
    return writer;
  } catch (error) {
    throw writeFailed(file, error);
  }
}

function writeFailed(file: string, cause: unknown): EsperError {
  if (cause instanceof EsperError && cause.code === ErrorCode.NISSA_TENSORBOARD_WRITE_FAILED) return cause;
  return new EsperError(
    ErrorCode.NISSA_TENSORBOARD_WRITE_FAILED,
    `cannot write the TensorBoard event file ${file}: ${describeError(cause)}`,
    {
      cause,
      details: { file },
    },
  );
}

class EventFileWriter implements ScalarWriter {
  readonly file: string;
  readonly #handle: FileHandle;
  readonly #nowMs: () => number;
  readonly #maxPendingBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Writes run one after another, in order. */
  #writing: Promise<void> = Promise.resolve();
  /** The first failed write, reported by every later flush. */
  #failure: EsperError | undefined;
  #closing: Promise<void> | undefined;

  constructor(file: string, handle: FileHandle, nowMs: () => number, maxPendingBytes: number) {
    this.file = file;
    this.#handle = handle;
    this.#nowMs = nowMs;
    this.#maxPendingBytes = maxPendingBytes;
  }

  scalar(tag: string, step: number, value: number, wallTimeMs?: number): void {
    if (tag === '') throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${this.file}: a scalar needs a tag`);
    this.append({ wallTimeS: (wallTimeMs ?? this.#nowMs()) / 1000, step, scalars: [{ tag, value }] });
  }

  append(event: TfEvent): void {
    if (this.#closing !== undefined) throw new EsperError(ErrorCode.INVALID_STATE, `${this.file} is closed`);
    const record = frameRecord(encodeEvent(event));
    this.#pending.push(record);
    this.#pendingBytes += record.length;
    if (this.#pendingBytes >= this.#maxPendingBytes) this.#drain();
  }

  async flush(): Promise<void> {
    this.#drain();
    await this.#writing;
    if (this.#failure !== undefined) throw this.#failure;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.flush();
      } finally {
        await this.#handle.close().catch((error: unknown) => {
          this.#failure ??= writeFailed(this.file, error);
        });
      }
      if (this.#failure !== undefined) throw this.#failure;
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Queues what is pending as one write; a failure is kept for the next flush. */
  #drain(): void {
    if (this.#pending.length === 0) return;
    const chunk = Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writing = this.#writing.then(async () => {
      if (this.#failure !== undefined) return;
      try {
        await this.#handle.write(chunk);
      } catch (error) {
        this.#failure = writeFailed(this.file, error);
      }
    });
  }
}

/** A scalar read back from an event file. */
export interface ScalarEvent {
  readonly tag: string;
  readonly step: number;
  /** As stored: a 32-bit float. */
  readonly value: number;
  readonly wallTimeS: number;
}

/** What {@link readScalarEvents} found in an event file. */
export interface ScalarEventFile {
  readonly fileVersion: string | undefined;
  readonly scalars: readonly ScalarEvent[];
}

/**
 * Reads an event file back, checking every record's length and CRCs.
 * @throws EsperError `NISSA_TENSORBOARD_CORRUPT` naming the file and the record's offset
 */
export async function readScalarEvents(file: string): Promise<ScalarEventFile> {
  return parseScalarEvents(await readFile(file), file);
}

/**
 * {@link readScalarEvents} on bytes in memory.
 * @param source - names the file in errors
 */
export function parseScalarEvents(bytes: Uint8Array, source: string): ScalarEventFile {
  let fileVersion: string | undefined;
  const scalars: ScalarEvent[] = [];
  for (const record of readRecords(bytes, source)) {
    let event: TfEvent;
    try {
      event = decodeEvent(record.data);
    } catch (error) {
      throw new EsperError(
        ErrorCode.NISSA_TENSORBOARD_CORRUPT,
        `${source}: the record at byte ${record.offset} is not an Event: ${describeError(error)}`,
        {
          cause: error,
          details: { file: source, offset: record.offset },
        },
      );
    }
    if ('fileVersion' in event) fileVersion ??= event.fileVersion;
    else for (const s of event.scalars) scalars.push({ tag: s.tag, step: event.step, value: s.value, wallTimeS: event.wallTimeS });
  }
  return { fileVersion, scalars };
}
