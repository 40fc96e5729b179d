/**
 * A {@link NonceStore} in one append-only record log (`src/core` RecordLog): one record per
 * nonce, `[version 1][expiry, wall ms, float64 BE][nonce, UTF-8]`. Expired records are
 * dropped by rewriting the log: at open, and whenever at least half of the records it
 * holds (and at least `compactAfterRecords`) have expired.
 *
 * Recovery: a torn tail (an append cut short by a crash) is cut off and reported through
 * `NonceStoreLoad.truncatedTailBytes` (the ledger emits a WARNING); its nonce's append
 * had not completed. A damaged record with valid records after it, or a record that does
 * not read as a nonce, stops the open with a typed error naming the file — the ledger
 * never starts with a silently shortened memory of what it accepted.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, EsperError, optionChecks, RecordLog, RecordLogFsync } from '../core/index.js';
import type { NonceRecord, NonceStore, NonceStoreLoad } from './nonce-store.js';

/** Default number of records the log must hold before expired ones are compacted away. */
export const DEFAULT_NONCE_COMPACT_AFTER_RECORDS = 1_024;

const RECORD_VERSION = 1;
const HEADER_BYTES = 9;

/** Options of {@link FileNonceStore.open}. */
export interface FileNonceStoreOptions {
  /**
   * Records the log must hold before a rewrite drops the expired ones (and at least half
   * must have expired). @default 1_024
   */
  readonly compactAfterRecords?: number;
}

/** Encodes one nonce record. */
export function encodeNonceRecord(record: NonceRecord): Uint8Array {
  const nonce = utf8.encode(record.nonce);
  const out = new Uint8Array(HEADER_BYTES + nonce.length);
  out[0] = RECORD_VERSION;
  new DataView(out.buffer).setFloat64(1, record.expiresAtMs);
  out.set(nonce, HEADER_BYTES);
  return out;
}

/** Decodes one nonce record; undefined when the bytes are not one. */
export function decodeNonceRecord(payload: Uint8Array): NonceRecord | undefined {
  if (payload.length <= HEADER_BYTES || payload[0] !== RECORD_VERSION) return undefined;
  const expiresAtMs = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getFloat64(1);
  if (!Number.isFinite(expiresAtMs)) return undefined;
  try {
    return { nonce: strictUtf8.decode(payload.subarray(HEADER_BYTES)), expiresAtMs };
  } catch {
    return undefined;
  }
}

/** Nonces in a record log file (see module doc). */
export class FileNonceStore implements NonceStore {
  readonly #log: RecordLog;
  readonly #compactAfterRecords: number;
  /** Expiry of every record in the file, in file order. */
  #expiries: number[] = [];
  #compacting: Promise<void> | undefined;

  private constructor(log: RecordLog, compactAfterRecords: number) {
    this.#log = log;
    this.#compactAfterRecords = compactAfterRecords;
  }

  /**
   * Opens (creating it and its directory if missing) the store at `filePath`.
   * @throws EsperError RECORD_LOG_CORRUPT / RECORD_LOG_IO_FAILED from the log (naming the
   *   file); INVALID_ARGUMENT for bad options.
   */
  static async open(filePath: string, options: FileNonceStoreOptions = {}): Promise<FileNonceStore> {
    const compactAfterRecords = optionChecks('FileNonceStore').integer(
      'compactAfterRecords',
      options.compactAfterRecords ?? DEFAULT_NONCE_COMPACT_AFTER_RECORDS,
      { min: 1 },
    );
    await mkdir(path.dirname(path.resolve(filePath)), { recursive: true });
    return new FileNonceStore(await RecordLog.open(filePath, { fsync: RecordLogFsync.GROUP }), compactAfterRecords);
  }

  /** Absolute path of the file. */
  get location(): string {
    return this.#log.path;
  }

  /** Records in the file now (expired ones not yet compacted included). */
  get fileRecords(): number {
    return this.#expiries.length;
  }

  /**
   * The unexpired nonces; rewrites the file without the expired ones when there are any.
   * @throws EsperError NONCE_STORE_CORRUPT naming the file and offset of a record that is
   *   not a nonce record.
   */
  async load(nowWallMs: number): Promise<NonceStoreLoad> {
    const records: NonceRecord[] = [];
    let expired = 0;
    for await (const { payload, offset } of this.#log.records()) {
      const record = decodeNonceRecord(payload);
      if (record === undefined) {
        throw new EsperError(
          ErrorCode.NONCE_STORE_CORRUPT,
          `nonce store ${this.location}: record at byte ${offset} is not a nonce record`,
          {
            details: { path: this.location, offset },
          },
        );
      }
      if (record.expiresAtMs > nowWallMs) records.push(record);
      else expired += 1;
    }
    if (expired > 0) await this.#rewrite(nowWallMs);
    this.#expiries = records.map((r) => r.expiresAtMs);
    return { records, truncatedTailBytes: this.#log.recovery.truncatedTailBytes };
  }

  async record(record: NonceRecord, nowWallMs: number): Promise<boolean> {
    this.#expiries.push(record.expiresAtMs);
    await this.#log.append(encodeNonceRecord(record));
    if (this.#compacting === undefined && this.#expiries.length >= this.#compactAfterRecords) {
      const expired = this.#expiries.filter((expiry) => expiry <= nowWallMs).length;
      if (expired * 2 >= this.#expiries.length) {
        this.#compacting = this.#rewrite(nowWallMs).finally(() => (this.#compacting = undefined));
        await this.#compacting;
      }
    }
    return true;
  }

  async clear(): Promise<void> {
    this.#expiries = [];
    await this.#log.rewrite(() => false);
  }

  /** Closes the file. Idempotent (the record log's close returns its first call's promise). */
  close(): Promise<void> {
    return this.#log.close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#log.close();
  }

  async #rewrite(nowWallMs: number): Promise<void> {
    const offered = this.#expiries.length;
    const kept: number[] = [];
    await this.#log.rewrite((payload) => {
      const record = decodeNonceRecord(payload);
      if (record === undefined || record.expiresAtMs <= nowWallMs) return false;
      kept.push(record.expiresAtMs);
      return true;
    });
    // Records appended after the rewrite was called went to the new file untouched.
    this.#expiries = [...kept, ...this.#expiries.slice(offered)];
  }
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
