/**
 * The durable record file (spec 00 §2, §3.6): an append-only file of CRC frames, crash-safe
 * on open, with group commit and atomic retention rewrites. Format, recovery rules and
 * durability: docs/record-log.md.
 */
import { constants as fsConstants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { closeOnce } from './close.js';
import { ErrorCode, EsperError } from './errors.js';
import { encodeFrame, type TornTailReason } from './frame.js';
import {
  asLogError,
  errnoDetails,
  ioFailed,
  readCommittedFrames,
  scanForRecovery,
  syncDirectory,
  writeFully,
  type LogRecord,
} from './record-file.js';
import { RecordLogFsync, resolveRecordLogOptions, type RecordLogOptions, type ResolvedRecordLogOptions } from './record-log-options.js';
import { ServiceState } from './service-state.js';

/** What {@link RecordLog.open} found and repaired. */
export interface RecordLogRecovery {
  /** Whether the file did not exist and was created. */
  readonly createdFile: boolean;
  /** Whether a leftover `<path>.rewrite.tmp` from an interrupted rewrite was deleted. */
  readonly removedTempFile: boolean;
  /** Complete records kept. */
  readonly records: number;
  /** Bytes kept (the file size after recovery). */
  readonly bytes: number;
  /** Bytes of torn tail cut off the end of the file (0 when the file ended cleanly). */
  readonly truncatedTailBytes: number;
  /** Offset where the torn tail started, when there was one. */
  readonly tornTailOffset?: number;
  /** Why the tail was judged torn, when there was one. */
  readonly tornTailReason?: TornTailReason;
}

/** Counters of a {@link RecordLog} since it was opened. */
export interface RecordLogStats {
  /** Records in the file. */
  readonly records: number;
  /** Bytes in the file (all durable). */
  readonly bytes: number;
  /** Appends made durable. */
  readonly appends: number;
  /** Appends accepted but not yet durable. */
  readonly pendingAppends: number;
  /** Write batches (one write + one `fdatasync` each; equals `appends` in per-record mode). */
  readonly commits: number;
  /** Every fsync/fdatasync issued: commits, recovery truncation, rewrites, directories. */
  readonly fsyncs: number;
  /** Bytes of torn tail cut off at open. */
  readonly truncatedTailBytes: number;
  /** Completed rewrites. */
  readonly rewrites: number;
}

/** Result of {@link RecordLog.append}. */
export interface AppendResult {
  /**
   * Byte offset of the record's frame in the file. Offsets grow with call order; a
   * {@link RecordLog.rewrite} renumbers the records it keeps.
   */
  readonly offset: number;
}

/**
 * Retention decision for one record: `true` keeps it, `false` drops it, a `Uint8Array`
 * keeps it with that payload instead.
 */
export type RewriteDecision = boolean | Uint8Array;

/** Result of {@link RecordLog.rewrite}. */
export interface RewriteResult {
  readonly kept: number;
  readonly dropped: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/**
 * Lifecycle of a {@link RecordLog}: `open` accepts appends; `failed` after a write or
 * fsync error (appends are refused because their outcome would be unknown; reopen to
 * recover); `closing` once `close()` was called; `closed` when the file is closed.
 */
export type RecordLogState = 'open' | 'failed' | 'closing' | 'closed';

/** Path of the temporary file a rewrite of `logPath` writes before renaming it. */
export function rewriteTempPath(logPath: string): string {
  return `${logPath}.rewrite.tmp`;
}

const WRITE_CHUNK_BYTES = 1 << 20;

interface PendingAppend {
  readonly frame: Uint8Array;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

interface Batch {
  readonly items: PendingAppend[];
  timer?: NodeJS.Timeout;
}

type Op = { readonly kind: 'commit'; readonly batch: Batch } | { readonly kind: 'task'; readonly run: () => Promise<void> };

/**
 * An append-only, crash-safe file of framed records. Create with {@link RecordLog.open};
 * close with {@link RecordLog.close} (or `await using`).
 *
 * Every operation that touches the file runs in call order on one internal queue:
 * appends are written in the order `append` was called and their offsets grow
 * accordingly; `rewrite`, `flush`, `close` and the start of a read see every append
 * called before them.
 */
export class RecordLog implements AsyncDisposable {
  readonly #path: string;
  readonly #options: ResolvedRecordLogOptions;
  readonly #recovery: RecordLogRecovery;
  #handle: FileHandle;
  #end: number;
  #records: number;
  readonly #state: ServiceState<RecordLogState>;
  /** Set by the first write/fsync failure; outlives the switch to `closing`. */
  #failure: { readonly error: unknown } | undefined;
  readonly #closeOnce = closeOnce(() => this.#close());

  readonly #queue: Op[] = [];
  #draining = false;
  #openBatch: Batch | undefined;

  #appends = 0;
  #pendingAppends = 0;
  #commits = 0;
  #fsyncs = 0;
  #rewrites = 0;

  private constructor(
    logPath: string,
    options: ResolvedRecordLogOptions,
    handle: FileHandle,
    recovery: RecordLogRecovery,
    fsyncsAtOpen: number,
  ) {
    this.#path = logPath;
    this.#state = new ServiceState<RecordLogState>(`record log ${logPath}`, 'open');
    this.#options = options;
    this.#handle = handle;
    this.#recovery = recovery;
    this.#end = recovery.bytes;
    this.#records = recovery.records;
    this.#fsyncs = fsyncsAtOpen;
  }

  /**
   * Opens (creating if missing) the log at `logPath` and recovers it by the rules of
   * docs/record-log.md ("Recovery rules"): deletes a leftover `<path>.rewrite.tmp`, scans
   * every frame, cuts a torn tail off the file ({@link RecordLog.recovery} says what was
   * cut) and fails on a damaged record with valid ones after it, skipping nothing.
   *
   * @throws EsperError RECORD_LOG_CORRUPT, RECORD_TOO_LARGE, RECORD_LOG_IO_FAILED
   *   (file-system errors, with the errno in `details.errno`), INVALID_ARGUMENT (options).
   */
  static async open(logPath: string, options: RecordLogOptions = {}): Promise<RecordLog> {
    const resolved = resolveRecordLogOptions(options);
    const absolute = path.resolve(logPath);
    const dir = path.dirname(absolute);
    let fsyncs = 0;
    let removedTempFile = false;
    let createdFile = false;
    let handle: FileHandle | undefined;
    try {
      try {
        await rm(rewriteTempPath(absolute));
        removedTempFile = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      try {
        handle = await open(absolute, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
        createdFile = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        handle = await open(absolute, fsConstants.O_RDWR);
      }
      if (createdFile || removedTempFile) {
        // Make the new file's existence (or the temp file's removal) durable too.
        await syncDirectory(dir);
        fsyncs += 1;
      }
      const { size } = await handle.stat();
      const scan = await scanForRecovery(handle, absolute, size, resolved.maxRecordBytes);
      if (scan.torn !== undefined) {
        await handle.truncate(scan.validEnd);
        await handle.sync();
        fsyncs += 1;
      }
      const recovery: RecordLogRecovery = {
        createdFile,
        removedTempFile,
        records: scan.records,
        bytes: scan.validEnd,
        truncatedTailBytes: size - scan.validEnd,
        ...(scan.torn === undefined ? {} : { tornTailOffset: scan.torn.offset, tornTailReason: scan.torn.reason }),
      };
      return new RecordLog(absolute, resolved, handle, recovery, fsyncs);
    } catch (error) {
      // The open's own error is the one to report; a failing close of a half-opened
      // handle adds nothing the caller can act on.
      await handle?.close().catch(() => undefined);
      throw asLogError(error, 'open', absolute);
    }
  }

  /** Absolute path of the log file. */
  get path(): string {
    return this.#path;
  }

  /** The options in force, defaults applied. */
  get options(): ResolvedRecordLogOptions {
    return this.#options;
  }

  /** What opening found and repaired. */
  get recovery(): RecordLogRecovery {
    return this.#recovery;
  }

  /** Current lifecycle state (see {@link RecordLogState}). */
  get state(): RecordLogState {
    return this.#state.current;
  }

  /** Counters since open. */
  stats(): RecordLogStats {
    return {
      records: this.#records,
      bytes: this.#end,
      appends: this.#appends,
      pendingAppends: this.#pendingAppends,
      commits: this.#commits,
      fsyncs: this.#fsyncs,
      truncatedTailBytes: this.#recovery.truncatedTailBytes,
      rewrites: this.#rewrites,
    };
  }

  /**
   * Appends one record and resolves once it is durable, with its offset. The payload is
   * copied at call time, so the caller may reuse the buffer at once.
   *
   * If the write or fsync fails, this and every queued append reject with
   * RECORD_LOG_IO_FAILED and the log turns `failed`: such a record may or may not be in
   * the file after a crash, and later appends are refused until the log is reopened.
   *
   * @throws EsperError (as a rejection) RECORD_TOO_LARGE over `maxRecordBytes`;
   *   RECORD_LOG_CLOSED once `close()` was called; RECORD_LOG_IO_FAILED as above;
   *   INVALID_ARGUMENT for a non-`Uint8Array` payload.
   */
  append(payload: Uint8Array): Promise<AppendResult> {
    try {
      this.#checkAppend(payload);
    } catch (error) {
      return Promise.reject(error);
    }
    const frame = encodeFrame(payload, { maxPayloadBytes: this.#options.maxRecordBytes });
    return new Promise<AppendResult>((resolve, reject) => {
      this.#pendingAppends += 1;
      const item: PendingAppend = { frame, resolve, reject };
      if (this.#options.fsync === RecordLogFsync.PER_RECORD) {
        this.#queue.push({ kind: 'commit', batch: { items: [item] } });
        this.#kick();
        return;
      }
      let batch = this.#openBatch;
      if (batch === undefined) {
        batch = { items: [] };
        this.#openBatch = batch;
        // Not unref'd: a caller awaiting this append must keep the process alive.
        batch.timer = setTimeout(() => this.#sealOpenBatch(), this.#options.groupCommitMaxDelayMs);
      }
      batch.items.push(item);
      if (batch.items.length >= this.#options.groupCommitMaxRecords) this.#sealOpenBatch();
    });
  }

  #checkAppend(payload: Uint8Array): void {
    this.#requireOpen('append');
    if (this.#failure !== undefined) throw this.#failedError();
    if (!(payload instanceof Uint8Array)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'a record payload must be a Uint8Array', {
        details: { field: 'payload' },
      });
    }
    if (payload.length > this.#options.maxRecordBytes) {
      throw new EsperError(
        ErrorCode.RECORD_TOO_LARGE,
        `record of ${payload.length} bytes exceeds maxRecordBytes ${this.#options.maxRecordBytes}`,
        { details: { path: this.#path, payloadBytes: payload.length, maxRecordBytes: this.#options.maxRecordBytes } },
      );
    }
  }

  /** Refuses `action` once `close()` was called (a `failed` log still reads). */
  #requireOpen(action: string): void {
    this.#state.require(['open', 'failed'], action, { code: ErrorCode.RECORD_LOG_CLOSED, details: { path: this.#path } });
  }

  #failedError(): EsperError {
    return ioFailed(`record log ${this.#path} failed earlier and refuses writes; reopen it`, this.#failure?.error, {
      path: this.#path,
      state: 'failed',
    });
  }

  /** Resolves once every append called before it is durable (rejects if any failed). */
  flush(): Promise<void> {
    return this.#runTask(async () => {
      if (this.#failure !== undefined) throw this.#failedError();
    });
  }

  /**
   * Iterates the records durable when iteration starts, in file order, through a
   * separate read handle (appends may continue meanwhile; they are not visited).
   *
   * @throws EsperError RECORD_LOG_CORRUPT if the committed part of the file changed under
   *   the log (damaged after open); RECORD_LOG_CLOSED after close.
   */
  async *records(): AsyncGenerator<LogRecord> {
    const snapshot = await this.#runTask(async () => {
      this.#requireOpen('read');
      // Opened inside the queue so that no rewrite can swap the file between reading the
      // committed length and opening the handle.
      const handle = await open(this.#path, 'r').catch((error: unknown) => {
        throw asLogError(error, 'open for reading', this.#path);
      });
      return { handle, end: this.#end };
    });
    try {
      yield* readCommittedFrames(snapshot.handle, this.#path, snapshot.end, this.#options.maxRecordBytes);
    } finally {
      await snapshot.handle.close();
    }
  }

  /** All records durable now, in file order (see {@link RecordLog.records}). */
  async readAll(): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    for await (const record of this.records()) out.push(record);
    return out;
  }

  /**
   * Retention: rewrites the log keeping the records `keep` accepts (optionally with a new
   * payload), in order. Steps: write survivors to `<path>.rewrite.tmp` → fsync it →
   * rename over the log → fsync the directory → continue appending to the new file. A
   * crash before the rename leaves the old file (the next open deletes the temp file);
   * after it, the new one. Appends called before `rewrite` are included; appends called
   * after it go to the new file and are not offered to `keep`.
   *
   * If `keep` throws, or writing the temp file fails, the temp file is removed and the
   * log continues unchanged. If the directory fsync fails after the rename, the log
   * turns `failed`.
   *
   * @throws whatever `keep` throws; EsperError RECORD_TOO_LARGE (a replacement payload
   *   over the bound), RECORD_LOG_IO_FAILED, RECORD_LOG_CLOSED.
   */
  rewrite(keep: (payload: Uint8Array, offset: number) => RewriteDecision): Promise<RewriteResult> {
    return this.#runTask(() => this.#rewrite(keep));
  }

  async #rewrite(keep: (payload: Uint8Array, offset: number) => RewriteDecision): Promise<RewriteResult> {
    this.#requireOpen('rewrite');
    if (this.#failure !== undefined) throw this.#failedError();
    const tempPath = rewriteTempPath(this.#path);
    const bytesBefore = this.#end;
    let temp: FileHandle | undefined;
    let kept = 0;
    let dropped = 0;
    let written = 0;
    let keepError: { readonly error: unknown } | undefined;
    try {
      temp = await open(tempPath, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_TRUNC, 0o644);
      let chunk: Uint8Array[] = [];
      let chunkBytes = 0;
      for await (const record of readCommittedFrames(this.#handle, this.#path, this.#end, this.#options.maxRecordBytes)) {
        let decision: RewriteDecision;
        try {
          decision = keep(record.payload, record.offset);
        } catch (error) {
          keepError = { error };
          throw error;
        }
        if (decision === false) {
          dropped += 1;
          continue;
        }
        if (decision !== true && !(decision instanceof Uint8Array)) {
          throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'rewrite: keep() must return a boolean or a Uint8Array', {
            details: { field: 'keep', offset: record.offset },
          });
        }
        const frame = encodeFrame(decision === true ? record.payload : decision, {
          maxPayloadBytes: this.#options.maxRecordBytes,
        });
        chunk.push(frame);
        chunkBytes += frame.length;
        kept += 1;
        if (chunkBytes >= WRITE_CHUNK_BYTES) {
          written += await writeFully(temp, chunk, written);
          chunk = [];
          chunkBytes = 0;
        }
      }
      written += await writeFully(temp, chunk, written);
      await temp.sync();
      this.#fsyncs += 1;
      await rename(tempPath, this.#path);
    } catch (error) {
      // The first error is the one to report; the temp file is removed best-effort here
      // and, failing that, by the next open.
      await temp?.close().catch(() => undefined);
      await rm(tempPath, { force: true }).catch(() => undefined);
      if (keepError !== undefined) throw keepError.error;
      throw asLogError(error, 'rewrite', this.#path);
    }
    // The rename happened: the path now names the new file, so switch to it whatever
    // happens next.
    const old = this.#handle;
    this.#handle = temp;
    this.#end = written;
    this.#records = kept;
    this.#rewrites += 1;
    try {
      await syncDirectory(path.dirname(this.#path));
      this.#fsyncs += 1;
    } catch (error) {
      this.#fail(error);
      await old.close().catch(() => undefined);
      throw asLogError(error, 'directory fsync after rewrite', this.#path);
    }
    try {
      await old.close();
    } catch (error) {
      throw asLogError(error, 'closing the replaced file', this.#path);
    }
    return { kept, dropped, bytesBefore, bytesAfter: written };
  }

  /**
   * Flushes every pending append (group commits included), then closes the file.
   * Idempotent: every call returns the first call's promise. Appends called after it
   * reject with RECORD_LOG_CLOSED.
   */
  close(): Promise<void> {
    return this.#closeOnce();
  }

  async #close(): Promise<void> {
    this.#state.set('closing');
    try {
      await this.#runTask(async () => {
        await this.#handle.close();
      });
    } catch (error) {
      throw asLogError(error, 'close', this.#path);
    } finally {
      this.#state.set('closed');
    }
  }

  /** Same as {@link RecordLog.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #fail(error: unknown): void {
    if (this.#state.is('open')) this.#state.set('failed');
    this.#failure ??= { error };
  }

  /** Queues `run` after everything called before it and returns its outcome. */
  #runTask<T>(run: () => Promise<T>): Promise<T> {
    // Appends called before this task belong before it.
    this.#sealOpenBatch();
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        kind: 'task',
        run: () => run().then(resolve, reject),
      });
      this.#kick();
    });
  }

  #sealOpenBatch(): void {
    const batch = this.#openBatch;
    if (batch === undefined) return;
    clearTimeout(batch.timer);
    this.#openBatch = undefined;
    this.#queue.push({ kind: 'commit', batch });
    this.#kick();
  }

  #kick(): void {
    if (this.#draining) return;
    this.#draining = true;
    // #drain settles the promise of every op it runs; an unexpected throw past that is a
    // bug, reported by failing the log so that no later append is acknowledged blindly.
    this.#drain().catch((error: unknown) => this.#fail(error));
  }

  async #drain(): Promise<void> {
    try {
      for (let op = this.#queue.shift(); op !== undefined; op = this.#queue.shift()) {
        if (op.kind === 'task') {
          await op.run();
        } else {
          await this.#commitBatches(op.batch);
        }
        // Appends that arrived while the file was busy have waited long enough: commit
        // them next rather than after their timer.
        if (this.#queue.length === 0) this.#sealOpenBatch();
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Commits `first`; in group mode, also the commits queued right behind it (batches
   * sealed while the previous sync ran) in the same write + sync, up to the batch bound.
   */
  async #commitBatches(first: Batch): Promise<void> {
    const items = [...first.items];
    if (this.#options.fsync === RecordLogFsync.GROUP) {
      for (let next = this.#queue[0]; next?.kind === 'commit'; next = this.#queue[0]) {
        if (items.length + next.batch.items.length > this.#options.groupCommitMaxRecords) break;
        items.push(...next.batch.items);
        this.#queue.shift();
      }
    }
    await this.#commit(items);
  }

  async #commit(items: readonly PendingAppend[]): Promise<void> {
    if (this.#failure !== undefined) {
      const error = this.#failedError();
      for (const item of items) item.reject(error);
      this.#pendingAppends -= items.length;
      return;
    }
    const start = this.#end;
    try {
      await writeFully(
        this.#handle,
        items.map((item) => item.frame),
        start,
      );
      await this.#handle.datasync();
    } catch (error) {
      this.#fail(error);
      const failure = ioFailed(
        `record log ${this.#path}: append failed (write or fsync error); the records' presence after a crash is unknown`,
        error,
        { path: this.#path, offset: start, records: items.length, ...errnoDetails(error) },
      );
      for (const item of items) item.reject(failure);
      this.#pendingAppends -= items.length;
      return;
    }
    this.#fsyncs += 1;
    this.#commits += 1;
    let offset = start;
    for (const item of items) {
      item.resolve({ offset });
      offset += item.frame.length;
    }
    this.#end = offset;
    this.#records += items.length;
    this.#appends += items.length;
    this.#pendingAppends -= items.length;
  }
}
