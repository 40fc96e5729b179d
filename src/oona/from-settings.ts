/**
 * Opens the bus a process is configured for (`oona.busUrl`): a `StreamBus` over an
 * in-process `MemoryStreamStore` for `memory://`, or over Redis Streams for `redis://` and
 * `rediss://`, with every other `oona.*` setting applied. Selected by configuration, never
 * by fallback: an unreachable Redis fails the first publish or subscribe, loudly.
 */
import type { Clock, EsperSettings, TelemetrySink } from '../core/index.js';
import type { KeyRing } from '../security/index.js';
import { MemoryStreamStore } from './memory-stream-store.js';
import { RedisStreamStore } from './redis-stream-store.js';
import { StreamBus } from './stream-bus.js';

/** Collaborators of {@link openBusFromSettings}. */
export interface OpenBusOptions {
  /** Signs and verifies bus envelopes. */
  readonly keyRing: KeyRing;
  /** Receives the bus's own telemetry (dead letters, shedding). */
  readonly telemetry: TelemetrySink;
  readonly clock?: Clock;
}

/** The configured bus; the caller closes it (which closes its store). */
export function openBusFromSettings(settings: Pick<EsperSettings, 'oona'>, options: OpenBusOptions): StreamBus {
  const oona = settings.oona;
  const store = oona.busUrl.startsWith('memory:') ? new MemoryStreamStore() : new RedisStreamStore({ url: oona.busUrl });
  return new StreamBus({
    store,
    ownsStore: true,
    keyRing: options.keyRing,
    telemetry: options.telemetry,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    streamPrefix: oona.streamPrefix,
    maxAttempts: oona.maxAttempts,
    readCount: oona.readCount,
    blockMs: oona.blockMs,
    reclaimIdleMs: oona.reclaimIdleMs,
    reclaimIntervalMs: oona.reclaimIntervalMs,
    emergencyMaxPerMin: oona.emergencyMaxPerMin,
    maxBacklog: oona.maxBacklog,
    publishDeadlineMs: oona.publishDeadlineMs,
    retentionMs: oona.retentionMs,
    kernelFreshnessWindowMs: oona.kernelFreshnessWindowMs,
    kernelNonceCacheSize: oona.kernelNonceCacheSize,
  });
}
