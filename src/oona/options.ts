/**
 * Options of `StreamBus`, with their defaults in one place ({@link STREAM_BUS_DEFAULTS}).
 * The Oona section of `EsperSettings` maps onto these.
 */
import { MAX_TIMER_MS, optionChecks, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import type { KeyRing } from '../security/index.js';
import type { StreamStore } from './stream-store.js';
import { clusterHashKey, LogicalStream, resolveStreamNames, type StreamNames } from './streams.js';

/** Options of `StreamBus`. */
export interface StreamBusOptions {
  /** Where streams live (Redis or memory). Not closed by the bus unless `ownsStore`. */
  readonly store: StreamStore;
  /** Close `store` when the bus closes. @default false */
  readonly ownsStore?: boolean;
  /** Signs every envelope with the active key; verifies with any key of the ring. */
  readonly keyRing: KeyRing;
  /** Receives the bus's own telemetry (CRITICAL `signature_invalid`, dead-letters, ...). */
  readonly telemetry: TelemetrySink;
  /** Prepended to every default stream name (tests use a unique one). @default '' */
  readonly streamPrefix?: string;
  /**
   * Per-stream name overrides (after the prefix is applied to the others). Each must carry
   * the hash tag of the other names (`{oona}` by default) so that all streams of the bus
   * share one Redis Cluster slot.
   */
  readonly streamNames?: Partial<Record<LogicalStream, string>>;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Handling attempts before a message is dead-lettered. @default 5 */
  readonly maxAttempts?: number;
  /** Entries read per stream per poll. @default 32 */
  readonly readCount?: number;
  /** How long a poll blocks waiting for new entries, in ms. @default 500 */
  readonly blockMs?: number;
  /** A pending entry idle this long (its consumer died) is reclaimed, in ms. @default 60_000 */
  readonly reclaimIdleMs?: number;
  /** How often each subscription looks for entries to reclaim, in ms. @default 5_000 */
  readonly reclaimIntervalMs?: number;
  /** Emergency-stream budget (token bucket, per minute). @default 120 */
  readonly emergencyMaxPerMin?: number;
  /** Depth (undelivered + unacknowledged) at which a stream is under back-pressure. @default 10_000 */
  readonly maxBacklog?: number;
  /** How long stream depths are cached between refreshes, in ms. @default 100 */
  readonly depthRefreshMs?: number;
  /** Default wait of a never-shed publish under back-pressure or store outage, in ms. @default 5_000 */
  readonly publishDeadlineMs?: number;
  /** Retention window of `housekeeping()`, in ms. @default 900_000 */
  readonly retentionMs?: number;
  /** Kernel prefetch requests older than this are stale, in ms. @default 60_000 */
  readonly kernelFreshnessWindowMs?: number;
  /** Request ids remembered by the kernel replay guard. @default 4_096 */
  readonly kernelNonceCacheSize?: number;
  /** Message ids each subscription remembers to drop copies of handled messages. @default 4_096 */
  readonly duplicateWindowSize?: number;
  /** Consecutive store failures that open the publish or consume breaker. @default 5 */
  readonly breakerFailureThreshold?: number;
  /** How long an open breaker stays open, in ms. @default 1_000 */
  readonly breakerOpenMs?: number;
  /**
   * How long stopping a subscription (and so `close()`) waits for the handler in flight,
   * in ms; past it the stop returns and that entry stays pending, to be reclaimed.
   * @default 10_000
   */
  readonly stopTimeoutMs?: number;
}

/** Defaults of {@link StreamBusOptions}; the one place they live. */
export const STREAM_BUS_DEFAULTS = Object.freeze({
  ownsStore: false,
  streamPrefix: '',
  maxAttempts: 5,
  readCount: 32,
  blockMs: 500,
  reclaimIdleMs: 60_000,
  reclaimIntervalMs: 5_000,
  emergencyMaxPerMin: 120,
  maxBacklog: 10_000,
  depthRefreshMs: 100,
  publishDeadlineMs: 5_000,
  retentionMs: 900_000,
  kernelFreshnessWindowMs: 60_000,
  kernelNonceCacheSize: 4_096,
  duplicateWindowSize: 4_096,
  breakerFailureThreshold: 5,
  breakerOpenMs: 1_000,
  stopTimeoutMs: 10_000,
});

/** {@link StreamBusOptions} after defaults and validation. */
export interface ResolvedStreamBusOptions {
  readonly store: StreamStore;
  readonly ownsStore: boolean;
  readonly keyRing: KeyRing;
  readonly telemetry: TelemetrySink;
  readonly streamPrefix: string;
  /** Physical name of every logical stream, all distinct. */
  readonly streams: StreamNames;
  readonly clock: Clock;
  readonly maxAttempts: number;
  readonly readCount: number;
  readonly blockMs: number;
  readonly reclaimIdleMs: number;
  readonly reclaimIntervalMs: number;
  readonly emergencyMaxPerMin: number;
  readonly maxBacklog: number;
  readonly depthRefreshMs: number;
  readonly publishDeadlineMs: number;
  readonly retentionMs: number;
  readonly kernelFreshnessWindowMs: number;
  readonly kernelNonceCacheSize: number;
  readonly duplicateWindowSize: number;
  readonly breakerFailureThreshold: number;
  readonly breakerOpenMs: number;
  readonly stopTimeoutMs: number;
}

/** Lower bound of each numeric option (all are integers). */
const NUMERIC_MINIMUMS = Object.freeze({
  maxAttempts: 1,
  readCount: 1,
  blockMs: 0,
  reclaimIdleMs: 0,
  reclaimIntervalMs: 1,
  emergencyMaxPerMin: 1,
  maxBacklog: 1,
  depthRefreshMs: 0,
  publishDeadlineMs: 0,
  retentionMs: 1,
  kernelFreshnessWindowMs: 1,
  kernelNonceCacheSize: 1,
  duplicateWindowSize: 1,
  breakerFailureThreshold: 1,
  breakerOpenMs: 0,
  stopTimeoutMs: 0,
} satisfies Partial<Record<keyof StreamBusOptions, number>>);

/** The numeric options that become a timer, so are bounded by `MAX_TIMER_MS`. */
const TIMER_OPTIONS: ReadonlySet<string> = new Set(['blockMs', 'publishDeadlineMs', 'stopTimeoutMs']);

type NumericOption = keyof typeof NUMERIC_MINIMUMS;

const STORE_METHODS = [
  'add',
  'ensureGroup',
  'destroyGroup',
  'readGroup',
  'ack',
  'autoClaim',
  'groups',
  'length',
  'trimBefore',
  'close',
] as const;

/**
 * Fills in {@link STREAM_BUS_DEFAULTS} and validates every option eagerly; throws
 * `INVALID_ARGUMENT` naming the bad field (`details.field`).
 */
export function resolveStreamBusOptions(options: StreamBusOptions): ResolvedStreamBusOptions {
  const check = optionChecks('StreamBus');
  const { store, keyRing, telemetry } = options;
  if (typeof store !== 'object' || store === null || STORE_METHODS.some((m) => typeof store[m] !== 'function')) {
    check.fail('store', 'a StreamStore', store);
  }
  if (typeof keyRing !== 'object' || keyRing === null || typeof keyRing.activeKeyId !== 'string' || typeof keyRing.has !== 'function') {
    check.fail('keyRing', 'a KeyRing', keyRing);
  }
  if (typeof telemetry !== 'object' || telemetry === null || typeof telemetry.emit !== 'function') {
    check.fail('telemetry', 'a TelemetrySink', telemetry);
  }
  const clock = options.clock ?? systemClock;
  if (typeof clock.monotonicMs !== 'function' || typeof clock.wallMs !== 'function') check.fail('clock', 'a Clock', clock);
  const ownsStore = options.ownsStore ?? STREAM_BUS_DEFAULTS.ownsStore;
  if (typeof ownsStore !== 'boolean') check.fail('ownsStore', 'a boolean', ownsStore);
  const streamPrefix = options.streamPrefix ?? STREAM_BUS_DEFAULTS.streamPrefix;
  if (typeof streamPrefix !== 'string') check.fail('streamPrefix', 'a string', streamPrefix);
  const overrides = options.streamNames ?? {};
  const logicalNames = new Set<string>(Object.values(LogicalStream));
  for (const [key, name] of Object.entries(overrides)) {
    if (!logicalNames.has(key)) check.fail(`streamNames.${key}`, 'a logical stream key', key);
    check.nonEmptyString(`streamNames.${key}`, name);
  }
  const streams = resolveStreamNames(streamPrefix, overrides);
  const byName = new Map<string, string>();
  for (const [key, name] of Object.entries(streams)) {
    const other = byName.get(name);
    if (other !== undefined) check.fail(`streamNames.${key}`, `a name distinct from streamNames.${other}`, name);
    byName.set(name, key);
  }
  // One XREADGROUP reads several of these streams; Redis Cluster answers CROSSSLOT unless
  // all hash to one slot. Checked everywhere, so a name that works on one Redis works on a cluster.
  const reference = resolveStreamNames(streamPrefix).emergency;
  const hashKey = clusterHashKey(reference);
  for (const [key, name] of Object.entries(streams)) {
    if (clusterHashKey(name) === hashKey) continue;
    const field = key in overrides ? `streamNames.${key}` : 'streamPrefix';
    check.fail(field, `a stream name in the Redis Cluster hash slot of ${reference} (hash tag {${hashKey}})`, name);
  }
  const numbers = {} as Record<NumericOption, number>;
  for (const field of Object.keys(NUMERIC_MINIMUMS) as NumericOption[]) {
    const min = NUMERIC_MINIMUMS[field];
    numbers[field] = check.integer(
      field,
      options[field] ?? STREAM_BUS_DEFAULTS[field],
      TIMER_OPTIONS.has(field) ? { min, max: MAX_TIMER_MS } : { min },
    );
  }
  return Object.freeze({ store, ownsStore, keyRing, telemetry, streamPrefix, streams, clock, ...numbers });
}
