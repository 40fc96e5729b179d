/**
 * Where a {@link NonceLedger} keeps its nonces so that a restarted verifier still refuses
 * replays: `FileNonceStore` (embedded, a record log under the var dir) or
 * `RedisNonceStore` (distributed). The ledger decides in memory and writes through.
 */

/** One remembered nonce and when it may be forgotten (wall ms). */
export interface NonceRecord {
  readonly nonce: string;
  readonly expiresAtMs: number;
}

/** What {@link NonceStore.load} found. */
export interface NonceStoreLoad {
  /** Nonces unexpired at the time given to `load`, in no particular order. */
  readonly records: readonly NonceRecord[];
  /** Bytes of a torn tail (an append cut short by a crash) dropped while opening; 0 when none. */
  readonly truncatedTailBytes: number;
}

/** Durable storage of a nonce ledger. */
export interface NonceStore {
  /** Where the nonces live (a file path or a key prefix), for telemetry and errors. */
  readonly location: string;
  /** Reads what the store holds; called once, when the ledger opens. */
  load(nowWallMs: number): Promise<NonceStoreLoad>;
  /**
   * Remembers `record` until its expiry; resolves once it is durable. Resolves false when
   * the store already held the nonce (another verifier sharing the store accepted it).
   */
  record(record: NonceRecord, nowWallMs: number): Promise<boolean>;
  /** Forgets every nonce (administrative reset). */
  clear(): Promise<void>;
  /** Releases what the store opened (an injected Redis client is left open). Idempotent. */
  close(): Promise<void>;
}
