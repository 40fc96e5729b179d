/**
 * A {@link NonceStore} in Redis, for verifiers that restart on other machines: one key per
 * nonce, `<keyPrefix><nonce>`, written with `SET … PX <ttl> NX`, so Redis forgets it at its
 * expiry and a nonce another verifier sharing the prefix already holds is reported
 * (`record` resolves false). The client is injected and never quit here.
 */
import type { Redis } from 'ioredis';
import { ErrorCode, errorMessage, EsperError, optionChecks } from '../core/index.js';
import type { NonceRecord, NonceStore, NonceStoreLoad } from './nonce-store.js';

/** Options of {@link RedisNonceStore}. */
export interface RedisNonceStoreOptions {
  /** The client; not quit by the store. */
  readonly redis: Redis;
  /**
   * Prepended to every nonce to make its key; one prefix per verifier (consumer), e.g.
   * `esper:nonces:kasmina-<run>:`. Must not be empty.
   */
  readonly keyPrefix: string;
}

const SCAN_COUNT = 500;

/** Nonces as expiring Redis keys (see module doc). */
export class RedisNonceStore implements NonceStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: RedisNonceStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = optionChecks('RedisNonceStore').nonEmptyString('keyPrefix', options.keyPrefix);
  }

  get location(): string {
    return `redis key prefix ${this.#prefix}`;
  }

  async load(nowWallMs: number): Promise<NonceStoreLoad> {
    const records: NonceRecord[] = [];
    for (const keys of await this.#keyBatches()) {
      const ttls = await this.#call(() => Promise.all(keys.map((key) => this.#redis.pttl(key))));
      keys.forEach((key, i) => {
        const ttlMs = ttls[i] as number;
        // -2: expired meanwhile; -1: no expiry (not written by this store) — kept one window.
        if (ttlMs === -2) return;
        records.push({ nonce: key.slice(this.#prefix.length), expiresAtMs: nowWallMs + Math.max(ttlMs, 1) });
      });
    }
    return { records, truncatedTailBytes: 0 };
  }

  async record(record: NonceRecord, nowWallMs: number): Promise<boolean> {
    const ttlMs = Math.max(1, Math.ceil(record.expiresAtMs - nowWallMs));
    const reply = await this.#call(() => this.#redis.set(this.#prefix + record.nonce, String(record.expiresAtMs), 'PX', ttlMs, 'NX'));
    return reply === 'OK';
  }

  async clear(): Promise<void> {
    for (const keys of await this.#keyBatches()) {
      if (keys.length > 0) await this.#call(() => this.#redis.unlink(...keys));
    }
  }

  /** Nothing to release: the client is the caller's. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #keyBatches(): Promise<string[][]> {
    const batches: string[][] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.#call(() => this.#redis.scan(cursor, 'MATCH', `${globEscape(this.#prefix)}*`, 'COUNT', SCAN_COUNT));
      cursor = next;
      if (keys.length > 0) batches.push(keys);
    } while (cursor !== '0');
    return batches;
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw new EsperError(ErrorCode.NONCE_STORE_FAILED, `nonce store (${this.location}) failed: ${errorMessage(error)}`, {
        cause: error,
        details: { keyPrefix: this.#prefix },
      });
    }
  }
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
