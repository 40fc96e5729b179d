/**
 * The cache of verified artifact bytes: LRU with a TTL after which an entry is re-read and
 * re-verified, and a generation that keeps a load racing a save from caching stale bytes.
 */
import type { Clock } from '../core/index.js';

/** One cached artifact: bytes verified against `record` at `verifiedAtMs` (monotonic). */
export interface CacheEntry<Record> {
  readonly bytes: Uint8Array;
  readonly record: Record;
  readonly verifiedAtMs: number;
}

/** Counters of an {@link ArtifactCache}. */
export interface ArtifactCacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Entries dropped because their TTL elapsed. */
  readonly expired: number;
  /** Entries dropped to stay within the entry bound. */
  readonly evictions: number;
  readonly size: number;
}

/** LRU + TTL cache keyed by `(blueprintId, siteKey)`. */
export class ArtifactCache<Record> {
  readonly #entries = new Map<string, CacheEntry<Record>>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  #generation = 0;
  #hits = 0;
  #misses = 0;
  #expired = 0;
  #evictions = 0;

  /** @param options `maxEntries` 0 disables caching; `ttlMs` in ms. */
  constructor(options: { readonly maxEntries: number; readonly ttlMs: number; readonly clock: Clock }) {
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
    this.#clock = options.clock;
  }

  /** Bumped by {@link invalidate}; pass the value read before a load to {@link put}. */
  get generation(): number {
    return this.#generation;
  }

  /** The entry verified within the TTL (counted as a hit, made most recent), else `undefined` (a miss). */
  get(blueprintId: string, siteKey: string): CacheEntry<Record> | undefined {
    const key = cacheKey(blueprintId, siteKey);
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      if (this.#clock.monotonicMs() - entry.verifiedAtMs < this.#ttlMs) {
        this.#entries.set(key, entry);
        this.#hits += 1;
        return entry;
      }
      this.#expired += 1;
    }
    this.#misses += 1;
    return undefined;
  }

  /**
   * Caches bytes verified now, unless something was invalidated since `generation` was read
   * (a save or delete raced the load) or caching is off.
   */
  put(blueprintId: string, siteKey: string, bytes: Uint8Array, record: Record, generation: number): void {
    if (generation !== this.#generation || this.#maxEntries === 0) return;
    const key = cacheKey(blueprintId, siteKey);
    this.#entries.delete(key);
    this.#entries.set(key, { bytes, record, verifiedAtMs: this.#clock.monotonicMs() });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
      this.#evictions += 1;
    }
  }

  /** Drops the entries of `blueprintId` (one site, or all without `siteKey`) and bumps the generation. */
  invalidate(blueprintId: string, siteKey?: string): void {
    this.#generation += 1;
    if (siteKey !== undefined) {
      this.#entries.delete(cacheKey(blueprintId, siteKey));
      return;
    }
    const prefix = cacheKey(blueprintId, '');
    for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix)) this.#entries.delete(key);
  }

  /** Drops every entry. */
  clear(): void {
    this.#generation += 1;
    this.#entries.clear();
  }

  /** Counters so far. */
  stats(): ArtifactCacheStats {
    return { hits: this.#hits, misses: this.#misses, expired: this.#expired, evictions: this.#evictions, size: this.#entries.size };
  }
}

function cacheKey(blueprintId: string, siteKey: string): string {
  return `${blueprintId}\u0000${siteKey}`;
}
