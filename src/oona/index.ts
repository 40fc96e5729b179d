/**
 * Oona: the message fabric. One `Bus` interface, implemented by `StreamBus` over a
 * `StreamStore` — `RedisStreamStore` (distributed) or `MemoryStreamStore` (embedded,
 * tests). Other subsystems import only from this file.
 */
export type {
  Bus,
  BusMetrics,
  Delivery,
  DeliveryHandler,
  LatencySummary,
  PublishOptions,
  PublishReceipt,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from './bus.js';
export { DEFAULT_STREAM_NAMES, familyStream, LogicalStream, resolveStreamNames, sheddable, type StreamNames } from './streams.js';
export {
  compareEntryIds,
  parseEntryId,
  type EntryFields,
  type GroupInfo,
  type ReadGroupOptions,
  type StreamEntry,
  type StreamStore,
} from './stream-store.js';
export { MemoryStreamStore, type MemoryStreamStoreOptions } from './memory-stream-store.js';
export {
  REDIS_STREAM_STORE_DEFAULTS,
  RedisStreamStore,
  resolveRedisStreamStoreOptions,
  type RedisStreamStoreOptions,
  type ResolvedRedisStreamStoreOptions,
} from './redis-stream-store.js';
export { StreamBus, type StreamBusState } from './stream-bus.js';
export { resolveStreamBusOptions, STREAM_BUS_DEFAULTS, type ResolvedStreamBusOptions, type StreamBusOptions } from './options.js';
export { DeadLetterReason, OONA_SOURCE, OonaEvent, OonaMetric } from './names.js';
export {
  DeadLetterField,
  EntryField,
  ENVELOPE_MAX_BYTES,
  openEntry,
  readDeadLetter,
  type DeadLetterInfo,
  type OpenedEntry,
  type RejectedEntry,
} from './envelope.js';
export { TokenBucket, type TokenBucketOptions } from './token-bucket.js';
export {
  KernelGuard,
  type KernelGuardInput,
  type KernelGuardOptions,
  type KernelGuardSnapshot,
  type KernelVerdict,
} from './kernel-guard.js';
export { openBusFromSettings, type OpenBusOptions } from './from-settings.js';
