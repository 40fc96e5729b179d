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
  PublishOptions,
  PublishReceipt,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from './bus.js';
export type { StreamStore } from './stream-store.js';
export { MemoryStreamStore } from './memory-stream-store.js';
export { RedisStreamStore } from './redis-stream-store.js';
export { StreamBus } from './stream-bus.js';
export { openBusFromSettings, type OpenBusOptions } from './from-settings.js';
export { pingRedis, type PingRedisOptions } from './redis-ping.js';
export { BusTelemetrySink, describeUnpublished, type BusTelemetrySinkStats } from './telemetry-sink.js';
