/**
 * Kasmina's kernel cache: an LRU + TTL map of verified artifact bytes keyed by
 * `(blueprintId, siteKey)`. Departures from the prototype (reference prototype-kasmina
 * §9.1–§9.2, §17 items 7 and 12): it holds bytes, never live modules; one cache with a
 * capacity and a TTL replaces the GPU LRU + TTL pair; `clear()` keeps the counters.
 */
import { optionChecks, systemClock, type Clock } from '../core/index.js';

/** One cached artifact. `bytes` are shared with the cache: read them, never write them. */
export interface KernelCacheEntry {
  readonly bytes: Uint8Array;
  /** SHA-256 hex of `bytes`, as verified by the library. */
  readonly checksum: string;
  readonly guardDigest: string;
  readonly siteKey: string;
  /** `clock.monotonicMs()` when the entry was stored. */
  readonly loadedAtMs: number;
}

/** What {@link KernelCache.set} takes. */
export interface KernelCacheInput {
  readonly bytes: Uint8Array;
  readonly checksum: string;
  readonly guardDigest: string;
}

/** Options of {@link KernelCache}. */
export interface KernelCacheOptions {
  /**
   * Most entries kept; past it the least recently used one is evicted. Integer ≥ 1.
   * (`settings.kasmina.kernelCacheCapacity`)
   * @default 32
   */
  readonly capacity?: number;
  /**
   * How long an entry is served after it was stored, in seconds. Finite, > 0.
   * (`settings.kasmina.kernelCacheTtlSeconds`)
   * @default 300
   */
  readonly ttlSeconds?: number;
  /** Time source of entry ages. @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link KernelCacheOptions}; the one place they live. */
export const KERNEL_CACHE_DEFAULTS = Object.freeze({ capacity: 32, ttlSeconds: 300 });

/** Counters and gauges of a {@link KernelCache}. Counters only grow. */
export interface KernelCacheStats {
  readonly size: number;
  readonly capacity: number;
  readonly hits: number;
  /** Lookups that found nothing, or found an expired entry. */
  readonly misses: number;
  /** Entries dropped by the cache itself: LRU evictions plus expiries. */
  readonly evictions: number;
  /** The expiry subset of `evictions` (found expired by `get` or removed by `cleanup`). */
  readonly expired: number;
  /** hits / (hits + misses), 0 before any lookup. */
  readonly hitRate: number;
}

interface Slot {
  readonly blueprintId: string;
  readonly entry: KernelCacheEntry;
}

/** LRU + TTL cache of verified kernel artifact bytes. */
export class KernelCache {
  readonly #capacity: number;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  /** Insertion order = recency order (oldest first). */
  readonly #slots = new Map<string, Slot>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expired = 0;

  /** @throws EsperError `INVALID_ARGUMENT` naming the bad option. */
  constructor(options: KernelCacheOptions = {}) {
    const check = optionChecks('KernelCache');
    this.#capacity = check.integer('capacity', options.capacity ?? KERNEL_CACHE_DEFAULTS.capacity, { min: 1 });
    this.#ttlMs = check.positive('ttlSeconds', options.ttlSeconds ?? KERNEL_CACHE_DEFAULTS.ttlSeconds) * 1000;
    this.#clock = options.clock ?? systemClock;
  }

  /** The entry of `(blueprintId, siteKey)` if present and fresh; counts a hit or a miss. */
  get(blueprintId: string, siteKey: string): KernelCacheEntry | undefined {
    const key = cacheKey(blueprintId, siteKey);
    const slot = this.#slots.get(key);
    if (slot === undefined) {
      this.#misses += 1;
      return undefined;
    }
    this.#slots.delete(key);
    if (this.#isExpired(slot.entry)) {
      this.#expired += 1;
      this.#evictions += 1;
      this.#misses += 1;
      return undefined;
    }
    this.#slots.set(key, slot);
    this.#hits += 1;
    return slot.entry;
  }

  /**
   * Stores a copy of `input.bytes` under `(blueprintId, siteKey)` as the most recent entry,
   * replacing any earlier one; evicts the least recent entry when full. Returns the entry.
   */
  set(blueprintId: string, siteKey: string, input: KernelCacheInput): KernelCacheEntry {
    const key = cacheKey(blueprintId, siteKey);
    const entry: KernelCacheEntry = Object.freeze({
      bytes: input.bytes.slice(),
      checksum: input.checksum,
      guardDigest: input.guardDigest,
      siteKey,
      loadedAtMs: this.#clock.monotonicMs(),
    });
    this.#slots.delete(key);
    while (this.#slots.size >= this.#capacity) {
      const oldest = this.#slots.keys().next();
      if (oldest.done === true) break;
      this.#slots.delete(oldest.value);
      this.#evictions += 1;
    }
    this.#slots.set(key, { blueprintId, entry });
    return entry;
  }

  /** Removes one entry (not counted as an eviction). Returns whether it existed. */
  delete(blueprintId: string, siteKey: string): boolean {
    return this.#slots.delete(cacheKey(blueprintId, siteKey));
  }

  /** Removes every entry of `blueprintId`, whatever its site key. Returns how many. */
  deleteBlueprint(blueprintId: string): number {
    let removed = 0;
    for (const [key, slot] of this.#slots) {
      if (slot.blueprintId === blueprintId) {
        this.#slots.delete(key);
        removed += 1;
      }
    }
    return removed;
  }

  /** Removes every expired entry (counted as expired evictions). Returns how many. */
  cleanup(): number {
    let removed = 0;
    for (const [key, slot] of this.#slots) {
      if (this.#isExpired(slot.entry)) {
        this.#slots.delete(key);
        removed += 1;
      }
    }
    this.#expired += removed;
    this.#evictions += removed;
    return removed;
  }

  /** Removes every entry (not counted as evictions; counters kept). Returns how many. */
  clear(): number {
    const size = this.#slots.size;
    this.#slots.clear();
    return size;
  }

  /** Entries now (expired ones not yet found included). */
  get size(): number {
    return this.#slots.size;
  }

  /** Counters and gauges. */
  stats(): KernelCacheStats {
    const lookups = this.#hits + this.#misses;
    return {
      size: this.#slots.size,
      capacity: this.#capacity,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      expired: this.#expired,
      hitRate: lookups === 0 ? 0 : this.#hits / lookups,
    };
  }

  /** Served for exactly `ttlSeconds`; older is expired (prototype §9.2: expiry < now). */
  #isExpired(entry: KernelCacheEntry): boolean {
    return this.#clock.monotonicMs() - entry.loadedAtMs > this.#ttlMs;
  }
}

function cacheKey(blueprintId: string, siteKey: string): string {
  return `${blueprintId}\u0000${siteKey}`;
}
