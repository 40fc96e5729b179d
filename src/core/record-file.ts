/**
 * File I/O under the record log: whole reads and writes, directory fsync, the I/O errors
 * of a log, and the two frame scans of a file (recovery at open, committed reads).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { ErrorCode, EsperError, isEsperError } from './errors.js';
import { errorMessage } from './failure.js';
import { FRAME_HEADER_BYTES, probeFrame, type FrameDefect, type FrameProbe, type TornTailReason } from './frame.js';

/** One record read back from the log. */
export interface LogRecord {
  /** Byte offset of the record's frame in the file. */
  readonly offset: number;
  /** The payload (a private copy). */
  readonly payload: Uint8Array;
}
const READ_CHUNK_BYTES = 1 << 20;
/** A `RECORD_LOG_IO_FAILED` error. */
export function ioFailed(message: string, cause: unknown, details: Record<string, string | number | boolean>): EsperError {
  return new EsperError(ErrorCode.RECORD_LOG_IO_FAILED, message, { cause, details });
}

/** `{ errno }` of a file-system error, for error details. */
export function errnoDetails(error: unknown): { errno?: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { errno: code } : {};
}

/** Wraps a non-Esper error from the file system; Esper errors pass through unchanged. */
export function asLogError(error: unknown, what: string, logPath: string): unknown {
  if (isEsperError(error)) return error;
  return ioFailed(`record log ${logPath}: ${what} failed: ${errorMessage(error)}`, error, {
    path: logPath,
    ...errnoDetails(error),
  });
}

async function readFully(handle: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let filled = 0;
  while (filled < into.length) {
    const { bytesRead } = await handle.read(into, filled, into.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** Writes every byte of `buffers` at `position`, however many `writev` calls it takes; returns the bytes written. */
export async function writeFully(handle: FileHandle, buffers: readonly Uint8Array[], position: number): Promise<number> {
  let pending = buffers.filter((b) => b.length > 0);
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    at += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < pending.length && skip >= pending[i]!.length) skip -= pending[i++]!.length;
    pending = pending.slice(i);
    if (skip > 0) pending[0] = pending[0]!.subarray(skip);
  }
  return at - position;
}

/** Fsyncs directory `dir`, so a created, removed or renamed entry in it is durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A {@link FrameProbe} with file offsets. */
type FileProbe =
  | { readonly kind: 'frame'; readonly payload: Uint8Array; readonly end: number }
  | { readonly kind: 'incomplete'; readonly part: 'header' | 'payload' }
  | { readonly kind: 'defect'; readonly defect: FrameDefect; readonly payloadBytes?: number; readonly end?: number };

/**
 * A sliding read window over `[0, limit)` of a file, so frames are checked without
 * loading the whole file. Payload views point into the window; copy what must outlive it.
 */
class FileWindow {
  #base = 0;
  #bytes = new Uint8Array(0);
  #limit: number;

  constructor(
    private readonly handle: FileHandle,
    limit: number,
    private readonly maxPayloadBytes: number,
  ) {
    this.#limit = limit;
  }

  /** End of the bytes this window reads: the expected length, or less if the file ended first. */
  get limit(): number {
    return this.#limit;
  }

  /** The probe at `pos` if the window already holds enough bytes to decide, else undefined. */
  probeCached(pos: number): FileProbe | undefined {
    const at = pos - this.#base;
    if (at < 0 || at > this.#bytes.length) return undefined;
    const probe = probeFrame(this.#bytes, at, this.maxPayloadBytes);
    if (probe.kind === 'incomplete') {
      // Incomplete within the window is final only if the window reaches the limit.
      if (this.#base + this.#bytes.length < this.limit && pos + probe.neededBytes <= this.limit) return undefined;
      return { kind: 'incomplete', part: probe.part };
    }
    return this.#absolute(probe, at, pos);
  }

  /** The probe at `pos`, reading from the file as needed. */
  async probe(pos: number): Promise<FileProbe> {
    let need = FRAME_HEADER_BYTES;
    for (;;) {
      const cached = this.probeCached(pos);
      if (cached !== undefined) return cached;
      await this.#load(pos, need);
      const probe = probeFrame(this.#bytes, 0, this.maxPayloadBytes);
      if (probe.kind !== 'incomplete') return this.#absolute(probe, 0, pos);
      if (pos + probe.neededBytes > this.limit || probe.neededBytes <= need) {
        return { kind: 'incomplete', part: probe.part };
      }
      need = probe.neededBytes;
    }
  }

  #absolute(probe: Exclude<FrameProbe, { kind: 'incomplete' }>, at: number, pos: number): FileProbe {
    if (probe.end === undefined) return probe;
    return { ...probe, end: probe.end - at + pos };
  }

  async #load(pos: number, need: number): Promise<void> {
    const size = Math.min(Math.max(need, READ_CHUNK_BYTES), this.limit - pos);
    const bytes = new Uint8Array(size);
    const got = await readFully(this.handle, bytes, pos);
    this.#base = pos;
    this.#bytes = bytes.subarray(0, got);
    // A file shorter than expected (cut under the reader) simply ends early: frames past
    // the new end probe as incomplete, at their own offsets.
    if (got < size) this.#limit = pos + got;
  }
}

/** First offset ≥ `from` where a valid frame starts, or -1 (see `findValidFrame`). */
async function findValidFrameInFile(window: FileWindow, from: number): Promise<number> {
  for (let at = from; at + FRAME_HEADER_BYTES <= window.limit; at++) {
    const probe = window.probeCached(at) ?? (await window.probe(at));
    if (probe.kind === 'frame') return at;
  }
  return -1;
}

function corruptError(logPath: string, offset: number, defect: FrameDefect | 'truncated', nextValidOffset?: number): EsperError {
  const follow = nextValidOffset === undefined ? '' : `; a valid record follows at offset ${nextValidOffset}`;
  return new EsperError(ErrorCode.RECORD_LOG_CORRUPT, `record log ${logPath}: corrupt record at offset ${offset} (${defect})${follow}`, {
    details: {
      path: logPath,
      offset,
      defect,
      ...(nextValidOffset === undefined ? {} : { nextValidOffset }),
    },
  });
}

function tooLargeOnDisk(logPath: string, offset: number, payloadBytes: number, maxRecordBytes: number): EsperError {
  return new EsperError(
    ErrorCode.RECORD_TOO_LARGE,
    `record log ${logPath}: record at offset ${offset} declares ${payloadBytes} bytes, over maxRecordBytes ${maxRecordBytes}`,
    { details: { path: logPath, offset, payloadBytes, maxRecordBytes } },
  );
}

/**
 * Reads the frames of `[start, end)` of a file that must hold only valid frames (the
 * committed part of a log). Any defect is corruption.
 */
export async function* readCommittedFrames(
  handle: FileHandle,
  logPath: string,
  end: number,
  maxRecordBytes: number,
): AsyncGenerator<LogRecord> {
  const window = new FileWindow(handle, end, maxRecordBytes);
  let offset = 0;
  while (offset < end) {
    const probe = window.probeCached(offset) ?? (await window.probe(offset));
    if (probe.kind === 'frame') {
      yield { offset, payload: probe.payload.slice() };
      offset = probe.end;
    } else if (probe.kind === 'incomplete') {
      throw corruptError(logPath, offset, 'truncated');
    } else if (probe.defect === 'length-over-limit') {
      throw tooLargeOnDisk(logPath, offset, probe.payloadBytes ?? 0, maxRecordBytes);
    } else {
      throw corruptError(logPath, offset, probe.defect);
    }
  }
}

/** What the recovery scan found: the complete records and where a torn tail starts. */
export interface ScanResult {
  readonly records: number;
  readonly validEnd: number;
  readonly torn?: { readonly offset: number; readonly reason: TornTailReason };
}

/** Recovery scan: the tail rule of docs/record-log.md ("Recovery rules"). */
export async function scanForRecovery(handle: FileHandle, logPath: string, size: number, maxRecordBytes: number): Promise<ScanResult> {
  const window = new FileWindow(handle, size, maxRecordBytes);
  let offset = 0;
  let records = 0;
  while (offset < size) {
    const probe = window.probeCached(offset) ?? (await window.probe(offset));
    if (probe.kind === 'frame') {
      records += 1;
      offset = probe.end;
      continue;
    }
    if (probe.kind === 'incomplete') {
      return {
        records,
        validEnd: offset,
        torn: { offset, reason: probe.part === 'header' ? 'header-incomplete' : 'payload-incomplete' },
      };
    }
    if (probe.defect === 'length-over-limit') {
      throw tooLargeOnDisk(logPath, offset, probe.payloadBytes ?? 0, maxRecordBytes);
    }
    const next = await findValidFrameInFile(window, probe.end ?? offset + 1);
    if (next >= 0) throw corruptError(logPath, offset, probe.defect, next);
    return { records, validEnd: offset, torn: { offset, reason: probe.defect } };
  }
  return { records, validEnd: offset };
}

/**
 * An append-only, crash-safe file of framed records. Create with {@link RecordLog.open};
 * close with {@link RecordLog.close} (or `await using`).
 *
 * Every operation that touches the file runs in call order on one internal queue:
 * appends are written in the order `append` was called and their offsets grow
 * accordingly; `rewrite`, `flush`, `close` and the start of a read see every append
 * called before them.
 */
