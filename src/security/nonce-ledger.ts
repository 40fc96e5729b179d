/**
 * Replay protection: a bounded ledger of recently seen nonces (prototype-rc1-plan §2.8).
 *
 * Every nonce lives for the same TTL, so insertion order is expiry order and a `Map`
 * (which iterates in insertion order) doubles as a FIFO: purging expired nonces and
 * evicting the oldest ones both pop from the front, so every operation is O(1) amortised.
 *
 * Deliberate departures from the prototype (prototype-kasmina §13.4): the ledger is
 * bounded (hard cap, oldest evicted, WARNING `nonce_ledger_truncated`), and expired
 * entries can be purged without a `register` call ({@link NonceLedger.purgeExpired}), so
 * the ledger shrinks while idle.
 */
import {
  buildTelemetryPacket,
  ErrorCode,
  EsperError,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { SecurityEvent, SecurityMetric, securityMetricName } from './names.js';

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
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_NONCE_TTL_SECONDS;
  if (!(Number.isFinite(ttlSeconds) && ttlSeconds > 0)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `ttlSeconds must be > 0, got ${ttlSeconds}`, {
      details: { field: 'ttlSeconds' },
    });
  }
  const maxEntries = options.maxEntries ?? DEFAULT_NONCE_LEDGER_MAX_ENTRIES;
  if (!(Number.isSafeInteger(maxEntries) && maxEntries >= 1)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `maxEntries must be an integer ≥ 1, got ${maxEntries}`, {
      details: { field: 'maxEntries' },
    });
  }
  const source = options.source ?? 'security';
  if (source.length === 0) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'source must not be empty', {
      details: { field: 'source' },
    });
  }
  return {
    ttlSeconds,
    maxEntries,
    clock: options.clock ?? systemClock,
    sink: options.sink,
    source,
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

  constructor(options: NonceLedgerOptions = {}) {
    this.#options = resolveNonceLedgerOptions(options);
    this.#ttlMs = this.#options.ttlSeconds * 1000;
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
    const nowMs = this.#options.clock.monotonicMs();
    this.#purgeUntil(nowMs);
    if (this.#expiries.has(nonce)) return false;
    this.#expiries.set(nonce, nowMs + this.#ttlMs);
    if (this.#expiries.size > this.#options.maxEntries) this.#evictOverflow();
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
    return size;
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

  #evictOverflow(): void {
    let evicted = 0;
    for (const nonce of this.#expiries.keys()) {
      if (this.#expiries.size <= this.#options.maxEntries) break;
      this.#expiries.delete(nonce);
      evicted += 1;
    }
    this.#evictionsTotal += evicted;
    const { sink, source, clock } = this.#options;
    if (sink === undefined) return;
    sink.emit(
      buildTelemetryPacket({
        source,
        clock,
        events: [
          {
            description: SecurityEvent.NONCE_LEDGER_TRUNCATED,
            level: TelemetryLevel.WARNING,
            attributes: {
              size: this.#expiries.size,
              evicted,
              max_entries: this.#options.maxEntries,
            },
          },
        ],
        metrics: this.metrics(),
      }),
    );
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
