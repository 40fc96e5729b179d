/**
 * Kernel acquisition for one seed (reference prototype-kasmina §7.1, §9.1): under the
 * blueprint's lock, the verified artifact bytes from the {@link KernelCache} or the
 * {@link KernelSource} (which verifies the checksum), then a fresh module rebuilt from them.
 * Departures from the prototype: no fallback kernel (a failed load is the source's typed
 * error); two seeds of a blueprint never share a module (§17 item 7); a cache hit reports
 * its real latency.
 */
import {
  buildTelemetryPacket,
  ErrorCode,
  isEsperError,
  optionChecks,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import type { KarnCatalog, SeedModule } from '../karn/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { loadArtifact } from '../tezzeret/index.js';
import type { KernelCache, KernelCacheEntry } from './kernel-cache.js';
import type { KeyedLocks } from './locks.js';
import { KasminaEvent, KasminaMetric } from './names.js';

/**
 * Where verified artifact bytes come from. `UrzaLibrary` satisfies it; the source owns the
 * integrity check and throws typed errors (`URZA_NOT_FOUND`, `URZA_INTEGRITY_FAILURE`).
 */
export interface KernelSource {
  load(
    blueprintId: string,
    siteKey: string,
  ): Promise<{
    readonly bytes: Uint8Array;
    readonly record: { readonly checksum: string; readonly guardDigest: string; readonly siteKey: string };
  }>;
}

/** Options of {@link KernelFetcher}. */
export interface KernelFetcherOptions {
  /** Where artifacts are loaded from on a cache miss. Required; not closed by the fetcher. */
  readonly source: KernelSource;
  /** Cache of verified bytes, shared with the memory governor. Required. */
  readonly cache: KernelCache;
  /** Per-blueprint locks, shared with the other attach paths. Required. */
  readonly locks: KeyedLocks;
  /** Catalog that rebuilds modules. @default Tezzeret's shared `KarnCatalog()` */
  readonly catalog?: KarnCatalog;
  /** Time source of latencies and lock waits. @default systemClock */
  readonly clock?: Clock;
  /**
   * Budget of one fetch, in ms (`settings.kasmina.kernelLatencyBudgetMs`); a slower fetch
   * is reported as `overBudget` (G2 decides what it means).
   */
  readonly latencyBudgetMs: number;
  /**
   * A lock wait longer than this, in ms, raises WARNING `cache_lock_contention`
   * (`settings.kasmina.lockContentionWarnMs`).
   */
  readonly lockContentionWarnMs: number;
  /** Receives `cache_lock_contention` events. Required. */
  readonly telemetry: TelemetrySink;
  /** Run stamped on packets. @default '' */
  readonly trainingRunId?: string;
}

/** Per-call options of {@link KernelFetcher.fetch}. */
export interface KernelFetchOptions {
  /** Aborting it while the blueprint's lock is awaited gives the fetch up. */
  readonly signal?: AbortSignal;
}

/** A kernel fetched for one seed. */
export interface FetchedSeedKernel {
  /** A fresh module owned by the caller (dispose it); never shared with another seed. */
  readonly module: SeedModule;
  /** Whole fetch: lock wait, cache lookup or load, and module rebuild, in ms. */
  readonly latencyMs: number;
  /** `latencyMs` > `latencyBudgetMs`. */
  readonly overBudget: boolean;
  /** The bytes came from the cache. */
  readonly cacheHit: boolean;
  /** Time spent waiting for the blueprint's lock, in ms. */
  readonly waitedMs: number;
  /** SHA-256 hex of the artifact bytes. */
  readonly checksum: string;
  readonly guardDigest: string;
}

/** Counters of a {@link KernelFetcher}. */
export interface KernelFetcherStats {
  /** Fetches that returned a module. */
  readonly fetched: number;
  /** Fetches that threw. */
  readonly failed: number;
  readonly cacheHits: number;
  /** `cache_lock_contention` events emitted. */
  readonly contentionEvents: number;
  readonly lastLockWaitMs: number;
  readonly maxLockWaitMs: number;
  /** Latency of the last successful fetch, in ms (0 before one). */
  readonly lastFetchLatencyMs: number;
}

const SOURCE = 'kasmina';
const fetchCheck = optionChecks('KernelFetcher.fetch');

/** Fetches seed kernels through the cache and the per-blueprint locks. */
export class KernelFetcher {
  readonly #source: KernelSource;
  readonly #cache: KernelCache;
  readonly #locks: KeyedLocks;
  readonly #catalog: KarnCatalog | undefined;
  readonly #clock: Clock;
  readonly #latencyBudgetMs: number;
  readonly #lockContentionWarnMs: number;
  readonly #telemetry: TelemetrySink;
  readonly #trainingRunId: string;
  #fetched = 0;
  #failed = 0;
  #cacheHits = 0;
  #contentionEvents = 0;
  #lastLockWaitMs = 0;
  #maxLockWaitMs = 0;
  #lastFetchLatencyMs = 0;

  /** @throws EsperError `INVALID_ARGUMENT` naming a bad budget or threshold. */
  constructor(options: KernelFetcherOptions) {
    const check = optionChecks('KernelFetcher');
    this.#source = options.source;
    this.#cache = options.cache;
    this.#locks = options.locks;
    this.#catalog = options.catalog;
    this.#clock = options.clock ?? systemClock;
    this.#latencyBudgetMs = check.positive('latencyBudgetMs', options.latencyBudgetMs);
    this.#lockContentionWarnMs = check.positive('lockContentionWarnMs', options.lockContentionWarnMs);
    this.#telemetry = options.telemetry;
    this.#trainingRunId = options.trainingRunId ?? '';
  }

  /**
   * Fetches `(blueprintId, siteKey)` and rebuilds its module under variable scope `scope`
   * (unique per live module, e.g. the seed id).
   * @throws EsperError `INVALID_ARGUMENT` for an empty id, site key or scope; the source's
   *   errors unchanged (`URZA_NOT_FOUND`, `URZA_INTEGRITY_FAILURE`, `BREAKER_OPEN`, ...);
   *   `TEZZERET_ARTIFACT_INVALID` when the bytes cannot be rebuilt (the entry is then
   *   dropped from the cache); the signal's reason when aborted while waiting for the lock.
   */
  async fetch(blueprintId: string, siteKey: string, scope: string, options: KernelFetchOptions = {}): Promise<FetchedSeedKernel> {
    fetchCheck.nonEmptyString('blueprintId', blueprintId);
    fetchCheck.nonEmptyString('siteKey', siteKey);
    fetchCheck.nonEmptyString('scope', scope);
    const startMs = this.#clock.monotonicMs();
    try {
      const { value, waitedMs } = await this.#locks.runExclusive(blueprintId, () => this.#bytesOf(blueprintId, siteKey), options);
      this.#recordLockWait(blueprintId, siteKey, waitedMs);
      const module = this.#rebuild(blueprintId, siteKey, scope, value.entry);
      const latencyMs = this.#clock.monotonicMs() - startMs;
      this.#fetched += 1;
      if (value.cacheHit) this.#cacheHits += 1;
      this.#lastFetchLatencyMs = latencyMs;
      return {
        module,
        latencyMs,
        overBudget: latencyMs > this.#latencyBudgetMs,
        cacheHit: value.cacheHit,
        waitedMs,
        checksum: value.entry.checksum,
        guardDigest: value.entry.guardDigest,
      };
    } catch (error) {
      this.#failed += 1;
      throw error;
    }
  }

  /** Counters so far. */
  stats(): KernelFetcherStats {
    return {
      fetched: this.#fetched,
      failed: this.#failed,
      cacheHits: this.#cacheHits,
      contentionEvents: this.#contentionEvents,
      lastLockWaitMs: this.#lastLockWaitMs,
      maxLockWaitMs: this.#maxLockWaitMs,
      lastFetchLatencyMs: this.#lastFetchLatencyMs,
    };
  }

  /**
   * Cache and fetch metrics: `kasmina.cache.lock_wait_ms{stat=last|max}`,
   * `kasmina.cache.kernel_size`, `kasmina.cache.kernel_hit_rate`,
   * `kasmina.cache.kernel_evictions`, and `kasmina.kernel.fetch_latency_ms` once a fetch
   * succeeded.
   */
  metrics(): MetricInput[] {
    const cache = this.#cache.stats();
    const metrics: MetricInput[] = [
      { name: KasminaMetric.CACHE_LOCK_WAIT_MS, value: this.#lastLockWaitMs, unit: 'ms', attributes: { stat: 'last' } },
      { name: KasminaMetric.CACHE_LOCK_WAIT_MS, value: this.#maxLockWaitMs, unit: 'ms', attributes: { stat: 'max' } },
      { name: KasminaMetric.CACHE_KERNEL_SIZE, value: cache.size, unit: 'count' },
      { name: KasminaMetric.CACHE_KERNEL_HIT_RATE, value: cache.hitRate, unit: 'ratio' },
      { name: KasminaMetric.CACHE_KERNEL_EVICTIONS, value: cache.evictions, unit: 'count' },
    ];
    if (this.#fetched > 0) {
      metrics.push({ name: KasminaMetric.KERNEL_FETCH_LATENCY_MS, value: this.#lastFetchLatencyMs, unit: 'ms' });
    }
    return metrics;
  }

  /** Runs under the blueprint's lock: the cached entry, or a verified load stored in the cache. */
  async #bytesOf(blueprintId: string, siteKey: string): Promise<{ entry: KernelCacheEntry; cacheHit: boolean }> {
    const cached = this.#cache.get(blueprintId, siteKey);
    if (cached !== undefined) return { entry: cached, cacheHit: true };
    const loaded = await this.#source.load(blueprintId, siteKey);
    const entry = this.#cache.set(blueprintId, siteKey, {
      bytes: loaded.bytes,
      checksum: loaded.record.checksum,
      guardDigest: loaded.record.guardDigest,
    });
    return { entry, cacheHit: false };
  }

  #rebuild(blueprintId: string, siteKey: string, scope: string, entry: KernelCacheEntry): SeedModule {
    try {
      return loadArtifact(entry.bytes, { scope, ...(this.#catalog === undefined ? {} : { catalog: this.#catalog }) });
    } catch (error) {
      // Verified bytes that cannot be rebuilt must not be served again from the cache.
      if (isEsperError(error, ErrorCode.TEZZERET_ARTIFACT_INVALID)) this.#cache.delete(blueprintId, siteKey);
      throw error;
    }
  }

  #recordLockWait(blueprintId: string, siteKey: string, waitedMs: number): void {
    this.#lastLockWaitMs = waitedMs;
    if (waitedMs > this.#maxLockWaitMs) this.#maxLockWaitMs = waitedMs;
    if (waitedMs <= this.#lockContentionWarnMs) return;
    this.#contentionEvents += 1;
    this.#telemetry.emit(
      buildTelemetryPacket({
        source: SOURCE,
        trainingRunId: this.#trainingRunId,
        clock: this.#clock,
        events: [
          {
            description: KasminaEvent.CACHE_LOCK_CONTENTION,
            level: TelemetryLevel.WARNING,
            attributes: {
              blueprint_id: blueprintId,
              site_key: siteKey,
              waited_ms: Number(waitedMs.toFixed(3)),
              threshold_ms: this.#lockContentionWarnMs,
            },
          },
        ],
        metrics: [{ name: KasminaMetric.CACHE_LOCK_WAIT_MS, value: waitedMs, unit: 'ms', attributes: { stat: 'last' } }],
      }),
    );
  }
}
