/**
 * Replay protection: a bounded ledger of recently seen nonces (prototype-rc1-plan §2.8).
 *
 * Every nonce lives for the same TTL, so insertion order is expiry order and a `Map`
 * doubles as a FIFO: purging and evicting both pop from the front, O(1) amortised.
 * Departures from the prototype (prototype-kasmina §13.4): the ledger is bounded (oldest
 * evicted, WARNING `nonce_ledger_truncated`) and expired entries can be purged while idle.
 *
 * A ledger opened on a {@link NonceStore} ({@link NonceLedger.open}) starts from what the
 * store holds and writes every registered nonce through to it, so a restarted verifier
 * still refuses replays. Decisions stay synchronous and in memory; the write lands
 * moments later (a crash inside that gap forgets that one nonce), and a store that fails
 * makes the next `register` throw rather than accept nonces it cannot remember.
 */
import {
  buildTelemetryPacket,
  closeOnce,
  ErrorCode,
  errorMessage,
  EsperError,
  optionChecks,
  runCleanup,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { SecurityEvent, SecurityMetric, securityMetricName } from './names.js';
import type { NonceStore } from './nonce-store.js';

/** Default nonce lifetime. */
export const DEFAULT_NONCE_TTL_SECONDS = 300;

/** Default hard cap on held nonces. */
export const DEFAULT_NONCE_LEDGER_MAX_ENTRIES = 10_000;

/** Options of {@link NonceLedger}. */
export interface NonceLedgerOptions {
  /** How long a registered nonce is remembered, in seconds. @default 300 */
  readonly ttlSeconds?: number;
  /** Hard cap on held nonces; past it the oldest are evicted. @default 10_000 */
  readonly maxEntries?: number;
  /** Time source; only {@link Clock.monotonicMs} is read. @default systemClock */
  readonly clock?: Clock;
  /** Where the `nonce_ledger_truncated` WARNING goes. @default none (counted only) */
  readonly sink?: TelemetrySink;
  /** Subsystem named in telemetry and metric names. @default 'security' */
  readonly source?: string;
}

/** Options of {@link NonceLedger.open}: a ledger kept in a {@link NonceStore}. */
export interface DurableNonceLedgerOptions extends NonceLedgerOptions {
  /** Where nonces are kept across restarts; closed by {@link NonceLedger.close}. */
  readonly store: NonceStore;
}

/** {@link NonceLedgerOptions} with every default applied. */
export interface ResolvedNonceLedgerOptions {
  readonly ttlSeconds: number;
  readonly maxEntries: number;
  readonly clock: Clock;
  readonly sink: TelemetrySink | undefined;
  readonly source: string;
}

/** Point-in-time state of a {@link NonceLedger}. */
export interface NonceLedgerSnapshot {
  /** Nonces held now (expired ones not yet purged included). */
  readonly size: number;
  /** Unexpired nonces evicted because the ledger was full, since construction. */
  readonly evictionsTotal: number;
  /** Expired nonces purged, by `register` or {@link NonceLedger.purgeExpired}. */
  readonly purgedTotal: number;
  readonly ttlSeconds: number;
  readonly maxEntries: number;
}

/** Applies defaults and validates eagerly, naming the bad field. */
export function resolveNonceLedgerOptions(options: NonceLedgerOptions = {}): ResolvedNonceLedgerOptions {
  const check = optionChecks('NonceLedger');
  return {
    ttlSeconds: check.positive('ttlSeconds', options.ttlSeconds ?? DEFAULT_NONCE_TTL_SECONDS),
    maxEntries: check.integer('maxEntries', options.maxEntries ?? DEFAULT_NONCE_LEDGER_MAX_ENTRIES, { min: 1 }),
    clock: options.clock ?? systemClock,
    sink: options.sink,
    source: check.nonEmptyString('source', options.source ?? 'security'),
  };
}

/** A bounded, TTL-based set of seen nonces. */
export class NonceLedger {
  readonly #options: ResolvedNonceLedgerOptions;
  readonly #ttlMs: number;
  /** nonce → monotonic expiry (ms); insertion order = expiry order. */
  readonly #expiries = new Map<string, number>();
  #evictionsTotal = 0;
  #purgedTotal = 0;
  #store: NonceStore | undefined;
  /** Writes to the store not yet settled. */
  readonly #pendingWrites = new Set<Promise<void>>();
  #storeFailure: EsperError | undefined;
  readonly #close = closeOnce(() => runCleanup('nonce ledger', [() => this.flush(), () => this.#store?.close()]));

  /** A ledger in memory only: a restarted verifier forgets every nonce. */
  constructor(options: NonceLedgerOptions = {}) {
    this.#options = resolveNonceLedgerOptions(options);
    this.#ttlMs = this.#options.ttlSeconds * 1000;
  }

  /**
   * A ledger that starts from the unexpired nonces in `options.store` and writes every
   * registered nonce through to it. Emits WARNING `nonce_store_recovered` when the store
   * cut a torn tail while opening. Closes the store if loading fails.
   * @throws the store's typed errors (naming its file or key prefix); INVALID_ARGUMENT.
   */
  static async open(options: DurableNonceLedgerOptions): Promise<NonceLedger> {
    const { store } = options;
    try {
      const ledger = new NonceLedger(options);
      await ledger.#restore(store);
      return ledger;
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** How long a nonce is remembered, in seconds. */
  get ttlSeconds(): number {
    return this.#options.ttlSeconds;
  }

  /** The hard cap on held nonces. */
  get maxEntries(): number {
    return this.#options.maxEntries;
  }

  /** Nonces held now. */
  get size(): number {
    return this.#expiries.size;
  }

  /**
   * Records `nonce`. Returns false if it was already registered within the TTL (a
   * replay); the ledger is then unchanged and the nonce keeps its first expiry. Purges
   * expired nonces first; evicts the oldest when the cap is exceeded.
   */
  register(nonce: string): boolean {
    if (this.#storeFailure !== undefined) throw this.#storeFailure;
    const nowMs = this.#options.clock.monotonicMs();
    this.#purgeUntil(nowMs);
    if (this.#expiries.has(nonce)) return false;
    this.#expiries.set(nonce, nowMs + this.#ttlMs);
    if (this.#expiries.size > this.#options.maxEntries) this.#evictOverflow();
    const store = this.#store;
    if (store !== undefined) {
      const wallMs = this.#options.clock.wallMs();
      this.#write(
        store.record({ nonce, expiresAtMs: wallMs + this.#ttlMs }, wallMs).then((fresh) => {
          if (!fresh) this.#emit(SecurityEvent.NONCE_STORE_CONFLICT, TelemetryLevel.CRITICAL, { location: store.location });
        }),
      );
    }
    return true;
  }

  /** Whether `nonce` is registered and unexpired. Does not modify the ledger. */
  has(nonce: string): boolean {
    const expiryMs = this.#expiries.get(nonce);
    return expiryMs !== undefined && expiryMs > this.#options.clock.monotonicMs();
  }

  /**
   * Drops every expired nonce and returns how many. Call once per control-loop
   * iteration so the ledger shrinks even when no command arrives.
   */
  purgeExpired(): number {
    return this.#purgeUntil(this.#options.clock.monotonicMs());
  }

  /**
   * Forgets every nonce (administrative reset: registry reset, teacher swap) and returns
   * how many were held. Totals are kept. After a reset, commands already accepted can
   * replay until they go stale, so reset only when those commands are harmless again.
   */
  clear(): number {
    const size = this.#expiries.size;
    this.#expiries.clear();
    if (this.#store !== undefined) this.#write(this.#store.clear());
    return size;
  }

  /**
   * Resolves once every nonce registered so far is in the store.
   * @throws EsperError NONCE_STORE_FAILED when a write failed.
   */
  async flush(): Promise<void> {
    await Promise.all([...this.#pendingWrites]);
    if (this.#storeFailure !== undefined) throw this.#storeFailure;
  }

  /**
   * Flushes and closes the store (if any), even when the flush fails. Idempotent: returns
   * the first call's promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  /** Counters and configuration. */
  snapshot(): NonceLedgerSnapshot {
    return {
      size: this.#expiries.size,
      evictionsTotal: this.#evictionsTotal,
      purgedTotal: this.#purgedTotal,
      ttlSeconds: this.#options.ttlSeconds,
      maxEntries: this.#options.maxEntries,
    };
  }

  /** The reference gauges (`<source>.nonce_ledger.*`), named after `source`. */
  metrics(source: string = this.#options.source): MetricInput[] {
    return nonceLedgerMetrics(source, this.snapshot());
  }

  #purgeUntil(nowMs: number): number {
    let purged = 0;
    for (const [nonce, expiryMs] of this.#expiries) {
      if (expiryMs > nowMs) break;
      this.#expiries.delete(nonce);
      purged += 1;
    }
    this.#purgedTotal += purged;
    return purged;
  }

  async #restore(store: NonceStore): Promise<void> {
    const { clock } = this.#options;
    const wallMs = clock.wallMs();
    const loaded = await store.load(wallMs);
    if (loaded.truncatedTailBytes > 0) {
      this.#emit(SecurityEvent.NONCE_STORE_RECOVERED, TelemetryLevel.WARNING, {
        location: store.location,
        truncated_tail_bytes: loaded.truncatedTailBytes,
      });
    }
    const monotonicMs = clock.monotonicMs();
    // Oldest first keeps insertion order = expiry order; never longer than one TTL, even
    // when the wall clock stepped back since the nonce was stored.
    for (const record of [...loaded.records].sort((a, b) => a.expiresAtMs - b.expiresAtMs)) {
      const remainingMs = Math.min(record.expiresAtMs - wallMs, this.#ttlMs);
      if (remainingMs > 0 && !this.#expiries.has(record.nonce)) this.#expiries.set(record.nonce, monotonicMs + remainingMs);
    }
    if (this.#expiries.size > this.#options.maxEntries) this.#evictOverflow();
    this.#store = store;
  }

  /** Tracks one store write; a failure fails the ledger (see {@link NonceLedger.register}). */
  #write(write: Promise<unknown>): void {
    const tracked = write.then(
      () => undefined,
      (error: unknown) => {
        if (this.#storeFailure !== undefined) return;
        const location = this.#store?.location ?? '';
        this.#storeFailure = new EsperError(
          ErrorCode.NONCE_STORE_FAILED,
          `nonce store ${location} failed; refusing nonces it cannot remember: ${errorMessage(error)}`,
          { cause: error, details: { location } },
        );
        this.#emit(SecurityEvent.NONCE_STORE_FAILED, TelemetryLevel.CRITICAL, { location, error: this.#storeFailure.message });
      },
    );
    this.#pendingWrites.add(tracked);
    void tracked.then(() => this.#pendingWrites.delete(tracked));
  }

  #evictOverflow(): void {
    let evicted = 0;
    for (const nonce of this.#expiries.keys()) {
      if (this.#expiries.size <= this.#options.maxEntries) break;
      this.#expiries.delete(nonce);
      evicted += 1;
    }
    this.#evictionsTotal += evicted;
    this.#emit(SecurityEvent.NONCE_LEDGER_TRUNCATED, TelemetryLevel.WARNING, {
      size: this.#expiries.size,
      evicted,
      max_entries: this.#options.maxEntries,
    });
  }

  #emit(description: SecurityEvent, level: TelemetryLevel, attributes: Record<string, string | number>): void {
    const { sink, source, clock } = this.#options;
    sink?.emit(buildTelemetryPacket({ source, clock, events: [{ description, level, attributes }], metrics: this.metrics() }));
  }
}

/** Builds the `<source>.nonce_ledger.{size, evictions_total, ttl_seconds}` gauges. */
export function nonceLedgerMetrics(source: string, snapshot: NonceLedgerSnapshot): MetricInput[] {
  return [
    {
      name: securityMetricName(source, SecurityMetric.NONCE_LEDGER_SIZE),
      value: snapshot.size,
      unit: 'count',
    },
    {
      name: securityMetricName(source, SecurityMetric.NONCE_LEDGER_EVICTIONS_TOTAL),
      value: snapshot.evictionsTotal,
      unit: 'count',
    },
    {
      name: securityMetricName(source, SecurityMetric.NONCE_LEDGER_TTL_SECONDS),
      value: snapshot.ttlSeconds,
      unit: 's',
    },
  ];
}
