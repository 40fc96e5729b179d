/**
 * Options of `StreamBus`, with their defaults in one place ({@link STREAM_BUS_DEFAULTS}).
 * The Oona section of `EsperSettings` maps onto these.
 */
import type { Clock, TelemetrySink } from '../core/index.js';
import type { KeyRing } from '../security/index.js';
import type { StreamStore } from './stream-store.js';
import type { LogicalStream } from './streams.js';

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
  /** Per-stream name overrides (after the prefix is applied to the others). */
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
  /** Consecutive store failures that open the publish or consume breaker. @default 5 */
  readonly breakerFailureThreshold?: number;
  /** How long an open breaker stays open, in ms. @default 1_000 */
  readonly breakerOpenMs?: number;
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
  breakerFailureThreshold: 5,
  breakerOpenMs: 1_000,
});
